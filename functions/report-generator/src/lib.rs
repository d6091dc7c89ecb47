//! report-generator: trial reports as PDF with charts, from concurrent
//! counter queries, stored in S3 behind a presigned link.
//!
//! Two triggers share one function: the HTTP API (`POST`/`GET` reports) and a
//! weekly EventBridge schedule. [`handle_event`] tells them apart.

mod aggregate;
mod auth;
mod config;
mod generate;
mod http;
pub mod pdf;
mod period;
mod schedule;

use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};
use trialwatch::aws::{DynamoStore, S3ReportStore};
use trialwatch::clock::SystemClock;
use trialwatch::ports::{Clock, ReportStore};

pub use aggregate::{figures, percentile, AlertFigures, DayCell, Figures, Gathered, Outcome, SiteFigures};
pub use auth::{Caller, Role};
pub use config::Config;
pub use generate::{gather, new_report_id, publish, weekly_report_id, Generated, ReportSources, LINK_TTL};
pub use http::{handle_http, problem, MAX_BODY_BYTES};
pub use period::{day_start_utc, local_day, Period, PeriodRequest, MAX_PERIOD_DAYS};
pub use schedule::{handle_schedule, run_weekly, ScheduleOutcome};

/// What the handlers talk to: the stores, the report store, the clock.
pub struct Deps<S: ReportSources, R: ReportStore, C: Clock> {
    pub store: S,
    pub reports: R,
    pub clock: C,
}

pub type AwsDeps = Deps<DynamoStore, S3ReportStore, SystemClock>;

impl AwsDeps {
    /// The production adapters, built once in init from the function's
    /// configuration and one SDK configuration.
    pub fn from_config(config: &Config, sdk: &aws_config::SdkConfig) -> Self {
        let store = DynamoStore::new(sdk, config.table_name.clone());
        let reports = S3ReportStore::new(sdk, config.reports_bucket.clone(), config.reports_kms_key_id.clone(), store.clone());
        Deps { store, reports, clock: SystemClock }
    }
}

/// One entry point for both triggers: an API Gateway v2 (HTTP API) event has
/// `requestContext.http`; anything else is the schedule.
pub async fn handle_event<S: ReportSources, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    if event.payload.pointer("/requestContext/http").is_none() {
        return handle_schedule(deps, event).await;
    }
    let response = match serde_json::from_value::<lambda_http::request::LambdaRequest>(event.payload) {
        Ok(req) => handle_http(deps, lambda_http::Request::from(req)).await,
        Err(_) => problem(&trialwatch::Error::BadRequest("not an API Gateway HTTP API event".into())),
    };
    Ok(api_gateway_v2_response(response))
}

/// The HTTP API (payload format 2.0) response shape.
fn api_gateway_v2_response(resp: lambda_http::Response<lambda_http::Body>) -> Value {
    use base64::Engine;
    let (parts, body) = resp.into_parts();
    let headers: serde_json::Map<String, Value> =
        parts.headers.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), Value::String(v.to_str().ok()?.to_owned())))).collect();
    let (body, base64) = match body {
        lambda_http::Body::Empty => (String::new(), false),
        lambda_http::Body::Text(t) => (t, false),
        lambda_http::Body::Binary(b) => (base64::engine::general_purpose::STANDARD.encode(b), true),
        _ => (String::new(), false),
    };
    json!({"statusCode": parts.status.as_u16(), "headers": headers, "body": body, "isBase64Encoded": base64})
}
