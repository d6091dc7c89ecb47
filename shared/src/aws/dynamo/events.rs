//! Pending domain events on DynamoDB: one item per event, put by the state
//! change's own transaction, found again through the sparse `events` index
//! (`eventspk = EVENTS#<shard>`, `eventssk = <due>#<eventId>`) and deleted
//! once the bus has accepted the event. A healthy system leaves the index
//! empty between a commit and its inline publish, so a sweep reads little.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, Put, TransactWriteItem, WriteRequest};
use chrono::{DateTime, Utc};

use super::batch::{chunks, write_until_done, Backoff};
use super::{s, DynamoStore, Item};
use crate::aws::errors::{codec, from_sdk};
use crate::domain_event::{DomainEvent, DueEvent, EventId};
use crate::ports::PendingEvents;
use crate::ports::StorageError;
use crate::timestamp;

pub(crate) const EVENTS_INDEX: &str = "events";
const EVENT_SK: &str = "EVENT";

fn event_pk(id: &EventId) -> String {
    format!("EVENT#{id}")
}

fn events_pk(shard: u32) -> String {
    format!("EVENTS#{shard}")
}

pub(crate) fn pending_event_item(op: &'static str, event: &DomainEvent) -> Result<Item, StorageError> {
    let mut item = Item::new();
    item.insert("pk".into(), s(event_pk(&event.event_id)));
    item.insert("sk".into(), s(EVENT_SK));
    item.insert("eventspk".into(), s(events_pk(event.event_id.shard())));
    item.insert("eventssk".into(), s(format!("{}#{}", timestamp::format(event.first_due()), event.event_id)));
    item.insert("event".into(), super::item_codec::to_attribute_value(event).map_err(codec(op, "event"))?);
    Ok(item)
}

impl DynamoStore {
    /// The pending items of `events`, for a state change's transaction. Put
    /// unconditionally: the same event (same id) written again by a retried
    /// change is the same item, and the change's own conditions decide
    /// whether anything commits.
    pub(crate) fn tx_events(&self, op: &'static str, events: &[DomainEvent]) -> Result<Vec<TransactWriteItem>, StorageError> {
        events
            .iter()
            .map(|e| {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(pending_event_item(op, e)?))
                    .build()
                    .map_err(super::build_error(op))?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect()
    }
}

impl DynamoStore {
    async fn delete_batch(&self, requests: Vec<WriteRequest>) -> Result<Vec<WriteRequest>, StorageError> {
        const OP: &str = "dynamodb.BatchWriteItem(events)";
        let out = self.client.batch_write_item().request_items(self.table.clone(), requests).send().await.map_err(|e| from_sdk(OP, &e))?;
        Ok(out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default())
    }
}

#[async_trait]
impl PendingEvents for DynamoStore {
    async fn due_events(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueEvent>, StorageError> {
        const OP: &str = "dynamodb.Query(events)";
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(EVENTS_INDEX)
            .key_condition_expression("eventspk = :p AND eventssk <= :now")
            .expression_attribute_values(":p", s(events_pk(shard)))
            .expression_attribute_values(":now", s(timestamp::format(now)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| from_sdk(OP, &e))?;
        let mut due = Vec::new();
        for item in out.items.unwrap_or_default() {
            let due_at = item
                .get("eventssk")
                .and_then(|v| v.as_s().ok())
                .and_then(|k| k.split('#').next())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| StorageError::Corrupt(format!("{OP}: malformed events key")))?;
            let event = item.get("event").cloned().ok_or_else(|| StorageError::Corrupt(format!("{OP}: pending item without its event")))?;
            let event: DomainEvent = serde_dynamo::from_attribute_value(event).map_err(codec(OP, "event"))?;
            due.push(DueEvent { event, due_at });
        }
        Ok(due)
    }

    async fn settle(&self, published: &[EventId]) -> Result<(), StorageError> {
        let requests: Vec<WriteRequest> = published
            .iter()
            .map(|id| {
                let delete = DeleteRequest::builder()
                    .key("pk", s(event_pk(id)))
                    .key("sk", s(EVENT_SK))
                    .build()
                    .map_err(super::build_error("dynamodb.BatchWriteItem(events)"))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<_, StorageError>>()?;
        let writes =
            chunks(requests).into_iter().map(|chunk| write_until_done(chunk, Backoff::default(), |batch| self.delete_batch(batch)));
        futures::future::try_join_all(writes).await.map(|_| ())
    }
}
