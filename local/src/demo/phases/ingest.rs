//! Phases 4-5 on the emulator: submissions through the production adapters,
//! read back with their answers, then vitals that deteriorate to NEWS2 high.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use serde_json::Value;

use super::{Demo, EMULATOR};
use crate::demo::{bar, fmt_counts, send_retrying, status_counts, step, DemoError, TRIAL};
use crate::measure::{ms, percentile};
use crate::scenario::{self, Condition};

/// One patient's stored submissions by id, as the API lists them.
type ReadBack = Result<(usize, BTreeMap<String, Value>), crate::client::ClientError>;

impl Demo<'_> {
    /// Phase 4, correctness, on the emulator: submissions through the production
    /// adapters, then every accepted one read back through the API with its answers.
    pub(super) async fn correctness(&mut self) -> Result<(), DemoError> {
        let opts = self.opts;
        let every = opts.pro_alert_every.max(1);
        let now = Utc::now();
        let pb = bar(opts.checked_submissions, "stored");
        let started = Instant::now();
        let (api, tokens, retries, pb_ref) = (&self.api, &self.patients, &self.retries, &pb);
        // (index, submission id, breathlessness sent, status, latency)
        let results: Vec<(usize, String, u32, u16, Duration)> = futures::stream::iter(0..opts.checked_submissions)
            .map(|i| async move {
                let n = i % opts.emulator_patients;
                let breathless = if (i + 1) % every == 0 { 10 } else { scenario::ordinary_breathlessness(i) };
                let id = uuid::Uuid::new_v4().to_string();
                let completed_at = now - chrono::Duration::seconds(1 + (i / opts.emulator_patients) as i64);
                let body = scenario::submission(&id, completed_at, i, breathless);
                let path = format!("/v1/trials/{TRIAL}/patients/{}/submissions", scenario::patient_id(n));
                let (a, latency) = send_retrying(api, reqwest::Method::POST, &path, &tokens[n], &body, retries).await;
                pb_ref.inc(1);
                (i, id, breathless, a.status, latency)
            })
            .buffer_unordered(opts.emulator_concurrency)
            .collect()
            .await;
        let took = started.elapsed();
        pb.finish_and_clear();
        let accepted: Vec<&(usize, String, u32, u16, Duration)> = results.iter().filter(|r| matches!(r.3, 200 | 201)).collect();
        let mut latencies: Vec<Duration> = results.iter().map(|r| r.4).collect();
        latencies.sort();
        let rate = accepted.len() as f64 / took.as_secs_f64().max(1e-9);
        // A submission answered 503 (or timed out) may still have been stored and
        // alerted, so every patient whose answers tripped the rule is watched.
        self.pro_patients = results.iter().filter(|r| (r.0 + 1) % every == 0).map(|r| r.0 % opts.emulator_patients).collect();
        self.pro_submissions = accepted.iter().filter(|r| (r.0 + 1) % every == 0).count();

        // Read every accepted submission back, patient by patient, with its answers.
        let read_started = Instant::now();
        let mut sent: BTreeMap<usize, Vec<(&str, u32)>> = BTreeMap::new();
        for r in &accepted {
            sent.entry(r.0 % opts.emulator_patients).or_default().push((r.1.as_str(), r.2));
        }
        let read: Vec<ReadBack> = futures::stream::iter(sent.keys().copied())
            .map(|n| async move {
                let path = format!("/v1/trials/{TRIAL}/patients/{}/submissions?limit=100", scenario::patient_id(n));
                let items = api.list_all(&path, &tokens[n]).await?;
                let by_id = items.into_iter().filter_map(|s| Some((s["submissionId"].as_str()?.to_owned(), s))).collect();
                Ok((n, by_id))
            })
            .buffer_unordered(opts.emulator_concurrency)
            .collect()
            .await;
        let mut read_back = 0;
        for r in read {
            let (n, stored) = r?;
            for (id, breathless) in sent.get(&n).into_iter().flatten() {
                let answer = stored.get(*id).and_then(|s| {
                    s["answers"].as_array()?.iter().find(|a| a["linkId"] == scenario::PRO_ITEM).and_then(|a| a["value"].as_f64())
                });
                if answer == Some(f64::from(*breathless)) {
                    read_back += 1;
                }
            }
        }
        println!(
            "4. correctness {EMULATOR}: {} submissions in {:.1} s: {} accepted, {rate:.0}/s, p50 {} p99 {} ({}); {read_back} read back with their answers in {:.1} s",
            opts.checked_submissions,
            took.as_secs_f64(),
            accepted.len(),
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.99)),
            fmt_counts(&status_counts(&results.iter().map(|r| r.3).collect::<Vec<_>>())),
            read_started.elapsed().as_secs_f64()
        );
        self.checks.expect(
            accepted.len() == opts.checked_submissions,
            format!("{} checked submissions were not accepted", opts.checked_submissions - accepted.len()),
        );
        self.checks
            .expect(read_back == accepted.len(), format!("only {read_back} of {} accepted submissions read back intact", accepted.len()));
        self.summary.line(
            "stored and read back",
            format!(
                "{read_back} of {} submissions {EMULATOR}, answers compared; {rate:.0}/s, p50 {}, p99 {} (the emulator's rate, not AWS's)",
                opts.checked_submissions,
                ms(percentile(&latencies, 0.50)),
                ms(percentile(&latencies, 0.99))
            ),
        );
        Ok(())
    }

    /// 5. Vitals, on the emulator: some patients deteriorate to NEWS2 high.
    pub(super) async fn vitals(&mut self) -> Result<(), DemoError> {
        let opts = self.opts;
        let vitals_url =
            self.emulator.provisioned.queue_url("VitalsQueue").map(str::to_owned).ok_or_else(|| step("VitalsQueue was not provisioned"))?;
        let sqs = aws_sdk_sqs::Client::new(&self.emulator.sdk);
        let steps = scenario::DETERIORATION.len();
        let pb = bar(opts.vital_patients * steps, "vitals");
        let started = Instant::now();
        let mut vital_statuses = Vec::new();
        for (k, course) in scenario::DETERIORATION.iter().enumerate() {
            let at = Utc::now();
            let (api, tokens, pb, retries) = (&self.api, &self.patients, &pb, &self.retries);
            let statuses: Vec<u16> = futures::stream::iter(0..opts.vital_patients)
                .map(|n| {
                    let condition = if n < opts.deteriorating { *course } else { Condition::Well };
                    async move {
                        let path = format!("/v1/trials/{TRIAL}/patients/{}/vitals", scenario::patient_id(n));
                        let (a, _) =
                            send_retrying(api, reqwest::Method::POST, &path, &tokens[n], &scenario::vitals(condition, at), retries).await;
                        pb.inc(1);
                        a.status
                    }
                })
                .buffer_unordered(opts.emulator_concurrency)
                .collect()
                .await;
            vital_statuses.extend(statuses);
            // Consume as we produce: the next step waits for the analyzer to drain
            // this one, so the emulator's FIFO queue stays shallow.
            if !wait_for_queue(&sqs, &vitals_url, Duration::from_secs(120)).await {
                self.checks.expect(false, format!("the vitals queue did not drain within 120 s after step {}", k + 1));
            }
        }
        pb.finish_and_clear();
        let accepted = vital_statuses.iter().filter(|s| **s == 202).count();
        println!(
            "5. vitals {EMULATOR}: {} patients x {steps} steps = {} requests in {:.1} s ({}); {} deteriorating to NEWS2 high",
            opts.vital_patients,
            vital_statuses.len(),
            started.elapsed().as_secs_f64(),
            fmt_counts(&status_counts(&vital_statuses)),
            opts.deteriorating
        );
        self.checks.expect(accepted == vital_statuses.len(), "some vitals requests were not accepted (202)");
        Ok(())
    }
}

/// Waits until the queue holds nothing visible or in flight.
async fn wait_for_queue(sqs: &aws_sdk_sqs::Client, url: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if matches!(crate::poller::queue_depth(sqs, url).await, Ok(0)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
