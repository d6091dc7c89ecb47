//! alert-dispatcher: consumes the alert queue and delivers each alert exactly
//! once per channel (a signed webhook to the trial's site, and SNS), records
//! every attempt, and leaves retryable failures to SQS with a growing backoff.
//! Its second trigger, a one-minute schedule, runs the outbox sweeper
//! ([`outbox`]): stored PRO alerts that never reached the queue are sent to it,
//! and the domain events left pending are published ([`events`]).
//!
//! Two transport-free use cases carry the logic, each with its own error:
//! [`deliver`] (one alert, [`DeliverError`]) and [`sweep::sweep`] (both
//! outboxes, [`sweep::SweepError`]). The edges map them once: the SQS edge
//! ([`handle`]) turns every `DeliverError` into a redelivery after its backoff
//! (a lease held elsewhere: until it ends); the schedule edge fails a run
//! that swept no shard. Both are generic over ports (the stores, the
//! notifier, the webhook sender, the clock, the queue's visibility control):
//! `main.rs` wires AWS adapters ([`AwsDeps`]); unit tests wire in-memory ones.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use tracing::Instrument;
use trialwatch::alert::Alert;
use trialwatch::config_cache::ConfigCache;
use trialwatch::correlation::CorrelationId;
use trialwatch::domain_event::Unpublished;
use trialwatch::edge::sqs::{Batch, FailurePolicy};
use trialwatch::ports::{AlertDelivery, AlertOutbox, AlertQueue, Clock, EventPublisher, Notifier, PendingEvents, TrialConfig};
use trialwatch::trial::Trial;
use trialwatch::TrialId;

pub mod aws;
pub mod breaker;
mod config;
pub mod deliver;
pub mod events;
pub mod outbox;
pub mod settings;
pub mod signature;
pub mod sweep;
pub mod visibility;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use aws::AwsDeps;
pub use breaker::CircuitBreaker;
pub use config::Config;
pub use settings::DispatchSettings;
pub use visibility::{SqsVisibility, VisibilityControl};
pub use webhook::{HttpWebhookSender, WebhookResult, WebhookSender};

pub use deliver::{deliver, DeliverCommand, DeliverError, DeliveryOutcome, DeliveryPorts};

/// Everything the handler uses, built once per execution environment.
pub struct Deps<S, N, W, C>
where
    S: AlertDelivery + TrialConfig + PendingEvents + 'static,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    pub store: Arc<S>,
    pub notifier: N,
    pub webhook: W,
    pub clock: C,
    pub visibility: Arc<dyn VisibilityControl>,
    /// Where the outbox sweeper sends stored alerts: this function's own queue.
    pub outbox_queue: Option<Arc<dyn AlertQueue>>,
    /// The event bus: delivery outcomes are announced on it, and the sweep
    /// publishes the domain events other functions left pending.
    pub event_bus: Arc<dyn EventPublisher>,
    settings: DispatchSettings,
    /// Trials' webhook and topic, per execution environment with a TTL.
    trials: Arc<ConfigCache<TrialId, Trial>>,
    breaker: CircuitBreaker,
}

impl<S, N, W, C> Deps<S, N, W, C>
where
    S: AlertDelivery + TrialConfig + PendingEvents + 'static,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    pub fn new(
        store: Arc<S>,
        notifier: N,
        webhook: W,
        clock: C,
        visibility: Arc<dyn VisibilityControl>,
        settings: DispatchSettings,
    ) -> Self {
        Self {
            store,
            notifier,
            webhook,
            clock,
            visibility,
            outbox_queue: None,
            event_bus: Arc::new(Unpublished),
            trials: Arc::new(ConfigCache::new(settings.config_ttl)),
            breaker: CircuitBreaker::new(settings.breaker),
            settings,
        }
    }

    pub fn settings(&self) -> &DispatchSettings {
        &self.settings
    }

    /// What [`deliver`] uses of these dependencies.
    pub fn delivery_ports(&self) -> DeliveryPorts<'_, S, N, W, C> {
        DeliveryPorts {
            store: self.store.as_ref(),
            notifier: &self.notifier,
            webhook: &self.webhook,
            clock: &self.clock,
            event_bus: self.event_bus.as_ref(),
            trials: &self.trials,
            breaker: &self.breaker,
            settings: &self.settings,
        }
    }

    /// Publishes domain events on `bus` (else they wait for a sweep that has one).
    pub fn with_event_bus(mut self, bus: Arc<dyn EventPublisher>) -> Self {
        self.event_bus = bus;
        self
    }

    /// Enables the outbox sweeper, sending to `queue` (the alert queue).
    pub fn with_outbox_queue(mut self, queue: Arc<dyn AlertQueue>) -> Self {
        self.outbox_queue = Some(queue);
        self
    }
}

/// One entry point for both triggers: an SQS batch has `Records`; anything
/// else is the outbox schedule.
pub async fn handle_event<S, N, W, C>(
    deps: &Deps<S, N, W, C>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, lambda_runtime::Error>
where
    S: AlertDelivery + TrialConfig + PendingEvents + AlertOutbox + 'static,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    let (payload, context) = event.into_parts();
    if payload.get("Records").is_some() {
        // A batch that is not an SQS event at all fails the invocation: SQS
        // redelivers it and, after maxReceiveCount, parks it in the DLQ.
        let batch: SqsEvent = serde_json::from_value(payload)?;
        let response = handle(deps, LambdaEvent::new(batch, context)).await?;
        return Ok(serde_json::to_value(response)?);
    }
    handle_sweep(deps, LambdaEvent::new(payload, context)).await
}

/// The scheduled run of the outbox sweeper, for the alerts due at the
/// event's time.
pub async fn handle_sweep<S, N, W, C>(
    deps: &Deps<S, N, W, C>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<serde_json::Value, lambda_runtime::Error>
where
    S: AlertDelivery + TrialConfig + PendingEvents + AlertOutbox + 'static,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    let now = deps.clock.now();
    trialwatch::edge::schedule::run("outbox-sweep", event, now, |scheduled| async move {
        let queue = deps.outbox_queue.as_deref().ok_or_else(|| trialwatch::Error::Internal("outbox: no alert queue wired".into()))?;
        let store = deps.store.as_ref();
        // The schedule edge's one mapping: a run that swept nothing is retried.
        sweep::sweep(store, queue, store, deps.event_bus.as_ref(), scheduled.time)
            .await
            .map_err(|e| trialwatch::Error::Unavailable(e.to_string()))
    })
    .await
}

/// Why a record is left for SQS to redeliver; logged by code only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Redelivery {
    #[error("the record has no body")]
    MissingBody,
    /// JSON, but not an alert.
    #[error("the body is not an alert")]
    InvalidAlert,
    #[error("the body is not JSON")]
    MalformedJson,
    #[error("handling the record panicked")]
    Panicked,
    /// Delivery is not finished (a channel to retry, a lease held elsewhere,
    /// a store that failed); the reason is a short code.
    #[error("delivery not finished: {0}")]
    Delivery(&'static str),
}

impl trialwatch::edge::sqs::Failure for Redelivery {
    fn panicked() -> Self {
        Redelivery::Panicked
    }
    fn code(&self) -> &'static str {
        match self {
            Redelivery::MissingBody => "missing-body",
            Redelivery::InvalidAlert => "invalid-alert",
            Redelivery::MalformedJson => "malformed-json",
            Redelivery::Panicked => "panic",
            Redelivery::Delivery(reason) => reason,
        }
    }
}

/// The Lambda handler: the shared runner gives each record its own error
/// boundary (a bad body or a panic fails that record only), delivers them
/// concurrently up to a bound, and reports in `batchItemFailures` the ones
/// SQS should redeliver. Records are independent: every alert is its own.
pub async fn handle<S, N, W, C>(deps: &Deps<S, N, W, C>, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    S: AlertDelivery + TrialConfig + PendingEvents + 'static,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    let batch = Batch::new(event.payload, FailurePolicy::Independent);
    Ok(batch.for_each(deps.settings.max_concurrency, |message| process(deps, message)).await?)
}

/// Delivers one record; `Ok` when it may be deleted from the queue (the
/// alert is settled, now or before). Every [`DeliverError`] is a retry: the
/// record is hidden for its backoff first (a lease held elsewhere: until it
/// ends), and reported with the error's code.
async fn process<S, N, W, C>(deps: &Deps<S, N, W, C>, message: &SqsMessage) -> Result<(), Redelivery>
where
    S: AlertDelivery + TrialConfig + PendingEvents + 'static,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    let mut alert = decode(message)?;
    // The body's id first (the producer's own), else the message attribute.
    alert.correlation_id = alert.correlation_id.take().or_else(|| message_correlation(message));
    let span = alert.correlation_id.as_ref().map_or_else(tracing::Span::none, trialwatch::correlation::span);
    let command = DeliverCommand { raised_at: sent_at(message), alert };
    let Err(unfinished) = deliver(&deps.delivery_ports(), command).instrument(span).await else {
        return Ok(());
    };
    let message_id = message.message_id.as_deref();
    let seconds = hide_for(&unfinished, deps.settings.backoff, message);
    if let Some(receipt) = message.receipt_handle.as_deref() {
        if let Err(e) = deps.visibility.extend(receipt, seconds).await {
            // Not fatal: the queue's default visibility timeout applies instead.
            tracing::warn!(message_id, error = e.code(), "visibility backoff not applied");
        }
    }
    Err(Redelivery::Delivery(unfinished.code()))
}

/// How long an unfinished record stays hidden before SQS redelivers it:
/// until another invocation's lease ends (by then it has delivered, or died),
/// else the backoff for its receive count.
fn hide_for(unfinished: &DeliverError, backoff: settings::Backoff, message: &SqsMessage) -> i32 {
    match unfinished {
        DeliverError::Leased { wait_seconds } => *wait_seconds,
        // The id only seeds the jitter; it is never reported from here.
        _ => visibility::backoff_seconds(backoff, receive_count(message), message.message_id.as_deref().unwrap_or("")),
    }
}

/// The record's alert. A bad body is left to the queue's own visibility
/// timeout and, after maxReceiveCount, the DLQ.
fn decode(message: &SqsMessage) -> Result<Alert, Redelivery> {
    let body = message.body.as_deref().ok_or(Redelivery::MissingBody)?;
    // serde's message may quote the offending value, so only its category is kept.
    serde_json::from_str(body).map_err(|e| if e.is_data() { Redelivery::InvalidAlert } else { Redelivery::MalformedJson })
}

fn message_correlation(message: &SqsMessage) -> Option<CorrelationId> {
    message.message_attributes.get(trialwatch::correlation::MESSAGE_ATTRIBUTE)?.string_value.as_deref().and_then(CorrelationId::parse)
}

/// SQS's `SentTimestamp` (epoch milliseconds): when the alert was queued,
/// i.e. raised; a redelivery keeps it. The delivery latency is measured from it.
fn sent_at(message: &SqsMessage) -> Option<chrono::DateTime<chrono::Utc>> {
    message.attributes.get("SentTimestamp")?.parse::<i64>().ok().and_then(chrono::DateTime::from_timestamp_millis)
}

/// SQS's `ApproximateReceiveCount`: 1 on first delivery.
fn receive_count(message: &SqsMessage) -> u32 {
    message.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1)
}
