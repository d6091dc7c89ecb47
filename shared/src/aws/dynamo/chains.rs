//! The audit chains as stored (see the audit spec): entries at
//! pk `CHAIN#<trialId>#<chain>`, sk the 12-digit seq, in the audit table; heads
//! as `auditSeq`/`auditHash` on the trial item and each enrolment.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures::future::try_join_all;

use super::query::query_pages;
use super::trials::trial_pk;
use super::{attr_str, attr_u64, chain_pk, from_record, s, DynamoStore, Item, AUDIT_SHARDS, GSI1, HEAD_HASH, HEAD_SEQ};
use crate::audit::chain::{ChainHead, ChainId, GENESIS};
use crate::audit::AuditEntry;
use crate::ids::{PatientId, TrialId};
use crate::ports::StorageError;
use crate::ports::{AuditChains, ChainHeads, IndexedEntry};

/// The chain a stored entry's pk places it in; `None` for any other key.
fn chain_of_partition(trial: &TrialId, pk: &str) -> Option<ChainId> {
    pk.strip_prefix("CHAIN#")?.strip_prefix(trial.as_str())?.strip_prefix('#').and_then(ChainId::parse)
}

/// An item's recorded head: both attributes, or neither (genesis). One
/// without the other is a corrupt head, not a genesis one.
fn recorded_head(op: &'static str, item: &Item) -> Result<ChainHead, StorageError> {
    match (attr_u64(item, HEAD_SEQ), attr_str(item, HEAD_HASH)) {
        (Some(seq), Some(hash)) => Ok(ChainHead { seq, hash: hash.to_owned() }),
        (None, None) if !item.contains_key(HEAD_SEQ) && !item.contains_key(HEAD_HASH) => Ok(ChainHead { seq: 0, hash: GENESIS.to_owned() }),
        _ => Err(StorageError::Corrupt(format!("{op}: malformed chain head"))),
    }
}

#[async_trait]
impl ChainHeads for DynamoStore {
    async fn chain_heads(&self, trial: &TrialId) -> Result<BTreeMap<ChainId, ChainHead>, StorageError> {
        const OP: &str = "dynamodb.Query(chain heads)";
        // The trial item (sk META) and its enrolments (sk PATIENT#p) share the
        // trial's partition: one paginated Query reads every head.
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(trial_pk(trial)))
            .projection_expression(format!("sk, {HEAD_SEQ}, {HEAD_HASH}"))
            .consistent_read(true);
        let mut heads = BTreeMap::new();
        query_pages(OP, query, |items| {
            for item in &items {
                let chain = match attr_str(item, "sk") {
                    Some("META") => ChainId::Trial,
                    Some(sk) => match sk.strip_prefix("PATIENT#").map(PatientId::parse) {
                        Some(Ok(p)) => ChainId::Patient(p),
                        Some(Err(_)) => return Err(StorageError::Corrupt(format!("{OP}: malformed enrolment key"))),
                        None => continue,
                    },
                    None => continue,
                };
                heads.insert(chain, recorded_head(OP, item)?);
            }
            Ok(())
        })
        .await?;
        Ok(heads)
    }
}

#[async_trait]
impl AuditChains for DynamoStore {
    async fn chain_entries(&self, trial: &TrialId, chain: &ChainId) -> Result<Vec<AuditEntry>, StorageError> {
        const OP: &str = "dynamodb.Query(audit chain)";
        let query = self
            .client
            .query()
            .table_name(&self.audit_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(chain_pk(trial, chain)))
            .scan_index_forward(true)
            .consistent_read(true);
        let mut entries = Vec::new();
        query_pages(OP, query, |items| {
            for item in items {
                entries.push(from_record(OP, "audit entry", item)?);
            }
            Ok(())
        })
        .await?;
        Ok(entries)
    }

    async fn indexed_entries(&self, trial: &TrialId) -> Result<Vec<IndexedEntry>, StorageError> {
        let shards = (0..AUDIT_SHARDS).map(|shard| self.indexed_shard(trial, shard));
        Ok(try_join_all(shards).await?.into_iter().flatten().collect())
    }
}

impl DynamoStore {
    async fn indexed_shard(&self, trial: &TrialId, shard: u32) -> Result<Vec<IndexedEntry>, StorageError> {
        const OP: &str = "dynamodb.Query(audit index)";
        let query = self
            .client
            .query()
            .table_name(&self.audit_table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", s(format!("AUDIT#{trial}#{shard}")))
            .projection_expression("pk, entryId");
        let mut entries = Vec::new();
        query_pages(OP, query, |items| {
            for item in &items {
                let entry_id = attr_str(item, "entryId").unwrap_or_default().to_owned();
                let chain = attr_str(item, "pk").and_then(|pk| chain_of_partition(trial, pk));
                entries.push(IndexedEntry { chain, entry_id });
            }
            Ok(())
        })
        .await?;
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::ChainId;

    #[test]
    fn a_chain_partition_names_its_trial_and_chain_and_nothing_else_parses_as_one() {
        let t1 = TrialId::parse("t1").unwrap();
        let p1 = ChainId::Patient(PatientId::parse("P1").unwrap());
        assert_eq!(chain_pk(&t1, &p1), "CHAIN#t1#patient/P1");
        assert_eq!(chain_pk(&t1, &ChainId::Trial), "CHAIN#t1#trial");
        assert_eq!(chain_of_partition(&t1, "CHAIN#t1#patient/P1"), Some(p1));
        assert_eq!(chain_of_partition(&t1, "CHAIN#t10#trial"), None);
        assert_eq!(chain_of_partition(&t1, "AUDIT#t1#patient/P1"), None);
        assert_eq!(chain_of_partition(&t1, "CHAIN#t1#site/s1"), None);
    }
}
