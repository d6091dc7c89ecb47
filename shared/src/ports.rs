//! Ports: one trait per capability, named for what its consumer does, so a
//! use case asks only for what it uses.
//! Each has an AWS adapter (`crate::aws`) and an in-memory one (`crate::memory`).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::alert::{Alert, AlertRecord, AlertStatus, Claim, DeliveryAttempt};
use crate::audit::anchor::Anchor;
use crate::audit::chain::{ChainHead, ChainId};
use crate::audit::{Actor, AuditEntry};
use crate::domain_event::{DomainEvent, DueEvent, EventId, Published};
use crate::enrolment::{Enrolment, EnrolmentCount};
use crate::ids::{AlertId, PatientId, ReportId, SubmissionId, TrialId};
use crate::outbox::DueAlert;
use crate::page::{Page, PageRequest};
use crate::report::ReportMeta;
use crate::submission::{DailySiteCount, StoredSubmission};
use crate::trail::AuditFilter;
use crate::trial::Trial;
use crate::vitals::{VitalReading, VitalsMessage};
use crate::vitals_state::VitalsState;

pub use crate::clock::Clock;

mod errors;
mod trials;
pub use errors::{NotifyError, StorageError};
pub use trials::{TrialConfig, TrialRegistry};

/// Whether an upsert created the record (201) or changed an existing one (200).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    Updated,
}

#[async_trait]
pub trait EnrolmentStore: Send + Sync {
    async fn get_enrolment(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<Enrolment>, StorageError>;
    /// `get_enrolment` with a strongly consistent read, for confirming an
    /// absence before acting on it for good (a reading parked as "not
    /// enrolled"). An adapter whose `get_enrolment` may be stale must override this.
    async fn get_enrolment_consistent(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<Enrolment>, StorageError> {
        self.get_enrolment(trial, patient).await
    }
    /// Writes the enrolment, its audit entry, the per-site/status counters and
    /// the pending domain `events` (none: an empty slice) atomically.
    /// `enrolment.submission_count`/`last_submission_at` are kept.
    async fn put_enrolment(&self, enrolment: &Enrolment, audit: &AuditEntry, events: &[DomainEvent]) -> Result<Upsert, StorageError>;
    /// `put_enrolment` for a caller that has just read the enrolment (`read`,
    /// `None` if absent; possibly stale): the write starts from that read's
    /// record and chain head instead of reading the item again. A stale read
    /// fails the write's condition, and the adapter then re-reads and
    /// retries; so the answer is the same, one read cheaper. Not folded into
    /// `put_enrolment`: there `None` would have to mean both "absent" and
    /// "not read", and only epro-api's enrolment has a read in hand.
    async fn put_enrolment_after_read(
        &self,
        enrolment: &Enrolment,
        audit: &AuditEntry,
        read: Option<&Enrolment>,
        events: &[DomainEvent],
    ) -> Result<Upsert, StorageError> {
        let _ = read;
        self.put_enrolment(enrolment, audit, events).await
    }
}

/// What recording a submission found.
// Returned once per request and consumed at once; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// Stored now (all parts of the transaction written).
    Recorded,
    /// The id was already taken; here is what is stored under it.
    Duplicate(StoredSubmission),
}

/// The submissions of patients: recorded once (epro-api's submit), read back
/// (a replay's receipt, the newest-first list).
#[async_trait]
pub trait SubmissionLedger: Send + Sync {
    /// ONE atomic write of: the submission, its idempotency guard, the audit
    /// entries, the per-day/per-site counter, and the patient's submission
    /// summary, conditional on the patient being enrolled. `day` is the
    /// counter bucket in the trial's zone. `alerts` (the PRO alerts the
    /// submission raises) are written in the same transaction as pending
    /// alert items in the outbox ([`crate::outbox`]), so no alert is lost
    /// once the submission is stored.
    /// `audit` (submission.created, then one alert.raised per alert) is
    /// linked, in order, into the patient's chain after the head the caller
    /// holds (the enrolment's `audit_head`); the write moves the head on the
    /// enrolment, conditional on it still being that head.
    /// `events` (none: an empty slice) are written as pending domain events
    /// in the same transaction ([`crate::domain_event`]).
    /// A patient not enrolled gives `StorageError::Conflict{kind: "patient-not-enrolled"}`;
    /// a head that moved on, [`crate::audit::append::head_moved`] (re-read the enrolment).
    async fn record_submission(
        &self,
        submission: &StoredSubmission,
        day: &str,
        audit: &[AuditEntry],
        alerts: &[Alert],
        events: &[DomainEvent],
    ) -> Result<RecordOutcome, StorageError>;
    /// The submission `id` of this patient; another patient's use of the same id is not seen.
    async fn get_submission(
        &self,
        trial: &TrialId,
        patient: &PatientId,
        id: &SubmissionId,
    ) -> Result<Option<StoredSubmission>, StorageError>;
    /// Newest first (by completedAt).
    async fn list_submissions(
        &self,
        trial: &TrialId,
        patient: &PatientId,
        page: &PageRequest,
    ) -> Result<Page<StoredSubmission>, StorageError>;
}

/// Result of a conditional state write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateWrite {
    Written,
    /// Someone wrote a newer version first: reload, recompute, retry.
    Stale,
}

/// One patient's readings within a multi-patient write.
#[derive(Debug, Clone, Copy)]
pub struct PatientReadings<'a> {
    pub trial: &'a TrialId,
    pub patient: &'a PatientId,
    pub readings: &'a [VitalReading],
}

#[async_trait]
pub trait VitalsStore: Send + Sync {
    /// BatchWriteItem, at most 25 per call, unprocessed items retried with backoff.
    async fn put_readings(&self, trial: &TrialId, patient: &PatientId, readings: &[VitalReading]) -> Result<(), StorageError>;
    /// Readings of several patients packed 25 per BatchWriteItem *across*
    /// patients, so an SQS batch of N readings from P patients costs ceil(N/25)
    /// calls rather than one or more per patient (the analyzer's budget).
    /// Keys must be distinct (BatchWriteItem refuses duplicates in one call).
    /// The default writes patient by patient: correct, but P or more calls.
    async fn put_readings_batch(&self, batch: &[PatientReadings<'_>]) -> Result<(), StorageError> {
        for b in batch {
            self.put_readings(b.trial, b.patient, b.readings).await?;
        }
        Ok(())
    }
    async fn get_state(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<VitalsState>, StorageError>;
    /// Writes `state` over `previous`, the state this caller read with
    /// `get_state` (`None`: nothing was stored), in one write request and no read.
    /// The write is conditional on the stored version still being `previous`'s
    /// (or on no item, for `None`). Versions only grow, so when the condition
    /// passes the stored item *is* `previous`, and the risk-level counters can
    /// move from `previous`'s level without reading it again. When it fails,
    /// the result is `Stale`: reload, recompute, retry.
    /// `state` must be `previous`'s patient at the next version (1 for `None`),
    /// else `StorageError::Corrupt`.
    /// `raised` (the alert.raised entry of an escalation this write records,
    /// or none) is linked into the patient's chain after the enrolment's head
    /// and written in the same transaction, with the head's move on the
    /// enrolment: it commits only with the state. A stale version wins over
    /// a moved head (`Stale`: the reload may raise nothing); a moved head
    /// alone is [`crate::audit::append::head_moved`].
    /// `events` (pending domain events) are written in the same transaction:
    /// they commit only with the state, so a `Stale` write announces nothing.
    async fn put_state(
        &self,
        previous: Option<&VitalsState>,
        state: &VitalsState,
        raised: &[AuditEntry],
        events: &[DomainEvent],
    ) -> Result<StateWrite, StorageError>;
}

/// What one analyzer batch reads, keyed by id: an id asked for and absent
/// from its map was not found (on a strongly consistent read).
#[derive(Debug, Default, Clone)]
pub struct BatchRead {
    pub trials: HashMap<TrialId, Trial>,
    pub enrolments: HashMap<(TrialId, PatientId), Enrolment>,
    pub states: HashMap<(TrialId, PatientId), VitalsState>,
}

/// The analyzer's reads of a batch in one request rather than two per patient.
#[async_trait]
pub trait BatchReader: Send + Sync {
    /// Loads the `trials` (the config cache's misses) and each patient's
    /// enrolment and vitals state, all strongly consistent: an absence found
    /// here parks a record for good, and the state is written back under its
    /// version. One BatchGetItem per 100 distinct keys; keys DynamoDB leaves
    /// unprocessed are requested again with backoff, a bounded number of
    /// times, then `Unavailable`.
    async fn read_batch(&self, trials: &[&TrialId], patients: &[(&TrialId, &PatientId)]) -> Result<BatchRead, StorageError>;
}

/// epro-api -> FIFO vitals queue.
#[async_trait]
pub trait VitalsQueue: Send + Sync {
    /// One SendMessageBatch (at most 10 messages); group id trial#patient,
    /// dedup id from content. Any entry failing fails the call (retry is safe).
    async fn send_vitals(&self, messages: &[VitalsMessage]) -> Result<(), StorageError>;
}

#[async_trait]
pub trait AlertQueue: Send + Sync {
    /// SendMessageBatch, 10 per call. Any entry failing fails the call; ids are
    /// deterministic so a retry never duplicates a notification.
    async fn enqueue(&self, alerts: &[Alert]) -> Result<(), StorageError>;
}

/// A record an SQS consumer gives up on for good, to be kept for an operator
/// (the source queue's DLQ). Everything here is a reference or a code: the
/// body travels as received, and nothing of it is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    /// The record's body, unchanged, so a redrive replays exactly it.
    pub body: &'a str,
    /// The record's message group (FIFO), so a redrive keeps its order.
    pub group_id: &'a str,
    /// Deduplication id: the source message id, so a retried park (the same
    /// record received again) is stored once within SQS's five-minute window.
    pub dedup_id: &'a str,
    /// Why it was parked: a failure code, never a value.
    pub reason: &'static str,
}

/// The DLQ a consumer parks permanently failed records in.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// One SendMessage per record. An error means the record was not parked
    /// and must be redelivered instead.
    async fn park(&self, letter: &DeadLetter<'_>) -> Result<(), StorageError>;
}

/// The event bus (EventBridge PutEvents).
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Puts the events, at most 10 per call, and reports per entry which the
    /// bus accepted: a refused entry is not an error of the call.
    async fn publish(&self, events: &[DomainEvent]) -> Result<Published, StorageError>;
}

/// Pending domain events: written by the state changes' own transactions,
/// deleted once published, swept when left ([`crate::domain_event`]).
#[async_trait]
pub trait PendingEvents: Send + Sync {
    /// Pending events of one index shard due at or before `now`, oldest first, at most `limit`.
    async fn due_events(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueEvent>, StorageError>;
    /// Deletes the pending items of published events (absent ones are fine).
    async fn settle(&self, published: &[EventId]) -> Result<(), StorageError>;
}

/// The outbox of pending PRO alerts, read by the sweeper ([`crate::outbox`]).
#[async_trait]
pub trait AlertOutbox: Send + Sync {
    /// Alerts of one index shard that no dispatcher has claimed and whose
    /// due time is at or before `now`, oldest first, at most `limit`.
    async fn due_alerts(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueAlert>, StorageError>;
    /// Moves a swept alert's due time to `until`, if it is still unclaimed and
    /// still due at `due.due_at` (else another sweep or a claim came first,
    /// which is not an error).
    async fn defer(&self, due: &DueAlert, until: DateTime<Utc>) -> Result<(), StorageError>;
}

/// What alert-dispatcher does with an alert: claims it once, records each
/// channel's attempt, settles it or gives it back.
#[async_trait]
pub trait AlertDelivery: Send + Sync {
    /// Conditional write keyed by alertId: creates the record (pending, leased),
    /// takes over an expired lease, or reports it delivered / in progress.
    async fn claim(&self, alert: &Alert, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Claim, StorageError>;
    async fn record_attempt(&self, trial: &TrialId, id: &AlertId, attempt: &DeliveryAttempt) -> Result<(), StorageError>;
    /// Moves to delivered or failed, clears the lease, writes the audit entry
    /// and the pending domain `events`, in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        trial: &TrialId,
        id: &AlertId,
        status: AlertStatus,
        at: DateTime<Utc>,
        audit: &AuditEntry,
        events: &[DomainEvent],
    ) -> Result<(), StorageError>;
    /// Clears the lease after a retryable failure so the redelivery may claim at once.
    async fn release(&self, trial: &TrialId, id: &AlertId) -> Result<(), StorageError>;
}

/// What site staff do with alerts (epro-api): read them, page through a
/// patient's, acknowledge one.
#[async_trait]
pub trait AlertInbox: Send + Sync {
    async fn get_alert(&self, trial: &TrialId, id: &AlertId) -> Result<Option<AlertRecord>, StorageError>;
    /// A patient's alerts, newest first.
    async fn list_alerts(&self, trial: &TrialId, patient: &PatientId, page: &PageRequest) -> Result<Page<AlertRecord>, StorageError>;
    /// Sets acknowledged (once) with the audit entry; `NotFound` when absent,
    /// `Conflict{kind: "alert-already-acknowledged"}` when already acknowledged.
    /// `news2_patient`: for a NEWS2 alert, its patient. When the alert is still
    /// that patient's last one, the same atomic write marks the vitals state
    /// item (`lastAlertAckedAt`, `version + 1`), so the analyzer learns of the
    /// acknowledgement from the state it already reads; when a newer alert has
    /// replaced it, the acknowledgement is recorded without the mark.
    /// `events` (none: an empty slice) are pending domain events written in
    /// the same transaction.
    #[allow(clippy::too_many_arguments)]
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
    ) -> Result<AlertRecord, StorageError>;
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one entry; never overwrites (conditional on absence).
    async fn append(&self, entry: &AuditEntry) -> Result<(), StorageError>;
}

/// Reading a trial's audit trail (the `auditor`'s and admins' route).
#[async_trait]
pub trait AuditTrail: Send + Sync {
    /// A page of the trial's entries matching `filter`, newest first (by
    /// `at`, then entry id), read through the write-sharded time index only
    /// (one Query per shard, merged; never a Scan, never the table's own
    /// key). A page may come back short, even empty, with a `next_cursor`
    /// when a filter matches little ([`crate::trail::merge`]): follow it until
    /// it is `None`. A cursor this adapter did not issue is [`StorageError::ForeignCursor`].
    async fn audit_page(&self, trial: &TrialId, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>, StorageError>;
}

// ---- audit chains: the reads the verifier and the anchoring schedule use ----

/// The heads the data table records for a trial's chains: `auditSeq` and
/// `auditHash` on the trial item (the trial chain) and on each enrolment (the
/// patient's chain); absent attributes are the genesis head.
#[async_trait]
pub trait ChainHeads: Send + Sync {
    /// Every chain the data table names for the trial, with its recorded head
    /// (strongly consistent: a verifier must not see an older head than the
    /// entries it reads next). The trial chain is present when the trial item is.
    async fn chain_heads(&self, trial: &TrialId) -> Result<BTreeMap<ChainId, ChainHead>, StorageError>;
}

/// Where the time index places an entry: its chain (from its key), `None` when
/// its key is not a chain's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedEntry {
    pub chain: Option<ChainId>,
    pub entry_id: String,
}

/// The audit table, read chain by chain.
#[async_trait]
pub trait AuditChains: Send + Sync {
    /// One chain's stored entries in key (`seq`) order, strongly consistent.
    async fn chain_entries(&self, trial: &TrialId, chain: &ChainId) -> Result<Vec<AuditEntry>, StorageError>;
    /// Every entry of the trial in the write-sharded time index, so a chain
    /// that no head names is found too.
    async fn indexed_entries(&self, trial: &TrialId) -> Result<Vec<IndexedEntry>, StorageError>;
}

/// Write-once storage of anchors (S3 Object Lock, compliance mode).
#[async_trait]
pub trait AnchorStore: Send + Sync {
    /// Puts the anchor under [`Anchor::object_key`], locked until `retain_until`.
    async fn put_anchor(&self, anchor: &Anchor, retain_until: DateTime<Utc>) -> Result<(), StorageError>;
}

/// One stored version of an anchor object, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnchor {
    /// `<key>` or `<key>?versionId=<v>`: what an investigator fetches.
    pub name: String,
    pub body: Vec<u8>,
}

#[async_trait]
pub trait AnchorReader: Send + Sync {
    /// Every version of every anchor object of the trial: an anchor
    /// overwritten by a later PutObject is still checked in its locked form.
    async fn anchors(&self, trial: &TrialId) -> Result<Vec<StoredAnchor>, StorageError>;
}

// ---- end of audit chains ----

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Publishes the alert JSON to `topic` (or the default topic), with `level`
    /// and `trialId` message attributes for subscription filters.
    async fn publish(&self, topic: Option<&str>, alert: &Alert) -> Result<(), NotifyError>;
}

/// The figures a report is made of (report-generator), each from counters or
/// an index: the cost grows with sites x days, never with submissions.
#[async_trait]
pub trait ReportFigures: Send + Sync {
    /// Patients per site and status, from counters (O(sites), not O(patients)).
    async fn enrolment_counts(&self, trial: &TrialId) -> Result<Vec<EnrolmentCount>, StorageError>;
    /// Submission counters for days `from..=to` (trial-zone days, `YYYY-MM-DD`).
    async fn daily_counts(&self, trial: &TrialId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailySiteCount>, StorageError>;
    /// Alerts created in `[from, to)` (indexed by trial and time).
    async fn alerts_between(&self, trial: &TrialId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<AlertRecord>, StorageError>;
    /// Patients per current NEWS2 risk level (patients with no score are omitted).
    async fn risk_level_counts(&self, trial: &TrialId) -> Result<Vec<(crate::news2::RiskLevel, u64)>, StorageError>;
}

/// Report PDFs in object storage and their metadata.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Puts the PDF (SSE-KMS, content type, metadata) and its metadata record,
    /// with the pending domain `events` (none: an empty slice) in the
    /// record's transaction: a stored report is always announced.
    async fn put_report(&self, meta: &ReportMeta, pdf: Vec<u8>, events: &[DomainEvent]) -> Result<(), StorageError>;
    async fn get_report(&self, trial: &TrialId, id: &ReportId) -> Result<Option<ReportMeta>, StorageError>;
    /// A GET URL for the object valid for `ttl`.
    async fn presign(&self, object_key: &str, ttl: std::time::Duration) -> Result<String, StorageError>;
}
