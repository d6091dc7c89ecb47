//! Pending domain events on DynamoDB: one item per event, put by the state
//! change's own transaction, found again through the sparse `events` index
//! (`eventspk = EVENTS#<shard>`, `eventssk = <due>#<eventId>`) and deleted
//! once the bus has accepted the event. A healthy system leaves the index
//! empty between a commit and its inline publish, so a sweep reads little.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, Put, TransactWriteItem, WriteRequest};
use chrono::{DateTime, Utc};

use super::batch::{chunks, write_until_done, Backoff};
use super::item_codec::Shape;
use super::query::DueIndex;
use super::{s, DynamoStore, Item};
use crate::aws::errors::from_sdk;
use crate::domain_event::{DomainEvent, DueEvent, EventId};
use crate::ports::PendingEvents;
use crate::ports::StorageError;
use crate::timestamp;

pub(crate) const EVENTS_INDEX: &str = "events";
const DUE_EVENTS: DueIndex = DueIndex { name: EVENTS_INDEX, pk: "eventspk", sk: "eventssk", payload: "event" };
const EVENT_SK: &str = "EVENT";

fn event_pk(id: &EventId) -> String {
    let mut pk = String::with_capacity(6 + id.as_str().len());
    pk.push_str("EVENT#");
    pk.push_str(id.as_str());
    pk
}

fn events_pk(shard: u32) -> String {
    let mut pk = String::with_capacity(7 + 10);
    pk.push_str("EVENTS#");
    super::item_codec::push_u64(&mut pk, u64::from(shard));
    pk
}

pub(crate) fn pending_event_item(op: &'static str, event: &DomainEvent) -> Result<Item, StorageError> {
    let mut due = String::with_capacity(24 + 1 + event.event_id.as_str().len());
    timestamp::push(&mut due, event.first_due());
    due.push('#');
    due.push_str(event.event_id.as_str());
    // JSON text, not a tree of maps: the event's detail is a dozen attributes, each a key hashed
    // into the SDK's map, in every state change's transaction (issue 16). Only the sweep reads
    // it, through the index's projection, and `query_due` reads both forms. Sized for a whole
    // event, so the text is not copied as it grows.
    let mut text = Vec::with_capacity(512);
    serde_json::to_writer(&mut text, event).map_err(|_| StorageError::Corrupt(format!("{op}: event does not fit its stored form")))?;
    let text = String::from_utf8(text).map_err(|_| StorageError::Corrupt(format!("{op}: event does not fit its stored form")))?;
    static PENDING_EVENT: Shape<5> = Shape::new(["pk", "sk", "eventspk", "eventssk", "event"]);
    Ok(PENDING_EVENT.item([s(event_pk(&event.event_id)), s(EVENT_SK), s(events_pk(event.event_id.shard())), s(due), s(text)]))
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
        let due = self.query_due("dynamodb.Query(events)", &DUE_EVENTS, events_pk(shard), now, limit).await?;
        Ok(due.into_iter().map(|(event, due_at)| DueEvent { event, due_at }).collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PatientId, TrialId};
    use crate::news2::RiskLevel;
    use crate::vitals_state::VitalsState;

    #[test]
    fn a_pending_event_is_stored_as_json_text_and_both_forms_read_back() {
        // GIVEN a risk-level change's event
        let mut state = VitalsState::new(TrialId::parse("t1").unwrap(), PatientId::parse("p1").unwrap());
        state.version = 4;
        let at: DateTime<Utc> = "2026-11-27T10:00:00.123Z".parse().unwrap();
        let event = DomainEvent::risk_level_changed(&state, Some(RiskLevel::Low), RiskLevel::High, at, None);
        // WHEN its pending item is built THEN the payload is one text attribute
        let item = pending_event_item("t", &event).unwrap();
        let payload = item.get("event").cloned().unwrap();
        assert!(matches!(payload, aws_sdk_dynamodb::types::AttributeValue::S(_)), "{payload:?}");
        // AND the sweep reads it back as the same event
        assert_eq!(super::super::query::payload_record::<DomainEvent>("t", "event", payload).unwrap(), event);
        // AND an item written before the text form (the event's attribute tree) still reads
        let tree = super::super::item_codec::to_attribute_value(&event).unwrap();
        assert_eq!(super::super::query::payload_record::<DomainEvent>("t", "event", tree).unwrap(), event);
    }
}
