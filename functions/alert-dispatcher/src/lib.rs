//! alert-dispatcher: consumes the alert queue and delivers each alert exactly
//! once per channel (a signed webhook to the trial's site, and SNS), records
//! every attempt, and leaves retryable failures to SQS with a growing backoff.
//!
//! Logic is generic over ports: the stores, the notifier, the webhook sender,
//! the clock and the queue's visibility control. `main.rs` wires AWS adapters
//! ([`AwsDeps`]); unit tests wire in-memory ones.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt};
use lambda_runtime::LambdaEvent;
use trialwatch::alert::Alert;
use trialwatch::config_cache::ConfigCache;
use trialwatch::ports::{AlertStore, Clock, Notifier, TrialStore};
use trialwatch::trial::Trial;
use trialwatch::TrialId;

pub mod aws;
pub mod breaker;
mod config;
mod delivery;
pub mod settings;
pub mod signature;
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

use delivery::{Disposition, HideFor};

/// Everything the handler uses, built once per execution environment.
pub struct Deps<S, N, W, C>
where
    S: AlertStore + TrialStore + 'static,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    pub store: Arc<S>,
    pub notifier: N,
    pub webhook: W,
    pub clock: C,
    pub visibility: Arc<dyn VisibilityControl>,
    settings: DispatchSettings,
    /// Trials' webhook and topic, per execution environment with a TTL.
    trials: Arc<ConfigCache<TrialId, Trial>>,
    breaker: CircuitBreaker,
}

impl<S, N, W, C> Deps<S, N, W, C>
where
    S: AlertStore + TrialStore + 'static,
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
            trials: Arc::new(ConfigCache::new(settings.config_ttl)),
            breaker: CircuitBreaker::new(settings.breaker),
            settings,
        }
    }

    pub fn settings(&self) -> &DispatchSettings {
        &self.settings
    }
}

/// The Lambda handler: each record in its own error boundary (a bad body or a
/// panic fails that record only), delivered concurrently up to a bound, and
/// reported in `batchItemFailures` when SQS should redeliver it.
pub async fn handle<S, N, W, C>(deps: &Deps<S, N, W, C>, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    S: AlertStore + TrialStore + 'static,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    let records = event.payload.records;
    let outcomes: Vec<(Option<&str>, bool)> = futures::stream::iter(records.iter())
        .map(|message| async move { (message.message_id.as_deref(), process(deps, message).await) })
        .buffered(deps.settings.max_concurrency.max(1))
        .collect()
        .await;

    let mut response = SqsBatchResponse::default();
    for (message_id, acknowledged) in outcomes {
        match (message_id, acknowledged) {
            (_, true) => {}
            (Some(id), false) => response.add_failure(id),
            // A failure SQS cannot be told about by id: fail the whole batch so
            // every record comes back (idempotent), rather than lose this one.
            (None, false) => return Err("a failed record has no messageId; failing the batch so SQS redelivers every record".into()),
        }
    }
    Ok(response)
}

/// Delivers one record; true when it may be deleted from the queue.
async fn process<S, N, W, C>(deps: &Deps<S, N, W, C>, message: &SqsMessage) -> bool
where
    S: AlertStore + TrialStore + 'static,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    let message_id = message.message_id.as_deref();
    let disposition = match AssertUnwindSafe(dispatch(deps, message)).catch_unwind().await {
        Ok(d) => d,
        Err(_) => Disposition::Retry { reason: "panic", hide_for: HideFor::QueueDefault },
    };
    let Disposition::Retry { reason, hide_for } = disposition else {
        return true;
    };
    tracing::warn!(message_id, reason, "record left for redelivery");
    let receive_count = receive_count(message);
    let seconds = match hide_for {
        HideFor::Backoff => Some(visibility::backoff_seconds(deps.settings.backoff, receive_count, message_id.unwrap_or(""))),
        HideFor::Seconds(s) => Some(s),
        HideFor::QueueDefault => None,
    };
    if let (Some(seconds), Some(receipt)) = (seconds, message.receipt_handle.as_deref()) {
        if let Err(e) = deps.visibility.extend(receipt, seconds).await {
            // Not fatal: the queue's default visibility timeout applies instead.
            tracing::warn!(message_id, error = e.code(), "visibility backoff not applied");
        }
    }
    false
}

async fn dispatch<S, N, W, C>(deps: &Deps<S, N, W, C>, message: &SqsMessage) -> Disposition
where
    S: AlertStore + TrialStore + 'static,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    let Some(body) = message.body.as_deref() else {
        return Disposition::Retry { reason: "missing-body", hide_for: HideFor::QueueDefault };
    };
    // serde's message may quote the offending value, so only its category is kept.
    let alert: Alert = match serde_json::from_str(body) {
        Ok(a) => a,
        Err(e) if e.is_data() => return Disposition::Retry { reason: "invalid-alert", hide_for: HideFor::QueueDefault },
        Err(_) => return Disposition::Retry { reason: "malformed-json", hide_for: HideFor::QueueDefault },
    };
    deps.deliver(&alert).await
}

/// SQS's `ApproximateReceiveCount`: 1 on first delivery.
fn receive_count(message: &SqsMessage) -> u32 {
    message.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1)
}
