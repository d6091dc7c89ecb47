//! BatchWriteItem and BatchGetItem with DynamoDB's limits: at most 25 requests
//! (100 keys) per call, and `UnprocessedItems` (`UnprocessedKeys`), returned
//! under throttling and never an error, resubmitted with capped exponential
//! backoff and full jitter until done or out of attempts.

use std::future::Future;
use std::time::Duration;

use crate::ports::StorageError;

/// AWS limit: a BatchWriteItem carries at most 25 put/delete requests.
pub const MAX_BATCH_WRITE: usize = 25;

/// AWS limit: a BatchGetItem carries at most 100 keys.
pub const MAX_BATCH_GET: usize = 100;

/// Calls per chunk before giving up with `Unavailable` (the SQS record then
/// retries the whole batch; the writes are idempotent puts).
pub const MAX_WRITE_ATTEMPTS: u32 = 8;

/// Backoff for resubmitting unprocessed items.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        // Sum of the caps is about 2.3 s: well inside a Lambda timeout, long
        // enough for on-demand capacity to adapt to a burst.
        Self { base: Duration::from_millis(20), cap: Duration::from_secs(1), max_attempts: MAX_WRITE_ATTEMPTS }
    }
}

impl Backoff {
    /// Full jitter: uniform in [0, min(cap, base * 2^retry)] (AWS Architecture
    /// Blog, "Exponential Backoff And Jitter"), so retrying writers spread out.
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX)).min(self.cap);
        let ceiling_micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        if ceiling_micros == 0 {
            return Duration::ZERO;
        }
        let random = (uuid::Uuid::new_v4().as_u128() & u128::from(u64::MAX)) as u64;
        Duration::from_micros(random % (ceiling_micros + 1))
    }
}

/// Splits requests into BatchWriteItem-sized chunks.
pub(crate) fn chunks<T>(requests: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::with_capacity(requests.len().div_ceil(MAX_BATCH_WRITE));
    let mut it = requests.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(MAX_BATCH_WRITE).collect());
    }
    out
}

/// Splits keys into BatchGetItem-sized chunks.
pub(crate) fn get_chunks<T>(keys: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::with_capacity(keys.len().div_ceil(MAX_BATCH_GET));
    let mut it = keys.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(MAX_BATCH_GET).collect());
    }
    out
}

/// Requests `pending` keys with `send` (one BatchGetItem returning the items
/// found and the keys left unprocessed) until none is left; `Unavailable`
/// after `max_attempts` calls. A read is as safe to repeat as a put.
pub(crate) async fn read_until_done<K, V, F, Fut>(mut pending: Vec<K>, backoff: Backoff, mut send: F) -> Result<Vec<V>, StorageError>
where
    F: FnMut(Vec<K>) -> Fut,
    Fut: Future<Output = Result<(Vec<V>, Vec<K>), StorageError>>,
{
    let mut found = Vec::new();
    for attempt in 0..backoff.max_attempts {
        if pending.is_empty() {
            return Ok(found);
        }
        if attempt > 0 {
            tokio::time::sleep(backoff.delay(attempt - 1)).await;
        }
        let (items, unprocessed) = send(pending).await?;
        found.extend(items);
        pending = unprocessed;
    }
    if pending.is_empty() {
        Ok(found)
    } else {
        Err(StorageError::Unavailable(format!("dynamodb.BatchGetItem: {} key(s) unprocessed after retries", pending.len())))
    }
}

/// Sends `pending` with `send` (one BatchWriteItem returning the unprocessed
/// requests) until nothing is left; `Unavailable` after `max_attempts` calls.
pub(crate) async fn write_until_done<T, F, Fut>(mut pending: Vec<T>, backoff: Backoff, mut send: F) -> Result<(), StorageError>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<Vec<T>, StorageError>>,
{
    for attempt in 0..backoff.max_attempts {
        if pending.is_empty() {
            return Ok(());
        }
        if attempt > 0 {
            tokio::time::sleep(backoff.delay(attempt - 1)).await;
        }
        pending = send(pending).await?;
    }
    if pending.is_empty() {
        Ok(())
    } else {
        Err(StorageError::Unavailable(format!("dynamodb.BatchWriteItem: {} item(s) unprocessed after retries", pending.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn sixty_requests_make_three_calls_of_at_most_twenty_five() {
        // GIVEN 60 write requests WHEN chunked
        let sizes: Vec<usize> = chunks((0..60).collect()).iter().map(Vec::len).collect();
        // THEN 25 + 25 + 10, nothing lost
        assert_eq!(sizes, vec![25, 25, 10]);
        assert!(chunks(Vec::<u8>::new()).is_empty());
        assert_eq!(chunks((0..25).collect()).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn unprocessed_items_are_resubmitted_until_written() {
        // GIVEN a table that throttles: first call leaves 3 of 5 unprocessed, second 1, third none
        let calls = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let seen = calls.clone();
        let send = move |batch: Vec<u32>| {
            let seen = seen.clone();
            async move {
                let mut log = seen.lock().unwrap();
                log.push(batch.clone());
                let unprocessed = match log.len() {
                    1 => batch[2..].to_vec(),
                    2 => batch[2..].to_vec(),
                    _ => vec![],
                };
                Ok(unprocessed)
            }
        };
        // WHEN written
        write_until_done(vec![1, 2, 3, 4, 5], Backoff::default(), send).await.unwrap();
        // THEN only the unprocessed ones were resent, until none were left
        assert_eq!(*calls.lock().unwrap(), vec![vec![1, 2, 3, 4, 5], vec![3, 4, 5], vec![5]]);
    }

    #[tokio::test(start_paused = true)]
    async fn items_still_unprocessed_after_the_last_attempt_are_unavailable() {
        // GIVEN a table that never accepts anything
        let attempts = Arc::new(Mutex::new(0u32));
        let counter = attempts.clone();
        let send = move |batch: Vec<u32>| {
            *counter.lock().unwrap() += 1;
            async move { Ok(batch) }
        };
        // WHEN written THEN the caller gets a retryable error after the capped attempts
        let err = write_until_done(vec![1, 2], Backoff::default(), send).await.unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(*attempts.lock().unwrap(), MAX_WRITE_ATTEMPTS);
    }

    #[test]
    fn two_hundred_and_fifty_keys_make_three_reads_of_at_most_a_hundred() {
        let sizes: Vec<usize> = get_chunks((0..250).collect()).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        assert!(get_chunks(Vec::<u8>::new()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn unprocessed_keys_are_requested_again_until_every_item_is_read() {
        // GIVEN a table that throttles reads: the first call returns 2 of 5 keys, the second 2 of 3, the third the last
        let calls = Arc::new(Mutex::new(Vec::<Vec<u32>>::new()));
        let seen = calls.clone();
        let send = move |keys: Vec<u32>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(keys.clone());
                let split = keys.len().min(2);
                let (found, unprocessed) = keys.split_at(split);
                Ok((found.iter().map(|k| k * 10).collect::<Vec<_>>(), unprocessed.to_vec()))
            }
        };
        // WHEN read
        let items = read_until_done(vec![1, 2, 3, 4, 5], Backoff::default(), send).await.unwrap();
        // THEN only the unprocessed keys were asked again, and every item came back once
        assert_eq!(*calls.lock().unwrap(), vec![vec![1, 2, 3, 4, 5], vec![3, 4, 5], vec![5]]);
        assert_eq!(items, vec![10, 20, 30, 40, 50]);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_still_unprocessed_after_the_last_attempt_are_unavailable() {
        // GIVEN a table that never serves a key
        let attempts = Arc::new(Mutex::new(0u32));
        let counter = attempts.clone();
        let send = move |keys: Vec<u32>| {
            *counter.lock().unwrap() += 1;
            async move { Ok((Vec::<u32>::new(), keys)) }
        };
        // WHEN read THEN a retryable error after the capped attempts, with time spent backing off
        let started = tokio::time::Instant::now();
        let err = read_until_done(vec![1, 2], Backoff::default(), send).await.unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(*attempts.lock().unwrap(), MAX_WRITE_ATTEMPTS);
        assert!(started.elapsed() > Duration::ZERO, "retries back off");
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap_with_jitter_below_it() {
        let b = Backoff { base: Duration::from_millis(10), cap: Duration::from_millis(100), max_attempts: 5 };
        for _ in 0..200 {
            assert!(b.delay(0) <= Duration::from_millis(10));
            assert!(b.delay(2) <= Duration::from_millis(40));
            assert!(b.delay(20) <= Duration::from_millis(100));
        }
        // Jitter: not every delay equals the ceiling.
        let distinct: std::collections::HashSet<_> = (0..50).map(|_| b.delay(3)).collect();
        assert!(distinct.len() > 1);
    }
}
