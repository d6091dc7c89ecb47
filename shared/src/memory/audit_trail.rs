//! `ChainHeads` and `AuditChains` in memory: chains of entries keyed as the
//! audit table keys them (chain, then seq), heads as the data table records
//! them, and a way to tamper with both, for the verifier's tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::audit::chain::{link_all, ChainHead, ChainId};
use crate::audit::AuditEntry;
use crate::ids::TrialId;
use crate::ports::StorageError;
use crate::ports::{AuditChains, ChainHeads, IndexedEntry};

#[derive(Default)]
pub struct MemoryAuditTrail {
    heads: Mutex<BTreeMap<(TrialId, ChainId), ChainHead>>,
    /// By (trial, chain), then by the key's seq.
    chains: Mutex<BTreeMap<(TrialId, ChainId), BTreeMap<u64, AuditEntry>>>,
    /// Entries under a key that is no chain's (the pre-chain layout).
    unchained: Mutex<Vec<(TrialId, String)>>,
}

impl MemoryAuditTrail {
    /// Records `head` as the chain's head (on the trial item or the enrolment).
    pub fn set_head(&self, trial: &TrialId, chain: ChainId, head: ChainHead) {
        lock(&self.heads).insert((trial.clone(), chain), head);
    }

    pub fn remove_head(&self, trial: &TrialId, chain: &ChainId) {
        lock(&self.heads).remove(&(trial.clone(), chain.clone()));
    }

    /// Appends `entries` to the chain as a writer does: linked after the
    /// recorded head, which then moves to the last of them.
    pub fn append(&self, trial: &TrialId, chain: &ChainId, mut entries: Vec<AuditEntry>) -> Vec<AuditEntry> {
        let key = (trial.clone(), chain.clone());
        let head = lock(&self.heads).get(&key).cloned().unwrap_or_default();
        let new_head = link_all(entries.iter_mut(), chain, &head);
        let mut chains = lock(&self.chains);
        let stored = chains.entry(key.clone()).or_default();
        for e in &entries {
            stored.insert(e.seq.unwrap_or_default(), e.clone());
        }
        lock(&self.heads).insert(key, new_head);
        entries
    }

    /// Puts `entry` under (chain, seq) whatever is there: an overwrite.
    pub fn put(&self, trial: &TrialId, chain: &ChainId, seq: u64, entry: AuditEntry) {
        lock(&self.chains).entry((trial.clone(), chain.clone())).or_default().insert(seq, entry);
    }

    pub fn delete(&self, trial: &TrialId, chain: &ChainId, seq: u64) {
        if let Some(c) = lock(&self.chains).get_mut(&(trial.clone(), chain.clone())) {
            c.remove(&seq);
        }
    }

    pub fn edit(&self, trial: &TrialId, chain: &ChainId, seq: u64, f: impl FnOnce(&mut AuditEntry)) {
        if let Some(e) = lock(&self.chains).get_mut(&(trial.clone(), chain.clone())).and_then(|c| c.get_mut(&seq)) {
            f(e);
        }
    }

    pub fn entries(&self, trial: &TrialId, chain: &ChainId) -> Vec<AuditEntry> {
        lock(&self.chains).get(&(trial.clone(), chain.clone())).map(|c| c.values().cloned().collect()).unwrap_or_default()
    }

    pub fn put_unchained(&self, trial: &TrialId, entry_id: &str) {
        lock(&self.unchained).push((trial.clone(), entry_id.to_owned()));
    }
}

#[async_trait]
impl ChainHeads for MemoryAuditTrail {
    async fn chain_heads(&self, trial: &TrialId) -> Result<BTreeMap<ChainId, ChainHead>, StorageError> {
        Ok(lock(&self.heads).iter().filter(|((t, _), _)| t == trial).map(|((_, c), h)| (c.clone(), h.clone())).collect())
    }
}

#[async_trait]
impl AuditChains for MemoryAuditTrail {
    async fn chain_entries(&self, trial: &TrialId, chain: &ChainId) -> Result<Vec<AuditEntry>, StorageError> {
        Ok(self.entries(trial, chain))
    }

    async fn indexed_entries(&self, trial: &TrialId) -> Result<Vec<IndexedEntry>, StorageError> {
        let mut out: Vec<IndexedEntry> = lock(&self.chains)
            .iter()
            .filter(|((t, _), _)| t == trial)
            .flat_map(|((_, c), entries)| entries.values().map(|e| IndexedEntry { chain: Some(c.clone()), entry_id: e.entry_id.clone() }))
            .collect();
        out.extend(
            lock(&self.unchained).iter().filter(|(t, _)| t == trial).map(|(_, id)| IndexedEntry { chain: None, entry_id: id.clone() }),
        );
        Ok(out)
    }
}
