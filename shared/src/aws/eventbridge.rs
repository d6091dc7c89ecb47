//! The event bus adapter: EventBridge PutEvents, at most 10 entries a call.
//! PutEvents answers 200 even when entries were refused (throttling, an
//! internal error): each entry's result is checked, and only the accepted
//! ones are reported, so the refused stay pending for the sweeper.

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::errors::from_sdk;
use crate::domain_event::{DomainEvent, Published, MAX_PUT_EVENTS, SOURCE};
use crate::ports::EventPublisher;
use crate::ports::StorageError;

#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgePublisher {
    pub fn new(config: &aws_config::SdkConfig, bus_name: impl Into<String>) -> Self {
        Self { client: aws_sdk_eventbridge::Client::new(config), bus_name: bus_name.into() }
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Published, StorageError> {
        const OP: &str = "events.PutEvents";
        let mut published = Published::default();
        for batch in events.chunks(MAX_PUT_EVENTS) {
            let entries = batch
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus_name)
                        .source(SOURCE)
                        .detail_type(e.detail_type.as_str())
                        .detail(e.detail_json())
                        .time(aws_smithy_types::DateTime::from_millis(e.occurred_at.timestamp_millis()))
                        .build()
                })
                .collect::<Vec<_>>();
            let out = match self.client.put_events().set_entries(Some(entries)).send().await {
                Ok(out) => out,
                Err(e) if published.accepted.is_empty() => return Err(from_sdk(OP, &e)),
                // Earlier batches went out: report them, so their pending items go.
                Err(_) => {
                    published.failed += events.len() - published.accepted.len() - published.failed;
                    return Ok(published);
                }
            };
            let results = out.entries();
            for (i, event) in batch.iter().enumerate() {
                // Entries answer in request order; one with an event id was accepted.
                match results.get(i) {
                    Some(r) if r.event_id().is_some() && r.error_code().is_none() => published.accepted.push(event.event_id.clone()),
                    _ => published.failed += 1,
                }
            }
        }
        Ok(published)
    }
}
