//! Structured JSON logs. Log lines carry ids, codes and counts only: never
//! answers, vital values, tokens, secrets or free text. Handlers log through
//! `tracing` fields of those kinds; nothing logs a request or message body.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber once per process. Honours `AWS_LAMBDA_LOG_LEVEL`
/// (Lambda's advanced logging controls), then `RUST_LOG`, defaulting to `info`.
/// Safe to call twice (tests, the local runner).
pub fn init() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| EnvFilter::new(l.to_lowercase()))
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        // Lambda adds its own timestamp and request id to every line.
        .without_time()
        .try_init();
}
