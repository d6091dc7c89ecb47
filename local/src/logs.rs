//! The runner's logs. The same rules as the Lambda runtime's subscriber
//! (`trialwatch::telemetry::init`): `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`,
//! sets the level; `AWS_LAMBDA_LOG_FORMAT` picks JSON or text (JSON unless it
//! says `Text`, as the template's `LoggingConfig` sets JSON). One difference:
//! every line has a timestamp, which CloudWatch adds in Lambda and nothing
//! adds here. Each in-process invocation runs inside the runtime's own span
//! (see [`crate::invoke::span`]), so its lines carry its request id.

use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;

/// The subscriber, writing to `writer`; `default_level` applies when neither
/// `AWS_LAMBDA_LOG_LEVEL` nor `RUST_LOG` is set.
pub fn subscriber<W>(writer: W, default_level: LevelFilter) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(default_level);
    let filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    build(writer, filter, text)
}

fn build<W>(writer: W, filter: EnvFilter, text: bool) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt().with_target(false).with_env_filter(filter).with_writer(writer);
    if text {
        Box::new(fmt.finish())
    } else {
        Box::new(fmt.json().finish())
    }
}

/// Installs [`subscriber`] for the process (once; a second call is a no-op).
pub fn init<W>(writer: W, default_level: LevelFilter)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = tracing::subscriber::set_global_default(subscriber(writer, default_level));
}

/// The demo's log sink: every line (INFO and up) is kept in memory, so the
/// summary can follow one correlation id through the functions' lines, and
/// warnings and errors still go to stderr as before. Bounded: past
/// [`CAPTURE_LIMIT`] lines the oldest are not kept.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capture;

/// Lines kept at most (a demo of a few thousand submissions logs far fewer).
pub const CAPTURE_LIMIT: usize = 500_000;

static CAPTURED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

pub struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf).into_owned();
        if line.contains("\"level\":\"WARN\"")
            || line.contains("\"level\":\"ERROR\"")
            || line.contains(" WARN ")
            || line.contains(" ERROR ")
        {
            std::io::stderr().write_all(buf)?;
        }
        let mut kept = CAPTURED.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < CAPTURE_LIMIT {
            kept.push(line);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Capture {
    type Writer = CaptureWriter;
    fn make_writer(&'w self) -> Self::Writer {
        CaptureWriter
    }
}

/// The captured lines that contain `needle` (a correlation id).
pub fn captured_with(needle: &str) -> Vec<String> {
    CAPTURED.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|l| l.contains(needle)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use async_trait::async_trait;
    use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
    use axum::http::{HeaderMap, Method, StatusCode};
    use lambda_http::RequestExt;
    use lambda_runtime::LambdaEvent;
    use serde_json::Value;

    use super::*;
    use crate::auth::Authorizer;
    use crate::gateway::{route_table, Gateway, Route};
    use crate::invoke::{Functions, InvokeError};

    /// A function that logs as handlers do: a few lines of ids and counts.
    struct Chatty;

    #[async_trait]
    impl Functions for Chatty {
        async fn http(&self, _: &str, request: lambda_http::Request) -> Result<lambda_http::Response<lambda_http::Body>, InvokeError> {
            tracing::info!(route = "GET /v1/ping", "request received");
            tokio::task::yield_now().await;
            tracing::warn!(code = "demo", "something worth a look");
            let id = request.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default();
            Ok(lambda_http::Response::new(lambda_http::Body::Text(id)))
        }
        async fn sqs(&self, f: &str, _: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, InvokeError> {
            Err(InvokeError::UnknownFunction(f.to_owned()))
        }
        async fn schedule(&self, f: &str, _: LambdaEvent<Value>) -> Result<Value, InvokeError> {
            Err(InvokeError::UnknownFunction(f.to_owned()))
        }
    }

    #[tokio::test]
    async fn every_line_of_one_in_process_invocation_carries_its_request_and_trace_ids() {
        // GIVEN the runner's subscriber writing JSON to a buffer, and a gateway in front of a function that logs
        let out = trialwatch::telemetry::CapturedLogs::default();
        let sink = out.clone();
        let _default = trialwatch::telemetry::capture_logs_on_this_thread(build(move || sink.clone(), EnvFilter::new("debug"), false));
        let gateway = Gateway {
            routes: route_table(&[Route { method: "GET".into(), path: "/v1/ping".into(), function: "Chatty".into(), authorized: false }]),
            authorizer: Authorizer::new("secret"),
            functions: Arc::new(Chatty),
            timeouts: HashMap::new(),
        };
        // WHEN one request is served in-process
        let uri: axum::http::Uri = "/v1/ping".parse().unwrap();
        let resp = gateway.serve(Method::GET, &uri, HeaderMap::new(), Default::default(), None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let request_id = String::from_utf8(body.to_vec()).unwrap();
        // THEN every line it logged (the function's and the gateway's) names that request and one X-Ray trace
        let text = out.text();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(lines.len() >= 3, "expected the function's two lines and the gateway's: {text}");
        let trace = lines[0]["span"]["xrayTraceId"].as_str().unwrap_or_default().to_owned();
        assert!(trace.starts_with("Root=1-"), "{text}");
        for line in &lines {
            assert_eq!(line["span"]["name"], "Lambda runtime invoke", "{line}");
            assert_eq!(line["span"]["requestId"].as_str(), Some(request_id.as_str()), "{line}");
            assert_eq!(line["span"]["xrayTraceId"].as_str(), Some(trace.as_str()), "{line}");
            // AND a timestamp, which no CloudWatch adds locally
            assert!(line["timestamp"].is_string(), "{line}");
        }
    }
}
