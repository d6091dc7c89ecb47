//! `SubmissionLedger` in memory: idempotent records and day counters.

use async_trait::async_trait;
use chrono::NaiveDate;

use super::{adapter, lock, page_of, MemoryStore};
use crate::alert::{Alert, AlertRecord, AlertStatus};
use crate::audit::append::Extension;
use crate::audit::AuditEntry;
use crate::domain_event::DomainEvent;
use crate::enrolment::EnrolmentStatus;
use crate::ids::{PatientId, SubmissionId, TrialId};
use crate::outbox::first_due;
use crate::page::{Page, PageRequest};
use crate::ports::StorageError;
use crate::ports::{RecordOutcome, SubmissionLedger};
use crate::submission::{DailySiteCount, StoredSubmission};

#[async_trait]
impl SubmissionLedger for MemoryStore {
    async fn record_submission(
        &self,
        s: &StoredSubmission,
        day: &str,
        audit: &[AuditEntry],
        alerts: &[Alert],
        events: &[DomainEvent],
    ) -> Result<RecordOutcome, StorageError> {
        let result: Result<RecordOutcome, StorageError> = async {
            self.faults.check("record_submission")?;
            // The adapter's transaction, built as it builds it (first try).
            let ext = Extension::of(audit)?;
            std::hint::black_box(adapter().submission_transaction(
                "dynamodb.TransactWriteItems(submission)",
                s,
                day,
                audit,
                &ext,
                alerts,
                events,
                true,
            )?);
            self.requests.add("dynamodb.TransactWriteItems", 1);
            let mut t = lock(&self.t);
            let guard = (s.trial_id.clone(), s.patient_id.clone(), s.submission_id);
            if let Some(existing) = t.submissions.get(&guard) {
                let existing = existing.clone();
                self.requests.add("dynamodb.GetItem", 1);
                return Ok(RecordOutcome::Duplicate(existing));
            }
            let key = (s.trial_id.clone(), s.patient_id.clone());
            // As the adapter's enrolment condition: enrolled first, then the head.
            let enrolled = t.enrolments.get(&key).is_some_and(|e| e.status == EnrolmentStatus::Enrolled);
            let ext = if enrolled { Some(t.check_head(&s.trial_id, audit, self.faults.fire(super::RACE_APPENDS))?) } else { None };
            match t.enrolments.get_mut(&key) {
                Some(e) if e.status == EnrolmentStatus::Enrolled => {
                    e.submission_count += 1;
                    let at = crate::timestamp::format(s.completed_at);
                    if e.last_submission_at.as_deref().is_none_or(|l| l < at.as_str()) {
                        e.last_submission_at = Some(at);
                    }
                }
                _ => return Err(StorageError::conflict("patient-not-enrolled", "the patient is not enrolled in this trial")),
            }
            t.submissions.insert(guard, s.clone());
            *t.daily.entry((s.trial_id.clone(), day.to_owned(), s.site_id.clone(), s.questionnaire_id.to_string())).or_default() += 1;
            if let Some(ext) = ext {
                t.append_checked(&s.trial_id, audit, ext);
            }
            for alert in alerts {
                let key = (alert.trial_id.clone(), alert.alert_id.clone());
                t.alerts.insert(
                    key.clone(),
                    AlertRecord {
                        alert: alert.clone(),
                        status: AlertStatus::Pending,
                        attempts: vec![],
                        lease_until: None,
                        delivered_at: None,
                        acknowledged_at: None,
                        acknowledged_by: None,
                        ack_note: None,
                    },
                );
                t.outbox.insert(key, first_due(alert));
            }
            Ok(RecordOutcome::Recorded)
        }
        .await;
        if matches!(result, Ok(RecordOutcome::Recorded)) {
            self.add_pending_events(events);
        }
        result
    }

    async fn get_submission(
        &self,
        trial: &TrialId,
        patient: &PatientId,
        id: &SubmissionId,
    ) -> Result<Option<StoredSubmission>, StorageError> {
        self.faults.check("get_submission")?;
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.t).submissions.get(&(trial.clone(), patient.clone(), *id)).cloned())
    }

    async fn list_submissions(
        &self,
        trial: &TrialId,
        patient: &PatientId,
        page: &PageRequest,
    ) -> Result<Page<StoredSubmission>, StorageError> {
        self.faults.check("list_submissions")?;
        self.requests.add("dynamodb.Query", 1);
        let mut items: Vec<StoredSubmission> =
            lock(&self.t).submissions.values().filter(|s| &s.trial_id == trial && &s.patient_id == patient).cloned().collect();
        items.sort_by_key(|s| std::cmp::Reverse((s.completed_at, s.submission_id)));
        page_of(&items, &format!("PATIENT#{trial}#{patient}"), page)
    }
}

/// Read by [`ReportFigures`](crate::ports::ReportFigures).
impl MemoryStore {
    pub(crate) async fn read_daily_counts(
        &self,
        trial: &TrialId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailySiteCount>, StorageError> {
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
