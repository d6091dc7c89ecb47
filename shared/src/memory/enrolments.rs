//! `EnrolmentStore` in memory, with the per-site counters the adapter keeps.

use async_trait::async_trait;

use super::{lock, MemoryStore};
use crate::audit::AuditEntry;
use crate::domain_event::DomainEvent;
use crate::enrolment::{Enrolment, EnrolmentCount, EnrolmentStatus};
use crate::ids::{PatientId, TrialId};
use crate::ports::StorageError;
use crate::ports::{EnrolmentStore, Upsert};

#[async_trait]
impl EnrolmentStore for MemoryStore {
    async fn get_enrolment(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<Enrolment>, StorageError> {
        self.faults.check("get_enrolment")?;
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.t).enrolment(trial, patient))
    }

    async fn put_enrolment(&self, e: &Enrolment, audit: &AuditEntry, events: &[DomainEvent]) -> Result<Upsert, StorageError> {
        self.faults.check("put_enrolment")?;
        // The adapter reads the item (consistently) for its record and chain head first.
        self.requests.add("dynamodb.GetItem", 1);
        self.write_enrolment(e, audit, events)
    }

    async fn put_enrolment_after_read(
        &self,
        e: &Enrolment,
        audit: &AuditEntry,
        read: Option<&Enrolment>,
        events: &[DomainEvent],
    ) -> Result<Upsert, StorageError> {
        self.faults.check("put_enrolment")?;
        // The adapter starts from the caller's read; a stale one would cost a re-read,
        // which a single in-memory table never has.
        let _ = read;
        self.write_enrolment(e, audit, events)
    }
}

/// Read by [`ReportFigures`](crate::ports::ReportFigures).
impl MemoryStore {
    pub(crate) async fn read_enrolment_counts(&self, trial: &TrialId) -> Result<Vec<EnrolmentCount>, StorageError> {
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

impl MemoryStore {
    fn write_enrolment(&self, e: &Enrolment, audit: &AuditEntry, events: &[DomainEvent]) -> Result<Upsert, StorageError> {
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
        new.audit_head = Default::default();
        t.enrolments.insert(key, new);
        t.append(audit);
        drop(t);
        // In the adapter's transaction: written only with the change.
        self.add_pending_events(events);
        Ok(if old.is_some() { Upsert::Updated } else { Upsert::Created })
    }
}
