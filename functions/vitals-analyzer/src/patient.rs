//! The per-patient work of one batch, in three phases with a barrier between
//! them (see the crate doc for why): plan (load + assess, no writes), then the
//! batch-wide readings write and alert send, then the state writes.

use chrono::{DateTime, Utc};
use trialwatch::alert::{Alert, AlertReason};
use trialwatch::audit::append::append_with_retry;
use trialwatch::audit::chain::{link_all, ChainHead, ChainId};
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::correlation::CorrelationId;
use trialwatch::domain_event::{announce, DomainEvent};
use trialwatch::enrolment::Enrolment;
use trialwatch::news2::Spo2Scale;
use trialwatch::ports::{AlertQueue, Clock, DeadLetters, EnrolmentStore, StateWrite, TrialConfig, VitalsStore};
use trialwatch::telemetry::metrics;
use trialwatch::trial::{News2Settings, Trial};
use trialwatch::vitals::VitalReading;
use trialwatch::vitals_state::VitalsState;
use trialwatch::{PatientId, SiteId, TrialId};

use crate::escalation::{assess, Assessment, Escalation};
use crate::record::RecordFailure;
use crate::Deps;

/// Who raises a NEWS2 alert in the trail.
const COMPONENT: &str = "vitals-analyzer";

/// A stale state write is retried (reload, recompute) this many times before
/// the patient's records fail and SQS redelivers them.
pub const STATE_RETRIES: usize = 3;

/// One patient's records of the batch.
#[derive(Debug)]
pub struct PatientBatch {
    pub trial: TrialId,
    pub patient: PatientId,
    /// Positions of this patient's records in the SQS batch, in order.
    pub records: Vec<usize>,
    /// Their readings in batch order, each store key once (BatchWriteItem
    /// refuses a request naming the same key twice).
    pub readings: Vec<VitalReading>,
    /// The correlation id of the patient's latest record ([`trialwatch::correlation`]).
    pub correlation: CorrelationId,
}

impl PatientBatch {
    /// The span every line logged for this patient's work is in.
    pub fn span(&self) -> tracing::Span {
        trialwatch::correlation::span(&self.correlation)
    }
}

/// What phase 1 decided for a patient; nothing is written yet.
#[derive(Debug)]
pub struct Plan {
    pub scale: Spo2Scale,
    pub site: SiteId,
    pub settings: News2Settings,
    pub prev: VitalsState,
    /// The batch's readings that are processed: all but those observed after
    /// the patient withdrew consent.
    pub readings: Vec<VitalReading>,
    pub assessment: Assessment,
    /// The patient's audit chain head as read with the enrolment: an
    /// escalation's alert.raised entry links from it.
    pub head: ChainHead,
}

/// Log code of readings skipped because they were observed after the
/// patient withdrew consent.
pub const SKIPPED_AFTER_WITHDRAWAL: &str = "observed-after-withdrawal";

impl Plan {
    pub fn alert(&self, batch: &PatientBatch) -> Option<Alert> {
        alert_for(batch, &self.site, &self.assessment)
    }
}

fn alert_for(batch: &PatientBatch, site: &SiteId, assessment: &Assessment) -> Option<Alert> {
    let e = assessment.escalation.as_ref()?;
    let result = assessment.state.news2.as_ref()?;
    Some(Alert {
        alert_id: e.alert_id.clone(),
        trial_id: batch.trial.clone(),
        patient_id: batch.patient.clone(),
        site_id: site.clone(),
        level: e.level,
        reason: AlertReason::News2 { score: result.score, components: result.components.clone() },
        // Observation time, not wall time: a redelivery sends a byte-identical alert.
        created_at: e.at,
        correlation_id: Some(batch.correlation.clone()),
    })
}

/// Phase 1, for one patient, over what the batch read found (one consistent
/// BatchGetItem for the whole batch, see the crate doc): the assessment, no
/// I/O. `None`: nothing of the batch is to be processed (every reading was
/// observed after the patient withdrew consent). The read was strongly
/// consistent, so an absent trial or enrolment is absent for good and its
/// records are parked.
///
/// Readings observed after a withdrawal are neither stored nor scored, and
/// their records are acknowledged: consent no longer covers processing them,
/// so parking them in the DLQ (where an operator would redrive them, and
/// where they would wait on an alarm meant for failures) is wrong. They are
/// not lost silently: a warning with the reason code
/// [`SKIPPED_AFTER_WITHDRAWAL`] and the count is logged per patient, and the
/// enrolment's `withdrawnAt` and audit trail say why.
pub fn plan(
    batch: &PatientBatch,
    trial: Option<&Trial>,
    enrolment: Option<Enrolment>,
    state: Option<VitalsState>,
    now: DateTime<Utc>,
) -> Result<Option<Plan>, RecordFailure> {
    let trial = trial.ok_or(RecordFailure::UnknownTrial)?;
    let enrolment = enrolment.ok_or(RecordFailure::NotEnrolled)?;
    let settings = trial.definition.alerting.news2;
    let scale = enrolment.spo2_scale();
    let skipped = batch.readings.iter().filter(|r| enrolment.observed_after_withdrawal(r.observed_at)).count();
    let readings: Vec<VitalReading> = if skipped == 0 {
        batch.readings.clone()
    } else {
        batch.readings.iter().filter(|r| !enrolment.observed_after_withdrawal(r.observed_at)).cloned().collect()
    };
    if skipped > 0 {
        tracing::warn!(
            trial_id = %batch.trial,
            patient_id = %batch.patient,
            reason = SKIPPED_AFTER_WITHDRAWAL,
            skipped,
            kept = readings.len(),
            "readings skipped: observed after the patient withdrew consent"
        );
    }
    if readings.is_empty() {
        return Ok(None);
    }
    let prev = state.unwrap_or_else(|| VitalsState::new(batch.trial.clone(), batch.patient.clone()));
    let assessment = assess(&prev, &readings, scale, now, &settings);
    Ok(Some(Plan { scale, site: enrolment.site_id, settings, prev, readings, assessment, head: enrolment.audit_head }))
}

/// Phase 3: writes the state over `prev`, the state it was assessed from,
/// under its version check. Handing `prev` to the store saves it a read per
/// patient (the budget is one state write each); the check fails if `prev` is
/// no longer what is stored. The alert it records was already sent in phase 2;
/// on a stale version the state is reloaded and re-assessed, and an alert that
/// only the fresh state calls for is sent before the write that records it
/// (reliability rule: send, then record).
pub async fn commit<S, Q, C, D>(
    deps: &Deps<S, Q, C, D>,
    batch: &PatientBatch,
    plan: Plan,
    now: DateTime<Utc>,
) -> Result<Option<Escalation>, RecordFailure>
where
    S: VitalsStore + EnrolmentStore + TrialConfig + trialwatch::ports::PendingEvents + 'static,
    Q: AlertQueue,
    C: Clock,
    D: DeadLetters,
{
    let Plan { scale, site, settings, mut prev, readings, mut assessment, head } = plan;
    let chain = &ChainId::Patient(batch.patient.clone());
    // A head that moved since the enrolment was read (an acknowledgement, a
    // submission) is re-read consistently; the state write is retried with it.
    let reread = || async {
        let enrolment = deps.store.get_enrolment_consistent(&batch.trial, &batch.patient).await?;
        Ok(enrolment.ok_or(trialwatch::ports::StorageError::NotFound("enrolment"))?.audit_head)
    };
    let mut sent = assessment.escalation.as_ref().map(|e| e.alert_id.clone());
    for _ in 0..=STATE_RETRIES {
        if assessment.changes_nothing(&prev) {
            return Ok(None);
        }
        // Version 0 is the empty state assessed when nothing was stored.
        let previous = Some(&prev).filter(|p| p.version > 0);
        // The escalation this write records (it moves the sequence) is
        // audited in the same transaction: a redelivered batch, whose write
        // finds the version moved, records no second entry.
        let alert = alert_for(batch, &site, &assessment);
        let raised = alert.as_ref().map(|a| a.raised_entry(Actor::system(COMPONENT), now));
        // Announced from the same transaction: committed only with this version.
        let (from, to) = (prev.news2.as_ref().map(|n| n.risk_level), assessment.state.news2.as_ref().map(|n| n.risk_level));
        let correlation = trialwatch::correlation::current();
        let mut events: Vec<DomainEvent> = to
            .filter(|to| from != Some(*to))
            .map(|to| DomainEvent::risk_level_changed(&assessment.state, from, to, now, correlation.as_ref()))
            .into_iter()
            .collect();
        events.extend(alert.as_ref().map(DomainEvent::alert_raised));
        let write = |head: ChainHead| {
            let (raised, state, events) = (raised.clone(), &assessment.state, &events);
            async move {
                let mut raised: Vec<AuditEntry> = raised.into_iter().collect();
                link_all(raised.iter_mut(), chain, &head);
                deps.store.put_state_with_events(previous, state, &raised, events).await
            }
        };
        match append_with_retry(Some(head.clone()), reread, write).await? {
            StateWrite::Written => {
                announce(deps.event_bus.as_ref(), deps.store.as_ref(), &events).await;
                metrics::readings_scored(readings.len());
                let (from, to) = (prev.news2.as_ref().map(|n| n.risk_level), assessment.state.news2.as_ref().map(|n| n.risk_level));
                if let Some(to) = to.filter(|to| from != Some(*to)) {
                    metrics::risk_level_changed(from, to);
                }
                if let Some((level, how)) = assessment.cleared {
                    tracing::info!(trial_id = %batch.trial, patient_id = %batch.patient, level = level.as_str(), reason = how.code(), "alert level cleared");
                }
                return Ok(assessment.escalation);
            }
            StateWrite::Stale => {
                tracing::info!(trial_id = %batch.trial, patient_id = %batch.patient, "state version moved; reloading");
                prev = deps
                    .store
                    .get_state(&batch.trial, &batch.patient)
                    .await?
                    .unwrap_or_else(|| VitalsState::new(batch.trial.clone(), batch.patient.clone()));
                assessment = assess(&prev, &readings, scale, now, &settings);
                if let Some(alert) = alert_for(batch, &site, &assessment) {
                    if sent.as_ref() != Some(&alert.alert_id) {
                        deps.alerts.enqueue(std::slice::from_ref(&alert)).await?;
                        sent = Some(alert.alert_id);
                    }
                }
            }
        }
    }
    Err(RecordFailure::StateContention)
}
