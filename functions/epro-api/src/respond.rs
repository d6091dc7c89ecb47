//! Responses: JSON bodies and the one path from `Error` to problem+json.

use lambda_http::http::header::{CONTENT_TYPE, RETRY_AFTER};
use lambda_http::{Body, Response};
use serde::Serialize;
use trialwatch::error::{PROBLEM_CONTENT_TYPE, RETRY_AFTER_SECONDS};
use trialwatch::Error;

pub type HttpResponse = Response<Body>;

pub fn json<T: Serialize>(status: u16, body: &T) -> HttpResponse {
    match serde_json::to_string(body) {
        Ok(text) => build(status, "application/json", text, false),
        Err(_) => problem(&Error::Internal("response serialisation".into())),
    }
}

/// The problem+json response of an error; a 503 says when to retry.
pub fn problem(e: &Error) -> HttpResponse {
    let p = e.to_problem();
    // A Problem is plain strings and numbers; serialising it cannot fail.
    let text = serde_json::to_string(&p).unwrap_or_else(|_| r#"{"title":"Internal error","status":500}"#.to_owned());
    build(p.status, PROBLEM_CONTENT_TYPE, text, e.is_retryable())
}

// Text, not Binary: API Gateway would otherwise base64-encode the JSON.
fn build(status: u16, content_type: &'static str, text: String, retry: bool) -> HttpResponse {
    let mut r = Response::new(Body::Text(text));
    *r.status_mut() = lambda_http::http::StatusCode::from_u16(status).unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(CONTENT_TYPE, lambda_http::http::HeaderValue::from_static(content_type));
    if retry {
        r.headers_mut().insert(RETRY_AFTER, lambda_http::http::HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    r
}
