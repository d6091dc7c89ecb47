//! `trialwatch-local load`: drives a running stack's HTTP API with valid,
//! distinct ePRO submissions (and every Nth request a vitals POST) at a set
//! concurrency, or a set rate, for a bounded time, then reports throughput,
//! latency percentiles, errors and the server's CPU time per request.
//!
//! The server's CPU comes from `/proc/<pid>/stat` before and after the
//! measured window, so it counts every thread of the server (gateway,
//! handlers, pollers) and nothing of this generator, which shares the
//! machine's cores with it: lean on the CPU figure more than on throughput.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

use crate::auth::DevIdentity;
use crate::client::Api;
use crate::measure::{ms, own_cpu, percentile, process_cpu};
use crate::scenario::{self, Condition};

#[derive(Debug, Clone, clap::Args)]
pub struct LoadOptions {
    /// Base URL of a running stack (`make up` or `make up STORE=memory`).
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// Requests in flight at once (closed loop).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Requests started per second (open loop: latency counts from each request's scheduled start,
    /// so a stalled server is not hidden); 0: as fast as the concurrency allows.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Length of the measured window.
    #[arg(long, default_value_t = 15)]
    pub duration_secs: u64,
    /// Unmeasured traffic before the window (caches, connections, allocator).
    #[arg(long, default_value_t = 2)]
    pub warmup_secs: u64,
    /// Patients enrolled first; requests cycle through them.
    #[arg(long, default_value_t = 500)]
    pub patients: usize,
    /// Every Nth request is a vitals POST; 0: submissions only.
    #[arg(long, default_value_t = 10)]
    pub vitals_every: usize,
    /// The server process, for its CPU time per request (`/proc/<pid>/stat`).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// What the server stores to, for the results row (e.g. memory, emulator).
    #[arg(long, default_value = "?")]
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Client(#[from] crate::client::ClientError),
    #[error("{0}")]
    Setup(String),
}

/// What one measured run found.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub label: String,
    pub concurrency: usize,
    pub elapsed: Duration,
    pub requests: u64,
    pub submissions: u64,
    pub errors: u64,
    /// Non-2xx answers and transport failures, by status (0: no answer).
    pub error_statuses: std::collections::BTreeMap<u16, u64>,
    pub latencies: Vec<Duration>,
    pub server_cpu: Option<Duration>,
    pub generator_cpu: Option<Duration>,
}

impl LoadReport {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU µs per request, over every request of the window.
    pub fn server_cpu_us_per_request(&self) -> Option<f64> {
        self.server_cpu.filter(|_| self.requests > 0).map(|c| c.as_secs_f64() * 1e6 / self.requests as f64)
    }

    pub fn p(&self, q: f64) -> Option<Duration> {
        percentile(&self.latencies, q)
    }

    /// The README table's row.
    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            self.label,
            self.concurrency,
            self.throughput(),
            ms(self.p(0.50)),
            ms(self.p(0.99)),
            ms(self.p(0.999)),
            self.errors,
            self.server_cpu_us_per_request().map(|c| format!("{c:.0}")).unwrap_or_else(|| "n/a".into())
        )
    }

    pub fn print(&self) {
        let secs = self.elapsed.as_secs_f64();
        println!(
            "load [{}]: {} requests in {secs:.1} s at concurrency {} = {:.0} req/s ({} submissions, {:.0}/s); errors {}{}",
            self.label,
            self.requests,
            self.concurrency,
            self.throughput(),
            self.submissions,
            self.submissions as f64 / secs.max(1e-9),
            self.errors,
            if self.error_statuses.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.error_statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect::<Vec<_>>().join(", "))
            }
        );
        println!("  latency p50 {} p99 {} p99.9 {} (client-side, loopback)", ms(self.p(0.50)), ms(self.p(0.99)), ms(self.p(0.999)));
        match (self.server_cpu, self.server_cpu_us_per_request()) {
            (Some(c), Some(per)) => println!(
                "  server CPU {:.2} s = {per:.0} µs per request ({:.2} cores busy); the generator used {} on the same 2 cores",
                c.as_secs_f64(),
                c.as_secs_f64() / secs.max(1e-9),
                self.generator_cpu.map(|g| format!("{:.2} s", g.as_secs_f64())).unwrap_or_else(|| "n/a".into())
            ),
            _ => println!("  server CPU: not measured (pass --server-pid)"),
        }
        println!("  | backend | concurrency | req/s | p50 | p99 | p99.9 | errors | server CPU µs/req |");
        println!("  {}", self.row());
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Submission,
    Vitals,
}

struct Traffic {
    api: Api,
    trial: String,
    tokens: Vec<String>,
    vitals_every: usize,
}

impl Traffic {
    /// Request `i`: a fresh submission id every time (no replays), patients in turn.
    fn request(&self, i: u64) -> (Kind, String, Value, usize) {
        let n = (i as usize) % self.tokens.len();
        let patient = scenario::patient_id(n);
        let now = chrono::Utc::now();
        if self.vitals_every > 0 && (i as usize) % self.vitals_every == self.vitals_every - 1 {
            let path = format!("/v1/trials/{}/patients/{patient}/vitals", self.trial);
            return (Kind::Vitals, path, scenario::vitals(Condition::Well, now), n);
        }
        let path = format!("/v1/trials/{}/patients/{patient}/submissions", self.trial);
        let seed = i as usize;
        let body = scenario::submission(
            &uuid::Uuid::new_v4().to_string(),
            now - chrono::Duration::seconds(1),
            seed,
            scenario::ordinary_breathlessness(seed),
        );
        (Kind::Submission, path, body, n)
    }
}

/// Sets up a trial of its own and its patients, warms up, measures, reports.
pub async fn run(opts: &LoadOptions) -> Result<LoadReport, LoadError> {
    if opts.concurrency == 0 || opts.patients == 0 || opts.duration_secs == 0 {
        return Err(LoadError::Setup("need --concurrency, --patients and --duration-secs >= 1".into()));
    }
    let api = Api::new(&opts.url, &crate::auth::dev_secret(), opts.concurrency);
    let trial = format!("tw-load-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let admin = api.token(&DevIdentity::new("admin").subject("load-admin"))?;
    // No request of the run trips the PRO rule or NEWS2, so the webhook is never called.
    let t = api
        .put(&format!("/v1/trials/{trial}"), &admin, &scenario::trial_definition("http://127.0.0.1:9/hook", "whsec-load-0123456789abcdef"))
        .await?;
    if !t.is_success() {
        return Err(LoadError::Setup(format!("PUT trial answered {}: {}", t.status, t.body)));
    }
    let started = Instant::now();
    let enrolled = futures::stream::iter(0..opts.patients)
        .map(|n| {
            let (api, admin, trial) = (&api, &admin, &trial);
            async move {
                for _ in 0..5 {
                    let path = format!("/v1/trials/{trial}/patients/{}", scenario::patient_id(n));
                    match api.put(&path, admin, &scenario::enrolment(n)).await {
                        Ok(a) if a.is_success() => return true,
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                false
            }
        })
        .buffer_unordered(opts.concurrency.min(16))
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    if enrolled != opts.patients {
        return Err(LoadError::Setup(format!("only {enrolled} of {} patients could be enrolled", opts.patients)));
    }
    eprintln!("load: trial {trial}, {enrolled} patients enrolled in {:.1} s", started.elapsed().as_secs_f64());
    let tokens = (0..opts.patients)
        .map(|n| api.token(&DevIdentity::new("patient").trial(&trial).patient(&scenario::patient_id(n))))
        .collect::<Result<Vec<_>, _>>()?;
    let traffic = Arc::new(Traffic { api, trial, tokens, vitals_every: opts.vitals_every });
    let next = Arc::new(AtomicU64::new(0));
    if opts.warmup_secs > 0 {
        drive(&traffic, &next, opts, Duration::from_secs(opts.warmup_secs)).await;
    }
    let server_before = opts.server_pid.and_then(process_cpu);
    let own_before = own_cpu();
    let t0 = Instant::now();
    let samples = drive(&traffic, &next, opts, Duration::from_secs(opts.duration_secs)).await;
    let elapsed = t0.elapsed();
    let server_cpu = opts.server_pid.and_then(process_cpu).zip(server_before).map(|(a, b)| a.saturating_sub(b));
    let generator_cpu = own_cpu().zip(own_before).map(|(a, b)| a.saturating_sub(b));

    let mut report = LoadReport {
        label: opts.label.clone(),
        concurrency: opts.concurrency,
        elapsed,
        requests: samples.len() as u64,
        submissions: 0,
        errors: 0,
        error_statuses: Default::default(),
        latencies: Vec::with_capacity(samples.len()),
        server_cpu,
        generator_cpu,
    };
    for (kind, status, latency) in samples {
        report.latencies.push(latency);
        if (200..300).contains(&status) {
            if matches!(kind, Kind::Submission) {
                report.submissions += 1;
            }
        } else {
            report.errors += 1;
            *report.error_statuses.entry(status).or_insert(0) += 1;
        }
    }
    report.latencies.sort();
    Ok(report)
}

/// Runs the traffic for `window`: `concurrency` workers, each sending its
/// next request as soon as the last one is answered (or at its scheduled
/// time under `--rate`). Returns (kind, status, latency) per request; status 0
/// is a transport failure.
async fn drive(traffic: &Arc<Traffic>, next: &Arc<AtomicU64>, opts: &LoadOptions, window: Duration) -> Vec<(Kind, u16, Duration)> {
    let start = Instant::now();
    let deadline = start + window;
    let first = next.load(Ordering::Relaxed);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..opts.concurrency {
        let (traffic, next, rate) = (traffic.clone(), next.clone(), opts.rate);
        workers.spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let scheduled = if rate > 0 { start + Duration::from_secs_f64((i - first) as f64 / rate as f64) } else { Instant::now() };
                if scheduled >= deadline {
                    return out;
                }
                tokio::time::sleep_until(scheduled.into()).await;
                let (kind, path, body, n) = traffic.request(i);
                let status = match traffic.api.send(reqwest::Method::POST, &path, Some(&traffic.tokens[n]), Some(&body)).await {
                    Ok(a) => a.status,
                    Err(_) => 0,
                };
                out.push((kind, status, scheduled.elapsed()));
            }
        });
    }
    let mut all = Vec::new();
    while let Some(r) = workers.join_next().await {
        all.extend(r.unwrap_or_default());
    }
    all
}
