//! The `build_report` use case: one trial's report for a period, gathered,
//! rendered to PDF, stored, announced and audited, with a fresh link.
//! Transport-free: the HTTP edge (`crate::http`, on demand) and the weekly
//! schedule (`crate::schedule`) each build a [`BuildReportCommand`]; the HTTP
//! edge maps a [`BuildReportError`] to problem+json once.

use std::time::Instant;

use chrono::Duration;
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::domain_event::{Announcer, DomainEvent};
use trialwatch::ports::{AuditLog, Clock, ReportFigures, ReportStore, StorageError, TrialConfig};
use trialwatch::report::ReportMeta;
use trialwatch::validation::FieldError;
use trialwatch::{ReportId, TrialId};

use crate::aggregate::{figures, Figures};
use crate::generate::{gather, Generated, LINK_TTL};
use crate::pdf;
use crate::period::{Period, PeriodRequest};

/// Which report to build, and for whom.
#[derive(Debug, Clone)]
pub struct BuildReportCommand {
    pub trial_id: TrialId,
    pub period: Period,
    pub report_id: ReportId,
    /// Who the audit entry names (the caller, or the schedule).
    pub requested_by: Actor,
    /// An on-demand request's period as asked: once the trial's zone is
    /// known, its `to` may not be after today there. A weekly run's period is
    /// always past, so it has none.
    pub requested: Option<PeriodRequest>,
}

/// What can stop a report.
#[derive(Debug, thiserror::Error)]
pub enum BuildReportError {
    #[error("trial not found")]
    TrialNotFound,
    /// The requested period ends after today in the trial's zone.
    #[error("the period is not valid")]
    Invalid(Vec<FieldError>),
    /// The PDF could not be made (a bug, never input); carries a code, no values.
    #[error("rendering failed: {0}")]
    Render(String),
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for BuildReportError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound("trial") => Self::TrialNotFound,
            e => Self::Storage(e),
        }
    }
}

/// Gathers the figures, renders, stores, announces and audits one report,
/// then presigns a link to it.
///
/// The object and its metadata are stored before the audit entry is written:
/// an audit entry must never claim a report that does not exist.
pub async fn build_report(
    trials: &impl TrialConfig,
    figures_of: &impl ReportFigures,
    reports: &impl ReportStore,
    audit_log: &impl AuditLog,
    events: Announcer<'_>,
    clock: &impl Clock,
    cmd: BuildReportCommand,
) -> Result<Generated, BuildReportError> {
    let BuildReportCommand { trial_id, period, report_id, requested_by, requested } = cmd;
    let gathered = gather(trials, figures_of, &trial_id, period).await?;
    if let Some(asked) = &requested {
        let today = clock.now().with_timezone(&gathered.trial.definition.tz()).date_naive();
        Period::from_request(asked, today).map_err(|e| BuildReportError::Invalid(e.into_vec()))?;
    }
    let started = Instant::now();
    let generated_at = clock.now();
    let f = figures(&gathered, period);
    let heading = pdf::Heading {
        trial_id: trial_id.clone(),
        trial_name: gathered.trial.definition.name.clone(),
        timezone: gathered.trial.definition.timezone.clone(),
        period,
        generated_at,
        report_id: report_id.clone(),
    };
    let summary = f.summary.clone();
    let rendered = render(heading, f).await?;
    let meta = ReportMeta {
        object_key: ReportMeta::object_key_for(&trial_id, &report_id),
        report_id: report_id.clone(),
        trial_id: trial_id.clone(),
        from: period.from,
        to: period.to,
        generated_at,
        pages: rendered.pages,
        bytes: rendered.bytes.len() as u64,
        summary,
    };
    // The record and its event commit together; the event is announced at
    // once, and a failed publish is left to the sweep, never lost.
    let event = DomainEvent::report_generated(&meta, trialwatch::correlation::current().as_ref());
    reports.put_report(&meta, rendered.bytes, std::slice::from_ref(&event)).await?;
    events.announce(std::slice::from_ref(&event)).await;
    let audit = AuditEntry::new(trial_id.clone(), format!("report/{report_id}"), "report.generated", requested_by, generated_at)
        .with_detail("reportId", report_id.to_string())
        .with_detail("from", period.from.to_string())
        .with_detail("to", period.to.to_string())
        .with_detail("pages", meta.pages)
        .with_detail("bytes", meta.bytes);
    audit_log.append(&audit).await?;
    let url = reports.presign(&meta.object_key, LINK_TTL).await?;
    tracing::info!(
        trial_id = %trial_id,
        report_id = %report_id,
        pages = meta.pages,
        bytes = meta.bytes,
        sites = meta.summary.sites,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "report generated"
    );
    Ok(Generated { expires_at: generated_at + Duration::seconds(LINK_TTL.as_secs() as i64), meta, url })
}

/// Renders off the async threads: a large report is tens of milliseconds of CPU.
async fn render(heading: pdf::Heading, figures: Figures) -> Result<pdf::Rendered, BuildReportError> {
    match tokio::task::spawn_blocking(move || pdf::render(&heading, &figures)).await {
        Ok(Ok(rendered)) => Ok(rendered),
        Ok(Err(e)) => Err(BuildReportError::Render(e.to_string())),
        Err(_) => Err(BuildReportError::Render("pdf rendering panicked".into())),
    }
}

#[cfg(test)]
#[path = "build_report_tests.rs"]
mod tests;
