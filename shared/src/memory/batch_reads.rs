//! `BatchReader` in memory: the same distinct keys and BatchGetItem calls as the adapter.

use std::collections::HashSet;

use async_trait::async_trait;

use super::{lock, MemoryStore};
use crate::aws::dynamo::from_record;
use crate::ids::{PatientId, TrialId};
use crate::ports::StorageError;
use crate::ports::{BatchRead, BatchReader};

/// AWS limit: a BatchGetItem carries at most 100 keys.
const MAX_BATCH_GET: usize = 100;

#[async_trait]
impl BatchReader for MemoryStore {
    async fn read_batch(&self, trials: &[&TrialId], patients: &[(&TrialId, &PatientId)]) -> Result<BatchRead, StorageError> {
        self.faults.check("read_batch")?;
        // As the adapter: each distinct key once (DynamoDB refuses a repeated
        // key), two per patient, ceil(keys/100) calls.
        let trials: HashSet<&TrialId> = trials.iter().copied().collect();
        let patients: HashSet<(&TrialId, &PatientId)> = patients.iter().copied().collect();
        let keys = trials.len() + 2 * patients.len();
        if keys == 0 {
            return Ok(BatchRead::default());
        }
        self.requests.add("dynamodb.BatchGetItem", keys.div_ceil(MAX_BATCH_GET) as u64);
        let t = lock(&self.t);
        let mut read = BatchRead::default();
        for id in trials {
            if let Some(trial) = t.trials.get(id) {
                read.trials.insert(id.clone(), trial.clone());
            }
        }
        for (trial, patient) in patients {
            let key = (trial.clone(), patient.clone());
            if let Some(e) = t.enrolment(trial, patient) {
                read.enrolments.insert(key.clone(), e);
            }
            // Decoded as the adapter decodes the item it read.
            if let Some(item) = t.states.get(&key) {
                read.states.insert(key, from_record("dynamodb.BatchGetItem(batch read)", "vitals state", item.clone())?);
            }
        }
        Ok(read)
    }
}
