//! The hourly schedule that anchors every trial's audit chain heads to S3
//! Object Lock ([`trialwatch::audit::anchor`]). It lives here because this
//! function already has the schedule edge, its retries and dead-letter queue,
//! read access to the trials and enrolments, and S3; the alert dispatcher's
//! minute schedule is on the safety path and stays lean.

use std::sync::Arc;

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use trialwatch::audit::anchor::anchor_all;
use trialwatch::edge::schedule;
use trialwatch::ports::{AnchorStore, ChainHeads, Clock, ReportStore, TrialRegistry};

use crate::Deps;

/// The rule's constant input (`{"job": "audit-anchors"}`) that tells an
/// anchoring run from the weekly reports.
pub const ANCHOR_JOB: &str = "audit-anchors";

/// Where heads are read and anchors written. Trait objects, so that the
/// report use cases keep their three type parameters.
#[derive(Clone)]
pub struct Anchoring {
    pub heads: Arc<dyn ChainHeads>,
    pub anchors: Arc<dyn AnchorStore>,
    pub retention_days: u32,
}

pub fn is_anchor_run(payload: &Value) -> bool {
    payload.get("job").and_then(Value::as_str) == Some(ANCHOR_JOB)
}

/// Anchors every trial now; a trial that failed fails the invocation, so
/// Lambda retries it.
pub async fn handle_anchors<S: TrialRegistry, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let a = &deps.anchoring;
    schedule::run("audit anchors", event, deps.clock.now(), |run| {
        anchor_all(&deps.store, a.heads.as_ref(), a.anchors.as_ref(), run.time, a.retention_days)
    })
    .await
}
