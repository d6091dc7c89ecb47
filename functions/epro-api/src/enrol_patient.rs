//! The `enrol_patient` use case: enrol, transfer, withdraw or complete a
//! patient, audited with what changed and why. Subject ids are pseudonymous;
//! the request has no room for names or contact data. Transport-free: the
//! HTTP edge (`crate::enrolment::put`) decodes the body into an
//! [`EnrolPatientCommand`] and maps the [`EnrolPatientError`].

use serde::Serialize;
use trialwatch::audit::{self, Actor, AuditEntry};
use trialwatch::domain_event::{Announcer, DomainEvent};
use trialwatch::enrolment::{Enrolment, EnrolmentRequest, EnrolmentStatus};
use trialwatch::ports::{Clock, EnrolmentStore, StorageError, TrialConfig, Upsert};
use trialwatch::validation::FieldErrors;
use trialwatch::{PatientId, SiteId, TrialId};

use crate::scope::SiteScope;

/// The enrolment a caller asks for, and what they may reach.
#[derive(Debug, Clone)]
pub struct EnrolPatientCommand {
    pub trial_id: TrialId,
    pub patient_id: PatientId,
    pub request: EnrolmentRequest,
    /// The sites the caller may enrol at; a transfer needs both sites.
    pub scope: SiteScope,
    /// Who answers for the write in the audit trail.
    pub author: Actor,
}

/// The enrolment as stored, and whether it is new.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub enrolment: Enrolment,
    pub outcome: Upsert,
}

/// What can stop an enrolment.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnrolPatientError {
    /// The requested site, or the patient's current one, is outside the
    /// caller's scope.
    #[error("not permitted")]
    Forbidden,
    #[error("trial not found")]
    TrialNotFound,
    /// The site is not the trial's, or a required reason is missing or too long.
    #[error(transparent)]
    Invalid(#[from] FieldErrors),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Writes the enrolment with its audit entry (and, when the status moves,
/// its domain event) in one transaction, then announces the event.
pub async fn enrol_patient(
    trials: &impl TrialConfig,
    enrolments: &impl EnrolmentStore,
    events: Announcer<'_>,
    clock: &impl Clock,
    cmd: EnrolPatientCommand,
) -> Result<Enrolled, EnrolPatientError> {
    let EnrolPatientCommand { trial_id, patient_id, request: body, scope, author } = cmd;
    if !scope.admits(Some(&body.site_id)) {
        return Err(EnrolPatientError::Forbidden);
    }
    let trial = trials.get_trial_shared(&trial_id).await?.ok_or(EnrolPatientError::TrialNotFound)?;
    if trial.definition.site(&body.site_id).is_none() {
        return Err(FieldErrors::one("siteId", "names no site of this trial").into());
    }
    let existing = enrolments.get_enrolment(&trial_id, &patient_id).await?;
    // Moving a patient between sites needs staff of both.
    if let Some(e) = &existing {
        if !scope.admits(Some(&e.site_id)) {
            return Err(EnrolPatientError::Forbidden);
        }
    }
    let now = clock.now();
    let at = trialwatch::timestamp::format(now);
    let enrolment = Enrolment {
        trial_id: trial_id.clone(),
        patient_id: patient_id.clone(),
        site_id: body.site_id.clone(),
        status: body.status,
        hypercapnic: body.hypercapnic,
        enrolled_at: existing.as_ref().map_or_else(|| at.clone(), |e| e.enrolled_at.clone()),
        submission_count: existing.as_ref().map_or(0, |e| e.submission_count),
        last_submission_at: existing.as_ref().and_then(|e| e.last_submission_at.clone()),
        // Recorded when the status becomes withdrawn and kept while it stays so
        // (the store keeps the first time under a race too).
        withdrawn_at: match (body.status, &existing) {
            (EnrolmentStatus::Withdrawn, Some(e)) if e.status == EnrolmentStatus::Withdrawn => {
                e.withdrawn_at.clone().or_else(|| Some(e.updated_at.clone()))
            }
            (EnrolmentStatus::Withdrawn, _) => Some(at.clone()),
            _ => None,
        },
        updated_at: at,
        // The store links the audit entry from the head it reads itself.
        audit_head: Default::default(),
    };
    let action = if existing.is_some() { "enrolment.updated" } else { "enrolment.created" };
    let changes = audit::changes(existing.as_ref().map(Recorded::of).as_ref(), &Recorded::of(&enrolment));
    // A withdrawal, and any change to a recorded enrolment, must say why.
    let withdrawing = body.status == EnrolmentStatus::Withdrawn && existing.as_ref().is_none_or(|e| e.status != body.status);
    let changing = existing.is_some() && !changes.is_empty();
    let reason = audit::reason(body.reason.as_deref(), withdrawing || changing, "to withdraw a patient or change a recorded enrolment")?;
    let mut audit = AuditEntry::new(trial_id.clone(), format!("patient/{patient_id}"), action, author, now)
        .with_reason(reason)
        .with_changes(changes)
        .with_detail("siteId", body.site_id.as_str())
        .with_detail("status", body.status.as_str())
        .with_detail("hypercapnic", body.hypercapnic);
    if let Some(e) = &existing {
        if e.site_id != body.site_id {
            audit = audit.with_detail("previousSiteId", e.site_id.as_str());
        }
        if e.status != body.status {
            audit = audit.with_detail("previousStatus", e.status.as_str());
        }
    }
    if let Some(w) = enrolment.withdrawn_at.as_deref().filter(|_| existing.as_ref().is_none_or(|e| e.status != body.status)) {
        audit = audit.with_detail("withdrawnAt", w);
    }
    // Announced when the patient is enrolled or the status moves, not on a
    // site or flag change alone.
    let changed = existing.as_ref().is_none_or(|e| e.status != enrolment.status);
    let announced: Vec<DomainEvent> = changed
        .then(|| DomainEvent::patient_enrolment_changed(&enrolment, now, trialwatch::correlation::current().as_ref()))
        .into_iter()
        .collect();
    // The write starts from `existing` (with its chain head): one read per enrolment, not two.
    let outcome = enrolments.put_enrolment_after_read(&enrolment, &audit, existing.as_ref(), &announced).await?;
    events.announce(&announced).await;
    Ok(Enrolled { enrolment, outcome })
}

/// The recorded fields of an enrolment, as its audit entries compare them
/// (bookkeeping such as `updatedAt` and the submission summary left out).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Recorded<'a> {
    site_id: &'a SiteId,
    status: EnrolmentStatus,
    hypercapnic: bool,
    withdrawn_at: Option<&'a str>,
}

impl<'a> Recorded<'a> {
    fn of(e: &'a Enrolment) -> Self {
        Self { site_id: &e.site_id, status: e.status, hypercapnic: e.hypercapnic, withdrawn_at: e.withdrawn_at.as_deref() }
    }
}

#[cfg(test)]
#[path = "enrol_patient_tests.rs"]
mod tests;
