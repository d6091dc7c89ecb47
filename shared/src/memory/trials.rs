//! `TrialConfig` and `TrialRegistry` in memory.

use async_trait::async_trait;

use super::{lock, MemoryStore};
use crate::audit::AuditEntry;
use crate::ids::TrialId;
use crate::ports::StorageError;
use crate::ports::{TrialConfig, TrialRegistry, Upsert};
use crate::trial::Trial;

#[async_trait]
impl TrialConfig for MemoryStore {
    async fn get_trial(&self, id: &TrialId) -> Result<Option<Trial>, StorageError> {
        self.faults.check("get_trial")?;
        self.requests.add("dynamodb.GetItem", 1);
        Ok(lock(&self.t).trials.get(id).cloned())
    }
}

#[async_trait]
impl TrialRegistry for MemoryStore {
    async fn put_trial(&self, trial: &Trial, audit: &AuditEntry) -> Result<Upsert, StorageError> {
        self.faults.check("put_trial")?;
        // The adapter reads the old item to answer created-or-updated, then writes once.
        self.requests.add("dynamodb.GetItem", 1);
        self.requests.add("dynamodb.TransactWriteItems", 1);
        let mut t = lock(&self.t);
        let existed = t.trials.insert(trial.trial_id.clone(), trial.clone()).is_some();
        t.append(audit);
        Ok(if existed { Upsert::Updated } else { Upsert::Created })
    }

    async fn list_trial_ids(&self) -> Result<Vec<TrialId>, StorageError> {
        self.faults.check("list_trial_ids")?;
        self.requests.add("dynamodb.Query", 1);
        Ok(lock(&self.t).trials.keys().cloned().collect())
    }
}
