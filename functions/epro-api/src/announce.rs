//! Where the use cases announce what they committed: the event bus, and the
//! pending items to settle once it took them ([`trialwatch::domain_event`]).

use trialwatch::domain_event::{announce, DomainEvent};
use trialwatch::ports::{EventPublisher, PendingEvents};

/// The bus and the pending events a use case's transaction wrote. A failed
/// publish is not the use case's failure: the sweep publishes later.
#[derive(Clone, Copy)]
pub struct Announcer<'a> {
    pub bus: &'a dyn EventPublisher,
    pub pending: &'a dyn PendingEvents,
}

impl Announcer<'_> {
    pub async fn announce(&self, events: &[DomainEvent]) {
        announce(self.bus, self.pending, events).await;
    }
}
