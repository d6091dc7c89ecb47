//! The one SQS batch runner. Every SQS-triggered function receives its batch
//! through [`Batch`], which owns three things the functions used to write
//! twice (and let drift):
//! - the panic boundary: a panic while decoding or processing one record
//!   fails that record (or, for a batch-wide phase, the records it covers),
//!   never the invocation;
//! - the message-id policy (see [`Batch::respond`]);
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
//!   then [`Batch::respond`]): the function gets the decoded records and
//!   reports per-record failures in [`Outcomes`], guarding each of its own
//!   units of work with [`guarded`].

use std::future::Future;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt};

/// Which records a failure sends back to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Standard queue: records are independent, only the failed one is
    /// redelivered.
    Independent,
    /// FIFO queue: SQS must redeliver the failed record before anything that
    /// followed it, so the failed record and every later record of the batch
    /// are reported, and nothing after it is started. (A per-message-group
    /// rule would hold back only the later records of the failed record's
    /// group; it slots in here as a third policy.)
    FifoBatch,
}

/// A function's reason for reporting a record. It is logged by its code
/// only, so it must never carry a body or a value.
pub trait Failure: std::fmt::Debug {
    /// What a panic inside the record's boundary becomes.
    fn panicked() -> Self;
    /// Short machine code for logs.
    fn code(&self) -> &'static str;
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

/// Runs `f` inside its own error boundary: a panic becomes `E::panicked()`,
/// the failure of whatever `f` was working on.
pub async fn guarded<T, E: Failure>(f: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    AssertUnwindSafe(f).catch_unwind().await.unwrap_or_else(|_| Err(E::panicked()))
}

/// One failure (or none) per record of the batch, by position.
#[derive(Debug)]
pub struct Outcomes<E> {
    failures: Vec<Option<E>>,
}

impl<E> Outcomes<E> {
    fn all_succeeded(records: usize) -> Self {
        Self { failures: std::iter::repeat_with(|| None).take(records).collect() }
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

    /// Parses every body inside its own panic boundary, in batch order, for a
    /// function that works on the batch as a whole. Returns the decoded
    /// records with their positions, and the outcomes with each parse failure
    /// recorded. Under [`FailurePolicy::FifoBatch`] parsing stops at the
    /// first failure: the later records are reported anyway and must not
    /// take effect before it.
    pub fn decode<T, E: Failure>(&self, parse: impl Fn(Option<&str>) -> Result<T, E>) -> (Vec<(usize, T)>, Outcomes<E>) {
        let mut outcomes = Outcomes::all_succeeded(self.records.len());
        let mut decoded = Vec::with_capacity(self.records.len());
        for (index, record) in self.records.iter().enumerate() {
            let parsed =
                std::panic::catch_unwind(AssertUnwindSafe(|| parse(record.body.as_deref()))).unwrap_or_else(|_| Err(E::panicked()));
            match parsed {
                Ok(value) => decoded.push((index, value)),
                Err(failure) => {
                    outcomes.fail(index, failure);
                    if self.policy == FailurePolicy::FifoBatch {
                        break;
                    }
                }
            }
        }
        (decoded, outcomes)
    }

    /// Handles each record with `handle`, each inside its own panic boundary
    /// (decoding its body included), then builds the response. Independent
    /// records run concurrently, at most `limit` at once; under
    /// [`FailurePolicy::FifoBatch`] they run one after another and stop at
    /// the first failure.
    pub async fn for_each<'a, E, F, Fut>(&'a self, limit: usize, handle: F) -> Result<SqsBatchResponse, BatchError>
    where
        E: Failure,
        F: Fn(&'a SqsMessage) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let mut outcomes = Outcomes::all_succeeded(self.records.len());
        match self.policy {
            FailurePolicy::Independent => {
                let handle = &handle;
                let results: Vec<Result<(), E>> =
                    futures::stream::iter(&self.records).map(|r| guarded(handle(r))).buffered(limit.max(1)).collect().await;
                for (index, result) in results.into_iter().enumerate() {
                    if let Err(failure) = result {
                        outcomes.fail(index, failure);
                    }
                }
            }
            FailurePolicy::FifoBatch => {
                for (index, record) in self.records.iter().enumerate() {
                    if let Err(failure) = guarded(handle(record)).await {
                        outcomes.fail(index, failure);
                        break;
                    }
                }
            }
        }
        self.respond(&outcomes)
    }

    /// The one mapping from per-record outcomes to the batch response; every
    /// reported record is logged with its message id and reason.
    ///
    /// Message-id policy: the invocation fails only when a record that must
    /// be reported (it failed, or the FIFO rule holds it back) has no message
    /// id. A record that succeeded needs no report, so a missing id costs
    /// nothing there; a record that must come back but cannot be named can
    /// only come back with the whole batch, which the idempotent handlers
    /// make safe. Nothing is lost either way. Failing the invocation up front
    /// for any id-less record (the other policy we had) would also lose
    /// nothing, but would throw away the batch's good work, and repeat that
    /// until every record of the batch, healthy ones included, is parked in
    /// the DLQ unprocessed: one record would hold back every other patient.
    /// An empty id counts as missing: Lambda reads an empty
    /// `itemIdentifier` as a failure of the whole batch, so it is never sent.
    pub fn respond<E: Failure>(&self, outcomes: &Outcomes<E>) -> Result<SqsBatchResponse, BatchError> {
        let first_failure = (0..self.records.len()).find(|&i| outcomes.failure(i).is_some());
        let reported = (0..self.records.len()).filter(|&i| match (self.policy, first_failure) {
            (_, None) => false,
            (FailurePolicy::Independent, Some(_)) => outcomes.failure(i).is_some(),
            (FailurePolicy::FifoBatch, Some(first)) => i >= first,
        });
        let mut response = SqsBatchResponse::default();
        for index in reported {
            let reason = outcomes.failure(index).map_or(AFTER_EARLIER_FAILURE, Failure::code);
            let Some(message_id) = self.records[index].message_id.as_deref().filter(|id| !id.is_empty()) else {
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

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Reason {
        Bad,
        Panicked,
    }

    impl Failure for Reason {
        fn panicked() -> Self {
            Reason::Panicked
        }
        fn code(&self) -> &'static str {
            match self {
                Reason::Bad => "bad",
                Reason::Panicked => "panicked",
            }
        }
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
}
