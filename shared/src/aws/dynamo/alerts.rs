//! Alert records: claim/lease for exactly-one delivery owner, attempts,
//! completion, acknowledgement, and the two listing indexes.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, SubsecRound, Utc};

use super::query::query_pages;
use super::{
    attr_str, chain_refusal, condition_failed, decode_position, encode_position, from_record, page_limit, s, DynamoStore, Expr, Item,
    Transacted, GSI1, GSI1_KEY, GSI2,
};
use crate::alert::{Alert, AlertRecord, AlertStatus, Claim, DeliveryAttempt};
use crate::audit::append::{append_with_retry, Extension};
use crate::audit::{Actor, AuditEntry};
use crate::aws::errors::from_sdk;
use crate::domain_event::DomainEvent;
use crate::ids::{AlertId, PatientId, TrialId};
use crate::page::{Page, PageRequest};
use crate::ports::StorageError;
use crate::ports::{AlertDelivery, AlertInbox};
use crate::timestamp;

/// Claims re-read and retry when a lease expired between the failed write and the read.
const CLAIM_RETRIES: usize = 3;

pub(super) fn alert_pk(trial: &TrialId) -> String {
    format!("ALERT#{trial}")
}

pub(super) fn index_sk(alert: &Alert) -> String {
    format!("{}#{}", timestamp::format(alert.created_at), alert.alert_id)
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool {
    aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e) == Some("ConditionalCheckFailedException")
}

impl DynamoStore {
    async fn alert_item(&self, trial: &TrialId, id: &AlertId, consistent: bool) -> Result<Option<Item>, StorageError> {
        self.get("dynamodb.GetItem(alert)", alert_pk(trial), id.to_string(), consistent).await
    }

    /// What a failed claim met: done, or leased by a live owner. `None` when
    /// the lease has lapsed since (the caller tries again).
    fn claim_refusal(item: &Item, now: DateTime<Utc>) -> Result<Option<Claim>, StorageError> {
        let record: AlertRecord = from_record("dynamodb.GetItem(alert)", "alert", item.clone())?;
        Ok(match (record.status, record.lease_until) {
            // Leases are stored at millisecond precision, like the claim's `:now`.
            (AlertStatus::Pending, Some(lease_until)) if lease_until >= now.trunc_subsecs(3) => Some(Claim::InProgress { lease_until }),
            (AlertStatus::Pending, _) => None,
            (done, _) => Some(Claim::AlreadyDone(done)),
        })
    }
}

#[async_trait]
impl AlertDelivery for DynamoStore {
    async fn claim(&self, alert: &Alert, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Claim, StorageError> {
        const OP: &str = "dynamodb.UpdateItem(alert claim)";
        let alert_value: aws_sdk_dynamodb::types::AttributeValue =
            serde_dynamo::to_attribute_value(alert).map_err(crate::aws::errors::codec(OP, "alert"))?;
        let sk = index_sk(alert);
        let expr = Expr::default()
            .name("#status", "status")
            .value(":alert", alert_value)
            .value(":pending", s(AlertStatus::Pending.as_str()))
            .value(":none", aws_sdk_dynamodb::types::AttributeValue::L(vec![]))
            .value(":lease", s(timestamp::format(lease_until)))
            .value(":now", s(timestamp::format(now)))
            .value(":g1pk", s(format!("ALERTS#{}#{}", alert.trial_id, alert.patient_id)))
            .value(":g2pk", s(format!("ALERTS#{}", alert.trial_id)))
            .value(":gsk", s(sk));
        // Creates the record on first sight, or takes over a lapsed (or
        // released) lease, or an outbox item the submission wrote. Fields set
        // once keep their first value, so a redelivered message cannot rewrite
        // history. Removing the outbox keys takes the alert out of the
        // sweeper's index: a dispatcher has it now, and SQS redelivers it.
        let update = "SET alert = if_not_exists(alert, :alert), #status = if_not_exists(#status, :pending), \
                      attempts = if_not_exists(attempts, :none), leaseUntil = :lease, \
                      gsi1pk = if_not_exists(gsi1pk, :g1pk), gsi1sk = if_not_exists(gsi1sk, :gsk), \
                      gsi2pk = if_not_exists(gsi2pk, :g2pk), gsi2sk = if_not_exists(gsi2sk, :gsk) \
                      REMOVE outboxpk, outboxsk";
        // Lease times are fixed-width UTC strings, so `<` is time order.
        let condition = "attribute_not_exists(pk) OR (#status = :pending AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now))";
        for _ in 0..CLAIM_RETRIES {
            let res = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(alert_pk(&alert.trial_id)))
                .key("sk", s(alert.alert_id.as_str()))
                .update_expression(update)
                .condition_expression(condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match res {
                Ok(out) => {
                    let item = out.attributes.ok_or_else(|| StorageError::Corrupt(format!("{OP}: no attributes returned")))?;
                    return Ok(Claim::Acquired(from_record(OP, "alert", item)?));
                }
                Err(e) if is_condition_failure(&e) => {
                    let Some(item) = self.alert_item(&alert.trial_id, &alert.alert_id, true).await? else { continue };
                    if let Some(refusal) = Self::claim_refusal(&item, now)? {
                        return Ok(refusal);
                    }
                }
                Err(e) => return Err(from_sdk(OP, &e)),
            }
        }
        Err(StorageError::Unavailable(format!("{OP}: concurrent claimers")))
    }

    async fn record_attempt(&self, trial: &TrialId, id: &AlertId, attempt: &DeliveryAttempt) -> Result<(), StorageError> {
        const OP: &str = "dynamodb.UpdateItem(alert attempt)";
        let attempt = serde_dynamo::to_attribute_value(attempt).map_err(crate::aws::errors::codec(OP, "attempt"))?;
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(alert_pk(trial)))
            .key("sk", s(id.as_str()))
            .update_expression("SET attempts = list_append(if_not_exists(attempts, :none), :one)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":none", aws_sdk_dynamodb::types::AttributeValue::L(vec![]))
            .expression_attribute_values(":one", aws_sdk_dynamodb::types::AttributeValue::L(vec![attempt]))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StorageError::NotFound("alert")),
            Err(e) => Err(from_sdk(OP, &e)),
        }
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
        const OP: &str = "dynamodb.TransactWriteItems(alert finish)";
        let mut expr = Expr::default()
            .name("#status", "status")
            .value(":status", s(status.as_str()))
            .value(":pending", s(AlertStatus::Pending.as_str()));
        let update = if status == AlertStatus::Delivered {
            expr = expr.value(":at", s(timestamp::format(at)));
            "SET #status = :status, deliveredAt = :at REMOVE leaseUntil"
        } else {
            "SET #status = :status REMOVE leaseUntil"
        };
        let alert_update =
            self.tx_update(OP, alert_pk(trial), id.to_string(), update, Some("attribute_exists(pk) AND #status = :pending"), expr)?;
        let event_puts = self.tx_events(OP, events)?;
        let chain = &audit.chain_id();
        append_with_retry(
            None,
            || self.read_head(trial, chain),
            |head| {
                let (alert_update, event_puts) = (alert_update.clone(), event_puts.clone());
                async move {
                    let mut linked = audit.clone();
                    linked.link(chain, &head);
                    let ext = Extension::of(std::slice::from_ref(&linked))?;
                    // [alert, audit, head, events..]
                    let mut tx = vec![alert_update, self.tx_audit(OP, &linked)?, self.tx_head(OP, trial, &ext)?];
                    tx.extend(event_puts);
                    match self.transact(OP, tx).await? {
                        Transacted::Committed => Ok(()),
                        Transacted::Cancelled(r) if condition_failed(&r, 0) => match super::old_item(&r, 0) {
                            // Finished already (a redelivery whose earlier run completed,
                            // or staff acknowledged first): nothing left to record.
                            Some(old) if attr_str(&old, "status") != Some(AlertStatus::Pending.as_str()) => Ok(()),
                            Some(_) => Err(StorageError::Corrupt(format!("{OP}: pending alert refused the finish"))),
                            None => Err(StorageError::NotFound("alert")),
                        },
                        Transacted::Cancelled(r) => Err(chain_refusal(OP, &r, 2, 1)),
                    }
                }
            },
        )
        .await
    }

    async fn release(&self, trial: &TrialId, id: &AlertId) -> Result<(), StorageError> {
        const OP: &str = "dynamodb.UpdateItem(alert release)";
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(alert_pk(trial)))
            .key("sk", s(id.as_str()))
            .update_expression("REMOVE leaseUntil")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(AlertStatus::Pending.as_str()))
            .send()
            .await;
        match res {
            // Absent or already finished: there is no lease to give back.
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(from_sdk(OP, &e)),
        }
    }
}

#[async_trait]
impl AlertInbox for DynamoStore {
    async fn get_alert(&self, trial: &TrialId, id: &AlertId) -> Result<Option<AlertRecord>, StorageError> {
        self.alert_item(trial, id, false).await?.map(|i| from_record("dynamodb.GetItem(alert)", "alert", i)).transpose()
    }

    async fn list_alerts(&self, trial: &TrialId, patient: &PatientId, page: &PageRequest) -> Result<Page<AlertRecord>, StorageError> {
        const OP: &str = "dynamodb.Query(patient alerts)";
        let partition = format!("ALERTS#{trial}#{patient}");
        let start = decode_position(page.cursor.as_deref(), GSI1_KEY, "gsi1pk", &partition)?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", s(partition))
            .scan_index_forward(false)
            .limit(page_limit(page.limit))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| from_sdk(OP, &e))?;
        let items = out.items.unwrap_or_default().into_iter().map(|i| from_record(OP, "alert", i)).collect::<Result<_, _>>()?;
        Ok(Page { items, next_cursor: encode_position(OP, out.last_evaluated_key)? })
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
        const OP: &str = "dynamodb.TransactWriteItems(alert ack)";
        let event_puts = self.tx_events(OP, events)?;
        let by = serde_dynamo::to_attribute_value(by).map_err(crate::aws::errors::codec(OP, "actor"))?;
        let mut expr = Expr::default()
            .name("#status", "status")
            .value(":acked", s(AlertStatus::Acknowledged.as_str()))
            .value(":at", s(timestamp::format(at)))
            .value(":by", by);
        let mut update = String::from("SET #status = :acked, acknowledgedAt = :at, acknowledgedBy = :by");
        if let Some(note) = note {
            expr = expr.value(":note", s(note));
            update.push_str(", ackNote = :note");
        }
        // An acknowledgement ends the alert's life: no delivery lease survives it.
        update.push_str(" REMOVE leaseUntil");
        let alert_update =
            self.tx_update(OP, alert_pk(trial), id.to_string(), &update, Some("attribute_exists(pk) AND #status <> :acked"), expr)?;
        let mark = news2_patient.map(|p| self.state_ack_mark(OP, trial, p, id, at)).transpose()?;
        let chain = &audit.chain_id();
        append_with_retry(
            None,
            || self.read_head(trial, chain),
            |head| {
                let (alert_update, mut mark, event_puts) = (alert_update.clone(), mark.clone(), event_puts.clone());
                async move {
                    let mut linked = audit.clone();
                    linked.link(chain, &head);
                    let ext = Extension::of(std::slice::from_ref(&linked))?;
                    let (audit_put, head_update) = (self.tx_audit(OP, &linked)?, self.tx_head(OP, trial, &ext)?);
                    loop {
                        // [alert, audit, head, mark?, events..]
                        let mut tx = vec![alert_update.clone(), audit_put.clone(), head_update.clone()];
                        tx.extend(mark.clone());
                        tx.extend(event_puts.clone());
                        match self.transact(OP, tx).await? {
                            Transacted::Committed => return Ok(()),
                            Transacted::Cancelled(r) if condition_failed(&r, 0) => {
                                return Err(match super::old_item(&r, 0) {
                                    Some(_) => StorageError::conflict("alert-already-acknowledged", "the alert was already acknowledged"),
                                    None => StorageError::NotFound("alert"),
                                });
                            }
                            // A newer alert (or no state item) for the patient: this
                            // acknowledgement clears nothing, so it is recorded without the
                            // mark. Nothing was written by the cancelled attempt.
                            Transacted::Cancelled(r) if mark.is_some() && condition_failed(&r, 3) && !condition_failed(&r, 2) => {
                                mark = None
                            }
                            Transacted::Cancelled(r) => return Err(chain_refusal(OP, &r, 2, 1)),
                        }
                    }
                }
            },
        )
        .await?;
        let item = self.alert_item(trial, id, true).await?.ok_or(StorageError::NotFound("alert"))?;
        from_record(OP, "alert", item)
    }
}

/// Read by [`ReportFigures`](crate::ports::ReportFigures).
impl DynamoStore {
    pub(crate) async fn read_alerts_between(
        &self,
        trial: &TrialId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AlertRecord>, StorageError> {
        const OP: &str = "dynamodb.Query(trial alerts)";
        let mut records = Vec::new();
        if from >= to {
            return Ok(records);
        }
        // Index keys are `<createdAt>#<id>`: `from` itself sorts before every
        // key at `from`, and `to` before every key at `to`, so BETWEEN gives
        // exactly [from, to).
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI2)
            .key_condition_expression("gsi2pk = :p AND gsi2sk BETWEEN :from AND :to")
            .expression_attribute_values(":p", s(format!("ALERTS#{trial}")))
            .expression_attribute_values(":from", s(timestamp::format(from)))
            .expression_attribute_values(":to", s(timestamp::format(to)));
        query_pages(OP, query, |items| {
            for item in items {
                records.push(from_record(OP, "alert", item)?);
            }
            Ok(())
        })
        .await?;
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_by_creation_time_then_id() {
        let at = |t: &str| -> DateTime<Utc> { t.parse().unwrap() };
        let alert = |t: &str, id: &str| Alert {
            alert_id: AlertId::parse(id).unwrap(),
            trial_id: TrialId::parse("t").unwrap(),
            patient_id: PatientId::parse("p").unwrap(),
            site_id: crate::ids::SiteId::parse("s").unwrap(),
            level: crate::news2::RiskLevel::High,
            reason: crate::alert::AlertReason::News2 { score: 7, components: vec![] },
            created_at: at(t),
            correlation_id: None,
        };
        // Whole seconds and fractions compare correctly once fixed-width.
        let a = index_sk(&alert("2026-11-26T20:00:00Z", "z"));
        let b = index_sk(&alert("2026-11-26T20:00:00.500Z", "a"));
        assert!(a < b, "{a} < {b}");
        // The [from, to) bounds used by alerts_between: a bound equal to the
        // creation time sorts just before the key, so `from` includes it and `to` excludes it.
        let bound = timestamp::format(at("2026-11-26T20:00:00Z"));
        assert!(bound < a && a < timestamp::format(at("2026-11-26T20:00:00.001Z")));
    }
}
