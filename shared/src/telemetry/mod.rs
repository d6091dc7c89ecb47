//! Logs through `tracing`, formatted as the Lambda runtime's own subscriber formats them,
//! and business metrics in CloudWatch Embedded Metric Format ([`metrics`]).
//! Log lines carry ids, codes and counts only: never answers, vital values,
//! tokens, secrets or free text. Handlers log through `tracing` fields of
//! those kinds; nothing logs a request or message body.

/// Installs the subscriber `lambda_runtime`'s `tracing` feature would
/// (`init_default_subscriber`), with a level filter in place of its `EnvFilter`,
/// whose regex engine was about 0.2 MB of every binary (issue 16). What it gives:
/// - every line logged during an invocation is inside the runtime's span
///   `Lambda runtime invoke{requestId, xrayTraceId}` and carries both ids
///   (on `provided.al2023` nothing else adds the request id);
/// - `AWS_LAMBDA_LOG_FORMAT=JSON` gives JSON lines, anything else text;
/// - `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), then
///   `RUST_LOG`, sets the level ([`log_level`]), default INFO;
/// - no timestamp: CloudWatch adds one to every line.
///
/// Call once, first thing in `main`, with the function's short name (the
/// metrics' `Function` dimension): it also installs the EMF recorder and
/// counts the cold start. The local runner, which has no CloudWatch,
/// installs its own subscriber with timestamps (`trialwatch_local::logs`)
/// and no recorder.
pub fn init(function: &'static str) {
    let level = log_level(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(), std::env::var("RUST_LOG").ok().as_deref());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let logs = tracing_subscriber::fmt().with_target(false).without_time().with_max_level(level);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
    metrics::init(function);
}

/// The level a function logs at: Lambda's `AWS_LAMBDA_LOG_LEVEL` if it names one, else
/// `RUST_LOG`'s if that is a bare level, else INFO. Lambda's FATAL is ERROR (tracing has no
/// FATAL; `init_default_subscriber` fell back to INFO for it). A `RUST_LOG` of per-crate
/// directives (`aws_smithy_runtime=debug`) selects nothing here: the release binaries compile
/// DEBUG and TRACE out (`release_max_level_info`), so those never reached a deployed log anyway.
pub fn log_level(aws_lambda_log_level: Option<&str>, rust_log: Option<&str>) -> tracing_subscriber::filter::LevelFilter {
    use tracing_subscriber::filter::LevelFilter;
    let parse = |v: &str| match v.trim() {
        l if l.eq_ignore_ascii_case("fatal") => Some(LevelFilter::ERROR),
        l => l.parse::<LevelFilter>().ok(),
    };
    aws_lambda_log_level.and_then(parse).or_else(|| rust_log.and_then(parse)).unwrap_or(LevelFilter::INFO)
}

pub mod metrics;

pub use metrics::invocation;

/// Makes `subscriber` this thread's default, for a test that asserts on what
/// was logged, in a way the parallel test harness cannot spoil. `tracing`
/// caches each callsite's interest for the whole process, decided by the
/// thread that first reaches it: a sibling test with no subscriber pins a
/// shared callsite to "never", and the capture silently misses its lines
/// (CI once lost the dispatcher's webhook lines so). A global no-op registry,
/// installed once, gives every thread's first look a subscriber that wants
/// everything. Callsites pinned before it are re-asked when it is installed,
/// as they are whenever a subscriber is created.
#[cfg(any(test, feature = "test-util"))]
pub fn capture_logs_on_this_thread(subscriber: impl tracing::Subscriber + Send + Sync + 'static) -> tracing::subscriber::DefaultGuard {
    static BASELINE: std::sync::Once = std::sync::Once::new();
    BASELINE.call_once(|| {
        // A process that installed its own global subscriber keeps it: it wants callsites too.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    tracing::subscriber::set_default(subscriber)
}

/// Every byte logged through it, for a test that reads what was logged. Clones share one
/// buffer, so a clone is the subscriber's writer: `.with_writer(move || sink.clone())`.
#[cfg(any(test, feature = "test-util"))]
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(any(test, feature = "test-util"))]
impl CapturedLogs {
    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

#[cfg(any(test, feature = "test-util"))]
impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{capture_logs_on_this_thread, log_level, CapturedLogs};
    use tracing_subscriber::filter::LevelFilter;

    fn a_callsite_two_tests_share() {
        tracing::info!(marker = "shared-callsite", "reached");
    }

    #[test]
    fn a_capture_sees_a_callsite_that_a_thread_without_a_subscriber_reached_first() {
        // GIVEN a test capturing its own thread's lines
        let out = CapturedLogs::default();
        let sink = out.clone();
        let capture = tracing_subscriber::fmt().json().with_writer(move || sink.clone()).finish();
        let guard = capture_logs_on_this_thread(capture);
        // AND a thread with no subscriber of its own (a sibling test) reaching a callsite first
        std::thread::spawn(a_callsite_two_tests_share).join().unwrap();
        // WHEN the capturing test reaches the same callsite
        a_callsite_two_tests_share();
        drop(guard);
        // THEN its line is captured: the other thread did not switch the callsite off for the process
        let text = out.text();
        assert!(text.contains("shared-callsite"), "captured: {text:?}");
        assert_eq!(text.lines().count(), 1, "only the capturing thread's line: {text}");
    }

    #[test]
    fn lambdas_log_level_wins_then_a_bare_rust_log_level_then_info() {
        // GIVEN Lambda's advanced logging controls, RUST_LOG, both, or neither
        // THEN AWS_LAMBDA_LOG_LEVEL decides when it names a level, in any case, FATAL meaning ERROR
        assert_eq!(log_level(Some("WARN"), Some("debug")), LevelFilter::WARN);
        assert_eq!(log_level(Some("debug"), None), LevelFilter::DEBUG);
        assert_eq!(log_level(Some("FATAL"), None), LevelFilter::ERROR);
        // AND otherwise a bare RUST_LOG level, and INFO for anything else
        assert_eq!(log_level(Some("loud"), Some("trace")), LevelFilter::TRACE);
        assert_eq!(log_level(None, Some(" error ")), LevelFilter::ERROR);
        assert_eq!(log_level(None, Some("aws_smithy_runtime=debug")), LevelFilter::INFO);
        assert_eq!(log_level(None, None), LevelFilter::INFO);
    }
}
