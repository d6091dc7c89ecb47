//! Phase 3: the burst, on the in-memory stack: TrialWatch's own rate.

use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;

use super::{Demo, MEMORY};
use crate::demo::{bar, fmt_counts, send_retrying, status_counts, TRIAL};
use crate::measure::{ms, percentile};
use crate::scenario;

impl Demo<'_> {
    /// 3. The burst, on the in-memory stack: TrialWatch's own rate.
    pub(super) async fn burst(&mut self) {
        let opts = self.opts;
        let now = Utc::now();
        let rounds = opts.submissions.div_ceil(opts.patients);
        let pb = bar(opts.submissions, "burst");
        let started = Instant::now();
        let (api, tokens, retries, pb_ref) = (&self.memory_api, &self.patients, &self.retries, &pb);
        let results: Vec<(u16, Duration)> = futures::stream::iter(0..opts.submissions)
            .map(|i| async move {
                let n = i % opts.patients;
                // `rounds` per patient, oldest first as phones sync them. All
                // after the enrolment a moment ago (less the API's 5-minute
                // clock skew): answers from before enrolment are refused.
                let rounds_back = (rounds - 1 - i / opts.patients) as i64;
                let completed_at = now - chrono::Duration::seconds((rounds_back * 20 + (n % 20) as i64).min(240));
                // Below the PRO rule's threshold: the burst raises no alert (the correctness run does).
                let body = scenario::submission(&uuid::Uuid::new_v4().to_string(), completed_at, i, scenario::ordinary_breathlessness(i));
                let path = format!("/v1/trials/{TRIAL}/patients/{}/submissions", scenario::patient_id(n));
                let (a, latency) = send_retrying(api, reqwest::Method::POST, &path, &tokens[n], &body, retries).await;
                pb_ref.inc(1);
                (a.status, latency)
            })
            .buffer_unordered(opts.concurrency)
            .collect()
            .await;
        let took = started.elapsed();
        pb.finish_and_clear();
        let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
        let accepted = statuses.iter().filter(|s| **s == 201).count();
        let replayed = statuses.iter().filter(|s| **s == 200).count();
        let mut latencies: Vec<Duration> = results.iter().map(|r| r.1).collect();
        latencies.sort();
        let rate = accepted as f64 / took.as_secs_f64().max(1e-9);
        let (p50, p99) = (ms(percentile(&latencies, 0.50)), ms(percentile(&latencies, 0.99)));
        println!(
            "3. burst {MEMORY}: {} submissions in {:.1} s: {accepted} accepted (201), {rate:.0}/s, latency p50 {p50} p99 {p99} ({})",
            opts.submissions,
            took.as_secs_f64(),
            fmt_counts(&status_counts(&statuses))
        );
        self.checks.expect(
            accepted + replayed == opts.submissions,
            format!("{} burst submissions were not accepted", opts.submissions - accepted - replayed),
        );
        self.summary.line(
            "submissions accepted",
            format!(
                "{accepted} of {} (201) {MEMORY}; replayed 200: {replayed}; other: {}",
                opts.submissions,
                opts.submissions - accepted - replayed
            ),
        );
        self.summary.line(
            "submission rate",
            format!(
                "{rate:.0}/s over {:.1} s with {} in flight {MEMORY} (debug build; client and server share 2 cores)",
                took.as_secs_f64(),
                opts.concurrency
            ),
        );
        self.summary
            .line("latency per request", format!("p50 {p50}, p99 {p99} {MEMORY} (client-side, loopback HTTP -> gateway -> handler)"));
    }
}
