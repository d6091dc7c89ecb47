//! The scheduled sweep's use case: both outboxes in one run. The schedule,
//! the role and the store are already this function's, and a second schedule
//! would only add a second invocation a minute.

use chrono::{DateTime, Utc};
use serde::Serialize;
use trialwatch::edge::schedule::Outcome;
use trialwatch::ports::{AlertOutbox, AlertQueue, EventPublisher, PendingEvents};

use crate::events::{self, EventSweep};
use crate::outbox::{self, SweepOutcome};

/// One scheduled run: the alert outbox, then the events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sweeps {
    pub alerts: SweepOutcome,
    pub events: EventSweep,
}

impl Outcome for Sweeps {
    // As the alert sweep: the next run a minute later retries what is left.
    fn incomplete(&self) -> Option<String> {
        None
    }
}

/// Why a sweep run failed as a whole (a failed shard alone does not: the
/// next run a minute later retries it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    /// Not one outbox shard could be read or sent: the store or the queue is down.
    #[error("outbox: no shard could be swept")]
    NoShardSwept,
}

/// Sends the PRO alerts due at `now` to `queue`, then publishes the domain
/// events left pending. The event sweep never fails the run.
pub async fn sweep(
    outbox: &impl AlertOutbox,
    queue: &dyn AlertQueue,
    pending: &dyn PendingEvents,
    event_bus: &dyn EventPublisher,
    now: DateTime<Utc>,
) -> Result<Sweeps, SweepError> {
    let alerts = outbox::sweep(outbox, queue, now).await?;
    let events = events::sweep(pending, event_bus, now).await;
    Ok(Sweeps { alerts, events })
}
