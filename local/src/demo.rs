//! `trialwatch-local demo`: the main job end to end. It starts the stack
//! in-process (its own resources, a free port), a webhook receiver that checks
//! signatures, then drives the API over loopback HTTP like real clients would,
//! and prints a summary in which every figure is measured in this run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::auth::DevIdentity;
use crate::client::{Answer, Api};
use crate::receiver::WebhookReceiver;
use crate::scenario::{self, Condition};
use crate::{Stack, StackConfig};

pub const TRIAL: &str = "tw-demo";

/// Sizes and limits; the defaults finish in a few minutes on the emulator.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Patients enrolled (spread over 3 sites).
    #[arg(long, default_value_t = 1000)]
    pub patients: usize,
    /// ePRO submissions sent in the burst.
    #[arg(long, default_value_t = 10_000)]
    pub submissions: usize,
    /// Patients streaming vital signs.
    #[arg(long, default_value_t = 60)]
    pub vital_patients: usize,
    /// Of those, how many deteriorate to NEWS2 high.
    #[arg(long, default_value_t = 15)]
    pub deteriorating: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Every Nth submission reports breathlessness at the PRO rule's threshold.
    #[arg(long, default_value_t = 997)]
    pub pro_alert_every: usize,
    /// How long to wait for alerts to reach the webhook receiver.
    #[arg(long, default_value_t = 180)]
    pub alert_timeout_secs: u64,
    /// Where the report PDF is written.
    #[arg(long, default_value = ".local/demo-report.pdf")]
    pub pdf: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Stack(#[from] crate::StackError),
    #[error("{0}")]
    Client(#[from] crate::client::ClientError),
    #[error("{0}")]
    Step(String),
}

fn step(msg: impl Into<String>) -> DemoError {
    DemoError::Step(msg.into())
}

/// How often progress is printed as a plain line when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(15);

/// A progress bar on a terminal; in a pipe or a CI log (where indicatif draws
/// nothing) a plain progress line every few seconds instead, so a long burst
/// is never silent.
fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    let style = ProgressStyle::with_template("{prefix:>12} [{bar:40.cyan/blue}] {pos}/{len} {per_sec} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(what.to_owned());
    if pb.is_hidden() {
        let pb = pb.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PLAIN_PROGRESS_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                if pb.is_finished() {
                    break;
                }
                let done = pb.position();
                let rate = done as f64 / pb.elapsed().as_secs_f64().max(1e-9);
                eprintln!("{:>12} {done}/{} ({rate:.0}/s)", pb.prefix(), pb.length().unwrap_or(0));
            }
        });
    }
    pb
}

/// Nearest-rank percentile of sorted durations.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1} ms", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "n/a".into())
}

fn status_counts(statuses: &[u16]) -> BTreeMap<u16, usize> {
    let mut m = BTreeMap::new();
    for s in statuses {
        *m.entry(*s).or_insert(0) += 1;
    }
    m
}

fn fmt_counts(m: &BTreeMap<u16, usize>) -> String {
    m.iter().map(|(s, n)| format!("{s}: {n}")).collect::<Vec<_>>().join(", ")
}

/// Sends with the retry rule every TrialWatch client follows: a 503 (or a
/// dropped connection) is retried with the same body, which is idempotent.
async fn send_retrying(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: &Value,
    retries: &std::sync::atomic::AtomicU64,
) -> (Answer, Duration) {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = Instant::now();
        let r = api.send(method.clone(), path, Some(token), Some(body)).await;
        let elapsed = started.elapsed();
        match r {
            Ok(a) if a.status != 503 || attempt >= 5 => return (a, elapsed),
            Err(_) if attempt >= 5 => return (Answer { status: 0, body: Value::Null }, elapsed),
            _ => {
                retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

struct Checks(Vec<String>);

impl Checks {
    fn expect(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }
}

pub async fn run(opts: DemoOptions) -> Result<bool, DemoError> {
    if opts.patients == 0 || opts.vital_patients > opts.patients || opts.deteriorating > opts.vital_patients || opts.concurrency == 0 {
        return Err(step("need patients >= 1, vital-patients <= patients, deteriorating <= vital-patients, concurrency >= 1"));
    }
    println!(
        "TrialWatch demo: {} patients at {} sites, a burst of {} ePRO submissions ({} in flight), vitals from {} patients ({} deteriorating).",
        opts.patients,
        scenario::SITES.len(),
        opts.submissions,
        opts.concurrency,
        opts.vital_patients,
        opts.deteriorating
    );
    println!(
        "Note: the AWS emulator (moto, one Python process) is the throughput bottleneck here: it manages about 150-200 DynamoDB item writes/s"
    );
    println!(
        "      (a submission is one transaction of 5), and its SQS slows as a queue deepens. Rates below measure this machine and the"
    );
    println!("      emulator, not Lambda. Sizes are flags: make demo DEMO_ARGS=\"--patients 200 --submissions 2000\"; all of them:");
    println!("      cargo run -p trialwatch-local -- demo --help");

    // ---------------------------------------------------------------- stack
    let t0 = Instant::now();
    let mut config = StackConfig::for_test("demo");
    config.http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let stack = Stack::start(config).await?;
    println!("stack ready on {} (resources prefixed {}) in {:.1} s", stack.base_url, stack.provisioned.prefix, t0.elapsed().as_secs_f64());
    let outcome = drive(&stack, &opts).await;
    stack.shutdown().await;
    outcome
}

async fn drive(stack: &Stack, opts: &DemoOptions) -> Result<bool, DemoError> {
    let secret = format!("whsec-{}", uuid::Uuid::new_v4().simple());
    let receiver = WebhookReceiver::start(&secret).await.map_err(|e| step(format!("webhook receiver: {e}")))?;
    let outcome = drive_with(stack, opts, &receiver, &secret).await;
    receiver.shutdown().await;
    outcome
}

async fn drive_with(stack: &Stack, opts: &DemoOptions, receiver: &WebhookReceiver, secret: &str) -> Result<bool, DemoError> {
    let api = Api::new(&stack.base_url, &crate::auth::dev_secret(), opts.concurrency);
    let mut checks = Checks(vec![]);
    let retries = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let admin = api.token(&DevIdentity::new("admin").subject("demo-admin"))?;
    // Staff sites are (trial, site) pairs: `trialId/siteId`.
    let pairs = scenario::site_pairs(TRIAL);
    let staff = api.token(
        &DevIdentity::new("site_staff").trial(TRIAL).sites(&pairs.iter().map(String::as_str).collect::<Vec<_>>()).subject("demo-nurse"),
    )?;
    let sponsor = api.token(&DevIdentity::new("sponsor").trial(TRIAL).subject("demo-sponsor"))?;

    // ---------------------------------------------------------------- 1. trial
    let t = api.put(&format!("/v1/trials/{TRIAL}"), &admin, &scenario::trial_definition(&receiver.url, secret)).await?;
    if !t.is_success() {
        return Err(step(format!("PUT trial answered {}: {}", t.status, t.body)));
    }
    println!("1. trial {TRIAL}: {} sites ({}), webhook {}", scenario::SITES.len(), scenario::SITES.map(|s| s.1).join(", "), receiver.url);

    // ---------------------------------------------------------------- 2. enrolment
    let pb = bar(opts.patients, "enrolling");
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..opts.patients)
        .map(|n| {
            let (api, admin, pb, retries) = (&api, &admin, &pb, &retries);
            async move {
                let path = format!("/v1/trials/{TRIAL}/patients/{}", scenario::patient_id(n));
                let (a, _) = send_retrying(api, reqwest::Method::PUT, &path, admin, &scenario::enrolment(n), retries).await;
                pb.inc(1);
                a.status
            }
        })
        .buffer_unordered(opts.concurrency)
        .collect()
        .await;
    pb.finish_and_clear();
    let enrol = status_counts(&statuses);
    let enrolled = statuses.iter().filter(|s| matches!(s, 200 | 201)).count();
    println!("2. enrolled {enrolled}/{} patients in {:.1} s ({})", opts.patients, started.elapsed().as_secs_f64(), fmt_counts(&enrol));
    if enrolled != opts.patients {
        return Err(step("not every patient could be enrolled; see the statuses above"));
    }

    // ---------------------------------------------------------------- 3. ePRO burst
    let patient_tokens: Vec<String> = (0..opts.patients)
        .map(|n| api.token(&DevIdentity::new("patient").trial(TRIAL).patient(&scenario::patient_id(n))))
        .collect::<Result<_, _>>()?;
    let now = Utc::now();
    let every = opts.pro_alert_every.max(1);
    let rounds = opts.submissions.div_ceil(opts.patients);
    let pb = bar(opts.submissions, "submissions");
    let started = Instant::now();
    let results: Vec<(usize, u16, Duration)> = futures::stream::iter(0..opts.submissions)
        .map(|i| {
            let (api, tokens, pb, retries) = (&api, &patient_tokens, &pb, &retries);
            async move {
                let n = i % opts.patients;
                // `rounds` per patient, oldest first as phones sync them. All
                // after the enrolment a moment ago (less the API's 5-minute
                // clock skew): answers from before enrolment are refused.
                let rounds_back = (rounds - 1 - i / opts.patients) as i64;
                let completed_at = now - chrono::Duration::seconds((rounds_back * 20 + (n % 20) as i64).min(240));
                let breathless = if (i + 1) % every == 0 { 10 } else { scenario::ordinary_breathlessness(i) };
                let body = scenario::submission(&uuid::Uuid::new_v4().to_string(), completed_at, i, breathless);
                let path = format!("/v1/trials/{TRIAL}/patients/{}/submissions", scenario::patient_id(n));
                let (a, latency) = send_retrying(api, reqwest::Method::POST, &path, &tokens[n], &body, retries).await;
                pb.inc(1);
                (i, a.status, latency)
            }
        })
        .buffer_unordered(opts.concurrency)
        .collect()
        .await;
    let burst = started.elapsed();
    pb.finish_and_clear();
    let statuses: Vec<u16> = results.iter().map(|r| r.1).collect();
    let sub_counts = status_counts(&statuses);
    let accepted = statuses.iter().filter(|s| **s == 201).count();
    let replayed = statuses.iter().filter(|s| **s == 200).count();
    let mut latencies: Vec<Duration> = results.iter().map(|r| r.2).collect();
    latencies.sort();
    let rate = accepted as f64 / burst.as_secs_f64().max(1e-9);
    // A submission answered 503 (or timed out) may still have been stored and
    // alerted, so every patient whose answers tripped the rule is watched.
    let pro_patients: BTreeSet<usize> =
        results.iter().filter(|(i, _, _)| (i + 1) % every == 0).map(|(i, _, _)| i % opts.patients).collect();
    let pro_submissions = results.iter().filter(|(i, s, _)| (i + 1) % every == 0 && matches!(s, 200 | 201)).count();
    println!(
        "3. {} submissions in {:.1} s: {accepted} accepted (201), {:.0}/s, latency p50 {} p99 {} ({})",
        opts.submissions,
        burst.as_secs_f64(),
        rate,
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        fmt_counts(&sub_counts)
    );
    checks.expect(
        accepted + replayed == opts.submissions,
        format!("{} submissions were not accepted", opts.submissions - accepted - replayed),
    );

    // ---------------------------------------------------------------- 4. vitals
    let vitals_url =
        stack.provisioned.queue_url("VitalsQueue").map(str::to_owned).ok_or_else(|| step("VitalsQueue was not provisioned"))?;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let steps = scenario::DETERIORATION.len();
    let pb = bar(opts.vital_patients * steps, "vitals");
    let started = Instant::now();
    let mut vital_statuses = Vec::new();
    for (k, course) in scenario::DETERIORATION.iter().enumerate() {
        let at = Utc::now();
        let statuses: Vec<u16> = futures::stream::iter(0..opts.vital_patients)
            .map(|n| {
                let (api, tokens, pb, retries) = (&api, &patient_tokens, &pb, &retries);
                let condition = if n < opts.deteriorating { *course } else { Condition::Well };
                async move {
                    let path = format!("/v1/trials/{TRIAL}/patients/{}/vitals", scenario::patient_id(n));
                    let (a, _) =
                        send_retrying(api, reqwest::Method::POST, &path, &tokens[n], &scenario::vitals(condition, at), retries).await;
                    pb.inc(1);
                    a.status
                }
            })
            .buffer_unordered(opts.concurrency)
            .collect()
            .await;
        vital_statuses.extend(statuses);
        // Consume as we produce: the next step waits for the analyzer to drain
        // this one, so the emulator's FIFO queue stays shallow.
        let drained = wait_for_queue(&sqs, &vitals_url, Duration::from_secs(120)).await;
        if !drained {
            checks.expect(false, format!("the vitals queue did not drain within 120 s after step {}", k + 1));
        }
    }
    pb.finish_and_clear();
    let vit_counts = status_counts(&vital_statuses);
    let vitals_accepted = vital_statuses.iter().filter(|s| **s == 202).count();
    println!(
        "4. vitals: {} patients x {steps} steps = {} requests in {:.1} s ({}); {} deteriorating to NEWS2 high",
        opts.vital_patients,
        vital_statuses.len(),
        started.elapsed().as_secs_f64(),
        fmt_counts(&vit_counts),
        opts.deteriorating
    );
    checks.expect(vitals_accepted == vital_statuses.len(), "some vitals requests were not accepted (202)");

    // ---------------------------------------------------------------- 5. alerts
    // What the system itself says it raised, for every patient that could have an alert.
    let started = Instant::now();
    let mut watched: BTreeSet<usize> = (0..opts.vital_patients).collect();
    watched.extend(pro_patients.iter().copied());
    let mut expected: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut high_per_patient: BTreeMap<usize, usize> = BTreeMap::new();
    let mut pro_alerts = 0;
    for n in &watched {
        for record in api.patient_alerts(TRIAL, &scenario::patient_id(*n), &staff).await? {
            let a = &record["alert"];
            let (Some(id), Some(level)) = (a["alertId"].as_str(), a["level"].as_str()) else { continue };
            if a["reason"]["kind"] == "pro-rule" {
                pro_alerts += 1;
            }
            if level == "high" {
                *high_per_patient.entry(*n).or_insert(0) += 1;
            }
            expected.insert(id.to_owned(), (*n, level.to_owned()));
        }
    }
    checks.expect(
        (0..opts.deteriorating).all(|n| high_per_patient.contains_key(&n)),
        format!(
            "{} of {} deteriorating patients have no high alert",
            (0..opts.deteriorating).filter(|n| !high_per_patient.contains_key(n)).count(),
            opts.deteriorating
        ),
    );
    checks.expect(
        (opts.deteriorating..opts.vital_patients).all(|n| !expected.values().any(|(p, _)| *p == n) || pro_patients.contains(&n)),
        "a patient whose vitals stayed normal was alerted",
    );
    checks.expect(
        pro_alerts == pro_submissions,
        format!("{pro_submissions} submissions tripped the PRO rule but {pro_alerts} PRO alerts were raised"),
    );
    let all_in =
        receiver.wait_until(Duration::from_secs(opts.alert_timeout_secs), |got| expected.keys().all(|id| got.contains_key(id))).await;
    let got = receiver.received();
    let delivered = expected.keys().filter(|id| got.contains_key(*id)).count();
    let unexpected = got.keys().filter(|id| !expected.contains_key(*id)).count();
    let duplicates = receiver.duplicates();
    let mut levels: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, level) in expected.values() {
        *levels.entry(level.as_str()).or_insert(0) += 1;
    }
    println!(
        "5. alerts: {} raised ({}), {delivered} delivered to the webhook in {:.1} s, {} signatures rejected, {duplicates} duplicates",
        expected.len(),
        levels.iter().map(|(l, n)| format!("{l} {n}")).collect::<Vec<_>>().join(", "),
        started.elapsed().as_secs_f64(),
        receiver.rejected()
    );
    checks
        .expect(all_in, format!("only {delivered} of {} alerts reached the webhook within {} s", expected.len(), opts.alert_timeout_secs));
    checks.expect(unexpected == 0, format!("{unexpected} alerts reached the webhook that the API does not list"));
    checks.expect(receiver.rejected() == 0, "the receiver rejected deliveries for bad signatures");

    // Site staff acknowledge the high alerts.
    let mut ack_statuses = Vec::new();
    for (id, (_, level)) in &expected {
        if level == "high" {
            let a = api
                .post(
                    &format!("/v1/trials/{TRIAL}/alerts/{id}/ack"),
                    &staff,
                    &json!({"note": "called the patient; reviewed by the on-call team"}),
                )
                .await?;
            ack_statuses.push(a.status);
        }
    }
    let acked = ack_statuses.iter().filter(|s| **s == 200).count();
    println!("   acknowledged {acked} high alerts as site staff ({})", fmt_counts(&status_counts(&ack_statuses)));
    checks.expect(acked == ack_statuses.len(), "some acknowledgements failed");

    // Duplicates are counted after everything settled (a late redelivery would show here).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let duplicates = receiver.duplicates();
    checks.expect(duplicates == 0, format!("{duplicates} duplicate webhook deliveries"));

    // ---------------------------------------------------------------- 6. report
    let today = Utc::now().date_naive();
    // Every submission was completed since the enrolment, today.
    let from = today;
    let r = api.post(&format!("/v1/trials/{TRIAL}/reports"), &sponsor, &json!({"from": from.to_string(), "to": today.to_string()})).await?;
    let (pdf_bytes, report_line) = if r.status == 201 {
        let url = r.body["url"].as_str().unwrap_or_default().to_owned();
        let pdf = api.http().get(&url).send().await.map_err(crate::client::ClientError::from)?;
        let status = pdf.status().as_u16();
        let bytes = pdf.bytes().await.map_err(crate::client::ClientError::from)?;
        checks.expect(status == 200 && bytes.starts_with(b"%PDF-"), format!("the presigned report URL answered {status} without a PDF"));
        if let Some(dir) = opts.pdf.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(&opts.pdf, &bytes).map_err(|e| step(format!("cannot write {}: {e}", opts.pdf.display())))?;
        let s = &r.body["summary"];
        (
            bytes.len(),
            format!(
                "{} ({from}..{today}): {} patients, {} submissions, compliance {}, {} alerts ({} acknowledged)",
                r.body["reportId"].as_str().unwrap_or("?"),
                s["patientsEnrolled"],
                s["submissionsReceived"],
                s["compliance"].as_f64().map(|c| format!("{:.1} %", c * 100.0)).unwrap_or_else(|| "n/a".into()),
                s["alertsTotal"],
                s["alertsAcknowledged"]
            ),
        )
    } else {
        checks.expect(false, format!("POST report answered {}: {}", r.status, r.body));
        (0, format!("failed ({})", r.status))
    };
    println!("6. report {report_line}");

    // ---------------------------------------------------------------- DLQs
    let mut dlq = Vec::new();
    for (name, url) in [("VitalsDLQ", stack.provisioned.vitals_dlq_url()), ("AlertDLQ", stack.provisioned.alert_dlq_url())] {
        let depth = match url {
            Some(u) => crate::poller::queue_depth(&sqs, u).await.map_err(|e| step(format!("{name}: {e}")))?,
            None => return Err(step(format!("{name} was not provisioned"))),
        };
        checks.expect(depth == 0, format!("{name} holds {depth} messages"));
        dlq.push(format!("{name} {depth}"));
    }

    // ---------------------------------------------------------------- audit trail
    // Anchor the chain heads now (the stack fires this hourly), then recompute every
    // chain of the trial as an inspector would with `make verify-audit`.
    let audit_line = match stack.fire("AuditAnchors").await {
        Err(e) => {
            checks.expect(false, format!("anchoring the audit chains failed: {e}"));
            format!("not anchored ({e})")
        }
        Ok(_) => {
            let target = crate::verify_audit::Target::provisioned(&stack.provisioned).map_err(step)?;
            let trial = trialwatch::TrialId::parse(TRIAL).map_err(|e| step(format!("trial id: {e}")))?;
            let report = crate::verify_audit::verify(&stack.sdk, &target, &trial).await.map_err(|e| step(format!("verify-audit: {e}")))?;
            checks.expect(report.intact(), format!("the audit trail does not verify: {report}"));
            report.to_string()
        }
    };
    println!("7. audit {audit_line}");

    // ---------------------------------------------------------------- summary
    let pdf_path = std::fs::canonicalize(&opts.pdf).unwrap_or_else(|_| opts.pdf.clone());
    println!();
    println!("==================== TrialWatch demo summary (measured in this run) ====================");
    println!("  patients enrolled        {enrolled} at {} sites", scenario::SITES.len());
    println!(
        "  submissions accepted     {accepted} of {} (201); replayed 200: {replayed}; other: {}",
        opts.submissions,
        opts.submissions - accepted - replayed
    );
    println!("  submission rate          {rate:.0}/s over {:.1} s with {} in flight", burst.as_secs_f64(), opts.concurrency);
    println!(
        "  latency per request      p50 {}, p99 {} (client-side, loopback HTTP -> handler -> emulator)",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99))
    );
    println!("  retries after 503        {}", retries.load(std::sync::atomic::Ordering::Relaxed));
    // Every function runs in this process, so the counter covers all their chain appends.
    println!(
        "  audit head re-reads      {} (an append whose chain head another writer moved first)",
        trialwatch::audit::append::head_retries()
    );
    println!("  alerts delivered         {delivered} of {} raised, signatures verified", expected.len());
    println!("  duplicates               {duplicates}");
    println!("  DLQ                      {}", dlq.join(", "));
    println!("  audit trail              {audit_line}");
    // ---- domain events (issue 15): the local subscriber's counts, one alert's correlation id traced
    let events = match stack.events_queue_url.as_deref() {
        Some(url) => crate::subscriber::drain(&aws_sdk_sqs::Client::new(&stack.sdk), url).await,
        None => Err("the template has no event bus".into()),
    };
    match &events {
        Ok(r) => println!("  events by type           {} ({} in all, local subscriber)", crate::subscriber::fmt_by_type(r), r.total()),
        Err(e) => checks.expect(false, format!("events not counted: {e}")),
    }
    if let Some((alert_id, id)) = got.iter().find_map(|(a, r)| r.correlation_id.clone().map(|c| (a.clone(), c))) {
        let lines = crate::logs::captured_with(&id);
        let on_bus = events.as_ref().map(|r| r.details.iter().filter(|(_, d)| d["correlationId"] == id.as_str()).count()).unwrap_or(0);
        println!(
            "  correlation traced       alert {alert_id}: id {id} on {} log lines, {on_bus} events, and its webhook header",
            lines.len()
        );
    }
    // ---- domain events (end)
    println!("  report PDF               {} ({pdf_bytes} bytes)", pdf_path.display());
    println!(
        "  the emulator is the throughput bottleneck (moto: ~150-200 DynamoDB item writes/s, 5 per submission); sizes are flags: make demo DEMO_ARGS=\"--submissions N ...\""
    );
    if checks.0.is_empty() {
        println!("  result                   OK");
        Ok(true)
    } else {
        for c in &checks.0 {
            println!("  FAILED                   {c}");
        }
        Ok(false)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.50), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&d, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&d[..1], 0.99), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
