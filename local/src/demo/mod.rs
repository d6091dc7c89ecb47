//! `trialwatch-local demo`: the main job end to end. It starts two stacks
//! in-process, each on a free port: one on the AWS emulator (its own
//! resources) and one on the in-memory adapters, plus a webhook receiver that
//! checks signatures. Then it drives them over loopback HTTP like real clients
//! would, one function per phase ([`phases`]), and prints a summary
//! ([`summary`]) in which every figure is measured in this run and labelled
//! with the backend it came from:
//! - the burst runs on the in-memory stack, so its rate is TrialWatch's own
//!   (HTTP, JWT authorizer, validation, handler), not a database's;
//! - everything that must be proven stored runs on the emulator: enrolment, a
//!   correctness run of submissions that are all read back, vitals, alerts to
//!   the signed receiver, acknowledgement, the report, DLQs and the audit trail.

pub mod phases;
pub mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::client::{Answer, Api};
use crate::receiver::WebhookReceiver;
use crate::{Stack, StackConfig};

pub use crate::measure::percentile;
pub use summary::{Checks, Summary};

pub const TRIAL: &str = "tw-demo";

/// Sizes and limits; the defaults finish in about 3 minutes on 2 cores.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Patients enrolled (spread over 3 sites) on the in-memory stack, for the burst.
    #[arg(long, default_value_t = 1000)]
    pub patients: usize,
    /// Of those, how many are enrolled on the emulator stack too, for the phases that run there.
    /// Each costs the emulator two requests (a read and a transaction) at ~25/s on 2 busy cores.
    #[arg(long, default_value_t = 250)]
    pub emulator_patients: usize,
    /// ePRO submissions sent in the burst (in-memory stack).
    #[arg(long, default_value_t = 10_000)]
    pub submissions: usize,
    /// ePRO submissions sent to the emulator stack and every one read back.
    #[arg(long, default_value_t = 1000)]
    pub checked_submissions: usize,
    /// Patients streaming vital signs.
    #[arg(long, default_value_t = 60)]
    pub vital_patients: usize,
    /// Of those, how many deteriorate to NEWS2 high.
    #[arg(long, default_value_t = 15)]
    pub deteriorating: usize,
    /// Requests in flight at once in the burst (in-memory stack).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Requests in flight at once against the emulator: moto is one Python
    /// process, and more than this only queues inside it.
    #[arg(long, default_value_t = 16)]
    pub emulator_concurrency: usize,
    /// Every Nth checked submission reports breathlessness at the PRO rule's threshold.
    #[arg(long, default_value_t = 250)]
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

pub(crate) fn step(msg: impl Into<String>) -> DemoError {
    DemoError::Step(msg.into())
}

/// How often progress is printed as a plain line when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(15);

/// A progress bar on a terminal; in a pipe or a CI log (where indicatif draws
/// nothing) a plain progress line every few seconds instead, so a long phase
/// is never silent.
pub(crate) fn bar(len: usize, what: &str) -> ProgressBar {
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

pub(crate) fn status_counts(statuses: &[u16]) -> BTreeMap<u16, usize> {
    let mut m = BTreeMap::new();
    for s in statuses {
        *m.entry(*s).or_insert(0) += 1;
    }
    m
}

pub(crate) fn fmt_counts(m: &BTreeMap<u16, usize>) -> String {
    m.iter().map(|(s, n)| format!("{s}: {n}")).collect::<Vec<_>>().join(", ")
}

/// Sends with the retry rule every TrialWatch client follows: a 503 (or a
/// dropped connection) is retried with the same body, which is idempotent.
pub(crate) async fn send_retrying(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: &Value,
    retries: &AtomicU64,
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

pub async fn run(opts: DemoOptions) -> Result<bool, DemoError> {
    if opts.patients == 0
        || opts.emulator_patients == 0
        || opts.emulator_patients > opts.patients
        || opts.vital_patients > opts.emulator_patients
        || opts.deteriorating > opts.vital_patients
        || opts.concurrency == 0
        || opts.emulator_concurrency == 0
    {
        return Err(step(
            "need 1 <= emulator-patients <= patients, vital-patients <= emulator-patients, deteriorating <= vital-patients, concurrency and emulator-concurrency >= 1",
        ));
    }
    println!(
        "TrialWatch demo: {} patients ({} of them on the emulator) at {} sites; a burst of {} ePRO submissions on the in-memory stack ({} in flight), {} more on the",
        opts.patients,
        opts.emulator_patients,
        crate::scenario::SITES.len(),
        opts.submissions,
        opts.concurrency,
        opts.checked_submissions,
    );
    println!(
        "      emulator stack, every one read back; vitals from {} patients ({} deteriorating); alerts, acknowledgement, report, audit.",
        opts.vital_patients, opts.deteriorating
    );
    println!("Backends: the burst measures TrialWatch's own code (HTTP, auth, validation, handler; no database). Everything else runs");
    println!("      on the AWS emulator (moto, one Python process: ~150-200 DynamoDB item writes/s), which proves storage, not speed.");
    println!("      Sizes are flags: make demo DEMO_ARGS=\"--submissions 50000 --checked-submissions 5000\"; all of them:");
    println!("      cargo run -p trialwatch-local -- demo --help");

    let t0 = Instant::now();
    let mut config = StackConfig::for_test("demo");
    config.http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let (emulator, memory) = tokio::join!(Stack::start(config), Stack::start(StackConfig::in_memory()));
    let (emulator, memory) = match (emulator, memory) {
        (Ok(e), Ok(m)) => (e, m),
        (Err(e), m) => {
            if let Ok(m) = m {
                m.shutdown().await;
            }
            return Err(e.into());
        }
        (Ok(e), Err(m)) => {
            e.shutdown().await;
            return Err(m.into());
        }
    };
    println!(
        "stacks ready in {:.1} s: emulator on {} (resources prefixed {}), in-memory on {}",
        t0.elapsed().as_secs_f64(),
        emulator.base_url,
        emulator.provisioned.prefix,
        memory.base_url
    );
    let outcome = drive(&emulator, &memory, &opts).await;
    tokio::join!(emulator.shutdown(), memory.shutdown());
    outcome
}

async fn drive(emulator: &Stack, memory: &Stack, opts: &DemoOptions) -> Result<bool, DemoError> {
    let secret = format!("whsec-{}", uuid::Uuid::new_v4().simple());
    let receiver = WebhookReceiver::start(&secret).await.map_err(|e| step(format!("webhook receiver: {e}")))?;
    let outcome = async {
        let mut demo = phases::Demo::new(emulator, memory, opts, &receiver, &secret)?;
        demo.run_all().await?;
        Ok(demo.finish())
    }
    .await;
    receiver.shutdown().await;
    outcome
}
