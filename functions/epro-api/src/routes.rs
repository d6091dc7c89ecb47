//! The routes of `template.yaml`'s EproApiFunction, by route key: API Gateway
//! matches the request and sends the key and the path parameters; ids are
//! read from those with the id newtypes (400 naming the parameter), then the
//! concept module that serves the route takes over.

use std::panic::AssertUnwindSafe;
use std::sync::LazyLock;

use futures::FutureExt;
use lambda_http::{Request, RequestExt};
use serde::Serialize;
use trialwatch::edge::http::respond::{self, HttpResponse};
use trialwatch::edge::http::HttpError;
use trialwatch::edge::http::{path_param, RouteKey, Routes};
use trialwatch::page::{PageRequest, DEFAULT_LIMIT, MAX_LIMIT};
use trialwatch::ports::{
    AlertInbox, AlertQueue, AuditTrail, Clock, EnrolmentStore, PendingEvents, SubmissionLedger, TrialConfig, TrialRegistry, VitalsQueue,
    VitalsStore,
};
use trialwatch::telemetry::metrics;
use trialwatch::validation::FieldError;
use trialwatch::Error;

use crate::auth::Principal;
use crate::deps::Deps;

/// The routes this function serves (the report routes belong to report-generator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    GetTrial,
    PutTrial,
    GetPatient,
    PutPatient,
    PostSubmission,
    ListSubmissions,
    PostVitals,
    ListAlerts,
    AckAlert,
    ReadAudit,
}

/// The route keys, as the template declares them (a test holds the two equal).
pub const ROUTE_KEYS: [(&str, &str, Route); 11] = [
    ("GET", "/health", Route::Health),
    ("GET", "/v1/trials/{trialId}", Route::GetTrial),
    ("PUT", "/v1/trials/{trialId}", Route::PutTrial),
    ("GET", "/v1/trials/{trialId}/patients/{patientId}", Route::GetPatient),
    ("PUT", "/v1/trials/{trialId}/patients/{patientId}", Route::PutPatient),
    ("POST", "/v1/trials/{trialId}/patients/{patientId}/submissions", Route::PostSubmission),
    ("GET", "/v1/trials/{trialId}/patients/{patientId}/submissions", Route::ListSubmissions),
    ("POST", "/v1/trials/{trialId}/patients/{patientId}/vitals", Route::PostVitals),
    ("GET", "/v1/trials/{trialId}/patients/{patientId}/alerts", Route::ListAlerts),
    ("POST", "/v1/trials/{trialId}/alerts/{alertId}/ack", Route::AckAlert),
    ("GET", "/v1/trials/{trialId}/audit", Route::ReadAudit),
];

/// [`ROUTE_KEYS`] as the edge kit's route table.
pub fn routes() -> &'static Routes<Route> {
    static ROUTES: LazyLock<Routes<Route>> = LazyLock::new(|| Routes::new(ROUTE_KEYS.map(|(m, p, r)| (RouteKey::new(m, p), r))));
    &ROUTES
}

impl Route {
    /// Whether the route changes records, and so leaves an audit entry that
    /// must name the caller's `sub`.
    pub fn writes(&self) -> bool {
        matches!(self, Route::PutTrial | Route::PutPatient | Route::PostSubmission | Route::PostVitals | Route::AckAlert)
    }

    /// A stable name for logs (no ids).
    pub fn name(&self) -> &'static str {
        match self {
            Route::Health => "health",
            Route::GetTrial | Route::PutTrial => "trial",
            Route::GetPatient | Route::PutPatient => "patient",
            Route::PostSubmission | Route::ListSubmissions => "submissions",
            Route::PostVitals => "vitals",
            Route::ListAlerts => "alerts",
            Route::AckAlert => "alert-ack",
            Route::ReadAudit => "audit",
        }
    }
}

/// Serves one request. Infallible: every error, and even a bug that panics,
/// becomes problem+json.
///
/// The request's correlation id ([`trialwatch::correlation`]) is on every line
/// logged while serving it, on the queue messages it sends, and echoed in the
/// response's `X-Correlation-Id`.
pub async fn handle<
    S: TrialConfig + TrialRegistry + EnrolmentStore + SubmissionLedger + VitalsStore + AlertInbox + AuditTrail + PendingEvents + 'static,
    V: VitalsQueue,
    A: AlertQueue,
    C: Clock,
>(
    deps: &Deps<S, V, A, C>,
    req: Request,
) -> HttpResponse {
    let correlation = trialwatch::edge::http::correlation_id(&req);
    // Boxed: the request's state machine is a few kilobytes, and every move of this future
    // (into the runtime's `block_on`, lambda_http's adapter, a scope) copied it whole: about
    // 8 copies and 23k instructions a submission in the replay (issue 16). One allocation instead.
    let response = trialwatch::correlation::scope(correlation.clone(), Box::pin(serve(deps, req))).await;
    trialwatch::edge::http::with_correlation_id(response, &correlation)
}

async fn serve<
    S: TrialConfig + TrialRegistry + EnrolmentStore + SubmissionLedger + VitalsStore + AlertInbox + AuditTrail + PendingEvents + 'static,
    V: VitalsQueue,
    A: AlertQueue,
    C: Clock,
>(
    deps: &Deps<S, V, A, C>,
    req: Request,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let (route, result) = match routes().resolve(req) {
        Ok((route, req)) => (Some(*route), AssertUnwindSafe(dispatch(deps, &req, *route)).catch_unwind().await),
        Err(e) => (None, Ok(Err(e))),
    };
    let (response, code) = match result {
        Ok(Ok(r)) => (r, None),
        Ok(Err(e)) => (respond::problem(&e), Some(e.code())),
        Err(_) => (respond::problem(&Error::Internal("handler panicked".into()).into()), Some("panic")),
    };
    let status = response.status().as_u16();
    if route == Some(Route::PostSubmission) {
        match code {
            None => metrics::submission_accepted(started.elapsed()),
            Some(problem_type) => metrics::submission_rejected(problem_type, started.elapsed()),
        }
    }
    let route = route.map_or("none", |r| r.name());
    if status >= 500 {
        tracing::error!(route, method = %method, status, code, "request failed");
    } else {
        tracing::info!(route, method = %method, status, code, "request");
    }
    response
}

async fn dispatch<
    S: TrialConfig + TrialRegistry + EnrolmentStore + SubmissionLedger + VitalsStore + AlertInbox + AuditTrail + PendingEvents + 'static,
    V: VitalsQueue,
    A: AlertQueue,
    C: Clock,
>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    route: Route,
) -> Result<HttpResponse, HttpError> {
    if route == Route::Health {
        return Ok(respond::json(200, &Health { status: "ok", version: env!("CARGO_PKG_VERSION") }));
    }
    // Identity first (401), then the path (400), then scope (403) and body.
    let principal = Principal::from_request(req)?;
    if route.writes() {
        crate::auth::may_write(&principal)?;
        principal.author()?;
    }
    let trial = path_param(req, "trialId")?;
    let patient = || path_param(req, "patientId");
    match route {
        Route::Health => Err(Error::NotFound("route").into()),
        Route::GetTrial => crate::trials::get(deps, &principal, trial).await,
        Route::PutTrial => crate::trials::put(deps, req, &principal, trial).await,
        Route::GetPatient => crate::patients::get(deps, &principal, trial, patient()?).await,
        Route::PutPatient => crate::enrolment::put(deps, req, &principal, trial, patient()?).await,
        Route::PostSubmission => crate::submissions::post(deps, req, &principal, trial, patient()?).await,
        Route::ListSubmissions => {
            let patient = patient()?;
            crate::submissions::list(deps, &principal, trial, patient, page_request(req)?).await
        }
        Route::PostVitals => crate::vitals::post(deps, req, &principal, trial, patient()?).await,
        Route::ListAlerts => {
            let patient = patient()?;
            crate::alerts::list(deps, &principal, trial, patient, page_request(req)?).await
        }
        Route::AckAlert => crate::alerts::ack(deps, req, &principal, trial, path_param(req, "alertId")?).await,
        Route::ReadAudit => crate::audit::list(deps, req, &principal, trial).await,
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
}

/// `limit` (1-200, default 50) and the opaque `cursor` from the query string,
/// as `lambda_http` decodes it; both named when both are wrong.
pub(crate) fn page_request(req: &Request) -> Result<PageRequest, Error> {
    let mut page = PageRequest::first(DEFAULT_LIMIT);
    let mut errors = Vec::new();
    let query = req.query_string_parameters();
    if let Some(limit) = query.first("limit") {
        match limit.parse::<u32>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)) {
            Some(n) => page.limit = n,
            None => errors.push(FieldError::new("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))),
        }
    }
    if let Some(cursor) = query.first("cursor") {
        if cursor.is_empty() || cursor.len() > 2048 {
            errors.push(FieldError::new("cursor", "is not a cursor this API issued"));
        } else {
            page.cursor = Some(cursor.to_owned());
        }
    }
    if errors.is_empty() {
        Ok(page)
    } else {
        Err(Error::Validation(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_keys_are_the_templates() {
        // GIVEN the template's HttpApi events of EproApiFunction
        let template = trialwatch_provision::Template::load(&trialwatch_provision::template_path()).unwrap();
        let function = template.function("EproApiFunction").expect("EproApiFunction in template.yaml");
        let mut declared: Vec<String> = function.http_routes.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        let mut served: Vec<String> = routes().iter().map(|(k, _)| k.to_string()).collect();
        declared.sort();
        served.sort();
        // THEN this function serves exactly those keys
        assert_eq!(served, declared);
    }

    #[test]
    fn every_sample_event_carries_the_route_key_and_path_parameters_api_gateway_sends() {
        let samples = [
            include_str!("../../../events/epro-ack-alert.json"),
            include_str!("../../../events/epro-get-audit.json"),
            include_str!("../../../events/epro-get-patient.json"),
            include_str!("../../../events/epro-health.json"),
            include_str!("../../../events/epro-list-alerts.json"),
            include_str!("../../../events/epro-list-submissions.json"),
            include_str!("../../../events/epro-post-submission-fhir.json"),
            include_str!("../../../events/epro-post-submission.json"),
            include_str!("../../../events/epro-post-vitals-fhir.json"),
            include_str!("../../../events/epro-post-vitals.json"),
            include_str!("../../../events/epro-put-patient.json"),
            include_str!("../../../events/epro-put-trial.json"),
        ];
        for text in samples {
            let e: serde_json::Value = serde_json::from_str(text).unwrap();
            let (method, path) = (e["requestContext"]["http"]["method"].as_str().unwrap(), e["rawPath"].as_str().unwrap());
            // WHEN the request is matched as API Gateway matches it
            let m = routes().find(method, path).unwrap_or_else(|miss| panic!("{method} {path}: {miss:?}"));
            // THEN the event names the same route key and parameters
            assert_eq!(e["routeKey"], m.key.as_str(), "{path}");
            assert_eq!(e["requestContext"]["routeKey"], m.key.as_str(), "{path}");
            let params = e.get("pathParameters").cloned().unwrap_or_else(|| serde_json::json!({}));
            assert_eq!(params, serde_json::json!(m.params), "{path}");
        }
    }
}
