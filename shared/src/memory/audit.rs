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
        // As the adapter: a consistent read of the chain head, then one transaction.
        self.requests.add("dynamodb.GetItem", 1);
        self.requests.add("dynamodb.TransactWriteItems", 1);
        lock(&self.t).append(entry);
        Ok(())
    }
}
