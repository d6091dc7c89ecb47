//! The HTTP routes:
//! - `POST /v1/trials/{trialId}/reports` `{from, to}` -> 201 `{reportId, url, expiresAt, summary}`
//! - `GET /v1/trials/{trialId}/reports/{reportId}` -> 200 metadata and a fresh link
//!
//! Every error leaves through [`problem`], the one mapping to problem+json.

use chrono::Duration;
use lambda_http::http::{header, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use trialwatch::error::{PROBLEM_CONTENT_TYPE, RETRY_AFTER_SECONDS};
use trialwatch::ports::{Clock, ReportStore};
use trialwatch::validation::Validator;
use trialwatch::{Error, ReportId, TrialId};

use crate::auth::Caller;
use crate::generate::{self, ReportSources};
use crate::period::{Period, PeriodRequest};
use crate::Deps;

/// `{from, to}` is tiny; anything much larger is not a report request.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

enum Route {
    Create(TrialId),
    Get(TrialId, ReportId),
}

pub async fn handle_http<S: ReportSources, R: ReportStore, C: Clock>(deps: &Deps<S, R, C>, req: Request) -> Response<Body> {
    match route(deps, &req).await {
        Ok(resp) => resp,
        Err(e) => {
            if e.status() >= 500 {
                tracing::error!(code = e.code(), status = e.status(), "report request failed");
            } else {
                tracing::info!(code = e.code(), status = e.status(), "report request refused");
            }
            problem(&e)
        }
    }
}

async fn route<S: ReportSources, R: ReportStore, C: Clock>(deps: &Deps<S, R, C>, req: &Request) -> Result<Response<Body>, Error> {
    let route = parse_route(req.method(), req.uri().path())?;
    let caller = Caller::from_request(req)?;
    match route {
        Route::Create(trial) => {
            caller.may_read_reports(&trial)?;
            create(deps, &caller, &trial, req).await
        }
        Route::Get(trial, report) => {
            caller.may_read_reports(&trial)?;
            get(deps, &trial, &report).await
        }
    }
}

fn parse_route(method: &Method, path: &str) -> Result<Route, Error> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // A named API Gateway stage may prefix the path; routes start at "v1".
    let start = segments.iter().position(|s| *s == "v1").ok_or(Error::NotFound("route"))?;
    let trial = |s: &str| TrialId::parse(s).map_err(|e| Error::field("trialId", e.to_string()));
    match (&segments[start..], method) {
        (["v1", "trials", t, "reports"], &Method::POST) => Ok(Route::Create(trial(t)?)),
        (["v1", "trials", t, "reports", r], &Method::GET) => {
            Ok(Route::Get(trial(t)?, ReportId::parse(r).map_err(|e| Error::field("reportId", e.to_string()))?))
        }
        (["v1", "trials", _, "reports"], _) | (["v1", "trials", _, "reports", _], _) => Err(Error::MethodNotAllowed),
        _ => Err(Error::NotFound("route")),
    }
}

/// Parses `{from, to}`: unknown fields and wrong types are 422 naming the field.
fn period_request(req: &Request) -> Result<PeriodRequest, Error> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        if !ct.starts_with("application/json") {
            return Err(Error::UnsupportedMediaType("send application/json".into()));
        }
    }
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Error::MalformedJson(format!("line {} column {}", e.line(), e.column())))?;
    let Value::Object(obj) = value else {
        return Err(Error::field("body", "must be a JSON object {from, to}"));
    };
    let mut v = Validator::new();
    for key in obj.keys().filter(|k| *k != "from" && *k != "to") {
        v.error(key.clone(), "is not a field of this request");
    }
    let mut text = |name: &str| match obj.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            v.error(name, "must be a date string YYYY-MM-DD");
            None
        }
        None => {
            v.error(name, "is required");
            None
        }
    };
    let (from, to) = (text("from"), text("to"));
    match (from, to) {
        (Some(from), Some(to)) if v.is_empty() => Ok(PeriodRequest { from, to }),
        _ => Err(Error::Validation(v.into_errors())),
    }
}

async fn create<S: ReportSources, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    caller: &Caller,
    trial: &TrialId,
    req: &Request,
) -> Result<Response<Body>, Error> {
    let now = deps.clock.now();
    let body = period_request(req)?;
    // The trial's zone is not known until it is read, which happens alongside
    // the other sections; check "not in the future" against the latest date on
    // Earth (UTC+14) now, and against the trial's own zone once it is known.
    let period = Period::from_request(&body, (now + Duration::hours(14)).date_naive())?;
    let gathered = generate::gather(&deps.store, trial, period).await?;
    Period::from_request(&body, now.with_timezone(&gathered.trial.definition.tz()).date_naive())?;
    let report_id = generate::new_report_id(now)?;
    let g = generate::publish(deps, gathered, period, report_id, caller.actor()).await?;
    let location = format!("/v1/trials/{trial}/reports/{}", g.meta.report_id);
    let body = json!({
        "reportId": g.meta.report_id,
        "url": g.url,
        "expiresAt": trialwatch::timestamp::format(g.expires_at),
        "summary": g.meta.summary,
    });
    Ok(with_header(json_response(StatusCode::CREATED, &body), header::LOCATION, &location))
}

async fn get<S: ReportSources, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    trial: &TrialId,
    id: &ReportId,
) -> Result<Response<Body>, Error> {
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
    Ok(json_response(StatusCode::OK, &body))
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = status;
    with_header(resp, header::CONTENT_TYPE, "application/json")
}

fn with_header(mut resp: Response<Body>, name: header::HeaderName, value: &str) -> Response<Body> {
    if let Ok(v) = header::HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
    resp
}

/// The one mapping from a domain error to an HTTP response.
pub fn problem(e: &Error) -> Response<Body> {
    let p = e.to_problem();
    let mut resp = Response::new(Body::Text(serde_json::to_string(&p).unwrap_or_default()));
    *resp.status_mut() = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = with_header(resp, header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE);
    if e.is_retryable() {
        resp = with_header(resp, header::RETRY_AFTER, &RETRY_AFTER_SECONDS.to_string());
    }
    resp
}
