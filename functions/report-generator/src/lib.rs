//! report-generator: trial reports as PDF with charts, from concurrent
//! counter queries, stored in S3 behind a presigned link.
//!
//! Two triggers share one function: the HTTP API (`POST`/`GET` reports) and a
//! weekly EventBridge schedule. [`handle_event`] tells them apart.

mod aggregate;
mod anchors;
mod auth;
pub mod build_report;
mod config;
mod generate;
mod http;
pub mod pdf;
mod period;
mod schedule;

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use std::sync::Arc;
use trialwatch::aws::{DynamoStore, S3Anchors, S3ReportStore};
use trialwatch::clock::SystemClock;
use trialwatch::edge;

use trialwatch::domain_event::Unpublished;
use trialwatch::ports::{AuditLog, Clock, EventPublisher, PendingEvents, ReportFigures, ReportStore, TrialConfig, TrialRegistry};

pub use aggregate::{figures, percentile, AlertFigures, DayCell, Figures, Gathered, Outcome, SiteFigures};
pub use anchors::{handle_anchors, is_anchor_run, Anchoring, ANCHOR_JOB};
pub use auth::may_read_reports;
pub use build_report::{build_report, BuildReportCommand, BuildReportError};
pub use config::Config;
pub use generate::{gather, new_report_id, weekly_report_id, Generated, LINK_TTL};
pub use http::{handle_http, routes, Route, MAX_BODY_BYTES, ROUTE_KEYS};
pub use period::{day_start_utc, local_day, Period, PeriodRequest, MAX_PERIOD_DAYS};
pub use schedule::{handle_schedule, run_weekly, ScheduleOutcome};

/// What the handlers talk to: the stores, the report store, the clock, the
/// event bus, and where the audit anchoring schedule reads heads and writes anchors.
pub struct Deps<S, R, C> {
    pub store: S,
    pub reports: R,
    pub clock: C,
    pub anchoring: Anchoring,
    /// Where `ReportGenerated` is announced ([`trialwatch::domain_event`]);
    /// [`Unpublished`] leaves it pending for the sweep.
    pub event_bus: Arc<dyn EventPublisher>,
}

pub type AwsDeps = Deps<DynamoStore, S3ReportStore, SystemClock>;

impl AwsDeps {
    /// The production adapters, built once in init from the function's
    /// configuration and one SDK configuration.
    pub fn from_config(config: &Config, sdk: &aws_config::SdkConfig) -> Self {
        Self::with_store(config, sdk, Self::dynamo_store(config, sdk))
    }

    /// [`Self::from_config`] for `main`, with init's warm-up call: the store is built first and
    /// its call goes out while the rest is built ([`DynamoStore::warm_up_while_building`]).
    ///
    /// [`DynamoStore::warm_up_while_building`]: trialwatch::aws::DynamoStore::warm_up_while_building
    pub async fn warmed_up(config: Config, sdk: aws_config::SdkConfig) -> Self {
        Self::dynamo_store(&config, &sdk).warm_up_while_building(move |store| Self::with_store(&config, &sdk, store)).await
    }

    fn dynamo_store(config: &Config, sdk: &aws_config::SdkConfig) -> DynamoStore {
        DynamoStore::new(sdk, config.table_name.clone(), config.audit_table_name.clone())
    }

    fn with_store(config: &Config, sdk: &aws_config::SdkConfig, store: DynamoStore) -> Self {
        // One S3 client for reports and anchors: each construction costs init time.
        let s3 = trialwatch::aws::s3_client(sdk);
        let reports =
            S3ReportStore::with_client(s3.clone(), config.reports_bucket.clone(), config.reports_kms_key_id.clone(), store.clone());
        let anchoring = Anchoring {
            heads: Arc::new(store.clone()),
            anchors: Arc::new(S3Anchors::with_client(s3, config.audit_anchor_bucket.clone())),
            retention_days: config.audit_anchor_retention_days,
        };
        let event_bus: Arc<dyn EventPublisher> = match &config.event_bus_name {
            Some(bus) => Arc::new(trialwatch::aws::EventBridgePublisher::new(sdk, bus.clone())),
            None => Arc::new(Unpublished),
        };
        Deps { store, reports, clock: SystemClock, anchoring, event_bus }
    }
}

/// One entry point for every trigger: an API Gateway v2 (HTTP API) event has
/// `requestContext.http`; anything else is a schedule ([`handle_schedule`]).
pub async fn handle_event<S: TrialConfig + TrialRegistry + ReportFigures + AuditLog + PendingEvents, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    if !edge::http::is_http_event(&event.payload) {
        return handle_schedule(deps, event).await;
    }
    let response = match edge::http::request_from_event(event.payload) {
        Ok(req) => handle_http(deps, req).await,
        Err(_) => edge::http::problem(&edge::http::HttpError::BadRequest("not an API Gateway HTTP API event".into())),
    };
    Ok(edge::http::api_gateway_v2_response(response))
}
