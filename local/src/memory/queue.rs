//! SQS, in memory, for the local stack's `STORE=memory` mode: the two queue
//! ports the functions send through, and the receive/settle side the pollers
//! use. It keeps the semantics the handlers rely on: FIFO order per message
//! group (a group with a message in flight or waiting to be retried yields
//! nothing more), five-minute-style deduplication by id on FIFO sends,
//! redelivery of what a function did not settle, and a dead-letter count after
//! `max_receive_count` receives. It does not model SQS's latency or quotas:
//! this mode measures TrialWatch's own code.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use trialwatch::alert::Alert;
use trialwatch::ports::{AlertQueue, StorageError, VitalsQueue};
use trialwatch::vitals::VitalsMessage;
use trialwatch::Error;

/// How long a record the function did not settle stays hidden before it is
/// received again. SQS uses the queue's VisibilityTimeout (minutes); a local
/// run wants to see the retry, so it is short here.
pub const REDELIVERY_DELAY: Duration = Duration::from_secs(2);

/// One message as the queue holds it.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub message_id: String,
    pub body: String,
    /// MessageGroupId (FIFO); `None` on a standard queue.
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// String message attributes (`level`, `trialId`, the correlation id).
    pub attributes: Vec<(String, String)>,
    pub receive_count: u32,
    pub sent_at_ms: i64,
    visible_at: Instant,
}

impl QueuedMessage {
    /// The receipt handle of this receive: a redelivery gets a new one, as in SQS.
    pub fn receipt_handle(&self) -> String {
        format!("{}#{}", self.message_id, self.receive_count)
    }

    /// The `Records` entry Lambda builds for this message (the same shape
    /// [`crate::poller::sqs_record`] builds from an SQS response).
    pub fn record(&self, queue_arn: &str, region: &str) -> Value {
        let mut attributes = Map::new();
        attributes.insert("ApproximateReceiveCount".into(), Value::String(self.receive_count.to_string()));
        attributes.insert("SentTimestamp".into(), Value::String(self.sent_at_ms.to_string()));
        attributes.insert("ApproximateFirstReceiveTimestamp".into(), Value::String(self.sent_at_ms.to_string()));
        attributes.insert("SenderId".into(), Value::String("AIDAMEMORY".into()));
        if let Some(g) = &self.group_id {
            attributes.insert("MessageGroupId".into(), Value::String(g.clone()));
        }
        if let Some(d) = &self.dedup_id {
            attributes.insert("MessageDeduplicationId".into(), Value::String(d.clone()));
        }
        let message_attributes: Map<String, Value> = self
            .attributes
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!({"stringValue": v, "binaryValue": null, "stringListValues": [], "binaryListValues": [], "dataType": "String"}),
                )
            })
            .collect();
        json!({
            "messageId": self.message_id,
            "receiptHandle": self.receipt_handle(),
            "body": self.body,
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        })
    }
}

#[derive(Default)]
struct State {
    ready: VecDeque<QueuedMessage>,
    /// Received and not yet settled, by receipt handle.
    in_flight: HashMap<String, QueuedMessage>,
    /// Groups with a message in flight: FIFO hands out nothing more of them.
    busy_groups: HashSet<String>,
    seen_dedup_ids: HashSet<String>,
    /// Visibility a consumer asked for (ChangeMessageVisibility), by receipt handle.
    hide_for: HashMap<String, Duration>,
}

/// One queue. `Notify` wakes a waiting receive when a message arrives.
pub struct LocalQueue {
    pub logical_id: String,
    max_receive_count: u32,
    state: Mutex<State>,
    arrived: Notify,
    next_id: AtomicU64,
    pub sent: AtomicU64,
    pub dead_lettered: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LocalQueue {
    pub fn new(logical_id: &str, max_receive_count: u32) -> Self {
        Self {
            logical_id: logical_id.to_owned(),
            max_receive_count: max_receive_count.max(1),
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
            next_id: AtomicU64::new(1),
            sent: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
        }
    }

    /// SendMessage: a FIFO resend with a deduplication id already seen is dropped, as SQS drops it.
    pub fn send(&self, body: String, group_id: Option<String>, dedup_id: Option<String>, attributes: Vec<(String, String)>) {
        let mut s = lock(&self.state);
        if let (Some(_), Some(d)) = (&group_id, &dedup_id) {
            if !s.seen_dedup_ids.insert(d.clone()) {
                return;
            }
        }
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        s.ready.push_back(QueuedMessage {
            message_id: format!("{}-{n:010}", self.logical_id),
            body,
            group_id,
            dedup_id,
            attributes,
            receive_count: 0,
            sent_at_ms: chrono::Utc::now().timestamp_millis(),
            visible_at: Instant::now(),
        });
        drop(s);
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.arrived.notify_one();
    }

    /// ReceiveMessage: up to `max` visible messages, skipping groups that are
    /// busy (FIFO order). Waits up to `wait` for the first one.
    pub async fn receive(&self, max: usize, wait: Duration) -> Vec<QueuedMessage> {
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so a send between the look and the wait is not missed.
            let arrived = self.arrived.notified();
            let (got, next_visible) = self.take(max);
            if !got.is_empty() {
                return got;
            }
            let now = Instant::now();
            if now >= deadline {
                return got;
            }
            let until = next_visible.map_or(deadline, |v| v.min(deadline));
            tokio::select! {
                _ = arrived => {}
                _ = tokio::time::sleep(until.saturating_duration_since(now)) => {}
            }
        }
    }

    fn take(&self, max: usize) -> (Vec<QueuedMessage>, Option<Instant>) {
        let now = Instant::now();
        let mut s = lock(&self.state);
        let mut out = Vec::new();
        let mut next_visible: Option<Instant> = None;
        // Groups whose head is not handed out this time: none of their later messages may be.
        let mut held: HashSet<String> = HashSet::new();
        let mut i = 0;
        while i < s.ready.len() && out.len() < max {
            let m = &s.ready[i];
            let blocked = m.group_id.as_ref().is_some_and(|g| s.busy_groups.contains(g) || held.contains(g));
            if blocked || m.visible_at > now {
                if m.visible_at > now {
                    next_visible = Some(next_visible.map_or(m.visible_at, |v| v.min(m.visible_at)));
                }
                if let Some(g) = &m.group_id {
                    held.insert(g.clone());
                }
                i += 1;
                continue;
            }
            let Some(mut m) = s.ready.remove(i) else { break };
            m.receive_count += 1;
            if let Some(g) = &m.group_id {
                // One batch may carry several messages of a group, in order (as FIFO SQS does);
                // the group is busy until the batch is settled.
                held.remove(g);
            }
            out.push(m);
        }
        for m in &out {
            if let Some(g) = &m.group_id {
                s.busy_groups.insert(g.clone());
            }
            s.in_flight.insert(m.receipt_handle(), m.clone());
        }
        (out, next_visible)
    }

    /// ChangeMessageVisibility: the consumer's own backoff for a record it will leave.
    pub fn hide(&self, receipt_handle: &str, seconds: i32) {
        let d = Duration::from_secs(u64::try_from(seconds.max(0)).unwrap_or(0));
        lock(&self.state).hide_for.insert(receipt_handle.to_owned(), d);
    }

    /// Settles a received batch: deletes `delete` (receipt handles) and makes
    /// the rest visible again after their delay, or dead-letters them after
    /// `max_receive_count` receives. Frees the batch's groups.
    pub fn settle(&self, batch: &[QueuedMessage], delete: &[String]) -> u64 {
        let delete: HashSet<&str> = delete.iter().map(String::as_str).collect();
        let mut s = lock(&self.state);
        let mut deleted = 0;
        let mut back = Vec::new();
        for m in batch {
            let rh = m.receipt_handle();
            let hide = s.hide_for.remove(&rh);
            let Some(mut m) = s.in_flight.remove(&rh) else { continue };
            if let Some(g) = &m.group_id {
                s.busy_groups.remove(g);
            }
            if delete.contains(rh.as_str()) {
                deleted += 1;
            } else if m.receive_count >= self.max_receive_count {
                self.dead_lettered.fetch_add(1, Ordering::Relaxed);
            } else {
                m.visible_at = Instant::now() + hide.unwrap_or(REDELIVERY_DELAY);
                back.push(m);
            }
        }
        // Retried messages go back to the front, in their order: FIFO keeps a
        // group's later messages behind them.
        for m in back.into_iter().rev() {
            s.ready.push_front(m);
        }
        drop(s);
        self.arrived.notify_waiters();
        deleted
    }

    /// ApproximateNumberOfMessages + NotVisible.
    pub fn depth(&self) -> u64 {
        let s = lock(&self.state);
        (s.ready.len() + s.in_flight.len()) as u64
    }
}

/// The vitals queue behind the [`VitalsQueue`] port (FIFO: grouped, deduplicated).
#[derive(Clone)]
pub struct MemoryVitalsQueue(pub std::sync::Arc<LocalQueue>);

/// The alert queue behind the [`AlertQueue`] port (standard).
#[derive(Clone)]
pub struct MemoryAlertQueue(pub std::sync::Arc<LocalQueue>);

fn correlation_attribute(id: Option<&trialwatch::correlation::CorrelationId>) -> Option<(String, String)> {
    id.map(|c| (trialwatch::correlation::MESSAGE_ATTRIBUTE.to_owned(), c.as_str().to_owned()))
}

/// SQS limits a SendMessageBatch to 10 entries; the adapter splits, so does this.
#[async_trait]
impl VitalsQueue for MemoryVitalsQueue {
    async fn send_vitals(&self, messages: &[VitalsMessage]) -> Result<(), StorageError> {
        let correlation = trialwatch::correlation::current();
        for m in messages {
            let body = serde_json::to_string(m).map_err(|_| StorageError::Corrupt("vitals message does not serialise".into()))?;
            let attributes = correlation_attribute(correlation.as_ref()).into_iter().collect();
            self.0.send(body, Some(m.group_id()), Some(m.dedup_id()), attributes);
        }
        Ok(())
    }
}

#[async_trait]
impl AlertQueue for MemoryAlertQueue {
    async fn enqueue(&self, alerts: &[Alert]) -> Result<(), StorageError> {
        for a in alerts {
            let body = serde_json::to_string(a).map_err(|_| StorageError::Corrupt("alert does not serialise".into()))?;
            let mut attributes = vec![("level".to_owned(), a.level.as_str().to_owned()), ("trialId".to_owned(), a.trial_id.to_string())];
            attributes.extend(correlation_attribute(a.correlation_id.as_ref()));
            // The alert queue is a standard queue: no group, no deduplication id.
            self.0.send(body, None, None, attributes);
        }
        Ok(())
    }
}

/// The dispatcher's ChangeMessageVisibility, on the in-memory alert queue.
pub struct MemoryVisibility(pub std::sync::Arc<LocalQueue>);

#[async_trait]
impl alert_dispatcher::VisibilityControl for MemoryVisibility {
    async fn extend(&self, receipt_handle: &str, seconds: i32) -> Result<(), Error> {
        self.0.hide(receipt_handle, seconds);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> LocalQueue {
        LocalQueue::new("Q", 3)
    }

    #[tokio::test]
    async fn a_group_with_a_message_in_flight_yields_nothing_more_until_it_is_settled() {
        // GIVEN two messages of group g and one of group h
        let q = queue();
        q.send("g1".into(), Some("g".into()), Some("d1".into()), vec![]);
        q.send("g2".into(), Some("g".into()), Some("d2".into()), vec![]);
        q.send("h1".into(), Some("h".into()), Some("d3".into()), vec![]);
        // WHEN one message is received
        let first = q.receive(1, Duration::ZERO).await;
        assert_eq!(first[0].body, "g1");
        // THEN the next receive skips g (busy) and hands out h
        let second = q.receive(10, Duration::ZERO).await;
        assert_eq!(second.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), vec!["h1"]);
        // AND once g1 is deleted, g2 comes
        q.settle(&first, &[first[0].receipt_handle()]);
        let third = q.receive(10, Duration::ZERO).await;
        assert_eq!(third[0].body, "g2");
    }

    #[tokio::test]
    async fn a_record_left_unsettled_comes_back_before_its_group_moves_on_then_dead_letters() {
        // GIVEN a queue that dead-letters after 3 receives, and two messages of one group
        let q = queue();
        q.send("a".into(), Some("g".into()), Some("1".into()), vec![]);
        q.send("b".into(), Some("g".into()), Some("2".into()), vec![]);
        for receive in 1..=3 {
            // WHEN the function keeps failing the first one (hidden for 0 s, to retry at once)
            let got = q.receive(1, Duration::ZERO).await;
            assert_eq!(got[0].body, "a", "receive {receive} must be the failed head, not a later message of its group");
            assert_eq!(got[0].receive_count, receive);
            q.hide(&got[0].receipt_handle(), 0);
            q.settle(&got, &[]);
        }
        // THEN after the third receive it is dead-lettered and the group moves on
        assert_eq!(q.dead_lettered.load(Ordering::Relaxed), 1);
        assert_eq!(q.receive(1, Duration::ZERO).await[0].body, "b");
    }

    #[tokio::test]
    async fn a_fifo_resend_with_the_same_deduplication_id_is_dropped() {
        let q = queue();
        q.send("a".into(), Some("g".into()), Some("same".into()), vec![]);
        q.send("a".into(), Some("g".into()), Some("same".into()), vec![]);
        assert_eq!(q.depth(), 1);
    }
}
