//! `AuditLog` and `AuditTrail` in memory. The trail is read as the DynamoDB
//! adapter reads it: the same shards, each read newest first with a `Limit`
//! and the entity filter applied after it, merged by [`crate::trail::merge`].

use async_trait::async_trait;

use super::{lock, MemoryStore};
use crate::audit::AuditEntry;
use crate::aws::{audit_shard, AUDIT_SHARDS};
use crate::ids::TrialId;
use crate::page::{Page, PageRequest, DEFAULT_LIMIT, MAX_LIMIT};
use crate::ports::StorageError;
use crate::ports::{AuditLog, AuditTrail};
use crate::trail::{merge, time_key, AuditFilter, KeyRange, Position, ShardRead, ShardReader};

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append(&self, entry: &AuditEntry) -> Result<(), StorageError> {
        self.faults.check("append")?;
        // As the adapter: a consistent read of the chain head, then one transaction.
        self.requests.add("dynamodb.GetItem", 1);
        self.requests.add("dynamodb.TransactWriteItems", 1);
        lock(&self.t).append(entry);
        Ok(())
    }
}

/// One trial's entries in range, by shard, newest first.
struct Shards<'a> {
    store: &'a MemoryStore,
    by_shard: Vec<Vec<(String, AuditEntry)>>,
    entity: Option<String>,
}

#[async_trait]
impl ShardReader for Shards<'_> {
    /// The last key examined.
    type Resume = String;

    async fn read(&self, shard: u32, resume: Option<String>, limit: usize) -> Result<ShardRead<String>, StorageError> {
        self.store.requests.add("dynamodb.Query", 1);
        let examined: Vec<&(String, AuditEntry)> =
            self.by_shard[shard as usize].iter().filter(|(k, _)| resume.as_ref().is_none_or(|r| k < r)).take(limit).collect();
        // As DynamoDB: a read that stops at its Limit says where to resume,
        // even when nothing is left below.
        let more = if examined.len() == limit { examined.last().map(|(k, _)| (k.clone(), k.clone())) } else { None };
        let entries = examined.into_iter().filter(|(_, e)| self.entity.as_ref().is_none_or(|x| &e.entity == x)).cloned().collect();
        Ok(ShardRead { entries, more })
    }
}

#[async_trait]
impl AuditTrail for MemoryStore {
    async fn audit_page(&self, trial: &TrialId, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>, StorageError> {
        self.faults.check("audit_page")?;
        let after = page.cursor.as_deref().map(Position::decode).transpose()?;
        let range = KeyRange::new(filter, after.as_ref());
        if range.is_empty() {
            return Ok(Page { items: vec![], next_cursor: None });
        }
        let mut by_shard = vec![Vec::new(); AUDIT_SHARDS as usize];
        for e in lock(&self.t).audit.iter().filter(|e| &e.trial_id == trial) {
            let key = time_key(e);
            if range.contains(&key) {
                by_shard[audit_shard(&e.entry_id) as usize].push((key, e.clone()));
            }
        }
        for shard in &mut by_shard {
            shard.sort_by(|a, b| b.0.cmp(&a.0));
        }
        let limit = if page.limit == 0 { DEFAULT_LIMIT } else { page.limit.min(MAX_LIMIT) } as usize;
        merge(&Shards { store: self, by_shard, entity: filter.entity.clone() }, AUDIT_SHARDS, limit).await
    }
}
