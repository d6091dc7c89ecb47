//! In-memory adapters of the ports, for unit tests of logic only. They keep the
//! same semantics as the AWS adapters (conditions, idempotency, ordering) and
//! count the AWS requests the real adapter would make for each call, so
//! benchmarks can check request budgets without a network.
//!
//! Behind the `test-util` feature: function crates enable it only as a
//! dev-dependency, so no Lambda binary contains these. One file per port.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::alert::AlertRecord;
use crate::audit::append::{head_moved, Extension};
use crate::audit::chain::{ChainHead, ChainId};
use crate::audit::AuditEntry;
use crate::enrolment::{Enrolment, EnrolmentStatus};
use crate::ids::{AlertId, PatientId, SiteId, SubmissionId, TrialId};
use crate::news2::RiskLevel;
use crate::page::{decode_cursor, encode_cursor, Page, PageRequest};
use crate::ports::StorageError;
use crate::submission::{DailySiteCount, StoredSubmission};
use crate::trial::Trial;
use crate::vitals::VitalReading;

mod alerts;
mod anchors;
mod audit;
mod audit_trail;
mod batch_reads;
mod clock;
mod dead_letters;
mod enrolments;
mod events;
mod notifier;
mod queues;
mod report_figures;
mod reports;
mod submissions;
#[cfg(test)]
mod tests;
mod trials;
mod vitals;

pub use anchors::MemoryAnchors;
pub use audit_trail::MemoryAuditTrail;
pub use clock::FakeClock;
pub use dead_letters::{MemoryDeadLetters, ParkedLetter};
pub use events::MemoryEventBus;
pub use notifier::MemoryNotifier;
pub use queues::MemoryQueue;
pub use reports::MemoryReportStore;

/// AWS requests by `service.Operation`, as the real adapter would issue them.
#[derive(Debug, Default)]
pub struct RequestLog(Mutex<BTreeMap<&'static str, u64>>);

impl RequestLog {
    pub fn add(&self, op: &'static str, n: u64) {
        *lock(&self.0).entry(op).or_default() += n;
    }
    pub fn get(&self, op: &str) -> u64 {
        lock(&self.0).get(op).copied().unwrap_or(0)
    }
    /// Requests to one service (`dynamodb`, `sqs`, `sns`, `s3`).
    pub fn service_total(&self, service: &str) -> u64 {
        lock(&self.0).iter().filter(|(k, _)| k.split('.').next() == Some(service)).map(|(_, v)| v).sum()
    }
    pub fn total(&self) -> u64 {
        lock(&self.0).values().sum()
    }
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.0).clone()
    }
    pub fn reset(&self) {
        lock(&self.0).clear();
    }
}

/// The AWS adapter, only to build the DynamoDB requests it would send for
/// a write (never to send them): the memory store's writes build the same
/// items and requests (serde_dynamo conversion, keys, SDK builders) and then
/// apply the write to its tables, so CPU measured on it (the replay
/// examples, the benches) is the handler's CPU on AWS less the HTTP.
fn adapter() -> &'static crate::aws::DynamoStore {
    static ADAPTER: std::sync::OnceLock<crate::aws::DynamoStore> = std::sync::OnceLock::new();
    ADAPTER.get_or_init(|| {
        let sdk = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        crate::aws::DynamoStore::new(&sdk, "TrialTable", "AuditTable")
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

const RACE_APPENDS: &str = "race-appends";

/// Operations that can be made to fail, for testing 503 paths and retries.
#[derive(Debug, Default)]
struct Faults(Mutex<HashMap<&'static str, u32>>);

impl Faults {
    /// Whether an armed one-shot event fires now (and disarms one).
    fn fire(&self, op: &'static str) -> bool {
        let mut f = lock(&self.0);
        match f.get_mut(op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    fn check(&self, op: &'static str) -> Result<(), StorageError> {
        let mut f = lock(&self.0);
        match f.get_mut(op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(StorageError::Unavailable(format!("injected fault in {op}")))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Default)]
struct Tables {
    trials: BTreeMap<TrialId, Trial>,
    enrolments: BTreeMap<(TrialId, PatientId), Enrolment>,
    enrolment_counts: BTreeMap<(TrialId, SiteId, EnrolmentStatus), i64>,
    /// By (trial, patient, id): the guard's key in DynamoDB.
    submissions: BTreeMap<(TrialId, PatientId, SubmissionId), StoredSubmission>,
    daily: BTreeMap<(TrialId, String, SiteId, String), u64>,
    /// Reading items by (pk, sk), as the adapter's PutRequests carry them.
    readings: BTreeMap<(String, String), crate::aws::dynamo::Item>,
    /// State items by (trial, patient), as the adapter's write carries them; read back through
    /// the adapter's decoding, as a GetItem or BatchGetItem answer is.
    states: BTreeMap<(TrialId, PatientId), crate::aws::dynamo::Item>,
    risk_counts: BTreeMap<(TrialId, RiskLevel), i64>,
    alerts: BTreeMap<(TrialId, AlertId), AlertRecord>,
    /// Unclaimed PRO alerts and their due time: the sparse outbox index.
    outbox: BTreeMap<(TrialId, AlertId), chrono::DateTime<chrono::Utc>>,
    audit: Vec<AuditEntry>,
    /// Pending domain events and their due time: the sparse `events` index.
    pending_events: BTreeMap<crate::domain_event::EventId, (crate::domain_event::DomainEvent, chrono::DateTime<chrono::Utc>)>,
    /// Chain heads, as the adapter keeps them on the enrolment and trial items.
    heads: BTreeMap<(TrialId, ChainId), ChainHead>,
}

impl Tables {
    fn head(&self, trial: &TrialId, chain: &ChainId) -> ChainHead {
        self.heads.get(&(trial.clone(), chain.clone())).cloned().unwrap_or_default()
    }

    /// A chain append by a writer that reads the head itself (under the
    /// lock, so it cannot lose the head): links `entry` and moves the head.
    fn append(&mut self, entry: &AuditEntry) {
        let chain = entry.chain_id();
        let mut linked = entry.clone();
        let head = linked.link(&chain, &self.head(&entry.trial_id, &chain));
        self.heads.insert((entry.trial_id.clone(), chain), head);
        self.audit.push(linked);
    }

    /// The adapter's head condition for entries the caller linked from a
    /// head it holds: `head_moved` when that is no longer the head. `race`:
    /// another writer extends the chain first ([`MemoryStore::race_appends`]).
    fn check_head(&mut self, trial: &TrialId, entries: &[AuditEntry], race: bool) -> Result<Extension, StorageError> {
        let ext = Extension::of(entries)?;
        if race {
            if let ChainId::Patient(p) = &ext.chain {
                let other = AuditEntry::new(
                    trial.clone(),
                    "alert/raced",
                    "alert.acknowledged",
                    crate::audit::Actor::system("another-writer"),
                    chrono::Utc::now(),
                )
                .with_detail("patientId", p.as_str());
                self.append(&other);
            }
        }
        if self.head(trial, &ext.chain) != ext.from {
            return Err(head_moved());
        }
        Ok(ext)
    }

    /// Appends entries that passed [`Tables::check_head`].
    fn append_checked(&mut self, trial: &TrialId, entries: &[AuditEntry], ext: Extension) {
        self.heads.insert((trial.clone(), ext.chain), ext.to);
        self.audit.extend(entries.iter().cloned());
    }

    fn enrolment(&self, trial: &TrialId, patient: &PatientId) -> Option<Enrolment> {
        let e = self.enrolments.get(&(trial.clone(), patient.clone()))?;
        Some(Enrolment { audit_head: self.head(trial, &ChainId::Patient(patient.clone())), ..e.clone() })
    }
}

/// Every store port in one process-local table. A clone is another handle
/// on the same table, as a clone of the DynamoDB adapter is another client of
/// the same table: the local stack's in-memory mode gives each function one.
#[derive(Default, Clone)]
pub struct MemoryStore {
    t: Arc<Mutex<Tables>>,
    pub requests: Arc<RequestLog>,
    faults: Arc<Faults>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `times` calls of `op` (a port method name such as
    /// `record_submission`) fail with `StorageError::Unavailable`.
    pub fn fail_next(&self, op: &'static str, times: u32) {
        lock(&self.faults.0).insert(op, times);
    }

    /// Every entry in append order (linked, as the adapter stores them).
    pub fn audit_entries(&self) -> Vec<AuditEntry> {
        lock(&self.t).audit.clone()
    }

    /// One chain's entries in seq order, and its recorded head.
    pub fn audit_chain(&self, trial: &TrialId, chain: &ChainId) -> (Vec<AuditEntry>, ChainHead) {
        let t = lock(&self.t);
        let name = chain.to_string();
        let mut entries: Vec<AuditEntry> =
            t.audit.iter().filter(|e| &e.trial_id == trial && e.chain.as_deref() == Some(name.as_str())).cloned().collect();
        entries.sort_by_key(|e| e.seq);
        (entries, t.head(trial, chain))
    }

    /// Makes the next `times` appends linked by the caller (a submission, an
    /// escalation's state write) find that another writer extended the chain
    /// just before them: each meets a moved head.
    pub fn race_appends(&self, times: u32) {
        lock(&self.faults.0).insert(RACE_APPENDS, times);
    }

    /// Moves a chain's head as another writer would, so a holder of the
    /// old head meets a conflict (tests of the retry paths).
    pub fn append_elsewhere(&self, entry: &AuditEntry) {
        lock(&self.t).append(entry);
    }

    pub fn readings(&self, trial: &TrialId, patient: &PatientId) -> Vec<VitalReading> {
        let pk = crate::aws::dynamo::patient_pk(trial, patient);
        let t = lock(&self.t);
        let items = t.readings.range((pk.clone(), String::new())..).take_while(|((p, _), _)| *p == pk);
        items
            .map(|(_, item)| {
                crate::aws::dynamo::from_record("memory.readings", "reading", item.clone()).expect("a reading item this store wrote")
            })
            .collect()
    }

    pub fn submission_count(&self) -> usize {
        lock(&self.t).submissions.len()
    }

    /// Drops stored submissions and audit entries (counters stay), so a
    /// benchmark's millions of writes measure the handler, not a store that
    /// grows without bound as no real table's client does.
    pub fn forget_submissions(&self) {
        let mut t = lock(&self.t);
        t.submissions.clear();
        t.audit.clear();
    }

    pub fn alert_records(&self) -> Vec<AlertRecord> {
        lock(&self.t).alerts.values().cloned().collect()
    }

    /// Test seeding without audit or request counting.
    pub fn seed_trial(&self, trial: Trial) {
        lock(&self.t).trials.insert(trial.trial_id.clone(), trial);
    }

    /// Test seeding without audit or request counting; keeps the counters right.
    pub fn seed_enrolment(&self, e: Enrolment) {
        let mut t = lock(&self.t);
        *t.enrolment_counts.entry((e.trial_id.clone(), e.site_id.clone(), e.status)).or_default() += 1;
        t.enrolments.insert((e.trial_id.clone(), e.patient_id.clone()), e);
    }

    /// Test seeding of a day counter (as record_submission would leave it).
    pub fn seed_daily_count(&self, trial: &TrialId, c: DailySiteCount) {
        lock(&self.t).daily.insert((trial.clone(), c.day, c.site_id, c.questionnaire_id.to_string()), c.submissions);
    }

    /// Test seeding of an alert record.
    pub fn seed_alert(&self, r: AlertRecord) {
        lock(&self.t).alerts.insert((r.alert.trial_id.clone(), r.alert.alert_id.clone()), r);
    }
}

fn page_of<T: Clone>(items: &[T], partition: &str, page: &PageRequest) -> Result<Page<T>, StorageError> {
    let start = match &page.cursor {
        None => 0,
        Some(c) => {
            let v = decode_cursor(c)?;
            if v.get("p").and_then(|p| p.as_str()) != Some(partition) {
                return Err(StorageError::ForeignCursor("is not a cursor this API issued"));
            }
            v.get("o").and_then(|o| o.as_u64()).ok_or(StorageError::ForeignCursor("is not a cursor this API issued"))? as usize
        }
    };
    let limit = page.limit.clamp(1, crate::page::MAX_LIMIT) as usize;
    let end = (start + limit).min(items.len());
    let slice = items.get(start..end).unwrap_or_default().to_vec();
    let next_cursor = (end < items.len()).then(|| encode_cursor(&serde_json::json!({"p": partition, "o": end})));
    Ok(Page { items: slice, next_cursor })
}
