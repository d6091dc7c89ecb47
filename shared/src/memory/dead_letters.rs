//! The dead-letter port in memory.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{lock, Faults, RequestLog};
use crate::ports::StorageError;
use crate::ports::{DeadLetter, DeadLetters};

/// One parked record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedLetter {
    pub body: String,
    pub group_id: String,
    pub dedup_id: String,
    pub reason: &'static str,
}

/// A DLQ that keeps what was parked, in order, and counts one SendMessage per
/// park as the SQS adapter sends.
#[derive(Default)]
pub struct MemoryDeadLetters {
    parked: Mutex<Vec<ParkedLetter>>,
    pub requests: RequestLog,
    faults: Faults,
}

impl MemoryDeadLetters {
    pub fn new() -> Self {
        Self::default()
    }
    /// Makes the next `times` parks fail with `StorageError::Unavailable`.
    pub fn fail_next(&self, times: u32) {
        lock(&self.faults.0).insert("park", times);
    }
    pub fn parked(&self) -> Vec<ParkedLetter> {
        lock(&self.parked).clone()
    }
}

#[async_trait]
impl DeadLetters for MemoryDeadLetters {
    async fn park(&self, letter: &DeadLetter<'_>) -> Result<(), StorageError> {
        self.faults.check("park")?;
        // SQS refuses an empty body (MessageBody must be at least one character).
        if letter.body.is_empty() {
            return Err(StorageError::Corrupt("sqs.SendMessage(dead-letter): empty body".into()));
        }
        self.requests.add("sqs.SendMessage", 1);
        let mut parked = lock(&self.parked);
        // FIFO deduplication: a second park of the same message is dropped.
        if !parked.iter().any(|p| p.dedup_id == letter.dedup_id) {
            parked.push(ParkedLetter {
                body: letter.body.to_owned(),
                group_id: letter.group_id.to_owned(),
                dedup_id: letter.dedup_id.to_owned(),
                reason: letter.reason,
            });
        }
        Ok(())
    }
}
