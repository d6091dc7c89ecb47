//! Routing on the template's route keys (`POST /v1/trials/{trialId}/reports`).
//!
//! API Gateway matches a request against the route keys, percent-decodes the
//! path parameters once and sends `requestContext.routeKey` and
//! `pathParameters`; a function dispatches on the key ([`Routes::resolve`])
//! and reads its ids with [`path_param`], never from the raw path. The local
//! gateway matches with [`Routes::find`], the same rules API Gateway applies.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use super::problem::HttpError;
use crate::Error;

/// The route key of a request API Gateway did not route: a `$default`
/// (catch-all) integration, or an event made by hand.
pub const DEFAULT_ROUTE_KEY: &str = "$default";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: the rest of the path.
    Greedy(String),
}

/// One route key: a method (upper case, or `ANY`) and a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteKey {
    method: String,
    path: String,
    key: String,
    segments: Vec<Segment>,
}

impl RouteKey {
    pub fn new(method: &str, path: &str) -> Self {
        let method = method.to_ascii_uppercase();
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(g) => Segment::Greedy(g.to_owned()),
                    None => Segment::Param(name.to_owned()),
                },
                None => Segment::Literal(s.to_owned()),
            })
            .collect();
        Self { key: format!("{method} {path}"), method, path: path.to_owned(), segments }
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// `METHOD /path`, as `requestContext.routeKey` spells it.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// Per-segment specificity (2 literal, 1 parameter, 0 greedy) and the
    /// decoded parameters, when `parts` fits this path template.
    fn fit(&self, parts: &[&str]) -> Option<(Vec<u8>, BTreeMap<String, String>)> {
        let mut params = BTreeMap::new();
        let mut rank = Vec::with_capacity(self.segments.len());
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Greedy(name) => {
                    if i >= parts.len() {
                        return None;
                    }
                    params.insert(name.clone(), percent_decode(&parts[i..].join("/")));
                    rank.push(0);
                    return Some((rank, params));
                }
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                    rank.push(2);
                }
                Segment::Param(name) => {
                    params.insert(name.clone(), percent_decode(parts.get(i)?));
                    rank.push(1);
                }
            }
        }
        (self.segments.len() == parts.len()).then_some((rank, params))
    }
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// A matched route and its percent-decoded path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'a, T> {
    pub key: &'a RouteKey,
    pub target: &'a T,
    pub params: BTreeMap<String, String>,
}

/// Why no route matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMiss {
    NotFound,
    /// The path is a route's, the method none of them: the methods that are.
    MethodNotAllowed {
        allow: Vec<String>,
    },
}

impl From<RouteMiss> for HttpError {
    fn from(m: RouteMiss) -> Self {
        match m {
            RouteMiss::NotFound => Error::NotFound("route").into(),
            RouteMiss::MethodNotAllowed { allow } => HttpError::MethodNotAllowed { allow },
        }
    }
}

/// Route keys and what each leads to: a function's own handler, or (in the
/// local gateway) the function behind it.
#[derive(Debug, Clone)]
pub struct Routes<T> {
    routes: Vec<(RouteKey, T)>,
}

impl<T> Default for Routes<T> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

impl<T> Routes<T> {
    pub fn new(routes: impl IntoIterator<Item = (RouteKey, T)>) -> Self {
        Self { routes: routes.into_iter().collect() }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&RouteKey, &T)> {
        self.routes.iter().map(|(k, t)| (k, t))
    }

    /// The route whose key is exactly `route_key` (`GET /v1/trials/{trialId}`).
    pub fn get(&self, route_key: &str) -> Option<(&RouteKey, &T)> {
        self.iter().find(|(k, _)| k.as_str() == route_key)
    }

    /// Matches as API Gateway does: the most specific route wins (literal
    /// segments before parameters before greedy parameters, then an exact
    /// method before `ANY`); parameters are percent-decoded once.
    pub fn find(&self, method: &str, raw_path: &str) -> Result<RouteMatch<'_, T>, RouteMiss> {
        let parts: Vec<&str> = raw_path.split('/').filter(|s| !s.is_empty()).collect();
        let mut best: Option<(Vec<u8>, RouteMatch<'_, T>)> = None;
        let mut allow: Vec<String> = Vec::new();
        for (key, target) in &self.routes {
            let Some((mut rank, params)) = key.fit(&parts) else { continue };
            if key.method != "ANY" && key.method != method {
                if !allow.contains(&key.method) {
                    allow.push(key.method.clone());
                }
                continue;
            }
            rank.push(u8::from(key.method != "ANY"));
            if best.as_ref().is_none_or(|(b, _)| rank > *b) {
                best = Some((rank, RouteMatch { key, target, params }));
            }
        }
        match best {
            Some((_, m)) => Ok(m),
            None if allow.is_empty() => Err(RouteMiss::NotFound),
            None => {
                allow.sort();
                Err(RouteMiss::MethodNotAllowed { allow })
            }
        }
    }

    /// The route a function serves this request on. API Gateway routed it:
    /// the request's route key names it. A `$default` (unrouted) request is
    /// matched here on its method and path, and given the path parameters
    /// API Gateway would have sent, so handlers read ids one way only.
    pub fn resolve(&self, req: Request) -> Result<(&T, Request), HttpError> {
        let route_key = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone(),
            _ => None,
        };
        match route_key.as_deref() {
            Some(key) if key != DEFAULT_ROUTE_KEY => {
                let (_, target) = self.get(key).ok_or(Error::NotFound("route"))?;
                Ok((target, req))
            }
            _ => {
                let m = self.find(req.method().as_str(), &route_path(&req))?;
                let params: HashMap<String, String> = m.params.into_iter().collect();
                Ok((m.target, req.with_path_parameters(params)))
            }
        }
    }
}

/// A path parameter parsed into its id type; a missing or invalid one is 400
/// naming the parameter.
pub fn path_param<T>(req: &Request, name: &str) -> Result<T, HttpError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    let raw = req
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .ok_or_else(|| HttpError::BadRequest(format!("path parameter {name} is missing")))?;
    raw.parse().map_err(|e| HttpError::BadRequest(format!("path parameter {name} {e}")))
}

/// The path an unrouted request is matched on: API Gateway's `rawPath` (else
/// the URI's path), without the `/{stage}` prefix a named stage adds.
fn route_path(req: &Request) -> String {
    let raw = req.raw_http_path();
    let path = if raw.is_empty() { req.uri().path() } else { raw };
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        if let Some(stage) = ctx.stage.as_deref().filter(|s| *s != "$default") {
            if let Some(rest) = path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)).filter(|r| r.starts_with('/')) {
                return rest.to_owned();
            }
        }
    }
    path.to_owned()
}

/// Decodes `%XX` escapes; malformed escapes stay as they are (API Gateway
/// passes them through), and the value is then refused by whoever parses it.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            // Byte-wise: slicing the str could split a multi-byte character.
            if let (Some(hi), Some(lo)) = (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> Routes<&'static str> {
        Routes::new(
            [
                ("GET", "/health", "health"),
                ("PUT", "/v1/trials/{trialId}", "put-trial"),
                ("GET", "/v1/trials/{trialId}", "get-trial"),
                ("GET", "/v1/trials/{trialId}/patients/{patientId}", "patient"),
                ("POST", "/v1/trials/{trialId}/alerts/{alertId}/ack", "ack"),
                ("GET", "/v1/trials/{trialId}/reports/latest", "latest"),
                ("GET", "/v1/trials/{trialId}/reports/{reportId}", "report"),
                ("ANY", "/files/{key+}", "files"),
            ]
            .map(|(m, p, t)| (RouteKey::new(m, p), t)),
        )
    }

    fn event(method: &str, path: &str, route_key: &str, params: Option<serde_json::Value>) -> Request {
        let mut e = json!({
            "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": "",
            "headers": {"host": "api.example"},
            "requestContext": {"accountId": "1", "apiId": "a", "domainName": "api.example", "requestId": "r", "routeKey": route_key,
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1", "userAgent": "t"},
                "stage": "$default", "timeEpoch": 0},
            "isBase64Encoded": false
        });
        if let Some(p) = params {
            e["pathParameters"] = p;
        }
        let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(e).unwrap();
        Request::from(lambda)
    }

    #[test]
    fn path_parameters_are_captured_and_percent_decoded_once() {
        let t = table();
        let m = t.find("GET", "/v1/trials/t%2D1/patients/P%25001").unwrap();
        assert_eq!(m.key.as_str(), "GET /v1/trials/{trialId}/patients/{patientId}");
        assert_eq!(*m.target, "patient");
        assert_eq!(m.params["trialId"], "t-1");
        // decoded once: %25 is a literal '%', not the start of another escape
        assert_eq!(m.params["patientId"], "P%001");
    }

    #[test]
    fn an_unknown_path_is_not_found_and_a_known_path_with_another_method_names_the_allowed_ones() {
        let t = table();
        assert_eq!(t.find("GET", "/v2/nothing"), Err(RouteMiss::NotFound));
        assert_eq!(t.find("GET", "/v1/trials/t1/patients/p1/extra"), Err(RouteMiss::NotFound));
        assert_eq!(t.find("GET", "/v1/trials"), Err(RouteMiss::NotFound));
        assert_eq!(t.find("DELETE", "/v1/trials/t1"), Err(RouteMiss::MethodNotAllowed { allow: vec!["GET".into(), "PUT".into()] }));
        assert_eq!(t.find("POST", "/health"), Err(RouteMiss::MethodNotAllowed { allow: vec!["GET".into()] }));
    }

    #[test]
    fn a_literal_segment_beats_a_parameter_and_a_greedy_parameter_takes_the_rest() {
        let t = table();
        assert_eq!(*t.find("GET", "/v1/trials/t1/reports/latest").unwrap().target, "latest");
        assert_eq!(t.find("GET", "/v1/trials/t1/reports/r9").unwrap().params["reportId"], "r9");
        let m = t.find("DELETE", "/files/a/b%20c").unwrap();
        assert_eq!((*m.target, m.params["key"].as_str()), ("files", "a/b c"));
        assert_eq!(t.find("GET", "/files"), Err(RouteMiss::NotFound));
    }

    #[test]
    fn a_routed_request_resolves_by_its_route_key_and_its_ids_come_from_the_path_parameters() {
        // GIVEN an event as API Gateway sends it: the raw path disagrees with the
        // parameters, which is impossible in practice and shows which one is read
        let t = table();
        let req = event(
            "GET",
            "/v1/trials/raw/patients/raw",
            "GET /v1/trials/{trialId}/patients/{patientId}",
            Some(json!({"trialId": "t1", "patientId": "p1"})),
        );
        let (target, req) = t.resolve(req).unwrap();
        assert_eq!(*target, "patient");
        assert_eq!(path_param::<crate::TrialId>(&req, "trialId").unwrap().as_str(), "t1");
        assert_eq!(path_param::<crate::PatientId>(&req, "patientId").unwrap().as_str(), "p1");
    }

    #[test]
    fn a_route_key_this_function_does_not_serve_is_404() {
        let req = event("POST", "/v1/trials/t1/reports", "POST /v1/trials/{trialId}/reports", Some(json!({"trialId": "t1"})));
        assert!(matches!(table().resolve(req), Err(HttpError::Refused(Error::NotFound("route")))));
    }

    #[test]
    fn an_unrouted_request_is_matched_on_its_path_and_given_decoded_parameters() {
        let t = table();
        let (target, req) = t.resolve(event("POST", "/v1/trials/t%2D1/alerts/al-9/ack", "$default", None)).unwrap();
        assert_eq!(*target, "ack");
        assert_eq!(req.path_parameters().first("trialId"), Some("t-1"));
        assert_eq!(req.path_parameters().first("alertId"), Some("al-9"));
        let e = t.resolve(event("DELETE", "/v1/trials/t1", "$default", None)).unwrap_err();
        assert!(matches!(&e, HttpError::MethodNotAllowed { allow } if allow == &["GET", "PUT"]), "{e:?}");
        assert!(matches!(t.resolve(event("GET", "/nope", "$default", None)), Err(HttpError::Refused(Error::NotFound("route")))));
    }

    #[test]
    fn a_missing_or_invalid_path_parameter_is_400_naming_it() {
        let req = event("GET", "/v1/trials/x", "GET /v1/trials/{trialId}", Some(json!({"trialId": "tw#demo"})));
        let e = path_param::<crate::TrialId>(&req, "trialId").unwrap_err();
        assert!(matches!(&e, HttpError::BadRequest(d) if d.starts_with("path parameter trialId ")), "{e:?}");
        let e = path_param::<crate::TrialId>(&req, "reportId").unwrap_err();
        assert!(matches!(&e, HttpError::BadRequest(d) if d == "path parameter reportId is missing"), "{e:?}");
    }

    #[test]
    fn percent_decoding_leaves_malformed_escapes_alone() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("a%3Db%2"), "a=b%2");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%E5%8C%97"), "北");
        assert_eq!(percent_decode("北%"), "北%");
        assert_eq!(percent_decode("%北x"), "%北x");
        assert_eq!(percent_decode("%ff%fe"), "\u{fffd}\u{fffd}");
    }
}
