//! The one SQS batch runner. Every SQS-triggered function receives its batch
//! through [`Batch`], which owns four things the functions used to write
//! twice (and let drift):
//! - the panic boundary: a panic while decoding or processing one record
//!   fails that record (or, for a batch-wide phase, the records it covers),
//!   never the invocation;
//! - the message-id policy (see [`Batch::respond`]);
//! - parking: a record that failed for good ([`Disposition::Permanent`]) is
//!   sent to the DLQ by [`Batch::park`] and acknowledged, so it neither waits
//!   out the visibility timeout five times nor holds anything back;
//! - the response: `batchItemFailures` built by one function from typed
//!   per-record failures, under the function's [`FailurePolicy`].
//!
//! The batch arrives as a plain `SqsEvent`, not `SqsEventObj<T>`: a typed
//! event fails the whole batch on one bad body, whereas here each body is
//! parsed inside its own record's boundary.
//!
//! Two shapes of function use it:
//! - record by record ([`Batch::for_each`]): each record is decoded and
//!   handled in its own boundary, concurrently up to a bound;
//! - batch-wide phases ([`Batch::decode`], then the function's own work,
//!   then [`Batch::park`] and [`Batch::respond`]): the function gets the
//!   decoded records and reports per-record failures in [`Outcomes`],
//!   guarding each of its own units of work with [`guarded`].
//!
//! # The FIFO group rule ([`FailurePolicy::FifoGroup`])
//! SQS FIFO orders messages within a message group only, so only a record's
//! own group has to wait for it: a failed record holds back the later records
//! of its group (read from the `MessageGroupId` attribute SQS sets, never
//! from the body), and every other group is processed in the same invocation.
//! This is Powertools' `SqsFifoPartialProcessor(skip_group_on_error=True)`.
//! A parked record holds back nothing: it will never take effect, so there is
//! no order to keep with it.
//!
//! A record *without* a group id counts as a member of every group: it is
//! held back by any earlier failure, and when it fails or is held back, every
//! later record is held back too. Lambda always sets `MessageGroupId` on records from a FIFO
//! queue, so this happens only with hand-built events; there, not knowing
//! the group, the runner keeps the stricter whole-batch order rather than
//! risk letting a record overtake a failed one of its own group. Treating
//! it as a group of its own would be the unsafe guess.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt};

use crate::ports::{DeadLetter, DeadLetters};

/// Which records a failure sends back to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Standard queue: records are independent, only the failed one is
    /// redelivered.
    Independent,
    /// FIFO queue, whole batch: the failed record and every later record of
    /// the batch are reported, and nothing after it is started. Holds back
    /// other message groups for no reason; prefer [`FailurePolicy::FifoGroup`].
    FifoBatch,
    /// FIFO queue, per message group: the failed record and the later
    /// records of its own group are reported; other groups go on (see the
    /// module doc, including records without a group id).
    FifoGroup,
}

/// What a failure means for the record's future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// No redelivery can fix it (the record itself is bad): parked in the
    /// DLQ at once and acknowledged.
    Permanent,
    /// It may succeed later (a dependency, a race, a bug fixed by a deploy):
    /// redelivered by SQS, until the queue's redrive policy gives up.
    Transient,
}

/// A function's reason for reporting a record. It is logged by its code
/// only, so it must never carry a body or a value.
pub trait Failure: std::fmt::Debug {
    /// What a panic inside the record's boundary becomes.
    fn panicked() -> Self;
    /// Short machine code for logs (and the reason a parked record carries).
    fn code(&self) -> &'static str;
    /// Whether the record is parked or redelivered; redelivered unless the
    /// function says otherwise.
    fn disposition(&self) -> Disposition {
        Disposition::Transient
    }
}

/// The invocation as a whole fails: Lambda then makes every record of the
/// batch visible again, and SQS redelivers them all.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A record must be redelivered, but `batchItemFailures` can only name a
    /// record by its message id.
    #[error("record {index} must be redelivered but has no message id")]
    UnreportableRecord { index: usize },
}

/// Why the runner reports a record the function did not fail itself.
const AFTER_EARLIER_FAILURE: &str = "after-earlier-failure";

/// The record attribute SQS puts a FIFO message's group in.
pub const MESSAGE_GROUP_ID: &str = "MessageGroupId";

/// Runs `f` inside its own error boundary: a panic becomes `E::panicked()`,
/// the failure of whatever `f` was working on.
pub async fn guarded<T, E: Failure>(f: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    AssertUnwindSafe(f).catch_unwind().await.unwrap_or_else(|_| Err(E::panicked()))
}

/// One failure (or none) per record of the batch, by position, and whether
/// the failed record was parked.
#[derive(Debug)]
pub struct Outcomes<E> {
    failures: Vec<Option<E>>,
    parked: Vec<bool>,
}

impl<E> Outcomes<E> {
    fn all_succeeded(records: usize) -> Self {
        Self { failures: std::iter::repeat_with(|| None).take(records).collect(), parked: vec![false; records] }
    }

    /// Records `failure` for the record at `index` (the latest one wins).
    pub fn fail(&mut self, index: usize, failure: E) {
        if let Some(slot) = self.failures.get_mut(index) {
            *slot = Some(failure);
        }
    }

    /// The failure recorded for the record at `index`, if any.
    pub fn failure(&self, index: usize) -> Option<&E> {
        self.failures.get(index).and_then(Option::as_ref)
    }

    /// Whether the record at `index` failed for good and is now in the DLQ.
    pub fn is_parked(&self, index: usize) -> bool {
        self.parked.get(index).copied().unwrap_or(false)
    }

    /// A failure that must come back from the queue: failed and not parked.
    fn must_return(&self, index: usize) -> bool {
        self.failure(index).is_some() && !self.is_parked(index)
    }
}

/// A record's FIFO message group, if SQS gave it one.
pub fn group_id(record: &SqsMessage) -> Option<&str> {
    record.attributes.get(MESSAGE_GROUP_ID).map(String::as_str).filter(|g| !g.is_empty())
}

fn non_empty_message_id(record: &SqsMessage) -> Option<&str> {
    record.message_id.as_deref().filter(|id| !id.is_empty())
}

/// One SQS batch and the policy its function applies to it.
#[derive(Debug)]
pub struct Batch {
    records: Vec<SqsMessage>,
    policy: FailurePolicy,
}

impl Batch {
    pub fn new(event: SqsEvent, policy: FailurePolicy) -> Self {
        Self { records: event.records, policy }
    }

    pub fn records(&self) -> &[SqsMessage] {
        &self.records
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether a failure of the record at `earlier` holds back the one at
    /// `later` (`earlier < later`), under this batch's policy.
    fn holds_back(&self, earlier: usize, later: usize) -> bool {
        match self.policy {
            FailurePolicy::Independent => false,
            FailurePolicy::FifoBatch => true,
            // Unknown group: a member of every group (module doc).
            FailurePolicy::FifoGroup => match (group_id(&self.records[earlier]), group_id(&self.records[later])) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            },
        }
    }

    /// Parses every body inside its own panic boundary, in batch order, for a
    /// function that works on the batch as a whole. Returns the decoded
    /// records with their positions, and the outcomes with each parse failure
    /// recorded. A record that an earlier failure holds back is not parsed:
    /// it is reported anyway and must not take effect before it. Under
    /// [`FailurePolicy::FifoBatch`] that is every later record; under
    /// [`FailurePolicy::FifoGroup`], the later records of the failed one's
    /// group, and only for a [`Disposition::Transient`] failure (a permanent
    /// one is to be parked, and never takes effect).
    pub fn decode<T, E: Failure>(&self, parse: impl Fn(Option<&str>) -> Result<T, E>) -> (Vec<(usize, T)>, Outcomes<E>) {
        let mut outcomes = Outcomes::all_succeeded(self.records.len());
        let mut decoded = Vec::with_capacity(self.records.len());
        // Records that will come back: each holds back the later records of its group.
        let mut blocking: Vec<usize> = Vec::new();
        for (index, record) in self.records.iter().enumerate() {
            if blocking.iter().any(|&b| self.holds_back(b, index)) {
                // Held back, it comes back too, and so holds back its own group
                // (every group, when it has no group id).
                blocking.push(index);
                continue;
            }
            let parsed =
                std::panic::catch_unwind(AssertUnwindSafe(|| parse(record.body.as_deref()))).unwrap_or_else(|_| Err(E::panicked()));
            match parsed {
                Ok(value) => decoded.push((index, value)),
                Err(failure) => {
                    let blocks = match self.policy {
                        FailurePolicy::Independent => false,
                        FailurePolicy::FifoBatch => true,
                        FailurePolicy::FifoGroup => failure.disposition() == Disposition::Transient,
                    };
                    outcomes.fail(index, failure);
                    if blocks {
                        blocking.push(index);
                    }
                }
            }
        }
        (decoded, outcomes)
    }

    /// Handles each record with `handle`, each inside its own panic boundary
    /// (decoding its body included), then builds the response. Independent
    /// records run concurrently, at most `limit` at once. Under
    /// [`FailurePolicy::FifoBatch`] they run one after another and stop at
    /// the first failure; under [`FailurePolicy::FifoGroup`] each group runs
    /// in order and stops at its first failure, groups concurrently (at most
    /// `limit`), and a batch with a record lacking a group id runs as one
    /// group. Nothing is parked here: every failure is reported.
    pub async fn for_each<'a, E, F, Fut>(&'a self, limit: usize, handle: F) -> Result<SqsBatchResponse, BatchError>
    where
        E: Failure,
        F: Fn(&'a SqsMessage) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let mut outcomes = Outcomes::all_succeeded(self.records.len());
        let handle = &handle;
        // Lanes: records that must run in order, each lane stopping at its first failure.
        let lanes: Vec<Vec<usize>> = match self.policy {
            FailurePolicy::Independent => (0..self.records.len()).map(|i| vec![i]).collect(),
            FailurePolicy::FifoBatch => vec![(0..self.records.len()).collect()],
            FailurePolicy::FifoGroup if self.records.iter().any(|r| group_id(r).is_none()) => vec![(0..self.records.len()).collect()],
            FailurePolicy::FifoGroup => {
                let mut lanes: Vec<(&str, Vec<usize>)> = Vec::new();
                for (index, record) in self.records.iter().enumerate() {
                    let group = group_id(record).unwrap_or_default();
                    match lanes.iter_mut().find(|(g, _)| *g == group) {
                        Some((_, lane)) => lane.push(index),
                        None => lanes.push((group, vec![index])),
                    }
                }
                lanes.into_iter().map(|(_, lane)| lane).collect()
            }
        };
        let failures: Vec<(usize, E)> = futures::stream::iter(lanes)
            .map(|lane| async move {
                for index in lane {
                    if let Err(failure) = guarded(handle(&self.records[index])).await {
                        return Some((index, failure));
                    }
                }
                None
            })
            .buffered(limit.max(1))
            .filter_map(|f| async move { f })
            .collect()
            .await;
        for (index, failure) in failures {
            outcomes.fail(index, failure);
        }
        self.respond(&outcomes)
    }

    /// Parks every record that failed for good ([`Disposition::Permanent`])
    /// in `dead_letters`, one SendMessage each, in batch order: its body
    /// unchanged, its group id (or its message id, when it has none), its
    /// message id as the deduplication id, and its failure code as the reason.
    /// A parked record is then acknowledged and holds back nothing.
    ///
    /// Nothing is lost: a record that cannot be parked (the send fails, or it
    /// has no message id to deduplicate by) stays a failure and is
    /// redelivered, with the later records of its group, like a transient one.
    pub async fn park<E: Failure>(&self, outcomes: &mut Outcomes<E>, dead_letters: &impl DeadLetters) {
        for (index, record) in self.records.iter().enumerate() {
            let Some(failure) = outcomes.failure(index).filter(|f| f.disposition() == Disposition::Permanent) else {
                continue;
            };
            let reason = failure.code();
            let Some(message_id) = non_empty_message_id(record) else {
                tracing::warn!(index, reason, "a record to park has no message id to deduplicate by; it is redelivered instead");
                continue;
            };
            let letter = DeadLetter {
                body: record.body.as_deref().unwrap_or_default(),
                group_id: group_id(record).unwrap_or(message_id),
                dedup_id: message_id,
                reason,
            };
            match dead_letters.park(&letter).await {
                Ok(()) => {
                    outcomes.parked[index] = true;
                    tracing::warn!(message_id, reason, "record parked in the DLQ");
                }
                Err(e) => tracing::error!(message_id, reason, error = e.code(), "parking failed; the record is redelivered instead"),
            }
        }
    }

    /// The one mapping from per-record outcomes to the batch response; every
    /// reported record is logged with its message id and reason. A record is
    /// reported when it must come back (it failed and was not parked), or
    /// when such a record before it holds it back under the policy. A parked
    /// record is never reported: it is in the DLQ already.
    ///
    /// Message-id policy: the invocation fails only when a record that must
    /// be reported has no message id. A record that succeeded needs no
    /// report, so a missing id costs nothing there; a record that must come
    /// back but cannot be named can only come back with the whole batch,
    /// which the idempotent handlers make safe. Nothing is lost either way.
    /// Failing the invocation up front for any id-less record (the other
    /// policy we had) would also lose nothing, but would throw away the
    /// batch's good work, and repeat that until every record of the batch,
    /// healthy ones included, is parked in the DLQ unprocessed: one record
    /// would hold back every other patient. An empty id counts as missing:
    /// Lambda reads an empty `itemIdentifier` as a failure of the whole
    /// batch, so it is never sent.
    pub fn respond<E: Failure>(&self, outcomes: &Outcomes<E>) -> Result<SqsBatchResponse, BatchError> {
        // In batch order: a record that comes back holds back the later records
        // of its group, and a record held back comes back, so it does the same
        // (which matters only for a record without a group id: it is in every group).
        let mut reported: Vec<usize> = Vec::new();
        for i in 0..self.records.len() {
            if outcomes.must_return(i) || (!outcomes.is_parked(i) && reported.iter().any(|&f| self.holds_back(f, i))) {
                reported.push(i);
            }
        }
        let mut response = SqsBatchResponse::default();
        for index in reported {
            let reason = match outcomes.failure(index) {
                Some(f) if outcomes.must_return(index) => f.code(),
                _ => AFTER_EARLIER_FAILURE,
            };
            let Some(message_id) = non_empty_message_id(&self.records[index]) else {
                tracing::error!(
                    index,
                    reason,
                    records = self.records.len(),
                    "a record to redeliver has no message id; failing the invocation so SQS redelivers the whole batch"
                );
                return Err(BatchError::UnreportableRecord { index });
            };
            tracing::warn!(message_id, reason, "record reported as failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id.to_owned();
            response.batch_item_failures.push(failure);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::memory::MemoryDeadLetters;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Reason {
        /// Transient (the default disposition).
        Bad,
        /// Permanent: parked when the function parks.
        Garbage,
        Panicked,
    }

    impl Failure for Reason {
        fn panicked() -> Self {
            Reason::Panicked
        }
        fn code(&self) -> &'static str {
            match self {
                Reason::Bad => "bad",
                Reason::Garbage => "garbage",
                Reason::Panicked => "panicked",
            }
        }
        fn disposition(&self) -> Disposition {
            match self {
                Reason::Garbage => Disposition::Permanent,
                Reason::Bad | Reason::Panicked => Disposition::Transient,
            }
        }
    }

    /// A FIFO batch of (message id, group id, body); `None` ids are absent.
    fn grouped(records: &[(Option<&str>, Option<&str>, &str)], policy: FailurePolicy) -> Batch {
        let mut event = SqsEvent::default();
        event.records = records
            .iter()
            .map(|(id, group, body)| {
                let mut m = SqsMessage::default();
                m.message_id = id.map(str::to_owned);
                if let Some(g) = group {
                    m.attributes.insert(MESSAGE_GROUP_ID.to_owned(), (*g).to_owned());
                }
                m.body = Some((*body).to_owned());
                m
            })
            .collect();
        Batch::new(event, policy)
    }

    /// Records with these ids (None: no message id) and these bodies.
    fn batch(records: &[(Option<&str>, &str)], policy: FailurePolicy) -> Batch {
        let mut event = SqsEvent::default();
        event.records = records
            .iter()
            .map(|(id, body)| {
                let mut m = SqsMessage::default();
                m.message_id = id.map(str::to_owned);
                m.body = Some((*body).to_owned());
                m
            })
            .collect();
        Batch::new(event, policy)
    }

    fn parse(body: Option<&str>) -> Result<u32, Reason> {
        match body {
            Some("panic") => panic!("injected"),
            Some("junk") => Err(Reason::Garbage),
            Some(b) => b.parse().map_err(|_| Reason::Bad),
            None => Err(Reason::Bad),
        }
    }

    fn ids(r: &SqsBatchResponse) -> Vec<&str> {
        r.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    #[test]
    fn fifo_reports_the_first_failure_and_every_later_record() {
        // GIVEN a FIFO batch whose second and fourth records fail
        let b = batch(&[(Some("a"), "1"), (Some("b"), "x"), (Some("c"), "3"), (Some("d"), "y")], FailurePolicy::FifoBatch);
        let mut outcomes = Outcomes::all_succeeded(4);
        outcomes.fail(1, Reason::Bad);
        outcomes.fail(3, Reason::Bad);
        // THEN the first failure and everything after it are reported
        assert_eq!(ids(&b.respond(&outcomes).unwrap()), ["b", "c", "d"]);
        // AND a batch without failures reports nothing
        assert!(b.respond(&Outcomes::<Reason>::all_succeeded(4)).unwrap().batch_item_failures.is_empty());
    }

    #[test]
    fn independent_records_report_only_the_failed_ones() {
        let b = batch(&[(Some("a"), "1"), (Some("b"), "x"), (Some("c"), "3"), (Some("d"), "y")], FailurePolicy::Independent);
        let mut outcomes = Outcomes::all_succeeded(4);
        outcomes.fail(1, Reason::Bad);
        outcomes.fail(3, Reason::Bad);
        assert_eq!(ids(&b.respond(&outcomes).unwrap()), ["b", "d"]);
    }

    #[test]
    fn a_record_without_a_message_id_fails_the_invocation_only_when_it_must_be_reported() {
        for policy in [FailurePolicy::Independent, FailurePolicy::FifoBatch] {
            // GIVEN a batch whose first record has no message id (and a second with an empty one)
            let b = batch(&[(None, "1"), (Some(""), "2"), (Some("c"), "x")], policy);
            // WHEN only a named record fails THEN it is reported and the unnamed ones are acknowledged
            let mut named_fails = Outcomes::all_succeeded(3);
            named_fails.fail(2, Reason::Bad);
            assert_eq!(ids(&b.respond(&named_fails).unwrap()), ["c"], "{policy:?}");
            // WHEN an unnamed record fails THEN the whole invocation fails, naming its position
            for unnamed in [0, 1] {
                let mut unnamed_fails = Outcomes::all_succeeded(3);
                unnamed_fails.fail(unnamed, Reason::Bad);
                let err = b.respond(&unnamed_fails).unwrap_err();
                assert!(matches!(err, BatchError::UnreportableRecord { index } if index == unnamed), "{policy:?}: {err:?}");
            }
        }
    }

    #[test]
    fn a_record_without_a_message_id_held_back_by_the_fifo_rule_fails_the_invocation() {
        // GIVEN a FIFO batch where a named record fails before an unnamed one
        let b = batch(&[(Some("a"), "x"), (None, "2")], FailurePolicy::FifoBatch);
        let mut outcomes = Outcomes::all_succeeded(2);
        outcomes.fail(0, Reason::Bad);
        // THEN the unnamed record must come back too, so the invocation fails
        assert!(matches!(b.respond(&outcomes), Err(BatchError::UnreportableRecord { index: 1 })));
    }

    #[test]
    fn decoding_catches_a_panic_per_record_and_fifo_stops_at_the_first_failure() {
        let records = [(Some("a"), "1"), (Some("b"), "panic"), (Some("c"), "3"), (Some("d"), "x")];
        // GIVEN a standard queue: every body is parsed, the panic fails its record only
        let (decoded, outcomes) = batch(&records, FailurePolicy::Independent).decode(parse);
        assert_eq!(decoded, [(0, 1), (2, 3)]);
        assert_eq!((outcomes.failure(1), outcomes.failure(3)), (Some(&Reason::Panicked), Some(&Reason::Bad)));
        // GIVEN a FIFO queue: nothing after the first failure is decoded
        let (decoded, outcomes) = batch(&records, FailurePolicy::FifoBatch).decode(parse);
        assert_eq!(decoded, [(0, 1)]);
        assert_eq!((outcomes.failure(1), outcomes.failure(3)), (Some(&Reason::Panicked), None));
    }

    #[tokio::test]
    async fn for_each_catches_a_panic_per_record() {
        // GIVEN a standard-queue batch with a record whose handling panics
        let b = batch(&[(Some("a"), "1"), (Some("b"), "panic"), (Some("c"), "x"), (Some("d"), "4")], FailurePolicy::Independent);
        let seen = std::sync::Mutex::new(Vec::new());
        // WHEN each record is handled
        let r = b
            .for_each(2, |m| {
                let seen = &seen;
                async move {
                    let n = parse(m.body.as_deref())?;
                    seen.lock().unwrap().push(n);
                    Ok::<(), Reason>(())
                }
            })
            .await
            .unwrap();
        // THEN only the panicking and the bad record are reported, the others were handled
        assert_eq!(ids(&r), ["b", "c"]);
        assert_eq!(seen.into_inner().unwrap(), [1, 4]);
    }

    #[tokio::test]
    async fn for_each_on_fifo_starts_nothing_after_a_failure() {
        let b = batch(&[(Some("a"), "1"), (Some("b"), "x"), (Some("c"), "3")], FailurePolicy::FifoBatch);
        let seen = std::sync::Mutex::new(Vec::new());
        let r = b
            .for_each(4, |m| {
                let seen = &seen;
                async move {
                    seen.lock().unwrap().push(m.message_id.clone().unwrap());
                    parse(m.body.as_deref()).map(|_| ())
                }
            })
            .await
            .unwrap();
        assert_eq!(ids(&r), ["b", "c"]);
        assert_eq!(seen.into_inner().unwrap(), ["a", "b"]);
    }

    #[test]
    fn fifo_group_reports_a_failure_and_the_later_records_of_its_group_only() {
        // GIVEN a FIFO batch of groups A, B, A, C, B where the first A record fails
        let b = grouped(
            &[
                (Some("a1"), Some("A"), "1"),
                (Some("b1"), Some("B"), "2"),
                (Some("a2"), Some("A"), "3"),
                (Some("c1"), Some("C"), "4"),
                (Some("b2"), Some("B"), "5"),
            ],
            FailurePolicy::FifoGroup,
        );
        let mut outcomes = Outcomes::all_succeeded(5);
        outcomes.fail(0, Reason::Bad);
        // THEN only A's records are reported: B and C are acknowledged
        assert_eq!(ids(&b.respond(&outcomes).unwrap()), ["a1", "a2"]);
        // AND a failure of B's second record holds back nothing before it
        let mut outcomes = Outcomes::all_succeeded(5);
        outcomes.fail(4, Reason::Bad);
        assert_eq!(ids(&b.respond(&outcomes).unwrap()), ["b2"]);
    }

    #[test]
    fn fifo_group_counts_a_record_without_a_group_id_as_a_member_of_every_group() {
        // GIVEN groups A, (none), B
        let b = grouped(&[(Some("a1"), Some("A"), "1"), (Some("n1"), None, "2"), (Some("b1"), Some("B"), "3")], FailurePolicy::FifoGroup);
        // WHEN A's record fails THEN the group-less record after it is held back, and with it
        // B's later record (the group-less one may be B's, and B's must not overtake it)
        let mut outcomes = Outcomes::all_succeeded(3);
        outcomes.fail(0, Reason::Bad);
        assert_eq!(ids(&b.respond(&outcomes).unwrap()), ["a1", "n1", "b1"]);
        // AND B's record before the group-less one is not held back by A
        let b2 = grouped(&[(Some("a1"), Some("A"), "1"), (Some("b0"), Some("B"), "2"), (Some("n1"), None, "3")], FailurePolicy::FifoGroup);
        assert_eq!(ids(&b2.respond(&outcomes).unwrap()), ["a1", "n1"]);
        // WHEN the group-less record fails THEN everything after it is held back
        let mut outcomes = Outcomes::all_succeeded(3);
        outcomes.fail(1, Reason::Bad);
        assert_eq!(ids(&b.respond(&outcomes).unwrap()), ["n1", "b1"]);
        // AND an empty group id counts as none
        let b = grouped(&[(Some("a1"), Some(""), "1"), (Some("b1"), Some("B"), "2")], FailurePolicy::FifoGroup);
        let mut outcomes = Outcomes::all_succeeded(2);
        outcomes.fail(0, Reason::Bad);
        assert_eq!(ids(&b.respond(&outcomes).unwrap()), ["a1", "b1"]);
    }

    #[test]
    fn fifo_group_decoding_skips_only_the_later_records_of_a_group_with_a_transient_failure() {
        // GIVEN groups A (panics, then valid), B (permanent garbage, then valid), C (valid)
        let b = grouped(
            &[
                (Some("a1"), Some("A"), "panic"),
                (Some("b1"), Some("B"), "junk"),
                (Some("a2"), Some("A"), "3"),
                (Some("b2"), Some("B"), "4"),
                (Some("c1"), Some("C"), "5"),
            ],
            FailurePolicy::FifoGroup,
        );
        // WHEN decoded
        let (decoded, outcomes) = b.decode(parse);
        // THEN the panic fails its record and holds back A's later one (not decoded);
        // the permanent failure holds back nothing, so B's later record and C decode
        assert_eq!(decoded, [(3, 4), (4, 5)]);
        assert_eq!(
            (outcomes.failure(0), outcomes.failure(1), outcomes.failure(2)),
            (Some(&Reason::Panicked), Some(&Reason::Garbage), None)
        );
    }

    #[tokio::test]
    async fn parking_acknowledges_a_permanent_failure_and_its_group_goes_on() {
        // GIVEN a permanent failure in A, a transient one in B, valid records after each
        let b = grouped(
            &[(Some("a1"), Some("A"), "junk"), (Some("b1"), Some("B"), "x"), (Some("a2"), Some("A"), "3"), (Some("b2"), Some("B"), "4")],
            FailurePolicy::FifoGroup,
        );
        let (_, mut outcomes) = b.decode(parse);
        let dlq = MemoryDeadLetters::new();
        // WHEN the permanent failures are parked and the batch answered
        b.park(&mut outcomes, &dlq).await;
        let response = b.respond(&outcomes).unwrap();
        // THEN the garbage record is in the DLQ with its body, group, dedup id and reason
        let parked = dlq.parked();
        assert_eq!(parked.len(), 1);
        assert_eq!(
            (parked[0].body.as_str(), parked[0].group_id.as_str(), parked[0].dedup_id.as_str(), parked[0].reason),
            ("junk", "A", "a1", "garbage")
        );
        assert!(outcomes.is_parked(0) && !outcomes.is_parked(1));
        // AND only B's transient failure and B's later record come back; A's are acknowledged
        assert_eq!(ids(&response), ["b1", "b2"]);
        // AND a transient failure is never parked: one SendMessage in all
        assert_eq!(dlq.requests.get("sqs.SendMessage"), 1);
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_parked_is_redelivered_with_the_later_records_of_its_group() {
        // GIVEN a permanent failure in A whose park fails, and another with no message id
        let b = grouped(
            &[(Some("a1"), Some("A"), "junk"), (Some("a2"), Some("A"), "2"), (None, Some("B"), "junk"), (Some("c1"), Some("C"), "3")],
            FailurePolicy::FifoGroup,
        );
        let (_, mut outcomes) = b.decode(parse);
        let dlq = MemoryDeadLetters::new();
        dlq.fail_next(1);
        // WHEN parked
        b.park(&mut outcomes, &dlq).await;
        // THEN nothing was parked, and nothing is lost: A's record comes back with A's later one
        assert!(dlq.parked().is_empty());
        let mut a_only = Outcomes::all_succeeded(4);
        a_only.fail(0, Reason::Garbage);
        b.park(&mut a_only, &MemoryDeadLetters::new()).await;
        // (a retry of the park would succeed, as a redelivery's will)
        assert!(a_only.is_parked(0));
        // AND the unnamed garbage must come back but cannot be named: the whole batch returns
        assert!(matches!(b.respond(&outcomes), Err(BatchError::UnreportableRecord { index: 2 })));
        // AND without the unnamed record, exactly A's two records are reported
        let b = grouped(
            &[(Some("a1"), Some("A"), "junk"), (Some("a2"), Some("A"), "2"), (Some("c1"), Some("C"), "3")],
            FailurePolicy::FifoGroup,
        );
        let (_, mut outcomes) = b.decode(parse);
        let dlq = MemoryDeadLetters::new();
        dlq.fail_next(1);
        b.park(&mut outcomes, &dlq).await;
        assert_eq!(ids(&b.respond(&outcomes).unwrap()), ["a1", "a2"]);
    }

    #[tokio::test]
    async fn for_each_on_fifo_groups_stops_only_the_failed_group_and_survives_a_panic() {
        // GIVEN groups A (panics, then valid), B (bad, then valid), C (valid, valid)
        let b = grouped(
            &[
                (Some("a1"), Some("A"), "panic"),
                (Some("b1"), Some("B"), "x"),
                (Some("c1"), Some("C"), "1"),
                (Some("a2"), Some("A"), "2"),
                (Some("b2"), Some("B"), "3"),
                (Some("c2"), Some("C"), "4"),
            ],
            FailurePolicy::FifoGroup,
        );
        let seen = std::sync::Mutex::new(Vec::new());
        // WHEN each record is handled
        let r = b
            .for_each(2, |m| {
                let seen = &seen;
                async move {
                    let n = parse(m.body.as_deref())?;
                    seen.lock().unwrap().push(n);
                    Ok::<(), Reason>(())
                }
            })
            .await
            .unwrap();
        // THEN A and B stop at their failures, C runs to the end
        assert_eq!(ids(&r), ["a1", "b1", "a2", "b2"]);
        assert_eq!(seen.into_inner().unwrap(), [1, 4]);
    }

    #[tokio::test]
    async fn for_each_on_fifo_groups_runs_a_batch_with_a_group_less_record_as_one_group() {
        let b = grouped(&[(Some("a1"), Some("A"), "x"), (Some("n1"), None, "1"), (Some("b1"), Some("B"), "2")], FailurePolicy::FifoGroup);
        let seen = std::sync::Mutex::new(Vec::new());
        let r = b
            .for_each(4, |m| {
                let seen = &seen;
                async move {
                    seen.lock().unwrap().push(m.message_id.clone().unwrap());
                    parse(m.body.as_deref()).map(|_| ())
                }
            })
            .await
            .unwrap();
        assert_eq!(ids(&r), ["a1", "n1", "b1"]);
        assert_eq!(seen.into_inner().unwrap(), ["a1"]);
    }
}
