//! Lambda's SQS event source mapping over an in-memory queue: the same loop
//! as [`crate::poller::run`] (MaximumConcurrency batches in flight, Lambda's
//! partial-batch rule from [`crate::poller::settle`]), without the network.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

use super::queue::{LocalQueue, QueuedMessage};
use crate::invoke::{Functions, InvokeError};
use crate::poller::{settle, PollerStats, SqsSource};

/// An idle poller looks again this often, so shutdown is never far away.
const WAIT: Duration = Duration::from_millis(500);

pub async fn run(
    queue: Arc<LocalQueue>,
    functions: Arc<dyn Functions>,
    source: SqsSource,
    stats: Arc<PollerStats>,
    mut shutdown: watch::Receiver<bool>,
) {
    let source = Arc::new(source);
    let permits = Arc::new(Semaphore::new(source.max_concurrency.max(1)));
    let region: Arc<str> = crate::region().into();
    let mut in_flight = tokio::task::JoinSet::new();
    while !*shutdown.borrow() {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let messages = tokio::select! {
            m = queue.receive(source.batch_size.max(1), WAIT) => m,
            _ = shutdown.changed() => break,
        };
        if messages.is_empty() {
            drop(permit);
        } else {
            let (queue, functions, source, stats, region) =
                (queue.clone(), functions.clone(), source.clone(), stats.clone(), region.clone());
            in_flight.spawn(async move {
                process(&queue, functions.as_ref(), &source, &stats, messages, &region).await;
                drop(permit);
            });
        }
        while in_flight.try_join_next().is_some() {}
    }
    while in_flight.join_next().await.is_some() {}
}

async fn process(
    queue: &LocalQueue,
    functions: &dyn Functions,
    source: &SqsSource,
    stats: &PollerStats,
    messages: Vec<QueuedMessage>,
    region: &str,
) {
    let records: Vec<Value> = messages.iter().map(|m| m.record(&source.queue_arn, region)).collect();
    let batch: Vec<(String, String)> = messages.iter().map(|m| (m.message_id.clone(), m.receipt_handle())).collect();
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.records.fetch_add(batch.len() as u64, Ordering::Relaxed);
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = crate::invoke::context(&source.function, &request_id, source.timeout);
    let span = crate::invoke::span(&ctx);
    let outcome = async {
        match serde_json::from_value::<SqsEvent>(json!({ "Records": records })) {
            Ok(event) => {
                let call = functions.sqs(&source.function, lambda_runtime::LambdaEvent::new(event, ctx));
                match tokio::time::timeout(source.timeout, crate::invoke::guarded(&source.function, call)).await {
                    Ok(r) => r,
                    Err(_) => Err(InvokeError::Failed { function: source.function.clone(), message: "timed out".into() }),
                }
            }
            Err(_) => Err(InvokeError::Failed { function: source.function.clone(), message: "event did not deserialize".into() }),
        }
    }
    .instrument(span)
    .await;
    if outcome.is_err() {
        stats.failed_invocations.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(function = %source.function, queue = %source.queue_logical_id, records = batch.len(), "invocation failed; batch stays on the queue");
    }
    let s = settle(&batch, &outcome, source.report_batch_item_failures);
    stats.retained.fetch_add(s.retain.len() as u64, Ordering::Relaxed);
    let deleted = queue.settle(&messages, &s.delete);
    stats.deleted.fetch_add(deleted, Ordering::Relaxed);
}
