//! `PendingEvents` in memory, and an in-memory event bus that records what
//! it accepted (and can refuse entries, as PutEvents does under throttling).

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{lock, Faults, MemoryStore};
use crate::domain_event::{DomainEvent, DueEvent, EventId, Published, MAX_PUT_EVENTS};
use crate::ports::StorageError;
use crate::ports::{EventPublisher, PendingEvents};

impl MemoryStore {
    /// Called at the commit of a state change that carries events.
    pub(super) fn add_pending_events(&self, events: &[DomainEvent]) {
        let mut t = lock(&self.t);
        for e in events {
            t.pending_events.insert(e.event_id.clone(), (e.clone(), e.first_due()));
        }
    }

    /// Every pending event, in id order.
    pub fn pending_events(&self) -> Vec<DomainEvent> {
        lock(&self.t).pending_events.values().map(|(e, _)| e.clone()).collect()
    }
}

#[async_trait]
impl PendingEvents for MemoryStore {
    async fn due_events(&self, shard: u32, now: DateTime<Utc>, limit: usize) -> Result<Vec<DueEvent>, StorageError> {
        self.faults.check("due_events")?;
        self.requests.add("dynamodb.Query", 1);
        let t = lock(&self.t);
        let mut due: Vec<DueEvent> = t
            .pending_events
            .values()
            .filter(|(e, at)| e.event_id.shard() == shard && *at <= now)
            .map(|(e, at)| DueEvent { event: e.clone(), due_at: *at })
            .collect();
        due.sort_by(|a, b| (a.due_at, &a.event.event_id).cmp(&(b.due_at, &b.event.event_id)));
        due.truncate(limit);
        Ok(due)
    }

    async fn settle(&self, published: &[EventId]) -> Result<(), StorageError> {
        if published.is_empty() {
            return Ok(());
        }
        self.faults.check("settle")?;
        self.requests.add("dynamodb.BatchWriteItem", published.len().div_ceil(25) as u64);
        let mut t = lock(&self.t);
        for id in published {
            t.pending_events.remove(id);
        }
        Ok(())
    }
}

/// The bus: every accepted event, in order.
#[derive(Default)]
pub struct MemoryEventBus {
    accepted: Mutex<Vec<DomainEvent>>,
    faults: Faults,
    refuse: Mutex<usize>,
    pub calls: Mutex<u64>,
}

impl MemoryEventBus {
    pub fn new() -> Self {
        Self::default()
    }
    /// Fails the next `times` PutEvents calls outright.
    pub fn fail_next(&self, times: u32) {
        lock(&self.faults.0).insert("publish", times);
    }
    /// Refuses the next `entries` entries (FailedEntryCount > 0, the call succeeds).
    pub fn refuse_entries(&self, entries: usize) {
        *lock(&self.refuse) = entries;
    }
    pub fn accepted(&self) -> Vec<DomainEvent> {
        lock(&self.accepted).clone()
    }
}

#[async_trait]
impl EventPublisher for MemoryEventBus {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Published, StorageError> {
        self.faults.check("publish")?;
        *lock(&self.calls) += events.len().div_ceil(MAX_PUT_EVENTS) as u64;
        let mut published = Published::default();
        for e in events {
            let mut refuse = lock(&self.refuse);
            if *refuse > 0 {
                *refuse -= 1;
                published.failed += 1;
            } else {
                lock(&self.accepted).push(e.clone());
                published.accepted.push(e.event_id.clone());
            }
        }
        Ok(published)
    }
}
