//! The router: method + path -> route, path parameters validated with the id
//! newtypes (400 naming the parameter), then the concept module that serves it.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use lambda_http::http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde::Serialize;
use trialwatch::page::{PageRequest, DEFAULT_LIMIT, MAX_LIMIT};
use trialwatch::ports::Clock;
use trialwatch::{AlertId, Error, PatientId, TrialId};

use crate::auth::Principal;
use crate::deps::{Deps, Queues, Stores};
use crate::respond::{self, HttpResponse};

/// The routes this function serves (the report routes belong to report-generator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    Health,
    Trial { trial: &'a str },
    Patient { trial: &'a str, patient: &'a str },
    Submissions { trial: &'a str, patient: &'a str },
    Vitals { trial: &'a str, patient: &'a str },
    Alerts { trial: &'a str, patient: &'a str },
    AckAlert { trial: &'a str, alert: &'a str },
}

impl<'a> Route<'a> {
    pub fn parse(path: &'a str) -> Option<Self> {
        let rest = path.strip_prefix('/')?;
        let segments: Vec<&str> = rest.split('/').collect();
        Some(match segments.as_slice() {
            ["health"] => Route::Health,
            ["v1", "trials", trial] => Route::Trial { trial },
            ["v1", "trials", trial, "patients", patient] => Route::Patient { trial, patient },
            ["v1", "trials", trial, "patients", patient, "submissions"] => Route::Submissions { trial, patient },
            ["v1", "trials", trial, "patients", patient, "vitals"] => Route::Vitals { trial, patient },
            ["v1", "trials", trial, "patients", patient, "alerts"] => Route::Alerts { trial, patient },
            ["v1", "trials", trial, "alerts", alert, "ack"] => Route::AckAlert { trial, alert },
            _ => return None,
        })
    }

    /// A stable name for logs (no ids).
    pub fn name(&self) -> &'static str {
        match self {
            Route::Health => "health",
            Route::Trial { .. } => "trial",
            Route::Patient { .. } => "patient",
            Route::Submissions { .. } => "submissions",
            Route::Vitals { .. } => "vitals",
            Route::Alerts { .. } => "alerts",
            Route::AckAlert { .. } => "alert-ack",
        }
    }
}

/// Serves one request. Infallible: every error, and even a bug that panics,
/// becomes problem+json.
pub async fn handle<S: Stores, Q: Queues, C: Clock>(deps: &Deps<S, Q, C>, req: Request) -> HttpResponse {
    let path = request_path(&req);
    let route = Route::parse(&path);
    let result = AssertUnwindSafe(dispatch(deps, &req, route)).catch_unwind().await;
    let (response, code) = match result {
        Ok(Ok(r)) => (r, None),
        Ok(Err(e)) => (respond::problem(&e), Some(e.code())),
        Err(_) => (respond::problem(&Error::Internal("handler panicked".into())), Some("panic")),
    };
    let status = response.status().as_u16();
    let route = route.map_or("none", |r| r.name());
    if status >= 500 {
        tracing::error!(route, method = %req.method(), status, code, "request failed");
    } else {
        tracing::info!(route, method = %req.method(), status, code, "request");
    }
    response
}

async fn dispatch<S: Stores, Q: Queues, C: Clock>(
    deps: &Deps<S, Q, C>,
    req: &Request,
    route: Option<Route<'_>>,
) -> Result<HttpResponse, Error> {
    let route = route.ok_or(Error::NotFound("route"))?;
    let m = req.method();
    let allowed = match route {
        Route::Health => *m == Method::GET,
        Route::Trial { .. } | Route::Patient { .. } => *m == Method::GET || *m == Method::PUT,
        Route::Submissions { .. } => *m == Method::GET || *m == Method::POST,
        Route::Vitals { .. } | Route::AckAlert { .. } => *m == Method::POST,
        Route::Alerts { .. } => *m == Method::GET,
    };
    if !allowed {
        return Err(Error::MethodNotAllowed);
    }
    if route == Route::Health {
        return Ok(respond::json(200, &Health { status: "ok", version: env!("CARGO_PKG_VERSION") }));
    }
    // Identity first (401), then the path (400), then scope (403) and body.
    let principal = Principal::from_request(req)?;
    match route {
        Route::Health => Err(Error::NotFound("route")),
        Route::Trial { trial } => {
            let trial = trial_id(trial)?;
            if *m == Method::PUT {
                crate::trials::put(deps, req, &principal, trial).await
            } else {
                crate::trials::get(deps, &principal, trial).await
            }
        }
        Route::Patient { trial, patient } => {
            let (trial, patient) = (trial_id(trial)?, patient_id(patient)?);
            if *m == Method::PUT {
                crate::enrolment::put(deps, req, &principal, trial, patient).await
            } else {
                crate::patients::get(deps, &principal, trial, patient).await
            }
        }
        Route::Submissions { trial, patient } => {
            let (trial, patient) = (trial_id(trial)?, patient_id(patient)?);
            if *m == Method::POST {
                crate::submissions::post(deps, req, &principal, trial, patient).await
            } else {
                crate::submissions::list(deps, &principal, trial, patient, page_request(req)?).await
            }
        }
        Route::Vitals { trial, patient } => {
            let (trial, patient) = (trial_id(trial)?, patient_id(patient)?);
            crate::vitals::post(deps, req, &principal, trial, patient).await
        }
        Route::Alerts { trial, patient } => {
            let (trial, patient) = (trial_id(trial)?, patient_id(patient)?);
            crate::alerts::list(deps, &principal, trial, patient, page_request(req)?).await
        }
        Route::AckAlert { trial, alert } => {
            let trial = trial_id(trial)?;
            let alert = AlertId::parse(alert).map_err(|e| Error::BadRequest(format!("path parameter alertId {e}")))?;
            crate::alerts::ack(deps, req, &principal, trial, alert).await
        }
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
}

fn trial_id(s: &str) -> Result<TrialId, Error> {
    TrialId::parse(s).map_err(|e| Error::BadRequest(format!("path parameter trialId {e}")))
}

fn patient_id(s: &str) -> Result<PatientId, Error> {
    PatientId::parse(s).map_err(|e| Error::BadRequest(format!("path parameter patientId {e}")))
}

/// The route path: API Gateway's `rawPath` (else the URI's path), without a
/// named stage's `/{stage}` prefix, which a non-default stage adds.
fn request_path(req: &Request) -> String {
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

/// `limit` (1-200, default 50) and the opaque `cursor` from the query string.
fn page_request(req: &Request) -> Result<PageRequest, Error> {
    let mut page = PageRequest::first(DEFAULT_LIMIT);
    for pair in req.uri().query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "limit" => {
                page.limit = percent_decode(value)
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| Error::field("limit", format!("must be an integer from 1 to {MAX_LIMIT}")))?;
            }
            "cursor" => {
                let c = percent_decode(value);
                if c.is_empty() || c.len() > 2048 {
                    return Err(Error::field("cursor", "is not a cursor this API issued"));
                }
                page.cursor = Some(c);
            }
            _ => {}
        }
    }
    Ok(page)
}

/// Decodes `%XX` escapes; invalid escapes are kept literally (the value is
/// then refused by whoever parses it).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).and_then(|c| hex(*c)), b.get(i + 2).and_then(|c| hex(*c))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes_and_nothing_else() {
        assert_eq!(Route::parse("/health"), Some(Route::Health));
        assert_eq!(Route::parse("/v1/trials/t/patients/p/vitals"), Some(Route::Vitals { trial: "t", patient: "p" }));
        assert_eq!(Route::parse("/v1/trials/t/alerts/a/ack"), Some(Route::AckAlert { trial: "t", alert: "a" }));
        for p in ["", "/", "/v1", "/v1/trials", "/v1/trials/t/", "/v1/trials/t/reports", "/v1/trials/t/patients/p/x", "health"] {
            assert_eq!(Route::parse(p), None, "{p}");
        }
    }

    #[test]
    fn percent_decoding_handles_escapes_and_garbage() {
        assert_eq!(percent_decode("a%3Db%2"), "a=b%2");
        assert_eq!(percent_decode("%ff%fe"), "\u{fffd}\u{fffd}");
    }
}
