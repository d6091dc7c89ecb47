//! Responses: JSON bodies and the one path from [`HttpError`] to problem+json.
//! Every HTTP function's errors leave through [`problem`].

use lambda_http::http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::{json, Value};

use super::problem::{HttpError, PROBLEM_CONTENT_TYPE, RETRY_AFTER_SECONDS};
use crate::Error;

pub type HttpResponse = Response<Body>;

pub fn json<T: Serialize>(status: u16, body: &T) -> HttpResponse {
    match serde_json::to_string(body) {
        Ok(text) => build(status, "application/json", text),
        Err(_) => problem(&Error::Internal("response serialisation".into()).into()),
    }
}

/// The problem+json response of an error: a 503 says when to retry, a 405
/// which methods the path takes.
pub fn problem(e: &HttpError) -> HttpResponse {
    let p = e.to_problem();
    // A Problem is plain strings and numbers; serialising it cannot fail.
    let text = serde_json::to_string(&p).unwrap_or_else(|_| r#"{"title":"Internal error","status":500}"#.to_owned());
    let mut r = build(p.status, PROBLEM_CONTENT_TYPE, text);
    if e.is_retryable() {
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    if let HttpError::MethodNotAllowed { allow } = e {
        r = with_header(r, ALLOW, &allow.join(", "));
    }
    r
}

/// Adds a header; a value that is not a valid header (it never is for the
/// ids this API puts in one) leaves the response as it was.
pub fn with_header(mut r: HttpResponse, name: HeaderName, value: &str) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

// Text, not Binary: API Gateway would otherwise base64-encode the JSON.
fn build(status: u16, content_type: &'static str, text: String) -> HttpResponse {
    let mut r = Response::new(Body::Text(text));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The HTTP API (payload format 2.0) response shape, for a function whose
/// entry point takes the raw event (one that also serves another trigger).
pub fn api_gateway_v2_response(resp: HttpResponse) -> Value {
    use base64::Engine;
    let (parts, body) = resp.into_parts();
    let headers: serde_json::Map<String, Value> =
        parts.headers.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), Value::String(v.to_str().ok()?.to_owned())))).collect();
    let (body, base64) = match body {
        Body::Empty => (String::new(), false),
        Body::Text(t) => (t, false),
        Body::Binary(b) => (base64::engine::general_purpose::STANDARD.encode(b), true),
        _ => (String::new(), false),
    };
    json!({"statusCode": parts.status.as_u16(), "headers": headers, "body": body, "isBase64Encoded": base64})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &HttpResponse) -> String {
        String::from_utf8(r.body().to_vec()).unwrap()
    }

    #[test]
    fn an_error_is_problem_json_with_its_status_and_type() {
        let r = problem(&Error::NotFound("report").into());
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()[CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
        let body: Value = serde_json::from_str(&text(&r)).unwrap();
        assert_eq!(body["type"], "https://trialwatch.dev/problems/not-found");
        assert_eq!(body["status"], 404);
        assert!(r.headers().get(RETRY_AFTER).is_none());
    }

    #[test]
    fn a_retryable_error_says_when_to_retry() {
        let r = problem(&Error::Unavailable("throttled".into()).into());
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
        assert!(!text(&r).contains("throttled"), "dependency detail stays in logs");
    }

    #[test]
    fn a_405_names_the_allowed_methods() {
        let r = problem(&HttpError::MethodNotAllowed { allow: vec!["GET".into(), "PUT".into()] });
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()[ALLOW], "GET, PUT");
    }

    #[test]
    fn the_payload_format_2_response_carries_status_headers_and_text_body() {
        let v = api_gateway_v2_response(with_header(json(201, &json!({"a": 1})), lambda_http::http::header::LOCATION, "/x/1"));
        assert_eq!(
            v,
            json!({"statusCode": 201, "headers": {"content-type": "application/json", "location": "/x/1"}, "body": "{\"a\":1}", "isBase64Encoded": false})
        );
    }
}
