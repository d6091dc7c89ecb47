//! `AlertDelivery` and `AlertInbox` in memory: records, claims, attempts, acknowledgements.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{lock, page_of, MemoryStore};
use crate::alert::{Alert, AlertRecord, AlertStatus, Claim, DeliveryAttempt};
use crate::audit::{Actor, AuditEntry};
use crate::domain_event::DomainEvent;
use crate::ids::{AlertId, PatientId, TrialId};
use crate::outbox::{shard_of, DueAlert};
use crate::page::{Page, PageRequest};
use crate::ports::StorageError;
use crate::ports::{AlertDelivery, AlertInbox, AlertOutbox};

#[async_trait]
impl AlertOutbox for MemoryStore {
    async fn due_alerts(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueAlert>, StorageError> {
        self.faults.check("due_alerts")?;
        self.requests.add("dynamodb.Query", 1);
        let t = lock(&self.t);
        let mut due: Vec<DueAlert> = t
            .outbox
            .iter()
            .filter(|((_, id), at)| shard_of(id) == shard && **at <= now)
            .filter_map(|(key, at)| t.alerts.get(key).map(|r| DueAlert { alert: r.alert.clone(), due_at: *at }))
            .collect();
        due.sort_by_key(|d| (d.due_at, d.alert.alert_id.clone()));
        due.truncate(limit);
        Ok(due)
    }

    async fn defer(&self, due: &DueAlert, until: DateTime<Utc>) -> Result<(), StorageError> {
        self.faults.check("defer")?;
        self.requests.add("dynamodb.UpdateItem", 1);
        let mut t = lock(&self.t);
        if let Some(at) = t.outbox.get_mut(&(due.alert.trial_id.clone(), due.alert.alert_id.clone())) {
            if *at == due.due_at {
                *at = until;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl AlertDelivery for MemoryStore {
    async fn claim(&self, alert: &Alert, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Claim, StorageError> {
        self.faults.check("claim")?;
        self.requests.add("dynamodb.UpdateItem", 1);
        let mut t = lock(&self.t);
        let key = (alert.trial_id.clone(), alert.alert_id.clone());
        let claimable = t.alerts.get(&key).is_none_or(|r| r.status == AlertStatus::Pending && r.lease_until.is_none_or(|u| u < now));
        if claimable {
            t.outbox.remove(&key);
        }
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

    async fn record_attempt(&self, trial: &TrialId, id: &AlertId, attempt: &DeliveryAttempt) -> Result<(), StorageError> {
        self.faults.check("record_attempt")?;
        self.requests.add("dynamodb.UpdateItem", 1);
        let mut t = lock(&self.t);
        let r = t.alerts.get_mut(&(trial.clone(), id.clone())).ok_or(StorageError::NotFound("alert"))?;
        r.attempts.push(attempt.clone());
        Ok(())
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
        let result: Result<(), StorageError> = async {
            self.faults.check("finish")?;
            // As the adapter: a consistent read of the chain head, then one transaction.
            self.requests.add("dynamodb.GetItem", 1);
            self.requests.add("dynamodb.TransactWriteItems", 1);
            let mut t = lock(&self.t);
            let r = t.alerts.get_mut(&(trial.clone(), id.clone())).ok_or(StorageError::NotFound("alert"))?;
            r.status = status;
            r.lease_until = None;
            if status == AlertStatus::Delivered {
                r.delivered_at = Some(at);
            }
            t.append(audit);
            Ok(())
        }
        .await;
        if result.is_ok() {
            self.add_pending_events(events);
        }
        result
    }

    async fn release(&self, trial: &TrialId, id: &AlertId) -> Result<(), StorageError> {
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
}

#[async_trait]
impl AlertInbox for MemoryStore {
    async fn get_alert(&self, trial: &TrialId, id: &AlertId) -> Result<Option<AlertRecord>, StorageError> {
        self.faults.check("get_alert")?;
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.t).alerts.get(&(trial.clone(), id.clone())).cloned())
    }

    async fn list_alerts(&self, trial: &TrialId, patient: &PatientId, page: &PageRequest) -> Result<Page<AlertRecord>, StorageError> {
        self.faults.check("list_alerts")?;
        self.requests.add("dynamodb.Query", 1);
        let mut items: Vec<AlertRecord> =
            lock(&self.t).alerts.values().filter(|r| &r.alert.trial_id == trial && &r.alert.patient_id == patient).cloned().collect();
        items.sort_by(|a, b| (b.alert.created_at, &b.alert.alert_id).cmp(&(a.alert.created_at, &a.alert.alert_id)));
        page_of(&items, &format!("ALERTS#{trial}#{patient}"), page)
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
        let result: Result<AlertRecord, StorageError> = async {
            self.faults.check("acknowledge")?;
            self.requests.add("dynamodb.TransactWriteItems", 1);
            // The chain head's read before it, the record's after it.
            self.requests.add("dynamodb.GetItem", 2);
            let mut t = lock(&self.t);
            let r = t.alerts.get_mut(&(trial.clone(), id.clone())).ok_or(StorageError::NotFound("alert"))?;
            if r.status == AlertStatus::Acknowledged {
                return Err(StorageError::conflict("alert-already-acknowledged", "the alert was already acknowledged"));
            }
            r.status = AlertStatus::Acknowledged;
            r.acknowledged_at = Some(at);
            r.acknowledged_by = Some(by.clone());
            r.ack_note = note.map(str::to_owned);
            r.lease_until = None;
            let out = r.clone();
            t.append(audit);
            // Mark the state when this is its last alert, as the adapter's transaction does.
            if let Some(patient) = news2_patient {
                // The adapter's update on the item: `SET lastAlertAckedAt = :at ADD #v :one`
                // under `lastAlertId = :id`.
                let state = t
                    .states
                    .get_mut(&(trial.clone(), patient.clone()))
                    .filter(|i| crate::aws::dynamo::attr_str(i, "lastAlertId") == Some(id.as_str()));
                match state {
                    Some(item) => {
                        let version = crate::aws::dynamo::attr_u64(item, "version").unwrap_or(0) + 1;
                        item.insert("lastAlertAckedAt".to_owned(), AttributeValue::S(crate::timestamp::format(at)));
                        item.insert("version".to_owned(), AttributeValue::N(version.to_string()));
                    }
                    // The adapter retries the transaction without the mark.
                    None => self.requests.add("dynamodb.TransactWriteItems", 1),
                }
            }
            Ok(out)
        }
        .await;
        if result.is_ok() {
            self.add_pending_events(events);
        }
        result
    }
}

/// Read by [`ReportFigures`](crate::ports::ReportFigures).
impl MemoryStore {
    pub(crate) async fn read_alerts_between(
        &self,
        trial: &TrialId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AlertRecord>, StorageError> {
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
}
