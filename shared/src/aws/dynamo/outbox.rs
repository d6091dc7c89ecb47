//! The PRO-alert outbox on DynamoDB: pending alert items written by the
//! submission transaction, found again through the sparse `outbox` index
//! (`outboxpk = OUTBOX#<shard>`, `outboxsk = <due>#<alertId>`). Only items
//! carrying both keys are in the index, and the dispatcher's claim removes
//! them, so a Query reads only alerts no dispatcher has seen: never a Scan,
//! never the alerts already delivered.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::alerts::{alert_pk, index_sk};
use super::query::DueIndex;
use super::{s, to_record, DynamoStore, Item};
use crate::alert::{Alert, AlertRecord, AlertStatus};
use crate::aws::errors::from_sdk;
use crate::outbox::{first_due, shard_of, DueAlert};
use crate::ports::AlertOutbox;
use crate::ports::StorageError;
use crate::timestamp;

pub(crate) const OUTBOX_INDEX: &str = "outbox";
const DUE_ALERTS: DueIndex = DueIndex { name: OUTBOX_INDEX, pk: "outboxpk", sk: "outboxsk", payload: "alert" };

fn outbox_pk(shard: u32) -> String {
    format!("OUTBOX#{shard}")
}

fn outbox_sk(due: DateTime<Utc>, alert: &Alert) -> String {
    format!("{}#{}", timestamp::format(due), alert.alert_id)
}

/// The alert as the dispatcher's claim expects to find it: pending, no lease,
/// no attempts, listed on both alert indexes, and due in the outbox.
pub(crate) fn pending_alert_item(op: &'static str, alert: &Alert) -> Result<Item, StorageError> {
    let record = AlertRecord {
        alert: alert.clone(),
        status: AlertStatus::Pending,
        attempts: vec![],
        lease_until: None,
        delivered_at: None,
        acknowledged_at: None,
        acknowledged_by: None,
        ack_note: None,
    };
    let listed = index_sk(alert);
    to_record(
        op,
        "alert",
        &record,
        [
            ("pk", alert_pk(&alert.trial_id)),
            ("sk", alert.alert_id.to_string()),
            ("gsi1pk", format!("ALERTS#{}#{}", alert.trial_id, alert.patient_id)),
            ("gsi1sk", listed.clone()),
            ("gsi2pk", format!("ALERTS#{}", alert.trial_id)),
            ("gsi2sk", listed),
            ("outboxpk", outbox_pk(shard_of(&alert.alert_id))),
            ("outboxsk", outbox_sk(first_due(alert), alert)),
        ],
    )
}

#[async_trait]
impl AlertOutbox for DynamoStore {
    async fn due_alerts(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueAlert>, StorageError> {
        let due = self.query_due("dynamodb.Query(outbox)", &DUE_ALERTS, outbox_pk(shard), now, limit).await?;
        Ok(due.into_iter().map(|(alert, due_at)| DueAlert { alert, due_at }).collect())
    }

    async fn defer(&self, due: &DueAlert, until: DateTime<Utc>) -> Result<(), StorageError> {
        const OP: &str = "dynamodb.UpdateItem(outbox defer)";
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(alert_pk(&due.alert.trial_id)))
            .key("sk", s(due.alert.alert_id.as_str()))
            .update_expression("SET outboxsk = :next")
            // A claim removed the key, or another sweep moved it: leave it.
            .condition_expression("outboxsk = :seen")
            .expression_attribute_values(":seen", s(outbox_sk(due.due_at, &due.alert)))
            .expression_attribute_values(":next", s(outbox_sk(until, &due.alert)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e) == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(from_sdk(OP, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::from_record;
    use super::*;
    use crate::ids::{AlertId, PatientId, SiteId, TrialId};

    #[test]
    fn a_pending_alert_item_is_due_after_the_grace_and_decodes_as_a_pending_record() {
        let alert = Alert {
            alert_id: AlertId::parse("al-1").unwrap(),
            trial_id: TrialId::parse("t").unwrap(),
            patient_id: PatientId::parse("p").unwrap(),
            site_id: SiteId::parse("s").unwrap(),
            level: crate::news2::RiskLevel::High,
            reason: crate::alert::AlertReason::News2 { score: 7, components: vec![] },
            created_at: "2026-11-27T10:00:00Z".parse().unwrap(),
            correlation_id: None,
        };
        let item = pending_alert_item("op", &alert).unwrap();
        assert_eq!(item["outboxsk"].as_s().unwrap(), &format!("{}#al-1", timestamp::format("2026-11-27T10:00:30Z".parse().unwrap())));
        assert!(!item.contains_key("leaseUntil"), "an unleased item is claimable at once");
        let record: AlertRecord = from_record("op", "alert", item).unwrap();
        assert_eq!((record.status, record.alert), (AlertStatus::Pending, alert));
    }
}
