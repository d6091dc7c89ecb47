//! The HTTP routes:
//! - `POST /v1/trials/{trialId}/reports` `{from, to}` -> 201 `{reportId, url, expiresAt, summary}`
//! - `GET /v1/trials/{trialId}/reports/{reportId}` -> 200 metadata and a fresh link
//!
//! Every error leaves through the edge kit's one problem+json response.

use std::sync::LazyLock;

use chrono::Duration;
use lambda_http::http::header;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use trialwatch::domain_event::Announcer;
use trialwatch::edge::http::respond::{self, with_header};
use trialwatch::edge::http::{body, path_param, HttpError, Principal, RouteKey, Routes};
use trialwatch::ports::{AuditLog, Clock, PendingEvents, ReportFigures, ReportStore, TrialConfig};
use trialwatch::{Error, ReportId, TrialId};

use crate::auth::may_read_reports;
use crate::build_report::{build_report, BuildReportCommand, BuildReportError};
use crate::generate;
use crate::period::{Period, PeriodRequest};
use crate::Deps;

/// `{from, to}` is tiny; anything much larger is not a report request.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Create,
    Get,
}

/// The route keys, as the template declares them (a test holds the two equal).
pub const ROUTE_KEYS: [(&str, &str, Route); 2] =
    [("POST", "/v1/trials/{trialId}/reports", Route::Create), ("GET", "/v1/trials/{trialId}/reports/{reportId}", Route::Get)];

/// [`ROUTE_KEYS`] as the edge kit's route table.
pub fn routes() -> &'static Routes<Route> {
    static ROUTES: LazyLock<Routes<Route>> = LazyLock::new(|| Routes::new(ROUTE_KEYS.map(|(m, p, r)| (RouteKey::new(m, p), r))));
    &ROUTES
}

/// Served inside the request's correlation scope, as the ePRO API's routes:
/// every line it logs carries the id, and the response echoes it.
pub async fn handle_http<S: TrialConfig + ReportFigures + AuditLog + PendingEvents, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    req: Request,
) -> Response<Body> {
    let correlation = trialwatch::edge::http::correlation_id(&req);
    let response = trialwatch::correlation::scope(correlation.clone(), serve_http(deps, req)).await;
    trialwatch::edge::http::with_correlation_id(response, &correlation)
}

async fn serve_http<S: TrialConfig + ReportFigures + AuditLog + PendingEvents, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    req: Request,
) -> Response<Body> {
    match route(deps, req).await {
        Ok(resp) => resp,
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(code = e.code(), status = e.status(), "report request failed");
            } else {
                tracing::info!(code = e.code(), status = e.status(), "report request refused");
            }
            respond::problem(&e)
        }
    }
}

async fn route<S: TrialConfig + ReportFigures + AuditLog + PendingEvents, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    req: Request,
) -> Result<Response<Body>, HttpError> {
    let (route, req) = routes().resolve(req)?;
    // Identity first (401), then the path (400), then scope (403) and body.
    let caller = Principal::from_request(&req)?;
    let trial: TrialId = path_param(&req, "trialId")?;
    match route {
        Route::Create => {
            may_read_reports(&caller, &trial)?;
            create(deps, &caller, &trial, &req).await
        }
        Route::Get => {
            let report: ReportId = path_param(&req, "reportId")?;
            may_read_reports(&caller, &trial)?;
            get(deps, &trial, &report).await
        }
    }
}

async fn create<S: TrialConfig + ReportFigures + AuditLog + PendingEvents, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    caller: &Principal,
    trial: &TrialId,
    req: &Request,
) -> Result<Response<Body>, HttpError> {
    // The report's audit entry must name who asked for it.
    let author = caller.author()?;
    let now = deps.clock.now();
    let body: PeriodRequest = body::json(req, MAX_BODY_BYTES)?;
    // The trial's zone is not known until it is read, which happens alongside
    // the other sections; check "not in the future" against the latest date on
    // Earth (UTC+14) now, and against the trial's own zone once it is known.
    let period = Period::from_request(&body, (now + Duration::hours(14)).date_naive())?;
    let report_id = generate::new_report_id(now)?;
    let cmd = BuildReportCommand { trial_id: trial.clone(), period, report_id, requested_by: author, requested: Some(body) };
    let events = Announcer { bus: deps.event_bus.as_ref(), pending: &deps.store };
    let g = build_report(&deps.store, &deps.store, &deps.reports, &deps.store, events, &deps.clock, cmd).await.map_err(Error::from)?;
    let location = format!("/v1/trials/{trial}/reports/{}", g.meta.report_id);
    let body = json!({
        "reportId": g.meta.report_id,
        "url": g.url,
        "expiresAt": trialwatch::timestamp::format(g.expires_at),
        "summary": g.meta.summary,
    });
    Ok(with_header(respond::json(201, &body), header::LOCATION, &location))
}

/// The one mapping of a report that could not be made, shared by both
/// edges: the schedule logs its code, the HTTP edge answers its problem.
impl From<BuildReportError> for Error {
    fn from(e: BuildReportError) -> Self {
        match e {
            BuildReportError::TrialNotFound => Error::NotFound("trial"),
            BuildReportError::Invalid(fields) => Error::Validation(fields),
            BuildReportError::Render(why) => Error::Internal(why),
            BuildReportError::Storage(e) => e.into(),
        }
    }
}

async fn get<S, R: ReportStore, C: Clock>(deps: &Deps<S, R, C>, trial: &TrialId, id: &ReportId) -> Result<Response<Body>, HttpError> {
    let meta = deps.reports.get_report(trial, id).await?.ok_or(Error::NotFound("report"))?;
    let (url, expires_at) = generate::link(&deps.reports, &deps.clock, &meta).await?;
    let body = json!({
        "reportId": meta.report_id,
        "trialId": meta.trial_id,
        "from": meta.from,
        "to": meta.to,
        "generatedAt": trialwatch::timestamp::format(meta.generated_at),
        "pages": meta.pages,
        "bytes": meta.bytes,
        "summary": meta.summary,
        "url": url,
        "expiresAt": trialwatch::timestamp::format(expires_at),
    });
    Ok(respond::json(200, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::ports::StorageError;
    use trialwatch::validation::FieldError;

    #[test]
    fn each_build_report_error_has_its_status_and_problem_type() {
        let cases = [
            (BuildReportError::TrialNotFound, 404, "not-found"),
            (BuildReportError::Invalid(vec![FieldError::new("to", "must not be in the future")]), 422, "validation"),
            (BuildReportError::Render("page size".into()), 500, "internal"),
            (BuildReportError::Storage(StorageError::Unavailable("throttled".into())), 503, "unavailable"),
        ];
        for (e, status, problem_type) in cases {
            let name = format!("{e:?}");
            let r = respond::problem(&HttpError::from(Error::from(e)));
            let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
            assert_eq!(r.status().as_u16(), status, "{name}");
            assert_eq!(body["type"], format!("{}{problem_type}", trialwatch::edge::http::PROBLEM_BASE), "{name}");
        }
    }
}
