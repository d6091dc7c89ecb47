//! Appending to a chain: what a writer's transaction must carry (the head
//! move, [`Extension`]) and the one retry loop every writer uses when another
//! writer extended the chain first ([`append_with_retry`]).
//!
//! An append is linked from the head the writer read and commits only if
//! that head is still the chain's head (a condition on the head item, in the
//! transaction of the change it records). Two writers of one chain cannot
//! both commit: the loser gets [`head_moved`], re-reads the head with a
//! consistent read, re-links and tries again, a bounded number of times.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use super::chain::{ChainHead, ChainId, GENESIS};
use super::AuditEntry;
use crate::error::Error;
use crate::ports::StorageError;

/// Conflict kind of an append whose head is no longer the chain's head.
pub const HEAD_MOVED: &str = "audit-head-moved";

/// Tries of one append, the first included. Two writers of one chain are
/// rare (one patient's phone and one device, a nurse acknowledging while the
/// dispatcher settles); four tries absorb a burst of three.
pub const MAX_APPEND_ATTEMPTS: usize = 4;

/// Re-reads after a head conflict since the process started: a figure for
/// load tests (`make demo`), not a metric anyone alarms on.
static HEAD_RETRIES: AtomicU64 = AtomicU64::new(0);

pub fn head_retries() -> u64 {
    HEAD_RETRIES.load(Ordering::Relaxed)
}

pub fn head_moved() -> StorageError {
    StorageError::conflict(HEAD_MOVED, "the audit chain moved on since its head was read")
}

/// An error an append loop can run on: the store's own, or a caller's that
/// carries it (a use case's, the HTTP edge's).
pub trait AppendError: From<StorageError> {
    /// Whether this is [`head_moved`].
    fn is_head_moved(&self) -> bool;
}

impl AppendError for StorageError {
    fn is_head_moved(&self) -> bool {
        matches!(self, StorageError::Conflict { kind: HEAD_MOVED, .. })
    }
}

impl AppendError for Error {
    fn is_head_moved(&self) -> bool {
        matches!(self, Error::Conflict { kind: HEAD_MOVED, .. })
    }
}

pub fn is_head_moved<E: AppendError>(e: &E) -> bool {
    e.is_head_moved()
}

/// Runs `write` with `start` (the head context a writer already holds: a
/// cached enrolment, a head it read) or, without one, with what `reread`
/// returns. On [`head_moved`], `reread` (a consistent read) gives the next
/// context and `write` runs again, [`MAX_APPEND_ATTEMPTS`] tries in all; then
/// the append is `Unavailable` (503 with Retry-After at the HTTP edge, a
/// redelivery on a queue). Any other result ends the loop.
pub async fn append_with_retry<C, T, E, R, RF, W, WF>(start: Option<C>, mut reread: R, mut write: W) -> Result<T, E>
where
    E: AppendError,
    R: FnMut() -> RF,
    RF: Future<Output = Result<C, E>>,
    W: FnMut(C) -> WF,
    WF: Future<Output = Result<T, E>>,
{
    let mut context = match start {
        Some(c) => c,
        None => reread().await?,
    };
    for attempt in 1..=MAX_APPEND_ATTEMPTS {
        match write(context).await {
            Err(e) if is_head_moved(&e) => {
                HEAD_RETRIES.fetch_add(1, Ordering::Relaxed);
                tracing::info!(attempt, reason = HEAD_MOVED, "audit chain head moved; re-reading");
                if attempt == MAX_APPEND_ATTEMPTS {
                    break;
                }
                context = reread().await?;
            }
            other => return other,
        }
    }
    Err(StorageError::Unavailable(format!("audit append: the chain head moved {MAX_APPEND_ATTEMPTS} times")).into())
}

/// How one change moves its chain's head: from the head its first entry was
/// linked after, to its last entry. The head item's update is conditional on
/// `from` and sets `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub chain: ChainId,
    pub from: ChainHead,
    pub to: ChainHead,
}

impl Extension {
    /// The move made by `entries`, linked in order into one chain; an
    /// unlinked entry, a gap or a second chain is a bug in the writer.
    pub fn of(entries: &[AuditEntry]) -> Result<Self, StorageError> {
        let bad = |why: &str| StorageError::Corrupt(format!("audit append: {why}"));
        let first = entries.first().ok_or_else(|| bad("no entries"))?;
        let chain = first.chain.as_deref().and_then(ChainId::parse).ok_or_else(|| bad("entry not linked"))?;
        let seq = first.seq.ok_or_else(|| bad("entry not linked"))?;
        let from = ChainHead {
            seq: seq.checked_sub(1).ok_or_else(|| bad("seq 0"))?,
            hash: first.prev_hash.clone().ok_or_else(|| bad("entry not linked"))?,
        };
        let mut to = from.clone();
        for e in entries {
            let head = e.as_head().ok_or_else(|| bad("entry not linked"))?;
            if e.chain.as_deref() != first.chain.as_deref() || head.seq != to.seq + 1 || e.prev_hash.as_deref() != Some(to.hash.as_str()) {
                return Err(bad("entries not linked in order into one chain"));
            }
            to = head;
        }
        Ok(Self { chain, from, to })
    }

    /// Whether the chain had no entries before this change.
    pub fn from_genesis(&self) -> bool {
        self.from.seq == 0 && self.from.hash == GENESIS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::link_all;
    use crate::audit::Actor;
    use crate::{PatientId, TrialId};
    use std::sync::atomic::AtomicUsize;

    fn entries(n: usize) -> Vec<AuditEntry> {
        (0..n)
            .map(|_| AuditEntry::new(TrialId::parse("t1").unwrap(), "patient/P1", "x", Actor::system("test"), chrono::Utc::now()))
            .collect()
    }

    #[test]
    fn an_extension_runs_from_the_head_linked_after_to_the_last_entry() {
        let chain = ChainId::Patient(PatientId::parse("P1").unwrap());
        let mut e = entries(3);
        let start = ChainHead { seq: 4, hash: "ab".repeat(32) };
        let end = link_all(e.iter_mut(), &chain, &start);
        assert_eq!(Extension::of(&e).unwrap(), Extension { chain: chain.clone(), from: start, to: end });
        // AND entries out of order, unlinked, or none are refused
        e.swap(0, 1);
        assert!(Extension::of(&e).is_err());
        assert!(Extension::of(&entries(1)).is_err());
        assert!(Extension::of(&[]).is_err());
    }

    #[tokio::test]
    async fn a_moved_head_is_re_read_and_the_write_retried_a_bounded_number_of_times() {
        // GIVEN a write that loses the head twice, then commits
        let (reads, writes) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let result = append_with_retry(
            Some(0),
            || async { Ok(reads.fetch_add(1, Ordering::SeqCst) + 1) },
            |head: usize| {
                let n = writes.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        Err(head_moved())
                    } else {
                        Ok(head)
                    }
                }
            },
        )
        .await;
        // THEN it commits on the head read after the second conflict
        assert_eq!(result.unwrap(), 2);
        assert_eq!((reads.load(Ordering::SeqCst), writes.load(Ordering::SeqCst)), (2, 3));

        // GIVEN a head that moves on every try THEN the append gives up as Unavailable (503)
        let writes = AtomicUsize::new(0);
        let result: Result<(), _> = append_with_retry(
            None,
            || async { Ok(()) },
            |_| {
                writes.fetch_add(1, Ordering::SeqCst);
                async { Err(head_moved()) }
            },
        )
        .await;
        assert!(matches!(result, Err(StorageError::Unavailable(_))), "{result:?}");
        assert_eq!(writes.load(Ordering::SeqCst), MAX_APPEND_ATTEMPTS);

        // AND any other error ends the loop at once
        let result: Result<(), _> =
            append_with_retry(Some(()), || async { Ok(()) }, |_| async { Err(Error::conflict("patient-not-enrolled", "x")) }).await;
        assert!(matches!(result, Err(Error::Conflict { kind: "patient-not-enrolled", .. })));
    }
}
