//! In-memory adapters of the ports, for unit tests of logic only. They keep the
//! same semantics as the AWS adapters (conditions, idempotency, ordering) and
//! count the AWS requests the real adapter would make for each call, so
//! benchmarks can check request budgets without a network.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::alert::{Alert, AlertRecord, AlertStatus, Claim, DeliveryAttempt};
use crate::audit::{Actor, AuditEntry};
use crate::enrolment::{Enrolment, EnrolmentCount, EnrolmentStatus};
use crate::error::Error;
use crate::ids::{AlertId, PatientId, ReportId, SiteId, SubmissionId, TrialId};
use crate::news2::RiskLevel;
use crate::page::{decode_cursor, encode_cursor, Page, PageRequest};
use crate::ports::*;
use crate::report::ReportMeta;
use crate::submission::{DailySiteCount, StoredSubmission};
use crate::trial::Trial;
use crate::vitals::{VitalReading, VitalsMessage, VitalsState};

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
    submissions: BTreeMap<SubmissionId, StoredSubmission>,
    daily: BTreeMap<(TrialId, String, SiteId, String), u64>,
    readings: BTreeMap<(TrialId, PatientId), BTreeMap<String, VitalReading>>,
    states: BTreeMap<(TrialId, PatientId), VitalsState>,
    risk_counts: BTreeMap<(TrialId, RiskLevel), i64>,
    alerts: BTreeMap<(TrialId, AlertId), AlertRecord>,
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

#[async_trait]
impl TrialStore for MemoryStore {
    async fn get_trial(&self, id: &TrialId) -> Result<Option<Trial>, Error> {
        self.faults.check("get_trial")?;
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.t).trials.get(id).cloned())
    }

    async fn put_trial(&self, trial: &Trial, audit: &AuditEntry) -> Result<Upsert, Error> {
        self.faults.check("put_trial")?;
        // The adapter reads the old item to answer created-or-updated, then writes once.
        self.requests.add("dynamodb.GetItem", 1);
        self.requests.add("dynamodb.TransactWriteItems", 1);
        let mut t = lock(&self.t);
        let existed = t.trials.insert(trial.trial_id.clone(), trial.clone()).is_some();
        t.audit.push(audit.clone());
        Ok(if existed { Upsert::Updated } else { Upsert::Created })
    }

    async fn list_trial_ids(&self) -> Result<Vec<TrialId>, Error> {
        self.faults.check("list_trial_ids")?;
        self.requests.add("dynamodb.Query", 1);
        Ok(lock(&self.t).trials.keys().cloned().collect())
    }
}

#[async_trait]
impl EnrolmentStore for MemoryStore {
    async fn get_enrolment(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<Enrolment>, Error> {
        self.faults.check("get_enrolment")?;
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.t).enrolments.get(&(trial.clone(), patient.clone())).cloned())
    }

    async fn put_enrolment(&self, e: &Enrolment, audit: &AuditEntry) -> Result<Upsert, Error> {
        self.faults.check("put_enrolment")?;
        self.requests.add("dynamodb.GetItem", 1);
        self.requests.add("dynamodb.TransactWriteItems", 1);
        let mut t = lock(&self.t);
        let key = (e.trial_id.clone(), e.patient_id.clone());
        let old = t.enrolments.get(&key).cloned();
        let mut new = e.clone();
        if let Some(o) = &old {
            *t.enrolment_counts.entry((o.trial_id.clone(), o.site_id.clone(), o.status)).or_default() -= 1;
            new.submission_count = o.submission_count;
            new.last_submission_at = o.last_submission_at.clone();
            new.enrolled_at = o.enrolled_at.clone();
            // As the adapter: the first withdrawal time survives repeated withdrawn writes.
            if o.withdrawn_at.is_some() && e.status == EnrolmentStatus::Withdrawn {
                new.withdrawn_at = o.withdrawn_at.clone();
            }
        }
        if e.status != EnrolmentStatus::Withdrawn {
            new.withdrawn_at = None;
        } else if new.withdrawn_at.is_none() {
            new.withdrawn_at = Some(e.updated_at.clone());
        }
        *t.enrolment_counts.entry((e.trial_id.clone(), e.site_id.clone(), e.status)).or_default() += 1;
        t.enrolments.insert(key, new);
        t.audit.push(audit.clone());
        Ok(if old.is_some() { Upsert::Updated } else { Upsert::Created })
    }

    async fn enrolment_counts(&self, trial: &TrialId) -> Result<Vec<EnrolmentCount>, Error> {
        self.faults.check("enrolment_counts")?;
        self.requests.add("dynamodb.Query", 1);
        Ok(lock(&self.t)
            .enrolment_counts
            .iter()
            .filter(|((t, _, _), n)| t == trial && **n > 0)
            .map(|((_, site, status), n)| EnrolmentCount { site_id: site.clone(), status: *status, count: *n as u64 })
            .collect())
    }
}

#[async_trait]
impl SubmissionStore for MemoryStore {
    async fn record_submission(&self, s: &StoredSubmission, day: &str, audit: &AuditEntry) -> Result<RecordOutcome, Error> {
        self.faults.check("record_submission")?;
        self.requests.add("dynamodb.TransactWriteItems", 1);
        let mut t = lock(&self.t);
        if let Some(existing) = t.submissions.get(&s.submission_id) {
            let existing = existing.clone();
            self.requests.add("dynamodb.GetItem", 1);
            return Ok(RecordOutcome::Duplicate(existing));
        }
        let key = (s.trial_id.clone(), s.patient_id.clone());
        match t.enrolments.get_mut(&key) {
            Some(e) if e.status == EnrolmentStatus::Enrolled => {
                e.submission_count += 1;
                let at = crate::timestamp::format(s.completed_at);
                if e.last_submission_at.as_deref().is_none_or(|l| l < at.as_str()) {
                    e.last_submission_at = Some(at);
                }
            }
            _ => return Err(Error::conflict("patient-not-enrolled", "the patient is not enrolled in this trial")),
        }
        t.submissions.insert(s.submission_id, s.clone());
        *t.daily.entry((s.trial_id.clone(), day.to_owned(), s.site_id.clone(), s.questionnaire_id.to_string())).or_default() += 1;
        t.audit.push(audit.clone());
        Ok(RecordOutcome::Recorded)
    }

    async fn get_submission(&self, id: &SubmissionId) -> Result<Option<StoredSubmission>, Error> {
        self.faults.check("get_submission")?;
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.t).submissions.get(id).cloned())
    }

    async fn list_submissions(&self, trial: &TrialId, patient: &PatientId, page: &PageRequest) -> Result<Page<StoredSubmission>, Error> {
        self.faults.check("list_submissions")?;
        self.requests.add("dynamodb.Query", 1);
        let mut items: Vec<StoredSubmission> =
            lock(&self.t).submissions.values().filter(|s| &s.trial_id == trial && &s.patient_id == patient).cloned().collect();
        items.sort_by_key(|s| std::cmp::Reverse((s.completed_at, s.submission_id)));
        page_of(&items, &format!("PATIENT#{trial}#{patient}"), page)
    }

    async fn daily_counts(&self, trial: &TrialId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailySiteCount>, Error> {
        self.faults.check("daily_counts")?;
        // One Query per counter shard (see `aws::COUNTER_SHARDS`): O(shards x sites x days).
        self.requests.add("dynamodb.Query", u64::from(crate::aws::COUNTER_SHARDS));
        let (from, to) = (from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string());
        Ok(lock(&self.t)
            .daily
            .iter()
            .filter(|((t, day, _, _), _)| t == trial && *day >= from && *day <= to)
            .filter_map(|((_, day, site, q), n)| {
                Some(DailySiteCount { day: day.clone(), site_id: site.clone(), questionnaire_id: q.parse().ok()?, submissions: *n })
            })
            .collect())
    }
}

#[async_trait]
impl VitalsStore for MemoryStore {
    async fn put_readings(&self, trial: &TrialId, patient: &PatientId, readings: &[VitalReading]) -> Result<(), Error> {
        self.faults.check("put_readings")?;
        // BatchWriteItem takes at most 25 items per call.
        self.requests.add("dynamodb.BatchWriteItem", readings.len().div_ceil(25) as u64);
        let mut t = lock(&self.t);
        let m = t.readings.entry((trial.clone(), patient.clone())).or_default();
        for r in readings {
            m.insert(format!("{}#{}#{}", crate::timestamp::format(r.observed_at), r.code.as_str(), r.reading_id), r.clone());
        }
        Ok(())
    }

    async fn put_readings_batch(&self, batch: &[PatientReadings<'_>]) -> Result<(), Error> {
        self.faults.check("put_readings")?;
        let n: usize = batch.iter().map(|b| b.readings.len()).sum();
        // The AWS adapter packs 25 items per BatchWriteItem across patients.
        self.requests.add("dynamodb.BatchWriteItem", n.div_ceil(25) as u64);
        let mut t = lock(&self.t);
        for b in batch {
            let m = t.readings.entry((b.trial.clone(), b.patient.clone())).or_default();
            for r in b.readings {
                m.insert(format!("{}#{}#{}", crate::timestamp::format(r.observed_at), r.code.as_str(), r.reading_id), r.clone());
            }
        }
        Ok(())
    }

    async fn get_state(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<VitalsState>, Error> {
        self.faults.check("get_state")?;
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.t).states.get(&(trial.clone(), patient.clone())).cloned())
    }

    async fn put_state(&self, previous: Option<&VitalsState>, state: &VitalsState) -> Result<StateWrite, Error> {
        self.faults.check("put_state")?;
        if !state.follows(previous) {
            return Err(Error::Internal("put_state: the state does not follow the previous one".into()));
        }
        let old_level = previous.and_then(|p| p.news2.as_ref()).map(|n| n.risk_level);
        let new_level = state.news2.as_ref().map(|n| n.risk_level);
        // Matches the adapter: no read, a Put when the level the caller read is
        // unchanged, or a transaction with the risk counters when it moved.
        if old_level == new_level {
            self.requests.add("dynamodb.PutItem", 1);
        } else {
            self.requests.add("dynamodb.TransactWriteItems", 1);
        }
        let mut t = lock(&self.t);
        let key = (state.trial_id.clone(), state.patient_id.clone());
        let stored_version = t.states.get(&key).map(|s| s.version);
        if stored_version != previous.map(|p| p.version) {
            return Ok(StateWrite::Stale);
        }
        if old_level != new_level {
            if let Some(l) = old_level {
                *t.risk_counts.entry((state.trial_id.clone(), l)).or_default() -= 1;
            }
            if let Some(l) = new_level {
                *t.risk_counts.entry((state.trial_id.clone(), l)).or_default() += 1;
            }
        }
        t.states.insert(key, state.clone());
        Ok(StateWrite::Written)
    }

    async fn risk_level_counts(&self, trial: &TrialId) -> Result<Vec<(RiskLevel, u64)>, Error> {
        self.faults.check("risk_level_counts")?;
        self.requests.add("dynamodb.Query", 1);
        Ok(lock(&self.t).risk_counts.iter().filter(|((t, _), n)| t == trial && **n > 0).map(|((_, l), n)| (*l, *n as u64)).collect())
    }
}

#[async_trait]
impl AlertStore for MemoryStore {
    async fn claim(&self, alert: &Alert, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Claim, Error> {
        self.faults.check("claim")?;
        self.requests.add("dynamodb.UpdateItem", 1);
        let mut t = lock(&self.t);
        let key = (alert.trial_id.clone(), alert.alert_id.clone());
        match t.alerts.get_mut(&key) {
            None => {
                let r = AlertRecord {
                    alert: alert.clone(),
                    status: AlertStatus::Pending,
                    attempts: vec![],
                    lease_until: Some(lease_until),
                    delivered_at: None,
                    acknowledged_at: None,
                    acknowledged_by: None,
                    ack_note: None,
                };
                t.alerts.insert(key, r.clone());
                Ok(Claim::Acquired(r))
            }
            Some(r) if r.status != AlertStatus::Pending => {
                self.requests.add("dynamodb.GetItem", 1);
                Ok(Claim::AlreadyDone(r.status))
            }
            Some(r) => match r.lease_until {
                Some(until) if until >= now => {
                    self.requests.add("dynamodb.GetItem", 1);
                    Ok(Claim::InProgress { lease_until: until })
                }
                _ => {
                    r.lease_until = Some(lease_until);
                    Ok(Claim::Acquired(r.clone()))
                }
            },
        }
    }

    async fn record_attempt(&self, trial: &TrialId, id: &AlertId, attempt: &DeliveryAttempt) -> Result<(), Error> {
        self.faults.check("record_attempt")?;
        self.requests.add("dynamodb.UpdateItem", 1);
        let mut t = lock(&self.t);
        let r = t.alerts.get_mut(&(trial.clone(), id.clone())).ok_or(Error::NotFound("alert"))?;
        r.attempts.push(attempt.clone());
        Ok(())
    }

    async fn finish(&self, trial: &TrialId, id: &AlertId, status: AlertStatus, at: DateTime<Utc>, audit: &AuditEntry) -> Result<(), Error> {
        self.faults.check("finish")?;
        self.requests.add("dynamodb.TransactWriteItems", 1);
        let mut t = lock(&self.t);
        let r = t.alerts.get_mut(&(trial.clone(), id.clone())).ok_or(Error::NotFound("alert"))?;
        r.status = status;
        r.lease_until = None;
        if status == AlertStatus::Delivered {
            r.delivered_at = Some(at);
        }
        t.audit.push(audit.clone());
        Ok(())
    }

    async fn release(&self, trial: &TrialId, id: &AlertId) -> Result<(), Error> {
        self.faults.check("release")?;
        self.requests.add("dynamodb.UpdateItem", 1);
        let mut t = lock(&self.t);
        if let Some(r) = t.alerts.get_mut(&(trial.clone(), id.clone())) {
            if r.status == AlertStatus::Pending {
                r.lease_until = None;
            }
        }
        Ok(())
    }

    async fn get_alert(&self, trial: &TrialId, id: &AlertId) -> Result<Option<AlertRecord>, Error> {
        self.faults.check("get_alert")?;
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.t).alerts.get(&(trial.clone(), id.clone())).cloned())
    }

    async fn list_alerts(&self, trial: &TrialId, patient: &PatientId, page: &PageRequest) -> Result<Page<AlertRecord>, Error> {
        self.faults.check("list_alerts")?;
        self.requests.add("dynamodb.Query", 1);
        let mut items: Vec<AlertRecord> =
            lock(&self.t).alerts.values().filter(|r| &r.alert.trial_id == trial && &r.alert.patient_id == patient).cloned().collect();
        items.sort_by(|a, b| (b.alert.created_at, &b.alert.alert_id).cmp(&(a.alert.created_at, &a.alert.alert_id)));
        page_of(&items, &format!("ALERTS#{trial}#{patient}"), page)
    }

    async fn alerts_between(&self, trial: &TrialId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<AlertRecord>, Error> {
        self.faults.check("alerts_between")?;
        self.requests.add("dynamodb.Query", 1);
        let mut items: Vec<AlertRecord> = lock(&self.t)
            .alerts
            .values()
            .filter(|r| &r.alert.trial_id == trial && r.alert.created_at >= from && r.alert.created_at < to)
            .cloned()
            .collect();
        items.sort_by_key(|r| r.alert.created_at);
        Ok(items)
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
    ) -> Result<AlertRecord, Error> {
        self.faults.check("acknowledge")?;
        self.requests.add("dynamodb.TransactWriteItems", 1);
        self.requests.add("dynamodb.GetItem", 1);
        let mut t = lock(&self.t);
        let r = t.alerts.get_mut(&(trial.clone(), id.clone())).ok_or(Error::NotFound("alert"))?;
        if r.status == AlertStatus::Acknowledged {
            return Err(Error::conflict("alert-already-acknowledged", "the alert was already acknowledged"));
        }
        r.status = AlertStatus::Acknowledged;
        r.acknowledged_at = Some(at);
        r.acknowledged_by = Some(by.clone());
        r.ack_note = note.map(str::to_owned);
        r.lease_until = None;
        let out = r.clone();
        t.audit.push(audit.clone());
        // --- escalation clearing (issue 13): mark the state when this is its last alert.
        if let Some(patient) = news2_patient {
            let state = t.states.get_mut(&(trial.clone(), patient.clone())).filter(|s| s.last_alert_id.as_ref() == Some(id));
            match state {
                Some(s) => {
                    s.last_alert_acked_at = Some(at);
                    s.version += 1;
                }
                // The adapter retries the transaction without the mark.
                None => self.requests.add("dynamodb.TransactWriteItems", 1),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append(&self, entry: &AuditEntry) -> Result<(), Error> {
        self.faults.check("append")?;
        self.requests.add("dynamodb.PutItem", 1);
        lock(&self.t).audit.push(entry.clone());
        Ok(())
    }
}

/// Both queues; keeps what was sent, in order.
#[derive(Default)]
pub struct MemoryQueue {
    vitals: Mutex<Vec<VitalsMessage>>,
    alerts: Mutex<Vec<Alert>>,
    pub requests: RequestLog,
    faults: Faults,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn fail_next(&self, op: &'static str, times: u32) {
        lock(&self.faults.0).insert(op, times);
    }
    pub fn sent_vitals(&self) -> Vec<VitalsMessage> {
        lock(&self.vitals).clone()
    }
    pub fn sent_alerts(&self) -> Vec<Alert> {
        lock(&self.alerts).clone()
    }
    pub fn clear(&self) {
        lock(&self.vitals).clear();
        lock(&self.alerts).clear();
    }
}

/// SQS FIFO limits a SendMessageBatch to 10 entries.
const SQS_BATCH: usize = 10;

#[async_trait]
impl VitalsQueue for MemoryQueue {
    async fn send_vitals(&self, messages: &[VitalsMessage]) -> Result<(), Error> {
        self.faults.check("send_vitals")?;
        if messages.len() > SQS_BATCH {
            return Err(Error::Internal("more than 10 messages in one SendMessageBatch".into()));
        }
        self.requests.add("sqs.SendMessageBatch", 1);
        lock(&self.vitals).extend_from_slice(messages);
        Ok(())
    }
}

#[async_trait]
impl AlertQueue for MemoryQueue {
    async fn enqueue(&self, alerts: &[Alert]) -> Result<(), Error> {
        self.faults.check("enqueue")?;
        self.requests.add("sqs.SendMessageBatch", alerts.len().div_ceil(SQS_BATCH) as u64);
        lock(&self.alerts).extend_from_slice(alerts);
        Ok(())
    }
}

/// Records published alerts and the topic each went to.
#[derive(Default)]
pub struct MemoryNotifier {
    published: Mutex<Vec<(Option<String>, Alert)>>,
    pub requests: RequestLog,
    faults: Faults,
}

impl MemoryNotifier {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn fail_next(&self, times: u32) {
        lock(&self.faults.0).insert("publish", times);
    }
    pub fn published(&self) -> Vec<(Option<String>, Alert)> {
        lock(&self.published).clone()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn publish(&self, topic: Option<&str>, alert: &Alert) -> Result<(), Error> {
        self.faults.check("publish")?;
        self.requests.add("sns.Publish", 1);
        lock(&self.published).push((topic.map(str::to_owned), alert.clone()));
        Ok(())
    }
}

/// Report objects and metadata in memory; presigned URLs are `memory://` links.
#[derive(Default)]
pub struct MemoryReportStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    metas: Mutex<BTreeMap<(TrialId, ReportId), ReportMeta>>,
    pub requests: RequestLog,
}

impl MemoryReportStore {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.objects).get(key).cloned()
    }
}

#[async_trait]
impl ReportStore for MemoryReportStore {
    async fn put_report(&self, meta: &ReportMeta, pdf: Vec<u8>) -> Result<(), Error> {
        self.requests.add("s3.PutObject", 1);
        self.requests.add("dynamodb.PutItem", 1);
        lock(&self.objects).insert(meta.object_key.clone(), pdf);
        lock(&self.metas).insert((meta.trial_id.clone(), meta.report_id.clone()), meta.clone());
        Ok(())
    }

    async fn get_report(&self, trial: &TrialId, id: &ReportId) -> Result<Option<ReportMeta>, Error> {
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.metas).get(&(trial.clone(), id.clone())).cloned())
    }

    async fn presign(&self, object_key: &str, ttl: std::time::Duration) -> Result<String, Error> {
        Ok(format!("memory://reports/{object_key}?expires={}", ttl.as_secs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::news2::News2Result;
    use crate::submission::Answer;

    fn ids() -> (TrialId, PatientId, SiteId) {
        (TrialId::parse("t1").unwrap(), PatientId::parse("p1").unwrap(), SiteId::parse("s1").unwrap())
    }

    fn enrolment(status: EnrolmentStatus) -> Enrolment {
        let (t, p, s) = ids();
        Enrolment {
            trial_id: t,
            patient_id: p,
            site_id: s,
            status,
            hypercapnic: false,
            enrolled_at: "2026-11-01T00:00:00.000Z".into(),
            updated_at: "2026-11-01T00:00:00.000Z".into(),
            submission_count: 0,
            last_submission_at: None,
            withdrawn_at: None,
        }
    }

    fn submission() -> StoredSubmission {
        let (t, p, s) = ids();
        StoredSubmission {
            trial_id: t,
            patient_id: p,
            site_id: s,
            submission_id: SubmissionId::parse("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap(),
            questionnaire_id: "q".parse().unwrap(),
            questionnaire_version: "1".into(),
            completed_at: "2026-11-26T19:00:00Z".parse().unwrap(),
            received_at: "2026-11-26T19:00:01Z".parse().unwrap(),
            answers: vec![Answer { link_id: "a".into(), value: crate::submission::AnswerValue::Number(1.0) }],
            score: Some(1.0),
            body_hash: "h".into(),
            submitted_by: Actor { role: "patient".into(), subject: Some("p1".into()) },
        }
    }

    fn audit() -> AuditEntry {
        AuditEntry::new(ids().0, "submission/x", "submission.created", Actor::system("test"), Utc::now())
    }

    #[tokio::test]
    async fn a_second_record_of_the_same_id_is_a_duplicate_and_counts_once() {
        let m = MemoryStore::new();
        m.seed_enrolment(enrolment(EnrolmentStatus::Enrolled));
        assert_eq!(m.record_submission(&submission(), "2026-11-26", &audit()).await.unwrap(), RecordOutcome::Recorded);
        assert!(matches!(m.record_submission(&submission(), "2026-11-26", &audit()).await.unwrap(), RecordOutcome::Duplicate(_)));
        let (t, p, _) = ids();
        assert_eq!(m.get_enrolment(&t, &p).await.unwrap().unwrap().submission_count, 1);
        let day: NaiveDate = "2026-11-26".parse().unwrap();
        assert_eq!(m.daily_counts(&t, day, day).await.unwrap()[0].submissions, 1);
    }

    #[tokio::test]
    async fn a_withdrawn_patient_records_nothing() {
        let m = MemoryStore::new();
        m.seed_enrolment(enrolment(EnrolmentStatus::Withdrawn));
        let err = m.record_submission(&submission(), "2026-11-26", &audit()).await.unwrap_err();
        assert_eq!(err.code(), "patient-not-enrolled");
        assert_eq!(m.submission_count(), 0);
        assert!(m.audit_entries().is_empty());
    }

    #[tokio::test]
    async fn pages_follow_cursors_and_reject_foreign_ones() {
        let m = MemoryStore::new();
        m.seed_enrolment(enrolment(EnrolmentStatus::Enrolled));
        for _ in 0..5 {
            let mut s = submission();
            s.submission_id = SubmissionId::new_random();
            m.record_submission(&s, "2026-11-26", &audit()).await.unwrap();
        }
        let (t, p, _) = ids();
        let first = m.list_submissions(&t, &p, &PageRequest::first(2)).await.unwrap();
        assert_eq!(first.items.len(), 2);
        let mut seen = first.items.len();
        let mut cursor = first.next_cursor;
        while let Some(c) = cursor {
            let next = m.list_submissions(&t, &p, &PageRequest { limit: 2, cursor: Some(c) }).await.unwrap();
            seen += next.items.len();
            cursor = next.next_cursor;
        }
        assert_eq!(seen, 5);
        let other = PatientId::parse("p2").unwrap();
        let c = m.list_submissions(&t, &p, &PageRequest::first(2)).await.unwrap().next_cursor;
        assert!(m.list_submissions(&t, &other, &PageRequest { limit: 2, cursor: c }).await.is_err());
    }

    #[tokio::test]
    async fn readings_count_one_batch_write_per_25() {
        let m = MemoryStore::new();
        let (t, p, _) = ids();
        let rs: Vec<VitalReading> = (0..60)
            .map(|i| VitalReading {
                reading_id: crate::ids::ReadingId::parse(&format!("r{i}")).unwrap(),
                code: crate::vitals::VitalCode::HeartRate,
                value: crate::vitals::VitalValue::Number(70.0),
                observed_at: "2026-11-26T19:00:00Z".parse().unwrap(),
            })
            .collect();
        m.put_readings(&t, &p, &rs).await.unwrap();
        assert_eq!(m.requests.get("dynamodb.BatchWriteItem"), 3);
        assert_eq!(m.readings(&t, &p).len(), 60);
    }

    #[tokio::test]
    async fn readings_of_several_patients_pack_25_per_batch_write_across_patients() {
        // GIVEN 10 patients with 3 readings each (30 readings)
        let m = MemoryStore::new();
        let t = TrialId::parse("t1").unwrap();
        let patients: Vec<PatientId> = (0..10).map(|i| PatientId::parse(&format!("p{i}")).unwrap()).collect();
        let rs: Vec<VitalReading> = (0..3)
            .map(|i| VitalReading {
                reading_id: crate::ids::ReadingId::parse(&format!("r{i}")).unwrap(),
                code: crate::vitals::VitalCode::HeartRate,
                value: crate::vitals::VitalValue::Number(70.0),
                observed_at: "2026-11-26T19:00:00Z".parse().unwrap(),
            })
            .collect();
        let batch: Vec<PatientReadings<'_>> = patients.iter().map(|p| PatientReadings { trial: &t, patient: p, readings: &rs }).collect();
        // WHEN written as one batch
        m.put_readings_batch(&batch).await.unwrap();
        // THEN ceil(30/25) = 2 calls, not one per patient, and every reading is stored
        assert_eq!(m.requests.get("dynamodb.BatchWriteItem"), 2);
        assert!(patients.iter().all(|p| m.readings(&t, p).len() == 3));
    }

    fn state(version: u64, level: Option<RiskLevel>) -> VitalsState {
        let (t, p, _) = ids();
        let mut s = VitalsState::new(t, p);
        s.version = version;
        s.news2 = level.map(|risk_level| News2Result { score: 3, risk_level, components: vec![], missing: vec![], observed_at: None });
        s
    }

    #[tokio::test]
    async fn a_state_written_over_the_callers_read_costs_one_write_and_a_stale_read_loses() {
        // GIVEN a patient at low, version 1
        let m = MemoryStore::new();
        let v1 = state(1, Some(RiskLevel::Low));
        assert_eq!(m.put_state(None, &v1).await.unwrap(), StateWrite::Written);
        // WHEN one writer moves it to high over version 1, then another who also read version 1 tries medium
        let v2 = state(2, Some(RiskLevel::High));
        let winner = m.put_state(Some(&v1), &v2).await.unwrap();
        let loser = m.put_state(Some(&v1), &state(2, Some(RiskLevel::Medium))).await.unwrap();
        // THEN the first wins and the second is stale; each was one write and nothing was read
        assert_eq!((winner, loser), (StateWrite::Written, StateWrite::Stale));
        assert_eq!(m.requests.get("dynamodb.GetItem"), 0);
        assert_eq!((m.requests.get("dynamodb.PutItem"), m.requests.get("dynamodb.TransactWriteItems")), (0, 3));
        // AND the counters moved from the level the winner read
        assert_eq!(m.risk_level_counts(&ids().0).await.unwrap(), vec![(RiskLevel::High, 1)]);
        // AND a state that does not follow the previous one is refused
        assert!(matches!(m.put_state(Some(&v2), &state(4, None)).await, Err(Error::Internal(_))));
    }
}
