//! SQS adapters: the FIFO vitals queue (epro-api -> vitals-analyzer) and the
//! alert queue (producers -> alert-dispatcher). Both send with
//! SendMessageBatch; ids are deterministic, so resending is always safe.

use std::marker::PhantomData;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::errors::from_sdk;
use crate::alert::Alert;
use crate::ports::StorageError;
use crate::ports::{AlertQueue, DeadLetter, DeadLetters, VitalsQueue};
use crate::vitals::VitalsMessage;

/// AWS quota, not configurable: at most 10 entries per SendMessageBatch.
pub const MAX_BATCH_MESSAGES: usize = 10;

/// AWS limit on one message's body and attributes. The classic 256 KiB: we
/// stay under it even where the newer 1 MiB applies, so a queue created with
/// the old default never refuses what we send.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// AWS limit on the summed size of one SendMessageBatch's bodies and
/// attributes (the same classic 256 KiB, for the same reason).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// A queue by URL, sending with SendMessageBatch. `M` is what it carries, so
/// the vitals queue cannot be wired where the alert queue belongs.
#[derive(Clone, Debug)]
pub struct SqsQueue<M> {
    client: aws_sdk_sqs::Client,
    url: String,
    carries: PhantomData<fn() -> M>,
}

/// The FIFO vitals queue (epro-api -> vitals-analyzer).
pub type SqsVitalsQueue = SqsQueue<VitalsMessage>;
/// The alert queue (producers -> alert-dispatcher).
pub type SqsAlertQueue = SqsQueue<Alert>;

impl<M> SqsQueue<M> {
    pub fn new(config: &SdkConfig, url: impl Into<String>) -> Self {
        Self::with_client(aws_sdk_sqs::Client::new(config), url)
    }
    pub fn with_client(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into(), carries: PhantomData }
    }
}

#[async_trait]
impl VitalsQueue for SqsQueue<VitalsMessage> {
    async fn send_vitals(&self, messages: &[VitalsMessage]) -> Result<(), StorageError> {
        const OP: &str = "sqs.SendMessageBatch(vitals)";
        let mut entries = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let body = serde_json::to_string(m).map_err(|_| StorageError::Corrupt(format!("{OP}: message does not serialise")))?;
            // FIFO: order per patient (group), and SQS drops a resend of the
            // same content within its five-minute deduplication window.
            let entry = SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(body)
                .message_group_id(m.group_id())
                .message_deduplication_id(m.dedup_id());
            let entry = traced(OP, entry, crate::correlation::current().as_ref())?;
            entries.push(entry.build().map_err(|_| StorageError::Corrupt(format!("{OP}: request-build")))?);
        }
        send_batches(&self.client, &self.url, OP, entries).await
    }
}

#[async_trait]
impl AlertQueue for SqsQueue<Alert> {
    async fn enqueue(&self, alerts: &[Alert]) -> Result<(), StorageError> {
        const OP: &str = "sqs.SendMessageBatch(alerts)";
        let fifo = self.url.ends_with(".fifo");
        let mut entries = Vec::with_capacity(alerts.len());
        for (i, a) in alerts.iter().enumerate() {
            let body = serde_json::to_string(a).map_err(|_| StorageError::Corrupt(format!("{OP}: alert does not serialise")))?;
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(format!("a{i}"))
                .message_body(body)
                .message_attributes("level", string_attribute(OP, a.level.as_str())?)
                .message_attributes("trialId", string_attribute(OP, a.trial_id.as_str())?);
            if fifo {
                entry = entry.message_group_id(format!("{}#{}", a.trial_id, a.patient_id)).message_deduplication_id(a.alert_id.as_str());
            }
            let entry = traced(OP, entry, a.correlation_id.as_ref())?;
            entries.push(entry.build().map_err(|_| StorageError::Corrupt(format!("{OP}: request-build")))?);
        }
        send_batches(&self.client, &self.url, OP, entries).await
    }
}

/// Message attribute naming why a record was parked (a failure code).
pub const REASON_ATTRIBUTE: &str = "trialwatch.reason";

/// A dead-letter queue the consumer parks records in itself (FIFO or
/// standard, told by the URL as AWS names FIFO queues).
#[derive(Clone, Debug)]
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsDeadLetters {
    pub fn new(config: &SdkConfig, url: impl Into<String>) -> Self {
        Self::with_client(aws_sdk_sqs::Client::new(config), url)
    }
    pub fn with_client(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn park(&self, letter: &DeadLetter<'_>) -> Result<(), StorageError> {
        const OP: &str = "sqs.SendMessage(dead-letter)";
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(letter.body)
            .message_attributes(REASON_ATTRIBUTE, string_attribute(OP, letter.reason)?);
        // A FIFO queue requires both ids; a standard one refuses them.
        if self.url.ends_with(".fifo") {
            request = request.message_group_id(letter.group_id).message_deduplication_id(letter.dedup_id);
        }
        request.send().await.map_err(|e| from_sdk(OP, &e))?;
        Ok(())
    }
}

/// The correlation id as a message attribute and this invocation's X-Ray
/// trace header as the `AWSTraceHeader` system attribute, each when present
/// ([`crate::correlation`]): the consumer's logs and trace continue the sender's.
fn traced(
    op: &'static str,
    entry: aws_sdk_sqs::types::builders::SendMessageBatchRequestEntryBuilder,
    correlation: Option<&crate::correlation::CorrelationId>,
) -> Result<aws_sdk_sqs::types::builders::SendMessageBatchRequestEntryBuilder, StorageError> {
    let mut entry = entry;
    if let Some(id) = correlation {
        entry = entry.message_attributes(crate::correlation::MESSAGE_ATTRIBUTE, string_attribute(op, id.as_str())?);
    }
    if let Some(header) = crate::correlation::trace_header() {
        let value = aws_sdk_sqs::types::MessageSystemAttributeValue::builder()
            .data_type("String")
            .string_value(header)
            .build()
            .map_err(|_| StorageError::Corrupt(format!("{op}: request-build")))?;
        entry = entry.message_system_attributes(aws_sdk_sqs::types::MessageSystemAttributeNameForSends::AwsTraceHeader, value);
    }
    Ok(entry)
}

fn string_attribute(op: &'static str, value: &str) -> Result<MessageAttributeValue, StorageError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|_| StorageError::Corrupt(format!("{op}: request-build")))
}

fn entry_size(e: &SendMessageBatchRequestEntry) -> usize {
    let attrs: usize = e
        .message_attributes()
        .map(|m| m.iter().map(|(k, v)| k.len() + v.data_type().len() + v.string_value().map_or(0, str::len)).sum())
        .unwrap_or(0);
    e.message_body().len() + attrs
}

/// Splits `items` into SendMessageBatch calls within both limits (count, and
/// total `size`), keeping their order: FIFO order within a group holds when
/// the calls go one after another. An item alone over the size limit still
/// gets its own call: SQS then names the problem. The one batching rule for
/// every sender; `size` is the caller's measure of an item.
pub fn batched<T>(items: Vec<T>, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let len = size(&item);
        match out.last_mut() {
            Some(batch) if batch.len() < MAX_BATCH_MESSAGES && bytes + len <= MAX_BATCH_BYTES => {
                bytes += len;
                batch.push(item);
            }
            _ => {
                bytes = len;
                out.push(vec![item]);
            }
        }
    }
    out
}

/// Sends every entry; entries SQS reports failed are resent once (the same
/// ids and dedup ids, so nothing doubles), then the call fails `Unavailable`
/// and the caller's retry resends the lot.
async fn send_batches(
    client: &aws_sdk_sqs::Client,
    url: &str,
    op: &'static str,
    entries: Vec<SendMessageBatchRequestEntry>,
) -> Result<(), StorageError> {
    for batch in batched(entries, entry_size) {
        let mut pending = batch;
        for attempt in 0..2 {
            let out =
                client.send_message_batch().queue_url(url).set_entries(Some(pending.clone())).send().await.map_err(|e| from_sdk(op, &e))?;
            let failed = out.failed();
            if failed.is_empty() {
                break;
            }
            if let Some(f) = failed.iter().find(|f| f.sender_fault()) {
                let code: String = f.code().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '.').take(60).collect();
                return Err(StorageError::Corrupt(format!("{op}: entry refused {code}")));
            }
            if attempt == 1 {
                return Err(StorageError::Unavailable(format!("{op}: {} entr(ies) failed twice", failed.len())));
            }
            pending.retain(|e| failed.iter().any(|f| f.id() == e.id()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize, body_len: usize) -> SendMessageBatchRequestEntry {
        SendMessageBatchRequestEntry::builder().id(format!("m{i}")).message_body("x".repeat(body_len)).build().unwrap()
    }

    #[test]
    fn batches_hold_at_most_ten_messages() {
        let sizes: Vec<usize> = batched((0..23).map(|i| entry(i, 100)).collect(), entry_size).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 3]);
    }

    #[test]
    fn batches_stay_under_the_size_limit() {
        // GIVEN five 100 KiB messages: only two fit in 256 KiB
        let sizes: Vec<usize> = batched((0..5).map(|i| entry(i, 100 * 1024)).collect(), entry_size).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
        assert!(batched(Vec::new(), entry_size).is_empty());
    }
}
