//! In-memory adapters of the ports, for unit tests of logic only. They keep the
//! same semantics as the AWS adapters (conditions, idempotency, ordering) and
//! count the AWS requests the real adapter would make for each call, so
//! benchmarks can check request budgets without a network.
//!
//! Behind the `test-util` feature: function crates enable it only as a
//! dev-dependency, so no Lambda binary contains these. One file per port.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::alert::AlertRecord;
use crate::audit::AuditEntry;
use crate::enrolment::{Enrolment, EnrolmentStatus};
use crate::error::Error;
use crate::ids::{AlertId, PatientId, SiteId, SubmissionId, TrialId};
use crate::news2::RiskLevel;
use crate::page::{decode_cursor, encode_cursor, Page, PageRequest};
use crate::submission::{DailySiteCount, StoredSubmission};
use crate::trial::Trial;
use crate::vitals::{VitalReading, VitalsState};

mod alerts;
mod anchors;
mod audit;
mod audit_trail;
mod clock;
mod dead_letters;
mod enrolments;
mod notifier;
mod queues;
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Operations that can be made to fail, for testing 503 paths and retries.
#[derive(Debug, Default)]
struct Faults(Mutex<HashMap<&'static str, u32>>);

impl Faults {
    fn check(&self, op: &'static str) -> Result<(), Error> {
        let mut f = lock(&self.0);
        match f.get_mut(op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(Error::Unavailable(format!("injected fault in {op}")))
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
    readings: BTreeMap<(TrialId, PatientId), BTreeMap<String, VitalReading>>,
    states: BTreeMap<(TrialId, PatientId), VitalsState>,
    risk_counts: BTreeMap<(TrialId, RiskLevel), i64>,
    alerts: BTreeMap<(TrialId, AlertId), AlertRecord>,
    /// Unclaimed PRO alerts and their due time: the sparse outbox index.
    outbox: BTreeMap<(TrialId, AlertId), chrono::DateTime<chrono::Utc>>,
    audit: Vec<AuditEntry>,
}

/// Every store port in one process-local table.
#[derive(Default)]
pub struct MemoryStore {
    t: Mutex<Tables>,
    pub requests: RequestLog,
    faults: Faults,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `times` calls of `op` (a port method name such as
    /// `record_submission`) fail with `Error::Unavailable`.
    pub fn fail_next(&self, op: &'static str, times: u32) {
        lock(&self.faults.0).insert(op, times);
    }

    pub fn audit_entries(&self) -> Vec<AuditEntry> {
        lock(&self.t).audit.clone()
    }

    pub fn readings(&self, trial: &TrialId, patient: &PatientId) -> Vec<VitalReading> {
        lock(&self.t).readings.get(&(trial.clone(), patient.clone())).map(|m| m.values().cloned().collect()).unwrap_or_default()
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

fn page_of<T: Clone>(items: &[T], partition: &str, page: &PageRequest) -> Result<Page<T>, Error> {
    let start = match &page.cursor {
        None => 0,
        Some(c) => {
            let v = decode_cursor(c)?;
            if v.get("p").and_then(|p| p.as_str()) != Some(partition) {
                return Err(Error::field("cursor", "is not a cursor this API issued"));
            }
            v.get("o").and_then(|o| o.as_u64()).ok_or_else(|| Error::field("cursor", "is not a cursor this API issued"))? as usize
        }
    };
    let limit = page.limit.clamp(1, crate::page::MAX_LIMIT) as usize;
    let end = (start + limit).min(items.len());
    let slice = items.get(start..end).unwrap_or_default().to_vec();
    let next_cursor = (end < items.len()).then(|| encode_cursor(&serde_json::json!({"p": partition, "o": end})));
    Ok(Page { items: slice, next_cursor })
}
