//! The audit log's writes on the data table's side: each chain's head (on the
//! enrolment or trial item), the conditions that move it, and the audit
//! table's entry items and time-index shards.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};

use super::super::errors::from_sdk;
use super::{
    attr_str, attr_u64, condition_failed, n, old_item, s, to_record, trials, DynamoStore, Expr, Item, Transacted, HEAD_HASH, HEAD_SEQ,
};
use crate::audit::append::{append_with_retry, Extension};
use crate::audit::chain::{ChainHead, ChainId};
use crate::audit::AuditEntry;
use crate::ids::TrialId;
use crate::ports::{AuditLog, StorageError};

/// The audit table's time index is spread over this many partitions per trial,
/// so a burst of one trial's submissions never meets one partition's 1,000
/// WCU/s; a newest-first read queries every shard and merges.
pub const AUDIT_SHARDS: u32 = 16;

/// A stable shard for the entry (FNV-1a over its id: the same on every build).
pub(crate) fn audit_shard(entry_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in entry_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % AUDIT_SHARDS
}

/// The partition of one chain in the audit table.
pub fn chain_pk(trial: &TrialId, chain: &ChainId) -> String {
    format!("CHAIN#{trial}#{chain}")
}

/// An entry's sort key in its chain: its seq, zero-padded so text order is seq order.
pub fn chain_sk(seq: u64) -> String {
    format!("{seq:012}")
}

pub(crate) fn audit_item(op: &'static str, entry: &AuditEntry) -> Result<Item, StorageError> {
    let time_key = format!("{}#{}", entry.at, entry.entry_id);
    let (Some(chain), Some(seq)) = (entry.chain.as_deref().and_then(ChainId::parse), entry.seq) else {
        return Err(StorageError::Corrupt(format!("{op}: audit entry not linked into a chain")));
    };
    let keys = [
        ("pk", chain_pk(&entry.trial_id, &chain)),
        ("sk", chain_sk(seq)),
        ("gsi1pk", format!("AUDIT#{}#{}", entry.trial_id, audit_shard(&entry.entry_id))),
        ("gsi1sk", time_key),
    ];
    to_record(op, "audit entry", entry, keys)
}

#[async_trait]
impl AuditLog for DynamoStore {
    /// Reads the entry's chain head, links the entry after it and writes it
    /// with the head's move in one transaction; retried on a moved head.
    async fn append(&self, entry: &AuditEntry) -> Result<(), StorageError> {
        const OP: &str = "dynamodb.TransactWriteItems(audit)";
        let chain = &entry.chain_id();
        let trial = &entry.trial_id;
        append_with_retry(
            None,
            || self.read_head(trial, chain),
            |head| async move {
                let mut linked = entry.clone();
                linked.link(chain, &head);
                let ext = Extension::of(std::slice::from_ref(&linked))?;
                let tx = vec![self.tx_head(OP, trial, &ext)?, self.tx_audit(OP, &linked)?];
                match self.transact(OP, tx).await? {
                    Transacted::Committed => Ok(()),
                    Transacted::Cancelled(r) => Err(chain_refusal(OP, &r, 0, 1)),
                }
            },
        )
        .await
    }
}

impl DynamoStore {
    /// A chain's head item: the enrolment for a patient's chain, the trial item for the trial's.
    pub(crate) fn head_key(trial: &TrialId, chain: &ChainId) -> (String, String) {
        match chain {
            ChainId::Trial => (trials::trial_pk(trial), "META".to_owned()),
            ChainId::Patient(p) => (trials::trial_pk(trial), trials::enrolment_sk(p)),
        }
    }

    /// The chain's head, read consistently (a writer about to extend it).
    /// A missing head item is `NotFound`: no chain hangs off nothing.
    pub(crate) async fn read_head(&self, trial: &TrialId, chain: &ChainId) -> Result<ChainHead, StorageError> {
        const OP: &str = "dynamodb.GetItem(audit head)";
        let (pk, sk) = Self::head_key(trial, chain);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .projection_expression("pk, #seq, #hash")
            .expression_attribute_names("#seq", HEAD_SEQ)
            .expression_attribute_names("#hash", HEAD_HASH)
            .send()
            .await
            .map_err(|e| from_sdk(OP, &e))?;
        let item = out.item.filter(|i| !i.is_empty()).ok_or(StorageError::NotFound("audit chain head"))?;
        Ok(head_of(&item))
    }

    /// The head move as its own Update of the head item (when the change
    /// does not otherwise write that item).
    pub(crate) fn tx_head(&self, op: &'static str, trial: &TrialId, ext: &Extension) -> Result<TransactWriteItem, StorageError> {
        let (pk, sk) = Self::head_key(trial, &ext.chain);
        let condition = format!("attribute_exists(pk) AND {}", head_condition(ext));
        self.tx_update(op, pk, sk, &format!("SET {HEAD_SET}"), Some(&condition), head_values(Expr::default(), ext))
    }
}

/// The head as stored on its item; absent attributes are the genesis head.
pub(crate) fn head_of(item: &Item) -> ChainHead {
    match (attr_u64(item, HEAD_SEQ), attr_str(item, HEAD_HASH)) {
        (Some(seq), Some(hash)) => ChainHead { seq, hash: hash.to_owned() },
        _ => ChainHead::genesis(),
    }
}

/// The SET clause of a head move, for an update of the head item (its values from [`head_values`]).
pub(crate) const HEAD_SET: &str = "auditSeq = :auditSeq, auditHash = :auditHash";

/// The condition that the head item still holds the head the entries were linked from.
pub(crate) fn head_condition(ext: &Extension) -> &'static str {
    if ext.from_genesis() {
        "attribute_not_exists(auditHash)"
    } else {
        "auditHash = :auditPrev"
    }
}

pub(crate) fn head_values(expr: Expr, ext: &Extension) -> Expr {
    let expr = expr.value(":auditSeq", n(ext.to.seq)).value(":auditHash", s(ext.to.hash.clone()));
    if ext.from_genesis() {
        expr
    } else {
        expr.value(":auditPrev", s(ext.from.hash.clone()))
    }
}

/// Whether the old item a failed head condition returned holds another head
/// than the one linked from (another writer extended the chain first).
pub(crate) fn head_moved_on(old: Option<&Item>, ext: &Extension) -> bool {
    old.is_some_and(|old| head_of(old) != ext.from)
}

/// Why a chain append was cancelled, when the change itself was not refused:
/// the head item's condition (`head`) failed: the head moved, re-read; the
/// audit put's (`audit`) failed with the head in place: an entry sits past
/// the head, which no writer leaves (a forged or replayed item), so it is
/// not retried.
pub(crate) fn chain_refusal(op: &'static str, reasons: &[CancellationReason], head: usize, audit: usize) -> StorageError {
    if condition_failed(reasons, head) {
        match old_item(reasons, head) {
            Some(_) => crate::audit::append::head_moved(),
            None => StorageError::NotFound("audit chain head"),
        }
    } else if condition_failed(reasons, audit) {
        StorageError::Corrupt(format!("{op}: an audit entry already holds the next seq of its chain"))
    } else {
        StorageError::Corrupt(format!("{op}: cancelled without a failed chain condition"))
    }
}
