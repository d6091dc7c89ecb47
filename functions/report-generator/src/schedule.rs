//! The weekly schedule (EventBridge, Mondays): last week's report for every
//! active trial. One trial failing does not stop the others; the invocation
//! fails at the end if any did, so Lambda's retry redoes only what is missing
//! (the weekly report id is deterministic and done reports are skipped).

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;
use trialwatch::audit::Actor;
use trialwatch::domain_event::Announcer;
use trialwatch::edge::schedule;
use trialwatch::ports::{AuditLog, Clock, PendingEvents, ReportFigures, ReportStore, TrialConfig, TrialRegistry};
use trialwatch::trial::TrialStatus;
use trialwatch::{Error, TrialId};

use crate::build_report::{build_report, BuildReportCommand};
use crate::generate;
use crate::period::Period;
use crate::Deps;

/// Reports made at once: bounded so a national trial list neither exhausts
/// the function's memory nor throttles the table.
const CONCURRENCY: usize = 4;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleOutcome {
    pub trials: u32,
    pub generated: u32,
    /// The week's report existed already (a retried or repeated run).
    pub already_done: u32,
    /// Closed trials, or ids whose trial item is gone.
    pub skipped: u32,
    pub failed: u32,
}

enum One {
    Generated,
    AlreadyDone,
    Skipped,
}

/// Every schedule's entry point: the audit anchoring rule's constant input
/// names its job; any other event is the weekly reports. The edge kit reads
/// the event's time and maps the outcome; a run with failed trials fails the
/// invocation.
pub async fn handle_schedule<S: TrialConfig + TrialRegistry + ReportFigures + AuditLog + PendingEvents, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    if crate::anchors::is_anchor_run(&event.payload) {
        return crate::anchors::handle_anchors(deps, event).await;
    }
    schedule::run("weekly reports", event, deps.clock.now(), |run| run_weekly(deps, run.time)).await
}

impl schedule::Outcome for ScheduleOutcome {
    fn incomplete(&self) -> Option<String> {
        (self.failed > 0).then(|| format!("{} of {} trials failed", self.failed, self.trials))
    }
}

pub async fn run_weekly<S: TrialConfig + TrialRegistry + ReportFigures + AuditLog + PendingEvents, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    now: DateTime<Utc>,
) -> Result<ScheduleOutcome, Error> {
    let ids = deps.store.list_trial_ids().await?;
    let mut outcome = ScheduleOutcome { trials: ids.len() as u32, ..Default::default() };
    let results: Vec<(TrialId, Result<One, Error>)> = stream::iter(ids)
        .map(|id| async move { (id.clone(), weekly_one(deps, &id, now).await) })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (trial_id, r) in results {
        match r {
            Ok(One::Generated) => outcome.generated += 1,
            Ok(One::AlreadyDone) => outcome.already_done += 1,
            Ok(One::Skipped) => outcome.skipped += 1,
            Err(e) => {
                tracing::error!(trial_id = %trial_id, code = e.code(), "weekly report failed");
                outcome.failed += 1;
            }
        }
    }
    Ok(outcome)
}

async fn weekly_one<S: TrialConfig + ReportFigures + AuditLog + PendingEvents, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    id: &TrialId,
    now: DateTime<Utc>,
) -> Result<One, Error> {
    let Some(trial) = deps.store.get_trial(id).await? else { return Ok(One::Skipped) };
    if trial.definition.status != TrialStatus::Active {
        return Ok(One::Skipped);
    }
    let period = Period::last_week(now, &trial.definition.tz());
    let report_id = generate::weekly_report_id(id, period)?;
    if deps.reports.get_report(id, &report_id).await?.is_some() {
        return Ok(One::AlreadyDone);
    }
    let cmd = BuildReportCommand {
        trial_id: id.clone(),
        period,
        report_id,
        requested_by: Actor::system("report-generator/weekly"),
        requested: None,
    };
    let events = Announcer { bus: deps.event_bus.as_ref(), pending: &deps.store };
    build_report(&deps.store, &deps.store, &deps.reports, &deps.store, events, &deps.clock, cmd).await?;
    Ok(One::Generated)
}
