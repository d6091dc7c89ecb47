//! The `submit` use case: a patient's (or their carer's) answers to a
//! questionnaire, checked against the trial and recorded once.
//!
//! A submission is ONE TransactWriteItems (submission, idempotency guard,
//! audit entry, day/site counter, enrolment summary, and its PRO alerts as
//! pending outbox items), then at most one SendMessageBatch of those alerts
//! as the fast path. If the send fails, or the function dies before it, the
//! outbox sweeper in alert-dispatcher sends the stored alerts within two
//! minutes, so the submission is recorded either way and no retry is needed.
//! An identical body sent again is a replay: the original receipt comes back
//! and its alerts are sent again (their ids are deterministic, so the
//! dispatcher never notifies twice).
//!
//! Transport-free: the HTTP edge (`crate::submissions`) decodes the body
//! (native JSON or a FHIR QuestionnaireResponse) into a [`SubmitCommand`] and
//! maps the [`Receipt`] or the [`SubmitError`] to a response.

use chrono::{DateTime, Utc};
use trialwatch::alert::{Alert, AlertReason};
use trialwatch::audit::append::{append_with_retry, AppendError, HEAD_MOVED};
use trialwatch::audit::chain::{link_all, ChainHead, ChainId};
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::domain_event::DomainEvent;
use trialwatch::enrolment::Enrolment;
use trialwatch::ports::{AlertQueue, Clock, EnrolmentStore, RecordOutcome, StorageError, SubmissionLedger, TrialConfig};
use trialwatch::submission::{Answer, StoredSubmission, SubmissionReceipt, SubmissionRequest};
use trialwatch::telemetry::metrics;
use trialwatch::trial::Trial;
use trialwatch::validation::FieldErrors;
use trialwatch::{AlertId, PatientId, QuestionnaireId, TrialId};

use crate::enrolled::{require_enrolled, NotEnrolled};
use trialwatch::domain_event::Announcer;

/// A decoded submission and who sends it.
#[derive(Debug, Clone)]
pub struct SubmitCommand {
    pub trial_id: TrialId,
    pub patient_id: PatientId,
    /// The answers as sent (native or mapped from FHIR), not yet validated.
    pub request: SubmissionRequest,
    /// The patient's enrolment as the access check read it (for the patient
    /// themself, from the short-lived cache): the submission is refused unless
    /// it is enrolled, and its audit entries link after its chain head.
    pub enrolment: Option<Enrolment>,
    /// Who answers for the write in the audit trail (the token's subject).
    pub author: Actor,
    /// Who is recorded as having submitted (role, and the patient's id for a patient).
    pub submitted_by: Actor,
    /// Entered by site staff for the patient.
    pub on_behalf: bool,
}

/// Whether the submission was stored now or had been already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    Recorded,
    /// The same submissionId with the same body: the original receipt.
    Replayed,
}

/// What a submission got.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub submitted: Submitted,
    pub receipt: SubmissionReceipt,
    /// The PRO alerts the submission raised (on a replay: raises again, with the same ids).
    pub alerts: usize,
    /// The patient's audit chain head after a recording (`None` for a replay),
    /// so a cache of the enrolment can link the next submission without a read.
    pub chain_head: Option<ChainHead>,
}

/// What can stop a submission.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubmitError {
    /// The patient is not enrolled, or no longer (found before the write, or
    /// by the store's own condition).
    #[error(transparent)]
    NotEnrolled(#[from] NotEnrolled),
    #[error("trial not found")]
    TrialNotFound,
    /// The answers do not fit the trial's questionnaire; every field is named.
    #[error("the submission is not valid")]
    Invalid(FieldErrors),
    /// The submissionId is taken by a different body.
    #[error("this submissionId was already used with a different body")]
    DifferentBody,
    /// The store failed (unavailable, corrupt, or an unexpected conflict).
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for SubmitError {
    fn from(e: StorageError) -> Self {
        match NotEnrolled::from_storage(&e) {
            Some(not_enrolled) => Self::NotEnrolled(not_enrolled),
            None => Self::Storage(e),
        }
    }
}

impl AppendError for SubmitError {
    fn is_head_moved(&self) -> bool {
        matches!(self, Self::Storage(StorageError::Conflict { kind: HEAD_MOVED, .. }))
    }
}

/// Who raises a PRO alert in the trail: the rule, run by this function.
const COMPONENT: &str = "epro-api";

/// Validates the answers against the trial and records them once, with
/// their audit entries, counters and PRO alerts; then queues the alerts and
/// announces what was recorded.
pub async fn submit(
    ledger: &impl SubmissionLedger,
    enrolments: &impl EnrolmentStore,
    trials: &impl TrialConfig,
    alert_queue: &impl AlertQueue,
    events: Announcer<'_>,
    clock: &impl Clock,
    cmd: SubmitCommand,
) -> Result<Receipt, SubmitError> {
    let SubmitCommand { trial_id, patient_id, request, enrolment, author, submitted_by, on_behalf } = cmd;
    let enrolment = require_enrolled(enrolment)?;
    let trial = trials.get_trial_shared(&trial_id).await?.ok_or(SubmitError::TrialNotFound)?;
    let now = clock.now();
    let questionnaire = QuestionnaireId::parse(&request.questionnaire_id)
        .ok()
        .and_then(|id| trial.definition.questionnaire(&id, &request.questionnaire_version));
    // The enrolment is already in hand (it decided access), so checking
    // completedAt against it costs no request.
    let enrolled_at = match DateTime::parse_from_rfc3339(&enrolment.enrolled_at) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            tracing::warn!(trial_id = %trial_id, "the enrolment's enrolledAt is unreadable; completedAt not checked against it");
            None
        }
    };
    let valid = request.validate_since(questionnaire, enrolled_at, now).map_err(SubmitError::Invalid)?;
    let stored = StoredSubmission {
        score: valid.score(),
        trial_id: trial_id.clone(),
        patient_id: patient_id.clone(),
        site_id: enrolment.site_id.clone(),
        submission_id: valid.submission_id,
        questionnaire_id: valid.questionnaire_id,
        questionnaire_version: valid.questionnaire_version,
        completed_at: valid.completed_at,
        received_at: now,
        answers: valid.answers,
        body_hash: valid.body_hash,
        submitted_by,
    };
    let day = trial_day(&trial, stored.completed_at);
    let audit = audit_entry(&stored, author, on_behalf, now);
    // The alerts are part of the record: stored in its transaction as pending
    // outbox items, they survive a failed send below or a function that dies
    // before it; the outbox sweeper delivers them (crate docs of `trialwatch::outbox`).
    let alerts = pro_alerts(&trial, &stored);
    // Announced from the same transaction (the outbox of `trialwatch::domain_event`):
    // SubmissionReceived only where the trial opted in, an AlertRaised per PRO alert.
    let mut announced: Vec<DomainEvent> = Vec::with_capacity(alerts.len() + 1);
    if trial.definition.publish_submission_events {
        announced.push(DomainEvent::submission_received(&stored, trialwatch::correlation::current().as_ref()));
    }
    announced.extend(alerts.iter().map(DomainEvent::alert_raised));
    let (outcome, head) = record(ledger, enrolments, &stored, &day, &audit, &alerts, &announced, enrolment).await?;
    let (submitted, recorded, alerts, chain_head) = match outcome {
        RecordOutcome::Recorded => {
            events.announce(&announced).await;
            // Raised once, when stored: a replay re-sends but raises nothing new.
            for a in &alerts {
                metrics::alert_raised(a.level, metrics::since(stored.completed_at, now));
            }
            (Submitted::Recorded, stored, alerts, Some(head))
        }
        RecordOutcome::Duplicate(existing) => {
            let same = existing.body_hash == stored.body_hash && existing.trial_id == trial_id && existing.patient_id == patient_id;
            if !same {
                return Err(SubmitError::DifferentBody);
            }
            let alerts = pro_alerts(&trial, &existing);
            (Submitted::Replayed, existing, alerts, None)
        }
    };
    // The fast path: queued now, the alert reaches the site in seconds. A
    // failure here is not the client's to retry any more: the stored item is
    // the source of truth, and the sweeper sends it within two minutes. A
    // replay sends again (ids are deterministic: the dispatcher claims once).
    let mut queued = alerts.is_empty();
    if !alerts.is_empty() {
        match alert_queue.enqueue(&alerts).await {
            Ok(()) => queued = true,
            Err(e) => tracing::warn!(
                trial_id = %trial_id,
                submission_id = %recorded.submission_id,
                alerts = alerts.len(),
                error = e.code(),
                "PRO alerts stored but not queued; the outbox sweeper sends them"
            ),
        }
    }
    tracing::info!(
        trial_id = %trial_id,
        submission_id = %recorded.submission_id,
        replayed = submitted == Submitted::Replayed,
        alerts = alerts.len(),
        queued,
        on_behalf,
        "submission"
    );
    Ok(Receipt { submitted, receipt: recorded.receipt(), alerts: alerts.len(), chain_head })
}

/// Records the submission with its audit entries (submission.created, then
/// alert.raised per PRO alert) linked into the patient's chain after the head
/// on the enrolment in hand: no read on the warm path. A head that is stale
/// (another writer extended the chain) fails the transaction's head
/// condition; the enrolment is then re-read consistently and the entries
/// re-linked ([`append_with_retry`]). Returns the head a recording moved to.
#[allow(clippy::too_many_arguments)]
async fn record(
    ledger: &impl SubmissionLedger,
    enrolments: &impl EnrolmentStore,
    stored: &StoredSubmission,
    day: &str,
    audit: &AuditEntry,
    alerts: &[Alert],
    events: &[DomainEvent],
    enrolment: Enrolment,
) -> Result<(RecordOutcome, ChainHead), SubmitError> {
    let (trial, patient) = (&stored.trial_id, &stored.patient_id);
    let chain = &ChainId::Patient(patient.clone());
    let reread = || async { Ok::<_, SubmitError>(require_enrolled(enrolments.get_enrolment_consistent(trial, patient).await?)?) };
    let write = |enrolment: Enrolment| async move {
        let mut entries = vec![audit.clone()];
        // The rule raised the alert, not the person who answered.
        entries.extend(alerts.iter().map(|a| a.raised_entry(Actor::system(COMPONENT), stored.received_at)));
        let head = link_all(entries.iter_mut(), chain, &enrolment.audit_head);
        let outcome = ledger.record_submission(stored, day, &entries, alerts, events).await?;
        Ok((outcome, head))
    };
    append_with_retry(Some(enrolment), reread, write).await
}

/// The counter bucket: the day the questionnaire was completed, in the trial's zone.
/// (`NaiveDate`'s Display is `YYYY-MM-DD` without parsing a format string.)
pub fn trial_day(trial: &Trial, completed_at: DateTime<Utc>) -> String {
    completed_at.with_timezone(&trial.definition.tz()).date_naive().to_string()
}

fn audit_entry(s: &StoredSubmission, actor: Actor, on_behalf: bool, now: DateTime<Utc>) -> AuditEntry {
    let entry = AuditEntry::new(s.trial_id.clone(), format!("submission/{}", s.submission_id), "submission.created", actor, now)
        .with_detail("patientId", s.patient_id.as_str())
        .with_detail("questionnaireId", s.questionnaire_id.as_str());
    if on_behalf {
        entry.with_detail("onBehalf", true)
    } else {
        entry
    }
}

/// The PRO alerts a stored submission raises: for each rule of its
/// questionnaire whose item's numeric answer is at or above `atLeast`. Alert
/// ids are per (submission, item), so when several rules on one item fire,
/// the highest level wins. `created_at` is the receipt time, so a replay
/// builds the identical alert.
pub fn pro_alerts(trial: &Trial, s: &StoredSubmission) -> Vec<Alert> {
    let mut alerts: Vec<Alert> = Vec::new();
    for rule in trial.definition.alerting.pro_rules.iter().filter(|r| r.questionnaire_id == s.questionnaire_id) {
        let Some(value) = s.answers.iter().find(|a| a.link_id == rule.link_id).and_then(|a: &Answer| a.value.as_number()) else {
            continue;
        };
        if value < rule.at_least {
            continue;
        }
        let alert = Alert {
            alert_id: AlertId::for_pro_rule(&s.trial_id, &s.patient_id, &s.submission_id, &rule.link_id),
            trial_id: s.trial_id.clone(),
            patient_id: s.patient_id.clone(),
            site_id: s.site_id.clone(),
            level: rule.level,
            reason: AlertReason::ProRule {
                questionnaire_id: s.questionnaire_id.clone(),
                submission_id: s.submission_id,
                link_id: rule.link_id.clone(),
                value,
                at_least: rule.at_least,
            },
            created_at: s.received_at,
            correlation_id: trialwatch::correlation::current(),
        };
        match alerts.iter_mut().find(|a| a.alert_id == alert.alert_id) {
            Some(existing) if existing.level < alert.level => *existing = alert,
            Some(_) => {}
            None => alerts.push(alert),
        }
    }
    alerts
}

#[cfg(test)]
#[path = "submit_tests.rs"]
mod tests;
