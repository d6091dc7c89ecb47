//! How the runner calls a function: by its template logical id, with the same
//! event types Lambda would hand it. The trait lets the gateway and pollers be
//! tested with a scripted function, and the stack run the real ones.

use std::panic::AssertUnwindSafe;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures::FutureExt;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

/// Why an invocation produced no result. Lambda reports both as a failed
/// invocation: API Gateway answers 500, the SQS poller leaves the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    #[error("no function {0} can handle this event")]
    UnknownFunction(String),
    #[error("function {function} failed: {message}")]
    Failed { function: String, message: String },
    #[error("function {0} panicked")]
    Panicked(String),
}

/// Why a set of functions could not be built, as a function's init fails: a
/// variable missing or invalid, a binary the runner has no handler for, a queue
/// the template lacks. The stack wraps it ([`crate::StackError::Functions`]); the
/// function sets (`functions.rs`, `memory/`) return this, not the stack's error,
/// so that they and the stack, which builds them, do not import each other.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InitError(pub String);

#[async_trait]
pub trait Functions: Send + Sync + 'static {
    async fn http(&self, function: &str, request: lambda_http::Request) -> Result<lambda_http::Response<lambda_http::Body>, InvokeError>;
    async fn sqs(&self, function: &str, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, InvokeError>;
    async fn schedule(&self, function: &str, event: LambdaEvent<Value>) -> Result<Value, InvokeError>;
}

/// Runs one invocation the way the Lambda runtime does: a panic ends that
/// invocation with an error, never the process.
pub async fn guarded<T, F>(function: &str, fut: F) -> Result<T, InvokeError>
where
    F: std::future::Future<Output = Result<T, InvokeError>>,
{
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r,
        Err(_) => Err(InvokeError::Panicked(function.to_owned())),
    }
}

/// A Lambda context for one invocation: its request id, an X-Ray trace id
/// (Lambda passes one to every invocation), the deadline (from the template's
/// timeout) and the function's name and ARN.
pub fn context(function: &str, request_id: &str, timeout: std::time::Duration) -> lambda_runtime::Context {
    let config =
        lambda_runtime::Config { function_name: function.to_owned(), memory: 128, version: "$LATEST".to_owned(), ..Default::default() };
    let mut ctx = lambda_runtime::Context::default();
    ctx.request_id = request_id.to_owned();
    ctx.xray_trace_id = Some(xray_trace_id());
    ctx.deadline = u64::try_from((chrono::Utc::now() + timeout).timestamp_millis()).unwrap_or(0);
    ctx.invoked_function_arn = format!("arn:aws:lambda:{}:123456789012:function:{function}", crate::region());
    ctx.env_config = std::sync::Arc::new(config);
    ctx
}

/// The span `lambda_runtime` opens around every invocation in Lambda
/// (`Lambda runtime invoke{requestId, xrayTraceId}`), made by the runtime's
/// own function. The gateway, the pollers and the schedules run each
/// in-process invocation inside it, so every line the function logs carries
/// that invocation's ids, as it does in Lambda.
pub fn span(ctx: &lambda_runtime::Context) -> tracing::Span {
    lambda_runtime::layers::trace::request_span(ctx)
}

/// An X-Ray trace header value: `Root=1-<epoch seconds, hex>-<96 random bits, hex>`.
fn xray_trace_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{:08x}-{};Sampled=0", chrono::Utc::now().timestamp(), &random[..24])
}
