//! A store that lets one DynamoDB request reach the emulator at a time.
//!
//! Why: moto applies TransactWriteItems without isolation. It deep-copies the
//! tables when a transaction starts and, when a condition fails, restores that
//! copy (`moto/dynamodb/models/__init__.py`, `transact_write_items`), while its
//! server handles requests on concurrent threads. Racing transactions
//! therefore leave partial writes behind (counters and audit entries of
//! cancelled transactions), which DynamoDB, whose transactions are
//! serializable, never does. Serialising requests at the store boundary gives
//! the emulator DynamoDB's isolation back; the handlers still race with each
//! other up to the store, which is what the tests exercise.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::Mutex;
use trialwatch::alert::{Alert, AlertRecord, AlertStatus, Claim, DeliveryAttempt};
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::domain_event::{DomainEvent, DueEvent, EventId};
use trialwatch::enrolment::{Enrolment, EnrolmentCount};
use trialwatch::news2::RiskLevel;
use trialwatch::page::{Page, PageRequest};
use trialwatch::ports::*;
use trialwatch::submission::{DailySiteCount, StoredSubmission};
use trialwatch::trial::Trial;
use trialwatch::vitals::VitalReading;
use trialwatch::vitals_state::VitalsState;
use trialwatch::{AlertId, PatientId, SubmissionId, TrialId};

pub struct Serial<S> {
    pub inner: S,
    gate: Mutex<()>,
}

impl<S> Serial<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, gate: Mutex::new(()) }
    }
}

macro_rules! serial {
    ($self:ident, $call:expr) => {{
        let _one_at_a_time = $self.gate.lock().await;
        $call.await
    }};
}

#[async_trait]
impl<S: TrialConfig> TrialConfig for Serial<S> {
    async fn get_trial(&self, id: &TrialId) -> Result<Option<Trial>, StorageError> {
        serial!(self, self.inner.get_trial(id))
    }
}

#[async_trait]
impl<S: TrialRegistry> TrialRegistry for Serial<S> {
    async fn put_trial(&self, trial: &Trial, audit: &AuditEntry) -> Result<Upsert, StorageError> {
        serial!(self, self.inner.put_trial(trial, audit))
    }
    async fn list_trial_ids(&self) -> Result<Vec<TrialId>, StorageError> {
        serial!(self, self.inner.list_trial_ids())
    }
}

#[async_trait]
impl<S: EnrolmentStore> EnrolmentStore for Serial<S> {
    async fn get_enrolment(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<Enrolment>, StorageError> {
        serial!(self, self.inner.get_enrolment(trial, patient))
    }
    async fn put_enrolment(&self, enrolment: &Enrolment, audit: &AuditEntry, events: &[DomainEvent]) -> Result<Upsert, StorageError> {
        serial!(self, self.inner.put_enrolment(enrolment, audit, events))
    }
}

#[async_trait]
impl<S: SubmissionLedger> SubmissionLedger for Serial<S> {
    async fn record_submission(
        &self,
        submission: &StoredSubmission,
        day: &str,
        audit: &[AuditEntry],
        alerts: &[trialwatch::alert::Alert],
        events: &[DomainEvent],
    ) -> Result<RecordOutcome, StorageError> {
        serial!(self, self.inner.record_submission(submission, day, audit, alerts, events))
    }
    async fn get_submission(
        &self,
        trial: &TrialId,
        patient: &PatientId,
        id: &SubmissionId,
    ) -> Result<Option<StoredSubmission>, StorageError> {
        serial!(self, self.inner.get_submission(trial, patient, id))
    }
    async fn list_submissions(
        &self,
        trial: &TrialId,
        patient: &PatientId,
        page: &PageRequest,
    ) -> Result<Page<StoredSubmission>, StorageError> {
        serial!(self, self.inner.list_submissions(trial, patient, page))
    }
}

#[async_trait]
impl<S: VitalsStore> VitalsStore for Serial<S> {
    async fn put_readings(&self, trial: &TrialId, patient: &PatientId, readings: &[VitalReading]) -> Result<(), StorageError> {
        serial!(self, self.inner.put_readings(trial, patient, readings))
    }
    async fn get_state(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<VitalsState>, StorageError> {
        serial!(self, self.inner.get_state(trial, patient))
    }
    async fn put_state(
        &self,
        previous: Option<&VitalsState>,
        state: &VitalsState,
        raised: &[AuditEntry],
        events: &[DomainEvent],
    ) -> Result<StateWrite, StorageError> {
        serial!(self, self.inner.put_state(previous, state, raised, events))
    }
}

#[async_trait]
impl<S: AlertDelivery> AlertDelivery for Serial<S> {
    async fn claim(&self, alert: &Alert, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Claim, StorageError> {
        serial!(self, self.inner.claim(alert, now, lease_until))
    }
    async fn record_attempt(&self, trial: &TrialId, id: &AlertId, attempt: &DeliveryAttempt) -> Result<(), StorageError> {
        serial!(self, self.inner.record_attempt(trial, id, attempt))
    }
    async fn finish(
        &self,
        trial: &TrialId,
        id: &AlertId,
        status: AlertStatus,
        at: DateTime<Utc>,
        audit: &AuditEntry,
        events: &[DomainEvent],
    ) -> Result<(), StorageError> {
        serial!(self, self.inner.finish(trial, id, status, at, audit, events))
    }
    async fn release(&self, trial: &TrialId, id: &AlertId) -> Result<(), StorageError> {
        serial!(self, self.inner.release(trial, id))
    }
}

#[async_trait]
impl<S: AlertInbox> AlertInbox for Serial<S> {
    async fn get_alert(&self, trial: &TrialId, id: &AlertId) -> Result<Option<AlertRecord>, StorageError> {
        serial!(self, self.inner.get_alert(trial, id))
    }
    async fn list_alerts(&self, trial: &TrialId, patient: &PatientId, page: &PageRequest) -> Result<Page<AlertRecord>, StorageError> {
        serial!(self, self.inner.list_alerts(trial, patient, page))
    }
    async fn acknowledge(
        &self,
        trial: &TrialId,
        id: &AlertId,
        by: &Actor,
        note: Option<&str>,
        at: DateTime<Utc>,
        audit: &AuditEntry,
        news2_patient: Option<&PatientId>,
        events: &[DomainEvent],
    ) -> Result<AlertRecord, StorageError> {
        serial!(self, self.inner.acknowledge(trial, id, by, note, at, audit, news2_patient, events))
    }
}

#[async_trait]
impl<S: AuditTrail> AuditTrail for Serial<S> {
    async fn audit_page(
        &self,
        trial: &TrialId,
        filter: &trialwatch::trail::AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, StorageError> {
        serial!(self, self.inner.audit_page(trial, filter, page))
    }
}

#[async_trait]
impl<S: PendingEvents> PendingEvents for Serial<S> {
    async fn due_events(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueEvent>, StorageError> {
        serial!(self, self.inner.due_events(shard, now, limit))
    }
    async fn settle(&self, published: &[EventId]) -> Result<(), StorageError> {
        serial!(self, self.inner.settle(published))
    }
}

#[async_trait]
impl<S: ReportFigures> ReportFigures for Serial<S> {
    async fn enrolment_counts(&self, trial: &TrialId) -> Result<Vec<EnrolmentCount>, StorageError> {
        serial!(self, self.inner.enrolment_counts(trial))
    }
    async fn daily_counts(&self, trial: &TrialId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailySiteCount>, StorageError> {
        serial!(self, self.inner.daily_counts(trial, from, to))
    }
    async fn risk_level_counts(&self, trial: &TrialId) -> Result<Vec<(RiskLevel, u64)>, StorageError> {
        serial!(self, self.inner.risk_level_counts(trial))
    }
    async fn alerts_between(&self, trial: &TrialId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<AlertRecord>, StorageError> {
        serial!(self, self.inner.alerts_between(trial, from, to))
    }
}
