//! `AuditLog` in memory.

use async_trait::async_trait;

use super::{lock, MemoryStore};
use crate::audit::AuditEntry;
use crate::error::Error;
use crate::ports::AuditLog;

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append(&self, entry: &AuditEntry) -> Result<(), Error> {
        self.faults.check("append")?;
        self.requests.add("dynamodb.PutItem", 1);
        lock(&self.t).audit.push(entry.clone());
        Ok(())
    }
}
