//! `ReportStore` in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{lock, RequestLog};
use crate::error::Error;
use crate::ids::{ReportId, TrialId};
use crate::ports::ReportStore;
use crate::report::ReportMeta;

/// Report objects and metadata in memory; presigned URLs are `memory://` links.
#[derive(Default)]
pub struct MemoryReportStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    metas: Mutex<BTreeMap<(TrialId, ReportId), ReportMeta>>,
    pub requests: RequestLog,
}

impl MemoryReportStore {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.objects).get(key).cloned()
    }
}

#[async_trait]
impl ReportStore for MemoryReportStore {
    async fn put_report(&self, meta: &ReportMeta, pdf: Vec<u8>) -> Result<(), Error> {
        self.requests.add("s3.PutObject", 1);
        self.requests.add("dynamodb.PutItem", 1);
        lock(&self.objects).insert(meta.object_key.clone(), pdf);
        lock(&self.metas).insert((meta.trial_id.clone(), meta.report_id.clone()), meta.clone());
        Ok(())
    }

    async fn get_report(&self, trial: &TrialId, id: &ReportId) -> Result<Option<ReportMeta>, Error> {
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.metas).get(&(trial.clone(), id.clone())).cloned())
    }

    async fn presign(&self, object_key: &str, ttl: std::time::Duration) -> Result<String, Error> {
        Ok(format!("memory://reports/{object_key}?expires={}", ttl.as_secs()))
    }
}
