//! The domain-event sweep, run by the same one-minute schedule as the PRO
//! alert outbox: events whose state change committed but whose inline publish
//! failed (or never ran: the function died after the commit) are published
//! once their grace has passed, and their pending items deleted. An event the
//! bus refuses stays pending for the next run; a re-published event keeps its
//! `eventId`, so consumers see a duplicate they can drop, never a loss.

use chrono::{DateTime, Utc};
use serde::Serialize;
use trialwatch::domain_event::{announce, EVENT_SHARDS};
use trialwatch::ports::{EventPublisher, PendingEvents};

/// Events read per shard per run (a PutEvents call takes 10).
pub const SWEEP_LIMIT: usize = 100;

/// What one event sweep did: counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSweep {
    /// Pending events found past their due time.
    pub due: usize,
    /// Of those, accepted by the bus (and settled).
    pub published: usize,
    /// Shards whose query failed.
    pub failed_shards: usize,
}

/// Publishes every shard's due events.
pub async fn sweep(pending: &dyn PendingEvents, bus: &dyn EventPublisher, now: DateTime<Utc>) -> EventSweep {
    let mut outcome = EventSweep::default();
    for shard in 0..EVENT_SHARDS {
        let due = match pending.due_events(shard, now, SWEEP_LIMIT).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = e.code(), shard, "event shard not swept");
                outcome.failed_shards += 1;
                continue;
            }
        };
        if due.is_empty() {
            continue;
        }
        let events: Vec<_> = due.into_iter().map(|d| d.event).collect();
        outcome.due += events.len();
        outcome.published += announce(bus, pending, &events).await.accepted.len();
    }
    if outcome.due > 0 {
        tracing::info!(due = outcome.due, published = outcome.published, "pending events swept");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::domain_event::{DomainEvent, EventType};
    use trialwatch::memory::{MemoryEventBus, MemoryStore};
    use trialwatch::ports::EnrolmentStore;

    fn at(t: &str) -> DateTime<Utc> {
        t.parse().unwrap()
    }

    fn enrolment() -> trialwatch::enrolment::Enrolment {
        serde_json::from_value(serde_json::json!({
            "trialId": "tw-1", "patientId": "P0001", "siteId": "s1", "status": "enrolled",
            "enrolledAt": "2026-11-27T10:00:00Z", "updatedAt": "2026-11-27T10:00:00Z", "submissionCount": 0
        }))
        .unwrap()
    }

    /// A store where an enrolment committed with its event, whose inline publish failed.
    async fn committed_unpublished() -> (MemoryStore, DomainEvent) {
        let store = MemoryStore::new();
        let e = enrolment();
        let event = DomainEvent::patient_enrolment_changed(&e, at("2026-11-27T10:00:00Z"), None);
        let audit = trialwatch::audit::AuditEntry::new(
            e.trial_id.clone(),
            "enrolment/P0001",
            "enrolment.created",
            trialwatch::audit::Actor::system("test"),
            at("2026-11-27T10:00:00Z"),
        )
        .with_detail("patientId", "P0001");
        store.put_enrolment(&e, &audit, std::slice::from_ref(&event)).await.unwrap();
        let failing = MemoryEventBus::new();
        failing.fail_next(1);
        let published = announce(&failing, &store, std::slice::from_ref(&event)).await;
        assert!(published.accepted.is_empty());
        (store, event)
    }

    #[tokio::test]
    async fn a_failed_publish_leaves_the_event_pending_and_the_sweep_publishes_it_once() {
        // GIVEN a committed enrolment whose event the bus did not take
        let (store, event) = committed_unpublished().await;
        assert_eq!(store.pending_events(), vec![event.clone()]);
        let bus = MemoryEventBus::new();
        // WHEN the sweep runs inside the grace THEN nothing is published
        assert_eq!(sweep(&store, &bus, at("2026-11-27T10:00:20Z")).await.published, 0);
        // WHEN it runs after the grace THEN the event is published, as stored, and settled
        let outcome = sweep(&store, &bus, at("2026-11-27T10:01:00Z")).await;
        assert_eq!((outcome.due, outcome.published, outcome.failed_shards), (1, 1, 0));
        assert_eq!(bus.accepted(), vec![event]);
        assert!(store.pending_events().is_empty());
        // AND a second sweep publishes nothing
        assert_eq!(sweep(&store, &bus, at("2026-11-27T10:02:00Z")).await, EventSweep::default());
        assert_eq!(bus.accepted().len(), 1);
    }

    #[tokio::test]
    async fn an_entry_the_bus_refuses_stays_pending_for_the_next_sweep() {
        let (store, event) = committed_unpublished().await;
        let bus = MemoryEventBus::new();
        bus.refuse_entries(1);
        assert_eq!(sweep(&store, &bus, at("2026-11-27T10:01:00Z")).await.published, 0);
        assert_eq!(store.pending_events().len(), 1);
        assert_eq!(sweep(&store, &bus, at("2026-11-27T10:02:00Z")).await.published, 1);
        assert_eq!(bus.accepted()[0].detail_type, EventType::PatientEnrolmentChanged);
        // The id is the same on the retry: consumers deduplicate on it.
        assert_eq!(bus.accepted()[0].event_id, event.event_id);
    }
}
