//! Both queue ports in memory.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{lock, Faults, RequestLog};
use crate::alert::Alert;
use crate::ports::StorageError;
use crate::ports::{AlertQueue, VitalsQueue};
use crate::vitals::VitalsMessage;

/// Both queues; keeps what was sent, in order.
#[derive(Default)]
pub struct MemoryQueue {
    vitals: Mutex<Vec<VitalsMessage>>,
    alerts: Mutex<Vec<Alert>>,
    pub requests: RequestLog,
    faults: Faults,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn fail_next(&self, op: &'static str, times: u32) {
        lock(&self.faults.0).insert(op, times);
    }
    pub fn sent_vitals(&self) -> Vec<VitalsMessage> {
        lock(&self.vitals).clone()
    }
    pub fn sent_alerts(&self) -> Vec<Alert> {
        lock(&self.alerts).clone()
    }
    pub fn clear(&self) {
        lock(&self.vitals).clear();
        lock(&self.alerts).clear();
    }
}

/// SQS FIFO limits a SendMessageBatch to 10 entries.
const SQS_BATCH: usize = 10;

#[async_trait]
impl VitalsQueue for MemoryQueue {
    async fn send_vitals(&self, messages: &[VitalsMessage]) -> Result<(), StorageError> {
        self.faults.check("send_vitals")?;
        if messages.len() > SQS_BATCH {
            return Err(StorageError::Corrupt("more than 10 messages in one SendMessageBatch".into()));
        }
        self.requests.add("sqs.SendMessageBatch", 1);
        lock(&self.vitals).extend_from_slice(messages);
        Ok(())
    }
}

#[async_trait]
impl AlertQueue for MemoryQueue {
    async fn enqueue(&self, alerts: &[Alert]) -> Result<(), StorageError> {
        self.faults.check("enqueue")?;
        self.requests.add("sqs.SendMessageBatch", alerts.len().div_ceil(SQS_BATCH) as u64);
        lock(&self.alerts).extend_from_slice(alerts);
        Ok(())
    }
}
