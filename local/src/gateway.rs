//! API Gateway HTTP API, emulated: route matching on the template's route
//! keys, the JWT authorizer, a real payload-format-2.0 event handed to the
//! function through `lambda_http`'s own conversion, and the response mapped
//! back. Gateway-level refusals use API Gateway's own bodies and statuses.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use base64::Engine;
use serde_json::{json, Value};
use tracing::Instrument;

use trialwatch::edge::http::{percent_decode, request_from_event, RouteKey, RouteMatch, Routes};

use crate::auth::{Authorizer, VerifiedJwt};
use crate::invoke::{Functions, InvokeError};

/// API Gateway's payload limit (10 MB); functions enforce their own, smaller ones.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// One HttpApi route of the template: `METHOD /path/{param}` -> function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Upper case, or `ANY`.
    pub method: String,
    pub path: String,
    pub function: String,
    /// Whether the JWT authorizer guards the route (`Auth: Authorizer: NONE` clears it).
    pub authorized: bool,
}

/// The template's routes, matched by the edge kit's route-key matcher: the
/// same rules API Gateway applies, and the same table the functions resolve on.
pub type RouteTable = Routes<Route>;

/// The route table of the template's routes.
pub fn route_table(routes: &[Route]) -> RouteTable {
    Routes::new(routes.iter().map(|r| (RouteKey::new(&r.method, &r.path), r.clone())))
}

/// Everything about one incoming request the event is built from.
pub struct Incoming<'a> {
    pub method: &'a Method,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
    pub request_id: String,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The payload-format-2.0 event API Gateway would send for this request.
pub fn api_gateway_v2_event(req: &Incoming<'_>, m: &RouteMatch<'_, Route>, jwt: Option<&VerifiedJwt>) -> Value {
    // Header names arrive lower-cased; repeated headers are joined with commas;
    // cookies move to their own array.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in req.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == axum::http::header::COOKIE {
            cookies.extend(v.split(';').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()));
            continue;
        }
        headers.entry(name.as_str().to_owned()).and_modify(|e| e.push_str(&format!(",{v}"))).or_insert(v);
    }
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for pair in req.raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")));
        query.entry(k).and_modify(|e| e.push_str(&format!(",{v}"))).or_insert(v);
    }
    let (body, is_base64) = match std::str::from_utf8(req.body) {
        _ if req.body.is_empty() => (Value::Null, false),
        Ok(s) => (Value::String(s.to_owned()), false),
        Err(_) => (Value::String(base64::engine::general_purpose::STANDARD.encode(req.body)), true),
    };
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    let domain = headers.get("host").cloned().unwrap_or_else(|| "localhost".to_owned());
    let authorizer =
        jwt.map(|j| json!({"jwt": {"claims": j.claims, "scopes": if j.scopes.is_empty() { Value::Null } else { json!(j.scopes) }}}));
    let mut event = json!({
        "version": "2.0",
        "routeKey": m.key.as_str(),
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": domain,
            "domainPrefix": domain.split('.').next().unwrap_or("localhost"),
            "http": {
                "method": req.method.as_str(),
                "path": req.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": req.source_ip,
                "userAgent": user_agent,
            },
            "requestId": req.request_id,
            "routeKey": m.key.as_str(),
            "stage": "$default",
            "time": req.now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": req.now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64,
    });
    if let Some(obj) = event.as_object_mut() {
        if !cookies.is_empty() {
            obj.insert("cookies".into(), json!(cookies));
        }
        if !query.is_empty() {
            obj.insert("queryStringParameters".into(), json!(query));
        }
        if !m.params.is_empty() {
            obj.insert("pathParameters".into(), json!(m.params));
        }
        if !body.is_null() {
            obj.insert("body".into(), body);
        }
        if let (Some(a), Some(ctx)) = (authorizer, obj.get_mut("requestContext").and_then(Value::as_object_mut)) {
            ctx.insert("authorizer".into(), a);
        }
    }
    event
}

/// API Gateway's own reply for a refusal before any function runs.
pub fn gateway_reply(status: StatusCode, message: &str) -> axum::response::Response {
    let mut r = axum::response::Response::new(axum::body::Body::from(json!({ "message": message }).to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Maps the function's response to the HTTP reply, as API Gateway does with a
/// payload-format-2.0 response (binary bodies are decoded, cookies become Set-Cookie).
pub fn http_reply(resp: lambda_http::Response<lambda_http::Body>) -> axum::response::Response {
    let (parts, body) = resp.into_parts();
    let bytes: Vec<u8> = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(s) => s.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => Vec::new(),
    };
    let mut r = axum::response::Response::new(axum::body::Body::from(bytes));
    *r.status_mut() = parts.status;
    *r.headers_mut() = parts.headers;
    r
}

/// The gateway: routes, the authorizer, and the functions behind them.
pub struct Gateway {
    pub routes: RouteTable,
    pub authorizer: Authorizer,
    pub functions: Arc<dyn Functions>,
    /// Deadline per function (the template's Timeout).
    pub timeouts: HashMap<String, std::time::Duration>,
}

impl Gateway {
    /// Serves one request. Never panics on any input: every failure is an HTTP status.
    pub async fn serve(
        &self,
        method: Method,
        uri: &axum::http::Uri,
        headers: HeaderMap,
        body: Bytes,
        peer: Option<SocketAddr>,
    ) -> axum::response::Response {
        let raw_path = uri.path();
        // API Gateway answers its own 404 for a path no route has, and for a
        // method no route of the path takes: the function never runs.
        let Ok(m) = self.routes.find(method.as_str(), raw_path) else {
            return gateway_reply(StatusCode::NOT_FOUND, "Not Found");
        };
        let jwt = if m.target.authorized {
            let auth = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            match self.authorizer.verify(auth) {
                Ok(j) => Some(j),
                Err(reason) => {
                    tracing::info!(route = %m.key, reason = %reason, "authorizer refused");
                    return gateway_reply(StatusCode::UNAUTHORIZED, "Unauthorized");
                }
            }
        } else {
            None
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let incoming = Incoming {
            method: &method,
            raw_path,
            raw_query: uri.query().unwrap_or(""),
            headers: &headers,
            body: &body,
            source_ip: peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "127.0.0.1".to_owned()),
            request_id: request_id.clone(),
            now: chrono::Utc::now(),
        };
        let event = api_gateway_v2_event(&incoming, &m, jwt.as_ref());
        let request = match request_from_event(event) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(route = %m.key, error = %e, "event did not deserialize");
                return gateway_reply(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
        };
        let function = m.target.function.clone();
        let timeout = self.timeouts.get(&function).copied().unwrap_or(std::time::Duration::from_secs(30));
        let ctx = crate::invoke::context(&function, &request_id, timeout);
        let span = crate::invoke::span(&ctx);
        let request = with_context(request, ctx);
        let started = std::time::Instant::now();
        // API Gateway's integration timeout is the function's own, at most 30 s.
        let outcome = tokio::time::timeout(timeout.min(std::time::Duration::from_secs(30)), self.functions.http(&function, request))
            .instrument(span.clone())
            .await;
        let _invocation = span.enter();
        match outcome {
            Ok(Ok(resp)) => {
                tracing::debug!(function = %function, status = resp.status().as_u16(), micros = started.elapsed().as_micros() as u64, "invoked");
                http_reply(resp)
            }
            Ok(Err(e)) => {
                log_failure(&function, &e);
                gateway_reply(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            Err(_) => {
                tracing::error!(function = %function, "timed out");
                gateway_reply(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
            }
        }
    }
}

fn log_failure(function: &str, e: &InvokeError) {
    match e {
        InvokeError::UnknownFunction(_) => tracing::error!(function = %function, "no handler for this function"),
        InvokeError::Failed { .. } => tracing::error!(function = %function, "invocation failed"),
        InvokeError::Panicked(_) => tracing::error!(function = %function, "invocation panicked"),
    }
}

/// Attaches the Lambda context, as `lambda_http` does for every invocation.
fn with_context(mut req: lambda_http::Request, ctx: lambda_runtime::Context) -> lambda_http::Request {
    req.extensions_mut().insert(ctx);
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::RequestExt;

    fn table() -> RouteTable {
        let r = |m: &str, p: &str, auth: bool| Route { method: m.into(), path: p.into(), function: "F".into(), authorized: auth };
        route_table(&[
            r("GET", "/health", false),
            r("PUT", "/v1/trials/{trialId}", true),
            r("GET", "/v1/trials/{trialId}/patients/{patientId}", true),
            r("POST", "/v1/trials/{trialId}/alerts/{alertId}/ack", true),
            r("GET", "/v1/trials/{trialId}/reports/latest", true),
            r("GET", "/v1/trials/{trialId}/reports/{reportId}", true),
        ])
    }

    #[test]
    fn path_parameters_are_captured_and_percent_decoded() {
        let t = table();
        let m = t.find("GET", "/v1/trials/t%2D1/patients/P-001").unwrap();
        assert_eq!(m.key.path(), "/v1/trials/{trialId}/patients/{patientId}");
        assert_eq!(m.params["trialId"], "t-1");
        assert_eq!(m.params["patientId"], "P-001");
    }

    #[test]
    fn the_method_must_match_and_extra_segments_do_not() {
        let t = table();
        assert!(t.find("POST", "/health").is_err());
        assert!(t.find("GET", "/v1/trials/t1/patients/p1/extra").is_err());
        assert!(t.find("GET", "/v1/trials").is_err());
    }

    #[test]
    fn a_literal_segment_beats_a_parameter() {
        let t = table();
        assert_eq!(t.find("GET", "/v1/trials/t1/reports/latest").unwrap().key.path(), "/v1/trials/{trialId}/reports/latest");
        assert_eq!(t.find("GET", "/v1/trials/t1/reports/r9").unwrap().params["reportId"], "r9");
    }

    #[test]
    fn the_event_is_a_payload_format_2_request_that_lambda_http_understands() {
        // GIVEN a POST with a query, a cookie, a JSON body and verified claims
        let t = table();
        let m = t.find("POST", "/v1/trials/t1/alerts/al-9/ack").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("cookie", HeaderValue::from_static("a=1; b=2"));
        headers.append("x-multi", HeaderValue::from_static("one"));
        headers.append("x-multi", HeaderValue::from_static("two"));
        let jwt = VerifiedJwt { claims: HashMap::from([("role".to_owned(), "site_staff".to_owned())]), scopes: vec![] };
        let body = br#"{"note":"seen"}"#;
        let incoming = Incoming {
            method: &Method::POST,
            raw_path: "/v1/trials/t1/alerts/al-9/ack",
            raw_query: "x=1&x=2&y=a%20b",
            headers: &headers,
            body,
            source_ip: "127.0.0.1".into(),
            request_id: "req-1".into(),
            now: chrono::Utc::now(),
        };
        // WHEN the event is built and converted as Lambda would
        let event = api_gateway_v2_event(&incoming, &m, Some(&jwt));
        assert_eq!(event["routeKey"], "POST /v1/trials/{trialId}/alerts/{alertId}/ack");
        assert_eq!(event["queryStringParameters"]["x"], "1,2");
        assert_eq!(event["headers"]["x-multi"], "one,two");
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        let req = request_from_event(event).unwrap();
        // THEN the handler sees method, path parameters, query, claims and body
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri().path(), "/v1/trials/t1/alerts/al-9/ack");
        assert_eq!(req.path_parameters().first("alertId"), Some("al-9"));
        assert_eq!(req.query_string_parameters().all("x"), Some(vec!["1", "2"]));
        assert_eq!(req.query_string_parameters().first("y"), Some("a b"));
        let lambda_http::request::RequestContext::ApiGatewayV2(ctx) = req.request_context() else { panic!("not a v2 context") };
        assert_eq!(ctx.authorizer.unwrap().jwt.unwrap().claims["role"], "site_staff");
        assert_eq!(ctx.request_id.as_deref(), Some("req-1"));
        assert_eq!(req.body().as_ref(), body);
    }

    #[test]
    fn a_binary_body_travels_base64_encoded_and_arrives_as_bytes() {
        let t = table();
        let m = t.find("PUT", "/v1/trials/t1").unwrap();
        let headers = HeaderMap::new();
        let body = [0xff_u8, 0x00, 0xfe];
        let incoming = Incoming {
            method: &Method::PUT,
            raw_path: "/v1/trials/t1",
            raw_query: "",
            headers: &headers,
            body: &body,
            source_ip: "127.0.0.1".into(),
            request_id: "r".into(),
            now: chrono::Utc::now(),
        };
        let event = api_gateway_v2_event(&incoming, &m, None);
        assert_eq!(event["isBase64Encoded"], true);
        assert_eq!(request_from_event(event).unwrap().body().as_ref(), &body);
    }
}
