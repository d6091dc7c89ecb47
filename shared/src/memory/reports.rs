//! `ReportStore` in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{lock, MemoryStore, RequestLog};
use crate::domain_event::DomainEvent;
use crate::ids::{ReportId, TrialId};
use crate::ports::ReportStore;
use crate::ports::StorageError;
use crate::report::ReportMeta;

/// Report objects and metadata in memory; presigned URLs are `memory://` links.
/// Pending events go to `table`, as the AWS adapter's go to the DynamoDB
/// table its metadata records are in.
#[derive(Default)]
pub struct MemoryReportStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    metas: Mutex<BTreeMap<(TrialId, ReportId), ReportMeta>>,
    table: MemoryStore,
    pub requests: RequestLog,
}

impl MemoryReportStore {
    /// A store with a table of its own.
    pub fn new() -> Self {
        Self::default()
    }
    /// A store whose records (and so pending events) are in `table`, for a
    /// report's events to be announced and swept through that store.
    pub fn on(table: &MemoryStore) -> Self {
        Self { table: table.clone(), ..Self::default() }
    }
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.objects).get(key).cloned()
    }
}

#[async_trait]
impl ReportStore for MemoryReportStore {
    async fn put_report(&self, meta: &ReportMeta, pdf: Vec<u8>, events: &[DomainEvent]) -> Result<(), StorageError> {
        self.requests.add("s3.PutObject", 1);
        self.requests.add(if events.is_empty() { "dynamodb.PutItem" } else { "dynamodb.TransactWriteItems" }, 1);
        lock(&self.objects).insert(meta.object_key.clone(), pdf);
        lock(&self.metas).insert((meta.trial_id.clone(), meta.report_id.clone()), meta.clone());
        self.table.add_pending_events(events);
        Ok(())
    }

    async fn get_report(&self, trial: &TrialId, id: &ReportId) -> Result<Option<ReportMeta>, StorageError> {
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.metas).get(&(trial.clone(), id.clone())).cloned())
    }

    async fn presign(&self, object_key: &str, ttl: std::time::Duration) -> Result<String, StorageError> {
        Ok(format!("memory://reports/{object_key}?expires={}", ttl.as_secs()))
    }
}
