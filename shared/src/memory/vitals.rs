//! `VitalsStore` in memory: readings, the versioned state, risk counters.

use async_trait::async_trait;

use super::{adapter, lock, MemoryStore};
use crate::audit::chain::ChainId;
use crate::audit::AuditEntry;
use crate::aws::dynamo::{attr_u64, from_record, reading_requests, StateRequest};
use crate::domain_event::DomainEvent;
use crate::ids::{PatientId, TrialId};
use crate::news2::RiskLevel;
use crate::ports::StorageError;
use crate::ports::{PatientReadings, StateWrite, VitalsStore};
use crate::vitals::VitalReading;
use crate::vitals_state::VitalsState;

#[async_trait]
impl VitalsStore for MemoryStore {
    async fn put_readings(&self, trial: &TrialId, patient: &PatientId, readings: &[VitalReading]) -> Result<(), StorageError> {
        self.put_readings_batch(&[PatientReadings { trial, patient, readings }]).await
    }

    /// The adapter's PutRequests, built as it builds them, applied to the table.
    async fn put_readings_batch(&self, batch: &[PatientReadings<'_>]) -> Result<(), StorageError> {
        self.faults.check("put_readings")?;
        let requests = reading_requests(batch)?;
        // The adapter packs 25 items per BatchWriteItem across patients.
        self.requests.add("dynamodb.BatchWriteItem", requests.len().div_ceil(25) as u64);
        let mut t = lock(&self.t);
        for item in requests.into_iter().filter_map(|r| r.put_request).map(|p| p.item) {
            // The table's key, found by walking the item's few attributes rather than hashing
            // two lookups: this is the store's own bookkeeping, which the adapter does not do.
            let (mut pk, mut sk) = (String::new(), String::new());
            for (name, value) in &item {
                match (name.as_str(), value.as_s()) {
                    ("pk", Ok(v)) => pk = v.clone(),
                    ("sk", Ok(v)) => sk = v.clone(),
                    _ => {}
                }
            }
            t.readings.insert((pk, sk), item);
        }
        Ok(())
    }

    async fn get_state(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<VitalsState>, StorageError> {
        self.faults.check("get_state")?;
        self.requests.add("dynamodb.GetItem", 1);
        let item = lock(&self.t).states.get(&(trial.clone(), patient.clone())).cloned();
        item.map(|i| from_record("dynamodb.GetItem(vitals state)", "vitals state", i)).transpose()
    }

    async fn put_state(
        &self,
        previous: Option<&VitalsState>,
        state: &VitalsState,
        raised: &[AuditEntry],
        events: &[DomainEvent],
    ) -> Result<StateWrite, StorageError> {
        let result: Result<StateWrite, StorageError> = async {
            self.faults.check("put_state")?;
            if !state.follows(previous) {
                return Err(StorageError::Corrupt("put_state: the state does not follow the previous one".into()));
            }
            let old_level = previous.and_then(|p| p.news2.as_ref()).map(|n| n.risk_level);
            let new_level = state.news2.as_ref().map(|n| n.risk_level);
            // The adapter's request: no read, a Put when the level the caller read is
            // unchanged and nothing else commits with it, or a transaction with the risk
            // counters when it moved or with the audit entry and its chain head when an
            // alert is raised.
            // The item stored is the one the request carries (the transaction's first item).
            let item = match adapter().state_request(previous, state, raised, events)? {
                StateRequest::Put { item, .. } => {
                    self.requests.add("dynamodb.PutItem", 1);
                    item
                }
                StateRequest::Transact { items, .. } => {
                    self.requests.add("dynamodb.TransactWriteItems", 1);
                    let put = items.into_iter().next().and_then(|i| i.put);
                    put.map(|p| p.item).ok_or_else(|| StorageError::Corrupt("put_state: a transaction without the state".into()))?
                }
            };
            let mut t = lock(&self.t);
            let key = (state.trial_id.clone(), state.patient_id.clone());
            let stored_version = t.states.get(&key).map(|i| attr_u64(i, "version").unwrap_or(0));
            if stored_version != previous.map(|p| p.version) {
                return Ok(StateWrite::Stale);
            }
            if !raised.is_empty() {
                let ext = t.check_head(&state.trial_id, raised, self.faults.fire(super::RACE_APPENDS))?;
                if ext.chain != ChainId::Patient(state.patient_id.clone()) {
                    return Err(StorageError::Corrupt("put_state: audit entries linked into another chain".into()));
                }
                t.append_checked(&state.trial_id, raised, ext);
            }
            if old_level != new_level {
                if let Some(l) = old_level {
                    *t.risk_counts.entry((state.trial_id.clone(), l)).or_default() -= 1;
                }
                if let Some(l) = new_level {
                    *t.risk_counts.entry((state.trial_id.clone(), l)).or_default() += 1;
                }
            }
            t.states.insert(key, item);
            Ok(StateWrite::Written)
        }
        .await;
        if matches!(result, Ok(StateWrite::Written)) {
            self.add_pending_events(events);
        }
        result
    }
}

/// Read by [`ReportFigures`](crate::ports::ReportFigures).
impl MemoryStore {
    pub(crate) async fn read_risk_level_counts(&self, trial: &TrialId) -> Result<Vec<(RiskLevel, u64)>, StorageError> {
        self.faults.check("risk_level_counts")?;
        self.requests.add("dynamodb.Query", 1);
        Ok(lock(&self.t).risk_counts.iter().filter(|((t, _), n)| t == trial && **n > 0).map(|((_, l), n)| (*l, *n as u64)).collect())
    }
}
