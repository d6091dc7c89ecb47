//! Backoff through the queue: a retried message is hidden for longer on each
//! receive (`ChangeMessageVisibility`), so a site that is down is not hammered
//! and a message reaches the DLQ only after real time has passed.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use trialwatch::Error;

use crate::settings::Backoff;

#[async_trait]
pub trait VisibilityControl: Send + Sync {
    /// Hides the received message for `seconds` from now.
    async fn extend(&self, receipt_handle: &str, seconds: i32) -> Result<(), Error>;
}

/// Seconds to hide a message on its `receive_count`-th receive:
/// `base * 2^(n-1)` with equal jitter (uniform in `[half, full]`), capped at `max`.
/// Each range starts where the previous one ends, so the delay never shrinks
/// from one receive to the next. The jitter is a hash of the message id, so
/// messages that failed together spread out, and a test can reproduce it.
pub fn backoff_seconds(backoff: Backoff, receive_count: u32, message_id: &str) -> i32 {
    let n = receive_count.clamp(1, 31);
    let full = u64::from(backoff.base_seconds) << (n - 1);
    let half = full / 2;
    let spread = full - half;
    let jitter = if spread == 0 {
        0
    } else {
        let digest = Sha256::new().chain_update(message_id.as_bytes()).chain_update(n.to_be_bytes()).finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) % (spread + 1)
    };
    let seconds = (half + jitter).min(u64::from(backoff.max_seconds));
    i32::try_from(seconds).unwrap_or(i32::MAX)
}

/// `ChangeMessageVisibility` on the alert queue.
#[derive(Debug, Clone)]
pub struct SqsVisibility {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsVisibility {
    pub fn new(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::with_client(aws_sdk_sqs::Client::new(sdk), queue_url)
    }

    /// Shares `client` with the outbox's alert queue: one SQS client per function.
    pub fn with_client(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

#[async_trait]
impl VisibilityControl for SqsVisibility {
    async fn extend(&self, receipt_handle: &str, seconds: i32) -> Result<(), Error> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map(|_| ())
            // The SDK's message names the operation, not the payload.
            .map_err(|e| Error::Unavailable(format!("ChangeMessageVisibility: {}", aws_sdk_sqs::error::DisplayErrorContext(e))))
    }
}

/// Keeps every extension asked for, for tests.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct RecordingVisibility {
    calls: std::sync::Mutex<Vec<(String, i32)>>,
}

#[cfg(test)]
impl RecordingVisibility {
    pub fn new() -> Self {
        Self::default()
    }
    /// `(receipt handle, seconds)` in call order.
    pub fn calls(&self) -> Vec<(String, i32)> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
#[async_trait]
impl VisibilityControl for RecordingVisibility {
    async fn extend(&self, receipt_handle: &str, seconds: i32) -> Result<(), Error> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push((receipt_handle.to_owned(), seconds));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Backoff = Backoff { base_seconds: 10, max_seconds: 900 };

    #[test]
    fn each_receive_waits_within_its_doubling_window() {
        for n in 1..=7u32 {
            let full = 10i32 << (n - 1);
            let s = backoff_seconds(DEFAULT, n, "m-1");
            assert!((full / 2..=full).contains(&s), "receive {n}: {s}s outside [{}, {full}]", full / 2);
        }
    }

    #[test]
    fn the_delay_never_shrinks_and_stops_at_the_cap() {
        for id in ["m-1", "m-2", "another-message"] {
            let delays: Vec<i32> = (1..=40).map(|n| backoff_seconds(DEFAULT, n, id)).collect();
            assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{id}: {delays:?}");
            assert_eq!(*delays.last().unwrap(), 900);
            assert!(delays.iter().all(|d| *d <= 900));
        }
    }

    #[test]
    fn jitter_spreads_messages_that_failed_together() {
        let delays: std::collections::HashSet<i32> = (0..50).map(|i| backoff_seconds(DEFAULT, 5, &format!("m-{i}"))).collect();
        assert!(delays.len() > 10, "50 messages share only {} delays", delays.len());
    }

    #[test]
    fn a_missing_or_zero_receive_count_is_treated_as_the_first() {
        assert_eq!(backoff_seconds(DEFAULT, 0, "m"), backoff_seconds(DEFAULT, 1, "m"));
    }
}
