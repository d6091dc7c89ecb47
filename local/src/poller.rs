//! Lambda's SQS event source mapping, emulated: long-poll the queue, hand each
//! batch to the function as a real `SqsEvent`, then delete what succeeded.
//! Failed records are simply not deleted: they reappear after the visibility
//! timeout, and after `maxReceiveCount` receives the queue's RedrivePolicy
//! (provisioned on the emulator) moves them to the DLQ, exactly as in AWS.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use base64::Engine;
use serde_json::{json, Map, Value};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use crate::invoke::{Functions, InvokeError};

/// The SQS client the pollers use, for callers inspecting queues (tests, demo).
pub use aws_sdk_sqs::Client as SqsClient;

/// One SQS event source of the template, resolved against provisioned queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsSource {
    pub function: String,
    pub queue_logical_id: String,
    pub queue_url: String,
    pub queue_arn: String,
    /// Records per invocation (Lambda's BatchSize).
    pub batch_size: usize,
    /// Concurrent invocations for this source (ScalingConfig.MaximumConcurrency).
    pub max_concurrency: usize,
    /// FunctionResponseTypes: [ReportBatchItemFailures].
    pub report_batch_item_failures: bool,
    pub timeout: Duration,
}

/// Lambda starts this many concurrent pollers when no MaximumConcurrency is set.
pub const DEFAULT_CONCURRENCY: usize = 5;
/// ReceiveMessage returns at most 10 messages per call.
const SQS_MAX_RECEIVE: usize = 10;
/// Short long-poll, so shutdown is never more than a second away.
const WAIT_SECONDS: i32 = 1;

/// What the mapping did, for the demo summary and tests.
#[derive(Debug, Default)]
pub struct PollerStats {
    pub batches: AtomicU64,
    pub records: AtomicU64,
    pub deleted: AtomicU64,
    /// Records left on the queue because the function reported them, or the whole batch failed.
    pub retained: AtomicU64,
    pub failed_invocations: AtomicU64,
}

/// What to do with a batch after the function returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// Receipt handles to delete.
    pub delete: Vec<String>,
    /// Message ids left for redelivery.
    pub retain: Vec<String>,
}

/// Lambda's partial-batch rule. With ReportBatchItemFailures, the listed ids
/// stay and the rest are deleted; a failure naming no message of the batch
/// (empty or unknown id) fails the whole batch. Without it, any success
/// deletes everything. An invocation error keeps everything.
pub fn settle(batch: &[(String, String)], outcome: &Result<SqsBatchResponse, InvokeError>, report_failures: bool) -> Settlement {
    let all_kept = || Settlement { delete: vec![], retain: batch.iter().map(|(id, _)| id.clone()).collect() };
    let Ok(resp) = outcome else { return all_kept() };
    if !report_failures {
        return Settlement { delete: batch.iter().map(|(_, rh)| rh.clone()).collect(), retain: vec![] };
    }
    let ids: HashSet<&str> = batch.iter().map(|(id, _)| id.as_str()).collect();
    let failed: HashSet<&str> = resp.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    if failed.iter().any(|f| !ids.contains(f)) {
        return all_kept();
    }
    let (retain, delete): (Vec<_>, Vec<_>) = batch.iter().partition(|(id, _)| failed.contains(id.as_str()));
    Settlement {
        delete: delete.into_iter().map(|(_, rh)| rh.clone()).collect(),
        retain: retain.into_iter().map(|(id, _)| id.clone()).collect(),
    }
}

/// The `Records` entry Lambda builds for one received message.
pub fn sqs_record(m: &Message, queue_arn: &str, region: &str) -> Value {
    let attributes: Map<String, Value> =
        m.attributes().into_iter().flatten().map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone()))).collect();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let message_attributes: Map<String, Value> = m
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                json!({
                    "stringValue": v.string_value(),
                    "binaryValue": v.binary_value().map(|b| b64(b.as_ref())),
                    "stringListValues": v.string_list_values(),
                    "binaryListValues": v.binary_list_values().iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>(),
                    "dataType": v.data_type(),
                }),
            )
        })
        .collect();
    json!({
        "messageId": m.message_id(),
        "receiptHandle": m.receipt_handle(),
        "body": m.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": m.md5_of_body(),
        "md5OfMessageAttributes": m.md5_of_message_attributes(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    })
}

/// Runs one source until `shutdown` turns true; then finishes the batches in
/// flight and returns. Like Lambda's pollers, one long-poll runs while idle,
/// and under load batches are received back to back until MaximumConcurrency
/// of them are in flight (each holds a permit until it is settled).
pub async fn run(
    client: aws_sdk_sqs::Client,
    functions: Arc<dyn Functions>,
    source: SqsSource,
    stats: Arc<PollerStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let source = Arc::new(source);
    let permits = Arc::new(Semaphore::new(source.max_concurrency.max(1)));
    let region: Arc<str> = crate::region().into();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut backoff = Duration::from_millis(200);
    while !*shutdown.borrow() {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        match receive_batch(&client, &source).await {
            Ok(messages) if messages.is_empty() => drop(permit),
            Ok(messages) => {
                backoff = Duration::from_millis(200);
                let (client, functions, source, stats, region) =
                    (client.clone(), functions.clone(), source.clone(), stats.clone(), region.clone());
                in_flight.spawn(async move {
                    process(&client, functions.as_ref(), &source, &stats, &messages, &region).await;
                    drop(permit);
                });
            }
            Err(code) => {
                drop(permit);
                tracing::warn!(queue = %source.queue_logical_id, code = %code, "receive failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

async fn receive_batch(client: &aws_sdk_sqs::Client, source: &SqsSource) -> Result<Vec<Message>, String> {
    let mut out: Vec<Message> = Vec::new();
    let want = source.batch_size.max(1);
    loop {
        let n = (want - out.len()).min(SQS_MAX_RECEIVE);
        // Wait only for the first call; later calls just top the batch up.
        let wait = if out.is_empty() { WAIT_SECONDS } else { 0 };
        let resp = client
            .receive_message()
            .queue_url(&source.queue_url)
            .max_number_of_messages(i32::try_from(n).unwrap_or(10))
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| crate::sdk_error_code(&e))?;
        let got = resp.messages.unwrap_or_default();
        let drained = got.len() < n;
        out.extend(got);
        if drained || out.len() >= want {
            return Ok(out);
        }
    }
}

async fn process(
    client: &aws_sdk_sqs::Client,
    functions: &dyn Functions,
    source: &SqsSource,
    stats: &PollerStats,
    messages: &[Message],
    region: &str,
) {
    let records: Vec<Value> = messages.iter().map(|m| sqs_record(m, &source.queue_arn, region)).collect();
    let batch: Vec<(String, String)> = messages
        .iter()
        .map(|m| (m.message_id().unwrap_or_default().to_owned(), m.receipt_handle().unwrap_or_default().to_owned()))
        .collect();
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = crate::invoke::context(&source.function, &request_id, source.timeout);
    let span = crate::invoke::span(&ctx);
    settle_invocation(client, functions, source, stats, batch, records, ctx).instrument(span).await;
}

/// One invocation and what follows it, inside the invocation's span.
async fn settle_invocation(
    client: &aws_sdk_sqs::Client,
    functions: &dyn Functions,
    source: &SqsSource,
    stats: &PollerStats,
    batch: Vec<(String, String)>,
    records: Vec<Value>,
    ctx: lambda_runtime::Context,
) {
    let outcome = match serde_json::from_value::<SqsEvent>(json!({ "Records": records })) {
        Ok(event) => {
            let call = functions.sqs(&source.function, lambda_runtime::LambdaEvent::new(event, ctx));
            match tokio::time::timeout(source.timeout, crate::invoke::guarded(&source.function, call)).await {
                Ok(r) => r,
                Err(_) => Err(InvokeError::Failed { function: source.function.clone(), message: "timed out".into() }),
            }
        }
        Err(_) => Err(InvokeError::Failed { function: source.function.clone(), message: "event did not deserialize".into() }),
    };
    if outcome.is_err() {
        stats.failed_invocations.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(function = %source.function, queue = %source.queue_logical_id, records = batch.len(), "invocation failed; batch stays on the queue");
    }
    let s = settle(&batch, &outcome, source.report_batch_item_failures);
    stats.retained.fetch_add(s.retain.len() as u64, Ordering::Relaxed);
    if !s.retain.is_empty() {
        tracing::info!(function = %source.function, queue = %source.queue_logical_id, retained = s.retain.len(), "records left for redelivery");
    }
    let deleted = delete_all(client, &source.queue_url, &s.delete).await;
    stats.deleted.fetch_add(deleted, Ordering::Relaxed);
}

/// DeleteMessageBatch, 10 entries per call. A failed delete only means a
/// redelivery, which the idempotent handlers absorb.
async fn delete_all(client: &aws_sdk_sqs::Client, queue_url: &str, receipts: &[String]) -> u64 {
    let mut deleted = 0;
    for chunk in receipts.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, rh)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(rh).build().ok())
            .collect();
        match client.delete_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await {
            Ok(r) => {
                deleted += r.successful().len() as u64;
                if !r.failed().is_empty() {
                    tracing::warn!(failed = r.failed().len(), "some deletes failed; those records will be redelivered");
                }
            }
            Err(e) => tracing::warn!(code = %crate::sdk_error_code(&e), "delete failed; records will be redelivered"),
        }
    }
    deleted
}

/// The queue's ARN, which Lambda puts in every record's `eventSourceARN`.
pub async fn queue_arn(client: &aws_sdk_sqs::Client, queue_url: &str) -> Result<String, String> {
    let r = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| crate::sdk_error_code(&e))?;
    r.attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| format!("queue {queue_url} has no QueueArn"))
}

/// ApproximateNumberOfMessages (+ not visible), for DLQ depth checks.
pub async fn queue_depth(client: &aws_sdk_sqs::Client, queue_url: &str) -> Result<u64, String> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let r = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| crate::sdk_error_code(&e))?;
    let attrs: HashMap<A, String> = r.attributes.unwrap_or_default();
    let get = |k: &A| attrs.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(get(&A::ApproximateNumberOfMessages) + get(&A::ApproximateNumberOfMessagesNotVisible))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::sqs::BatchItemFailure;

    fn batch() -> Vec<(String, String)> {
        (1..=3).map(|i| (format!("m{i}"), format!("rh{i}"))).collect()
    }

    fn failures(ids: &[&str]) -> Result<SqsBatchResponse, InvokeError> {
        let mut r = SqsBatchResponse::default();
        for id in ids {
            let mut f = BatchItemFailure::default();
            f.item_identifier = (*id).to_owned();
            r.batch_item_failures.push(f);
        }
        Ok(r)
    }

    #[test]
    fn reported_failures_stay_and_the_rest_are_deleted() {
        let s = settle(&batch(), &failures(&["m2"]), true);
        assert_eq!(s.delete, vec!["rh1", "rh3"]);
        assert_eq!(s.retain, vec!["m2"]);
    }

    #[test]
    fn an_invocation_error_keeps_the_whole_batch() {
        let err = Err(InvokeError::Failed { function: "F".into(), message: "x".into() });
        let s = settle(&batch(), &err, true);
        assert!(s.delete.is_empty());
        assert_eq!(s.retain.len(), 3);
    }

    #[test]
    fn a_failure_naming_no_message_of_the_batch_fails_it_whole() {
        assert_eq!(settle(&batch(), &failures(&["other"]), true).retain.len(), 3);
        assert_eq!(settle(&batch(), &failures(&[""]), true).retain.len(), 3);
    }

    #[test]
    fn without_report_batch_item_failures_a_success_deletes_everything() {
        let s = settle(&batch(), &failures(&["m2"]), false);
        assert_eq!(s.delete.len(), 3);
        assert!(s.retain.is_empty());
    }

    #[test]
    fn an_empty_failure_list_deletes_everything() {
        let s = settle(&batch(), &failures(&[]), true);
        assert_eq!(s.delete, vec!["rh1", "rh2", "rh3"]);
    }

    #[test]
    fn a_received_message_becomes_the_record_lambda_would_send() {
        // GIVEN a FIFO message with system and custom attributes
        let m = Message::builder()
            .message_id("id-1")
            .receipt_handle("rh-1")
            .body(r#"{"k":1}"#)
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .attributes(MessageSystemAttributeName::MessageGroupId, "t1#p1")
            .message_attributes(
                "level",
                aws_sdk_sqs::types::MessageAttributeValue::builder().data_type("String").string_value("high").build().unwrap(),
            )
            .build();
        // WHEN it is turned into an event record and parsed as a handler would
        let rec = sqs_record(&m, "arn:aws:sqs:us-east-1:123456789012:q.fifo", "us-east-1");
        let event: SqsEvent = serde_json::from_value(json!({ "Records": [rec] })).unwrap();
        // THEN every field a handler relies on is there
        let r = &event.records[0];
        assert_eq!(r.message_id.as_deref(), Some("id-1"));
        assert_eq!(r.body.as_deref(), Some(r#"{"k":1}"#));
        assert_eq!(r.attributes["ApproximateReceiveCount"], "2");
        assert_eq!(r.attributes["MessageGroupId"], "t1#p1");
        assert_eq!(r.message_attributes["level"].string_value.as_deref(), Some("high"));
        assert_eq!(r.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(r.event_source_arn.as_deref(), Some("arn:aws:sqs:us-east-1:123456789012:q.fifo"));
    }
}
