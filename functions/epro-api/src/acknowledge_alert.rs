//! The `acknowledge_alert` use case: site staff (or an admin) mark an alert
//! as seen, once, with an optional note, in one transaction with its audit
//! entry and its domain event. Transport-free: the HTTP edge
//! (`crate::alerts::ack`) decodes the body into an
//! [`AcknowledgeAlertCommand`] and maps the [`AcknowledgeAlertError`].

use trialwatch::alert::{AlertReason, AlertRecord};
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::domain_event::{Announcer, DomainEvent};
use trialwatch::ports::{AlertInbox, Clock, StorageError};
use trialwatch::validation::FieldErrors;
use trialwatch::{AlertId, TrialId};

use crate::scope::SiteScope;

/// Longest acknowledgement note; it is free text, so it is stored with the
/// alert and in the audit entry's reason, never logged.
pub const MAX_NOTE_CHARS: usize = 1000;

/// The conflict kind the store gives for a second acknowledgement.
const ALREADY_ACKNOWLEDGED: &str = "alert-already-acknowledged";

/// Who acknowledges which alert.
#[derive(Debug, Clone)]
pub struct AcknowledgeAlertCommand {
    pub trial_id: TrialId,
    pub alert_id: AlertId,
    pub note: Option<String>,
    /// The sites whose alerts the caller may acknowledge.
    pub scope: SiteScope,
    /// Who answers for the acknowledgement in the audit trail.
    pub author: Actor,
}

/// What can stop an acknowledgement.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AcknowledgeAlertError {
    /// The alert is at a site outside the caller's scope, or, for a
    /// site-limited caller, does not exist (the same answer, so that
    /// existence is not revealed).
    #[error("not permitted")]
    Forbidden,
    #[error("alert not found")]
    NotFound,
    #[error("the alert was already acknowledged")]
    AlreadyAcknowledged,
    /// The note is too long.
    #[error("the acknowledgement is not valid")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for AcknowledgeAlertError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(_) => Self::NotFound,
            StorageError::Conflict { kind: ALREADY_ACKNOWLEDGED, .. } => Self::AlreadyAcknowledged,
            other => Self::Storage(other),
        }
    }
}

/// Acknowledges the alert (once) with its audit entry and event, and
/// announces the event; returns the acknowledged record.
pub async fn acknowledge_alert(
    inbox: &impl AlertInbox,
    events: Announcer<'_>,
    clock: &impl Clock,
    cmd: AcknowledgeAlertCommand,
) -> Result<AlertRecord, AcknowledgeAlertError> {
    let AcknowledgeAlertCommand { trial_id, alert_id, note, scope, author } = cmd;
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(AcknowledgeAlertError::Invalid(FieldErrors::one("note", format!("must be at most {MAX_NOTE_CHARS} characters"))));
    }
    let record = inbox.get_alert(&trial_id, &alert_id).await?;
    let record = scope.reach(record, |r| &r.alert.site_id, AcknowledgeAlertError::Forbidden, AcknowledgeAlertError::NotFound)?;
    let now = clock.now();
    let audit = AuditEntry::new(trial_id.clone(), format!("alert/{alert_id}"), "alert.acknowledged", author.clone(), now)
        .with_detail("patientId", record.alert.patient_id.as_str())
        .with_detail("level", record.alert.level.as_str())
        .with_reason(note.clone());
    // A NEWS2 acknowledgement also marks the patient's vitals state, in the same
    // transaction: one item more in a rare route's write, where the analyzer
    // reading the alert item instead would add a read to its hot path.
    let news2_patient = matches!(record.alert.reason, AlertReason::News2 { .. }).then_some(&record.alert.patient_id);
    let announced = [DomainEvent::alert_acknowledged(&record.alert, now, trialwatch::correlation::current().as_ref())];
    let acknowledged = inbox.acknowledge(&trial_id, &alert_id, &author, note.as_deref(), now, &audit, news2_patient, &announced).await?;
    events.announce(&announced).await;
    tracing::info!(trial_id = %trial_id, alert_id = %alert_id, "alert acknowledged");
    Ok(acknowledged)
}

#[cfg(test)]
#[path = "acknowledge_alert_tests.rs"]
mod tests;
