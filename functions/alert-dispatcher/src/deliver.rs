//! One alert's delivery: claim it, send it on every channel not yet
//! delivered, record each attempt, and settle it as delivered, failed, or
//! to be retried.
//!
//! Exactly once across channels: each channel's attempts are kept in the
//! alert record. A channel that delivered on an earlier attempt is never
//! re-sent, so when the webhook got the alert but SNS failed, the redelivery
//! only publishes to SNS. While the alert is pending, a channel that failed
//! permanently is settled too (re-sending gets the same 4xx). A `failed` alert
//! that is claimed again (a DLQ redrive after a site fixed its endpoint)
//! retries every channel not yet delivered.

use chrono::{DateTime, Utc};
use serde_json::json;
use trialwatch::alert::{Alert, AlertRecord, AlertStatus, AttemptOutcome, Channel, Claim, DeliveryAttempt};
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::config_cache::ConfigCache;
use trialwatch::domain_event::{announce, DomainEvent};
use trialwatch::ports::{AlertDelivery, Clock, EventPublisher, Notifier, NotifyError, PendingEvents, StorageError, TrialConfig};
use trialwatch::telemetry::metrics;
use trialwatch::trial::{Trial, Webhook};
use trialwatch::TrialId;

use crate::breaker::{Admission, CircuitBreaker};
use crate::settings::DispatchSettings;
use crate::signature::{signature_header, ALERT_ID_HEADER, SIGNATURE_HEADER};
use crate::webhook::{classify, WebhookSender};

const COMPONENT: &str = "alert-dispatcher";

/// One alert to deliver.
#[derive(Debug, Clone)]
pub struct DeliverCommand {
    pub alert: Alert,
    /// When the alert was queued (raised), for the delivery latency; a
    /// redelivery keeps it.
    pub raised_at: Option<DateTime<Utc>>,
}

/// How the alert stands once `deliver` is done with it: settled, either now
/// or before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Every channel has it: settled delivered now.
    Delivered,
    /// A channel refused it for good (and none is left to retry): settled failed now.
    Failed,
    /// Settled by an earlier delivery: nothing is sent again (exactly once).
    AlreadySettled(AlertStatus),
}

/// Why delivery is not finished; every one of them is worth a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverError {
    /// The trial's webhook and topic could not be read.
    #[error("the trial configuration is unavailable: {0}")]
    TrialUnavailable(StorageError),
    /// The alert could not be claimed.
    #[error("the claim failed: {0}")]
    Claim(StorageError),
    /// Another invocation holds the alert's lease for this long still
    /// (seconds, at least 1): by then it has delivered or died.
    #[error("leased by another invocation")]
    Leased { wait_seconds: i32 },
    /// An attempt was made but not recorded; the lease was given back.
    #[error("an attempt was not recorded: {0}")]
    RecordAttempt(StorageError),
    /// A channel failed in a way a retry may fix; the lease was given back.
    #[error("a channel is still to be retried")]
    ChannelRetryable,
    /// The site's circuit is open: its webhook was not called.
    #[error("the webhook circuit is open")]
    CircuitOpen,
    /// Every channel is done but the settlement was not written; the retry
    /// sends nothing and only settles.
    #[error("the alert was not settled: {0}")]
    Settle(StorageError),
}

impl DeliverError {
    /// Short machine code for logs and the redelivery reason: never a value.
    pub fn code(&self) -> &'static str {
        match self {
            DeliverError::TrialUnavailable(e) | DeliverError::Claim(e) | DeliverError::RecordAttempt(e) | DeliverError::Settle(e) => {
                e.code()
            }
            DeliverError::Leased { .. } => "in-progress",
            DeliverError::ChannelRetryable => "delivery-retryable",
            DeliverError::CircuitOpen => CIRCUIT_OPEN,
        }
    }
}

/// What `deliver` uses: the ports, and the per-environment trial cache and
/// circuit breaker.
pub struct DeliveryPorts<'a, S, N, W, C> {
    /// Claims, attempts and settlements; the trial's channels; the pending
    /// domain events of a settlement.
    pub store: &'a S,
    pub notifier: &'a N,
    pub webhook: &'a W,
    pub clock: &'a C,
    /// Where delivery outcomes are announced.
    pub event_bus: &'a dyn EventPublisher,
    pub trials: &'a ConfigCache<TrialId, Trial>,
    pub breaker: &'a CircuitBreaker,
    pub settings: &'a DispatchSettings,
}

/// Where a channel stands for this alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelState {
    Delivered,
    FailedForGood,
    Pending,
}

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Webhook => "webhook",
        Channel::Sns => "sns",
    }
}

fn outcome_name(o: AttemptOutcome) -> &'static str {
    match o {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Retryable => "retryable",
        AttemptOutcome::Permanent => "permanent",
    }
}

fn state_before(record: &AlertRecord, channel: Channel) -> ChannelState {
    let mut attempts = record.attempts.iter().filter(|a| a.channel == channel);
    if attempts.clone().any(|a| a.outcome == AttemptOutcome::Delivered) {
        ChannelState::Delivered
    } else if record.status == AlertStatus::Pending && attempts.any(|a| a.outcome == AttemptOutcome::Permanent) {
        ChannelState::FailedForGood
    } else {
        ChannelState::Pending
    }
}

fn state_after(attempt: &DeliveryAttempt) -> ChannelState {
    match attempt.outcome {
        AttemptOutcome::Delivered => ChannelState::Delivered,
        AttemptOutcome::Permanent => ChannelState::FailedForGood,
        AttemptOutcome::Retryable => ChannelState::Pending,
    }
}

/// SNS errors that retrying cannot fix, as the SNS adapter classifies them:
/// a missing topic, a refused request or topic setup, a forbidden topic.
/// Anything else (throttling, 5xx, timeouts, unexpected) is retried and, if
/// it persists, reaches the alarmed DLQ rather than being dropped.
fn publish_outcome(e: &NotifyError) -> AttemptOutcome {
    if e.is_permanent() {
        AttemptOutcome::Permanent
    } else {
        AttemptOutcome::Retryable
    }
}

/// The attempt's detail: codes only. A missing topic is named outright: it
/// is a deployment or trial-setup mistake that someone has to fix.
fn publish_detail(e: &NotifyError) -> String {
    match e {
        NotifyError::TopicNotFound => SNS_TOPIC_NOT_FOUND.to_owned(),
        _ => format!("sns-{}", e.code()),
    }
}

pub(crate) const SNS_TOPIC_NOT_FOUND: &str = "sns-topic-not-found";

fn attempt(
    at: DateTime<Utc>,
    channel: Channel,
    outcome: AttemptOutcome,
    http_status: Option<u16>,
    detail: Option<String>,
) -> DeliveryAttempt {
    DeliveryAttempt { at, channel, outcome, http_status, detail }
}

/// Delivers one alert on every channel not yet delivered, exactly once per
/// channel, and settles it; an error says why it is not finished (each is
/// worth a retry). The alert delivered carries the stored alert's correlation
/// id: a replay keeps the id of the request that first raised it.
pub async fn deliver<S, N, W, C>(ports: &DeliveryPorts<'_, S, N, W, C>, cmd: DeliverCommand) -> Result<DeliveryOutcome, DeliverError>
where
    S: AlertDelivery + TrialConfig + PendingEvents,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    ports.deliver(&cmd.alert, cmd.raised_at).await
}

impl<S, N, W, C> DeliveryPorts<'_, S, N, W, C>
where
    S: AlertDelivery + TrialConfig + PendingEvents,
    N: Notifier,
    W: WebhookSender,
    C: Clock,
{
    async fn deliver(&self, alert: &Alert, raised_at: Option<DateTime<Utc>>) -> Result<DeliveryOutcome, DeliverError> {
        let store = self.store;
        let id = alert.trial_id.clone();
        let trial = match self.trials.get(&alert.trial_id, move || async move { store.get_trial(&id).await }).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(alert_id = %alert.alert_id, trial_id = %alert.trial_id, error = e.code(), "trial configuration unavailable");
                return Err(DeliverError::TrialUnavailable(e));
            }
        };
        let alerting = match trial.as_ref() {
            Some(t) => Some(&t.definition.alerting),
            None => {
                // Still notify someone: the default topic carries every trial's alerts.
                tracing::warn!(alert_id = %alert.alert_id, trial_id = %alert.trial_id, reason = "trial-not-found", "delivering via the default topic only");
                None
            }
        };
        let webhook = alerting.and_then(|a| a.webhook.as_ref());
        let topic = alerting.and_then(|a| a.sns_topic_arn.as_deref());

        let now = self.clock.now();
        let lease_until = now + chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::seconds(60));
        let record = match self.store.claim(alert, now, lease_until).await {
            Ok(Claim::Acquired(record)) => record,
            Ok(Claim::AlreadyDone(status)) => {
                tracing::info!(alert_id = %alert.alert_id, trial_id = %alert.trial_id, status = status.as_str(), "alert already settled; not notifying again");
                return Ok(DeliveryOutcome::AlreadySettled(status));
            }
            Ok(Claim::InProgress { lease_until }) => {
                // Come back just after the other invocation's lease ends: by then it
                // has delivered (we ack) or died (we take over).
                let wait = (lease_until - now).num_seconds().clamp(0, 43_199) + 1;
                tracing::info!(alert_id = %alert.alert_id, trial_id = %alert.trial_id, wait_seconds = wait, "alert leased by another invocation");
                return Err(DeliverError::Leased { wait_seconds: i32::try_from(wait).unwrap_or(43_200) });
            }
            Err(e) => {
                tracing::warn!(alert_id = %alert.alert_id, trial_id = %alert.trial_id, error = e.code(), "claim failed");
                return Err(DeliverError::Claim(e));
            }
        };

        let first_id = record.alert.correlation_id.clone().or_else(|| alert.correlation_id.clone());
        if first_id != alert.correlation_id {
            if let Some(id) = &first_id {
                tracing::Span::current().record("correlation_id", id.as_str());
            }
        }
        let alert = &Alert { correlation_id: first_id, ..alert.clone() };
        let webhook_before = webhook.map(|_| state_before(&record, Channel::Webhook));
        let sns_before = state_before(&record, Channel::Sns);
        let (webhook_attempt, sns_attempt) = tokio::join!(
            async {
                match (webhook, webhook_before) {
                    (Some(hook), Some(ChannelState::Pending)) => Some(self.post_webhook(alert, hook).await),
                    _ => None,
                }
            },
            async {
                match sns_before {
                    ChannelState::Pending => Some(self.publish(alert, topic).await),
                    _ => None,
                }
            },
        );

        let attempts: Vec<&DeliveryAttempt> = webhook_attempt.iter().chain(sns_attempt.iter()).collect();
        for a in &attempts {
            tracing::info!(
                alert_id = %alert.alert_id,
                trial_id = %alert.trial_id,
                channel = channel_name(a.channel),
                outcome = outcome_name(a.outcome),
                http_status = a.http_status,
                detail = a.detail.as_deref(),
                "delivery attempt"
            );
            // Sent first, recorded second: if this write fails the retry may send
            // again (at-least-once), but an alert is never recorded as sent unsent.
            if let Err(e) = self.store.record_attempt(&alert.trial_id, &alert.alert_id, a).await {
                return Err(self.give_back(alert, DeliverError::RecordAttempt(e)).await);
            }
        }

        let states: Vec<(Channel, ChannelState)> = [
            webhook_before.map(|before| (Channel::Webhook, webhook_attempt.as_ref().map_or(before, state_after))),
            Some((Channel::Sns, sns_attempt.as_ref().map_or(sns_before, state_after))),
        ]
        .into_iter()
        .flatten()
        .collect();

        if states.iter().any(|(_, s)| *s == ChannelState::Pending) {
            let circuit_open = attempts.iter().any(|a| a.detail.as_deref() == Some(CIRCUIT_OPEN));
            let why = if circuit_open { DeliverError::CircuitOpen } else { DeliverError::ChannelRetryable };
            return Err(self.give_back(alert, why).await);
        }
        let delivered = states.iter().all(|(_, s)| *s == ChannelState::Delivered);
        self.settle(alert, &record, &states, attempts.len(), delivered, raised_at).await
    }

    async fn post_webhook(&self, alert: &Alert, hook: &Webhook) -> DeliveryAttempt {
        let now = self.clock.now();
        if self.breaker.admit(&alert.trial_id, &hook.url, now) == Admission::Rejected {
            return attempt(now, Channel::Webhook, AttemptOutcome::Retryable, None, Some(CIRCUIT_OPEN.to_owned()));
        }
        // The body is the alert re-serialised once; these exact bytes are signed and sent.
        let body = match serde_json::to_vec(alert) {
            Ok(b) => b,
            Err(_) => return self.probe_unanswered(alert, hook, now, "unserialisable-alert"),
        };
        let signature = match signature_header(hook.secret.as_bytes(), now.timestamp(), &body) {
            Ok(s) => s,
            Err(_) => return self.probe_unanswered(alert, hook, now, "invalid-secret"),
        };
        let headers = [
            ("Content-Type".to_owned(), "application/json".to_owned()),
            (SIGNATURE_HEADER.to_owned(), signature),
            (ALERT_ID_HEADER.to_owned(), alert.alert_id.to_string()),
        ];
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .chain(alert.correlation_id.iter().map(|id| (trialwatch::correlation::WEBHOOK_HEADER.to_owned(), id.to_string())))
            .collect();
        let classified = classify(self.webhook.post(&hook.url, &headers, body, self.settings.webhook_timeout).await);
        self.breaker.record(&alert.trial_id, &hook.url, self.clock.now(), classified.endpoint_unavailable());
        attempt(now, Channel::Webhook, classified.outcome, classified.http_status, classified.detail)
    }

    /// A webhook attempt that failed before any call: permanent (our side is
    /// broken for this alert); the admitted call is reported so a probe slot is not held.
    fn probe_unanswered(&self, alert: &Alert, hook: &Webhook, now: DateTime<Utc>, detail: &str) -> DeliveryAttempt {
        self.breaker.record(&alert.trial_id, &hook.url, now, false);
        attempt(now, Channel::Webhook, AttemptOutcome::Permanent, None, Some(detail.to_owned()))
    }

    async fn publish(&self, alert: &Alert, topic: Option<&str>) -> DeliveryAttempt {
        let now = self.clock.now();
        match self.notifier.publish(topic, alert).await {
            Ok(()) => attempt(now, Channel::Sns, AttemptOutcome::Delivered, None, None),
            Err(e) => {
                let detail = publish_detail(&e);
                if matches!(e, NotifyError::TopicNotFound) {
                    tracing::error!(
                        alert_id = %alert.alert_id,
                        trial_id = %alert.trial_id,
                        topic = topic.unwrap_or("default"),
                        reason = SNS_TOPIC_NOT_FOUND,
                        "SNS topic not found; the SNS channel fails for good"
                    );
                }
                attempt(now, Channel::Sns, publish_outcome(&e), None, Some(detail))
            }
        }
    }

    /// Releases the lease so the redelivery may claim at once; `why` is
    /// returned, for a retry.
    async fn give_back(&self, alert: &Alert, why: DeliverError) -> DeliverError {
        if let Err(e) = self.store.release(&alert.trial_id, &alert.alert_id).await {
            // The lease then simply expires; the retry waits for it.
            tracing::warn!(alert_id = %alert.alert_id, trial_id = %alert.trial_id, error = e.code(), "lease release failed");
        }
        why
    }

    async fn settle(
        &self,
        alert: &Alert,
        record: &AlertRecord,
        states: &[(Channel, ChannelState)],
        new_attempts: usize,
        delivered: bool,
        raised_at: Option<DateTime<Utc>>,
    ) -> Result<DeliveryOutcome, DeliverError> {
        let now = self.clock.now();
        let (status, action) = if delivered { (AlertStatus::Delivered, "alert.delivered") } else { (AlertStatus::Failed, "alert.failed") };
        let failed: Vec<&str> = states.iter().filter(|(_, s)| *s == ChannelState::FailedForGood).map(|(c, _)| channel_name(*c)).collect();
        let channels: Vec<&str> = states.iter().map(|(c, _)| channel_name(*c)).collect();
        // The patient puts the entry in the patient's chain (`AuditEntry::chain_id`).
        let mut audit = AuditEntry::new(alert.trial_id.clone(), format!("alert/{}", alert.alert_id), action, Actor::system(COMPONENT), now)
            .with_detail("patientId", alert.patient_id.as_str())
            .with_detail("channels", json!(channels))
            .with_detail("attempts", json!(record.attempts.len() + new_attempts));
        if !failed.is_empty() {
            audit = audit.with_detail("failedChannels", json!(failed));
        }
        let events = [DomainEvent::alert_delivery_finished(alert, delivered, now)];
        if let Err(e) = self.store.finish(&alert.trial_id, &alert.alert_id, status, now, &audit, &events).await {
            // Attempts are recorded, so the retry re-sends nothing and only settles.
            return Err(self.give_back(alert, DeliverError::Settle(e)).await);
        }
        announce(self.event_bus, self.store, &events).await;
        if delivered {
            metrics::alert_delivered(alert.level, raised_at.map(|t| metrics::since(t, now)));
        } else {
            metrics::alert_failed(alert.level);
        }
        tracing::info!(alert_id = %alert.alert_id, trial_id = %alert.trial_id, status = status.as_str(), "alert settled");
        Ok(if delivered { DeliveryOutcome::Delivered } else { DeliveryOutcome::Failed })
    }
}

pub(crate) const CIRCUIT_OPEN: &str = "circuit-open";

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::ports::StorageError;

    #[test]
    fn what_the_sns_adapter_calls_permanent_settles_the_channel_and_a_missing_topic_is_named() {
        // GIVEN the permanent answers the SNS adapter produces
        for e in [NotifyError::TopicNotFound, NotifyError::Refused("sns.Publish: InvalidParameter".into()), NotifyError::Forbidden] {
            assert_eq!(publish_outcome(&e), AttemptOutcome::Permanent, "{e:?}");
        }
        // THEN a missing topic is named in the attempt, other failures by their code
        assert_eq!(publish_detail(&NotifyError::TopicNotFound), "sns-topic-not-found");
        assert_eq!(publish_detail(&NotifyError::Forbidden), "sns-forbidden");
        // AND throttling and unexpected answers stay retryable
        for (e, code) in [
            (NotifyError::from(StorageError::Unavailable("sns.Publish: Throttled".into())), "unavailable"),
            (NotifyError::from(StorageError::Corrupt("sns.Publish: Odd (http 400)".into())), "internal"),
        ] {
            assert_eq!(publish_outcome(&e), AttemptOutcome::Retryable, "{e:?}");
            assert_eq!(publish_detail(&e), format!("sns-{code}"));
        }
    }
}
