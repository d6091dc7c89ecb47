//! `make coldstart`: what a cold start costs each Lambda binary, measured the way
//! Lambda starts it. A loopback Runtime API (the `/2018-06-01/runtime` routes the
//! `lambda_runtime` client speaks) serves one process at a time; the binary runs
//! with the environment the template gives it, its resources pointed at the
//! emulator, and gets the same event from `events/` for every invocation.
//!
//! Per run: exec -> first `GET /invocation/next` is init; the event's first
//! response is the first request; the next invocations are warm. A binary that
//! logs `warm_up_us` (its one cheap call in init, see `trialwatch::aws::warm_up`)
//! has that call reported separately from the rest of init. Peak RSS is the
//! kernel's high-water mark (`VmHWM`) once the process is idle again.
//!
//! What it cannot show: the emulator speaks plain HTTP on loopback, so neither
//! the TLS handshake nor network latency to AWS is in these figures; the
//! warm-up call here costs a loopback request plus everything on the client side
//! (HTTP client and TLS configuration, root certificates, credentials, signing).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

/// How long one process may take to reach `/next` or answer an event before the run fails.
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// The log field a function's init warm-up call reports its duration in (µs).
pub const WARM_UP_FIELD: &str = "warm_up_us";

/// One binary to measure.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The binary (= crate) name, e.g. `epro-api`.
    pub name: String,
    pub path: PathBuf,
    /// Its environment, beyond what Lambda's runtime itself sets.
    pub env: Vec<(String, String)>,
    /// The event every invocation receives.
    pub event: Value,
}

/// One cold start and its warm invocations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// exec -> first `/invocation/next`.
    pub init: Duration,
    /// The init warm-up call, when the binary logged one.
    pub warm_up: Option<Duration>,
    /// CPU time of all the process's threads up to the first `/invocation/next`: unlike the wall
    /// clock, it does not grow when other processes take the cores, so it compares runs on a busy machine.
    pub init_cpu: Option<Duration>,
    /// First event handed -> its response.
    pub first: Duration,
    /// Median of the warm invocations of this run.
    pub warm: Duration,
    /// Peak resident set (VmHWM), KiB.
    pub peak_rss_kib: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ColdstartError {
    #[error("{binary}: cannot start {path}: {source}")]
    Spawn { binary: String, path: PathBuf, source: std::io::Error },
    #[error("{binary}: {what} within {limit:?}")]
    Timeout { binary: String, what: &'static str, limit: Duration },
    #[error("{binary}: exited before {what} ({status})")]
    Exited { binary: String, what: &'static str, status: String },
    #[error("{binary}: reported an init error: {body}")]
    InitError { binary: String, body: String },
    #[error("runtime API: {0}")]
    Api(std::io::Error),
}

/// What the Runtime API saw, in order.
#[derive(Debug)]
enum Mark {
    /// `/next` answered with an event at this instant.
    Handed(Instant),
    /// `/next` arrived with no event left: the process is idle.
    Idle,
    Response(Instant),
    InitError(String),
}

struct Api {
    events: Mutex<VecDeque<(String, Value)>>,
    marks: mpsc::UnboundedSender<Mark>,
}

async fn next(State(api): State<Arc<Api>>) -> Response {
    let popped = api.events.lock().map(|mut q| q.pop_front()).unwrap_or(None);
    let Some((request_id, event)) = popped else {
        let _ = api.marks.send(Mark::Idle);
        // Lambda would freeze the process here; the harness reads its RSS, then kills it.
        return std::future::pending::<Response>().await;
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", request_id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:coldstart".to_owned());
    set("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".to_owned());
    set("content-type", "application/json".to_owned());
    let body = event.to_string();
    let _ = api.marks.send(Mark::Handed(Instant::now()));
    (StatusCode::OK, headers, body).into_response()
}

async fn response(State(api): State<Arc<Api>>, _body: axum::body::Bytes) -> StatusCode {
    let _ = api.marks.send(Mark::Response(Instant::now()));
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<Arc<Api>>, body: axum::body::Bytes) -> StatusCode {
    let _ = api.marks.send(Mark::InitError(String::from_utf8_lossy(&body).chars().take(300).collect()));
    StatusCode::ACCEPTED
}

/// The environment Lambda's own runtime sets for a `provided.al2023` function.
fn lambda_env(name: &str, runtime_api: &str, memory_mb: u32) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]coldstart".to_owned()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("TZ", ":UTC".to_owned()),
        ("LANG", "en_US.UTF-8".to_owned()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `warm_up_us=1234` (text logs) or `"warm_up_us":1234` (JSON logs).
pub fn warm_up_from_log(line: &str) -> Option<Duration> {
    let rest = &line[line.find(WARM_UP_FIELD)? + WARM_UP_FIELD.len()..];
    let digits: String = rest.trim_start_matches(['"', '=', ':', ' ']).chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().map(Duration::from_micros)
}

/// Drains a child's output (so it never blocks on a full pipe) and keeps the warm-up figure.
fn watch_output(stream: impl AsyncRead + Unpin + Send + 'static, verbose: bool) -> tokio::task::JoinHandle<Option<Duration>> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        let mut found = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if verbose {
                eprintln!("    | {line}");
            }
            if found.is_none() {
                found = warm_up_from_log(&line);
            }
        }
        found
    })
}

/// `VmHWM` of a live process, KiB.
/// On-CPU time so far of every live thread of `pid` (the first field of each task's `schedstat`, in ns).
fn cpu_time(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Starts `subject` once under a fresh Runtime API, delivers `1 + warm` events, and measures.
pub async fn run_once(subject: &Subject, warm: usize, memory_mb: u32, verbose: bool) -> Result<Sample, ColdstartError> {
    let events = (0..=warm).map(|i| (format!("coldstart-{}-{i}", std::process::id()), subject.event.clone())).collect();
    let (marks_tx, mut marks) = mpsc::unbounded_channel();
    let api = Arc::new(Api { events: Mutex::new(events), marks: marks_tx });
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", axum::routing::get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", axum::routing::post(response))
        .route("/2018-06-01/runtime/invocation/{id}/error", axum::routing::post(response))
        .route("/2018-06-01/runtime/init/error", axum::routing::post(init_error))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(ColdstartError::Api)?;
    let addr = listener.local_addr().map_err(ColdstartError::Api)?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let mut command = tokio::process::Command::new(&subject.path);
    command
        .env_clear()
        .envs(lambda_env(&subject.name, &addr.to_string(), memory_mb))
        .envs(subject.env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child =
        command.spawn().map_err(|source| ColdstartError::Spawn { binary: subject.name.clone(), path: subject.path.clone(), source })?;
    let out = child.stdout.take().map(|s| watch_output(s, verbose));
    let err = child.stderr.take().map(|s| watch_output(s, verbose));
    let pid = child.id().unwrap_or_default();

    let result = async {
        let mut wait_for = async |what: &'static str| -> Result<Mark, ColdstartError> {
            tokio::select! {
                m = marks.recv() => match m {
                    Some(Mark::InitError(body)) => Err(ColdstartError::InitError { binary: subject.name.clone(), body }),
                    Some(m) => Ok(m),
                    None => Err(ColdstartError::Api(std::io::Error::other("runtime API stopped"))),
                },
                status = child.wait() => Err(ColdstartError::Exited {
                    binary: subject.name.clone(),
                    what,
                    status: status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                }),
                _ = tokio::time::sleep(STEP_LIMIT) => Err(ColdstartError::Timeout { binary: subject.name.clone(), what, limit: STEP_LIMIT }),
            }
        };
        let Mark::Handed(first_handed) = wait_for("its first /invocation/next").await? else {
            unreachable!("the first /next always gets an event")
        };
        let init = first_handed - started;
        // The process now waits for its event's response to be read: its CPU time is init's.
        let init_cpu = cpu_time(pid);
        let mut handed = first_handed;
        let mut durations = Vec::with_capacity(warm + 1);
        loop {
            match wait_for("answering an event").await? {
                Mark::Response(at) => durations.push(at - handed),
                Mark::Handed(at) => handed = at,
                Mark::Idle => break,
                Mark::InitError(_) => unreachable!("mapped to an error above"),
            }
        }
        let peak_rss_kib = peak_rss_kib(pid).unwrap_or_default();
        let first = durations.first().copied().unwrap_or_default();
        let warm = median(&durations[1.min(durations.len())..]).unwrap_or_default();
        Ok(Sample { init, warm_up: None, init_cpu, first, warm, peak_rss_kib })
    }
    .await;

    let _ = child.start_kill();
    let _ = child.wait().await;
    server.abort();
    let mut warm_up = None;
    for task in [out, err].into_iter().flatten() {
        warm_up = warm_up.or(task.await.unwrap_or(None));
    }
    result.map(|s| Sample { warm_up, ..s })
}

pub fn median(values: &[Duration]) -> Option<Duration> {
    let mut v = values.to_vec();
    v.sort();
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

/// Size of `path` after `strip` (the file's own size when `strip` is not installed
/// or the profile already strips).
pub fn stripped_size(path: &Path) -> std::io::Result<u64> {
    let own = std::fs::metadata(path)?.len();
    let tmp = std::env::temp_dir().join(format!("coldstart-strip-{}", std::process::id()));
    let stripped = std::process::Command::new("strip")
        .arg("-o")
        .arg(&tmp)
        .arg(path)
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .and_then(|_| std::fs::metadata(&tmp).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&tmp);
    Ok(stripped.unwrap_or(own).min(own))
}

/// Size of a zip holding `bytes` as `bootstrap`, deflated at level 9 as `make package`
/// zips it (the entry's data plus the fixed zip headers for one 9-byte name).
pub fn zipped_size(bytes: &[u8]) -> u64 {
    const ZIP_OVERHEAD: u64 = (30 + 9) + (46 + 9) + 22;
    miniz_oxide::deflate::compress_to_vec(bytes, 9).len() as u64 + ZIP_OVERHEAD
}

/// The medians of one binary's runs, with its sizes.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub stripped: u64,
    pub zipped: u64,
    pub runs: usize,
    pub init: Duration,
    pub warm_up: Option<Duration>,
    pub init_cpu: Option<Duration>,
    pub first: Duration,
    pub warm: Duration,
    pub peak_rss_kib: u64,
}

impl Row {
    pub fn from_samples(name: &str, stripped: u64, zipped: u64, samples: &[Sample]) -> Row {
        let pick = |f: fn(&Sample) -> Duration| median(&samples.iter().map(f).collect::<Vec<_>>()).unwrap_or_default();
        let warm_ups: Vec<Duration> = samples.iter().filter_map(|s| s.warm_up).collect();
        let cpus: Vec<Duration> = samples.iter().filter_map(|s| s.init_cpu).collect();
        let mut rss: Vec<u64> = samples.iter().map(|s| s.peak_rss_kib).collect();
        rss.sort_unstable();
        Row {
            name: name.to_owned(),
            stripped,
            zipped,
            runs: samples.len(),
            init: pick(|s| s.init),
            warm_up: median(&warm_ups),
            init_cpu: median(&cpus),
            first: pick(|s| s.first),
            warm: pick(|s| s.warm),
            peak_rss_kib: rss.get(rss.len() / 2).copied().unwrap_or_default(),
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        "-".to_owned()
    } else {
        format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64())
    }
}

/// The Markdown table `make coldstart` prints; `baseline` is the hello-world row.
pub fn table(rows: &[Row], baseline: &Row) -> String {
    let mut out = String::from(
        "| binary | stripped | zipped | init (exec→/next) | of which warm-up call | init before the call | × hello init | before the call × hello | init CPU | × hello CPU | first response | warm response | first ÷ warm | peak RSS |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        // The budget's ratio: init up to the warm-up call, over hello-world's whole init
        // (which has no call); the call itself is reported, and budgeted, as the first request's cost.
        let (call, before) = match r.warm_up {
            Some(w) => (ms(w), r.init.saturating_sub(w)),
            None => ("-".to_owned(), r.init),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} MiB |\n",
            r.name,
            mb(r.stripped),
            mb(r.zipped),
            ms(r.init),
            call,
            ms(before),
            ratio(r.init, baseline.init),
            ratio(before, baseline.init),
            r.init_cpu.map_or_else(|| "-".to_owned(), ms),
            match (r.init_cpu, baseline.init_cpu) {
                (Some(a), Some(b)) => ratio(a, b),
                _ => "-".to_owned(),
            },
            ms(r.first),
            ms(r.warm),
            ratio(r.first, r.warm),
            r.peak_rss_kib as f64 / 1024.0,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_up_figure_is_read_from_text_and_json_logs() {
        // GIVEN the warm-up line in the runtime's text format and in AWS_LAMBDA_LOG_FORMAT=JSON
        let text = "2026-11-27T22:00:00Z  INFO trialwatch::aws::warm_up: init warm-up call warm_up_us=1834 outcome=\"ok\"";
        let json = r#"{"level":"INFO","fields":{"message":"init warm-up call","warm_up_us":912,"outcome":"ok"}}"#;
        // THEN both give the duration, and other lines give none
        assert_eq!(warm_up_from_log(text), Some(Duration::from_micros(1834)));
        assert_eq!(warm_up_from_log(json), Some(Duration::from_micros(912)));
        assert_eq!(warm_up_from_log("INFO lambda_runtime: starting"), None);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        let d = Duration::from_millis;
        assert_eq!(median(&[d(5), d(1), d(3)]), Some(d(3)));
        assert_eq!(median(&[d(4), d(1), d(3), d(2)]), Some(Duration::from_micros(2500)));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn the_table_splits_init_at_the_warm_up_call_and_divides_by_hello_world() {
        // GIVEN hello-world at 4 ms init and a function at 6 ms, 2 ms of it the warm-up call
        let d = Duration::from_millis;
        let sample =
            |init, warm_up, cpu| Sample { init: d(init), warm_up, init_cpu: Some(d(cpu)), first: d(3), warm: d(2), peak_rss_kib: 4096 };
        let hello = Row::from_samples("hello-world", 1_000_000, 400_000, &[sample(4, None, 1)]);
        let f = Row::from_samples("epro-api", 9_000_000, 3_000_000, &[sample(6, Some(d(2)), 3)]);
        // WHEN the table is printed
        let t = table(&[hello.clone(), f], &hello);
        // THEN the function's row shows the call, init before it, the ratios of its whole init and of
        // init before the call (the budget's) to hello-world's, init CPU and its ratio, and first over warm
        assert!(
            t.contains(
                "| epro-api | 9.00 MB | 3.00 MB | 6.00 ms | 2.00 ms | 4.00 ms | 1.50× | 1.00× | 3.00 ms | 3.00× | 3.00 ms | 2.00 ms | 1.50× | 4.0 MiB |"
            ),
            "{t}"
        );
        assert!(t.contains("| hello-world | 1.00 MB | 0.40 MB | 4.00 ms | - | 4.00 ms | 1.00× | 1.00× | 1.00 ms | 1.00× |"), "{t}");
    }
}
