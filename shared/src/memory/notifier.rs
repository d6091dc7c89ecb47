//! `Notifier` in memory.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{lock, Faults, RequestLog};
use crate::alert::Alert;
use crate::ports::Notifier;
use crate::ports::NotifyError;

/// Records published alerts and the topic each went to.
#[derive(Default)]
pub struct MemoryNotifier {
    published: Mutex<Vec<(Option<String>, Alert)>>,
    pub requests: RequestLog,
    faults: Faults,
}

impl MemoryNotifier {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn fail_next(&self, times: u32) {
        lock(&self.faults.0).insert("publish", times);
    }
    pub fn published(&self) -> Vec<(Option<String>, Alert)> {
        lock(&self.published).clone()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn publish(&self, topic: Option<&str>, alert: &Alert) -> Result<(), NotifyError> {
        self.faults.check("publish")?;
        self.requests.add("sns.Publish", 1);
        lock(&self.published).push((topic.map(str::to_owned), alert.clone()));
        Ok(())
    }
}
