//! Logs through `tracing`, formatted by the Lambda runtime's own subscriber,
//! and business metrics in CloudWatch Embedded Metric Format ([`metrics`]).
//! Log lines carry ids, codes and counts only: never answers, vital values,
//! tokens, secrets or free text. Handlers log through `tracing` fields of
//! those kinds; nothing logs a request or message body.

/// Installs `lambda_runtime`'s subscriber (`lambda_runtime::tracing`, the
/// crate's default `tracing` feature). What it gives, and a hand-made one lost:
/// - every line logged during an invocation is inside the runtime's span
///   `Lambda runtime invoke{requestId, xrayTraceId}` and carries both ids
///   (on `provided.al2023` nothing else adds the request id);
/// - `AWS_LAMBDA_LOG_FORMAT=JSON` gives JSON lines, anything else text;
/// - `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), then
///   `RUST_LOG`, sets the level, default INFO;
/// - no timestamp: CloudWatch adds one to every line.
///
/// Call once, first thing in `main`, with the function's short name (the
/// metrics' `Function` dimension): it also installs the EMF recorder and
/// counts the cold start. The local runner, which has no CloudWatch,
/// installs its own subscriber with timestamps (`trialwatch_local::logs`)
/// and no recorder.
pub fn init(function: &'static str) {
    lambda_runtime::tracing::init_default_subscriber();
    metrics::init(function);
}

pub mod metrics;

pub use metrics::invocation;
