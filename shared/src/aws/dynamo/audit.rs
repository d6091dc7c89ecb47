//! Reading the audit trail: one Query per shard of the audit table's time
//! index (`gsi1`), newest first, merged by [`crate::trail::merge`].
//!
//! Only the index's own keys are used: the resume point within a page is the
//! LastEvaluatedKey DynamoDB returns, passed back as it came, and the cursor
//! between pages is a `gsi1sk`. So the table's primary key may change without
//! this read changing.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{attr_str, from_record, page_limit, s, DynamoStore, Item, AUDIT_SHARDS, GSI1};
use crate::audit::AuditEntry;
use crate::aws::errors::from_sdk;
use crate::ids::TrialId;
use crate::page::{Page, PageRequest};
use crate::ports::AuditTrail;
use crate::ports::StorageError;
use crate::trail::{merge, AuditFilter, KeyRange, Position, ShardRead, ShardReader};

const OP: &str = "dynamodb.Query(audit)";

struct Shards<'a> {
    store: &'a DynamoStore,
    trial: &'a TrialId,
    range: KeyRange,
    entity: Option<&'a str>,
}

#[async_trait]
impl ShardReader for Shards<'_> {
    type Resume = Item;

    async fn read(&self, shard: u32, resume: Option<Item>, limit: usize) -> Result<ShardRead<Item>, StorageError> {
        // BETWEEN is inclusive at both ends; the upper bound is exclusive, so
        // the one item that may equal it (the last entry of the previous page)
        // is dropped below. `<` alone cannot be combined with a lower bound.
        let condition = match (&self.range.lower, &self.range.upper) {
            (Some(_), Some(_)) => "gsi1pk = :pk AND gsi1sk BETWEEN :lower AND :upper",
            (Some(_), None) => "gsi1pk = :pk AND gsi1sk >= :lower",
            (None, Some(_)) => "gsi1pk = :pk AND gsi1sk < :upper",
            (None, None) => "gsi1pk = :pk",
        };
        let out = self
            .store
            .client
            .query()
            .table_name(&self.store.audit_table)
            .index_name(GSI1)
            .key_condition_expression(condition)
            .set_filter_expression(self.entity.map(|_| "#entity = :entity".to_owned()))
            .set_expression_attribute_names(self.entity.map(|_| [("#entity".to_owned(), "entity".to_owned())].into()))
            .set_expression_attribute_values(Some(self.values(shard)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(resume)
            .send()
            .await
            .map_err(|e| from_sdk(OP, &e))?;
        let mut entries = Vec::new();
        for item in out.items.unwrap_or_default() {
            let key = attr_str(&item, "gsi1sk").ok_or_else(|| StorageError::Corrupt(format!("{OP}: entry without gsi1sk")))?.to_owned();
            if self.range.upper.as_deref() == Some(key.as_str()) {
                continue;
            }
            let entry: AuditEntry = from_record(OP, "audit entry", item)?;
            entries.push((key, entry));
        }
        let more = match out.last_evaluated_key.filter(|k| !k.is_empty()) {
            None => None,
            Some(lek) => {
                let key =
                    attr_str(&lek, "gsi1sk").ok_or_else(|| StorageError::Corrupt(format!("{OP}: LastEvaluatedKey without gsi1sk")))?;
                let key = key.to_owned();
                Some((lek, key))
            }
        };
        Ok(ShardRead { entries, more })
    }
}

impl Shards<'_> {
    fn values(&self, shard: u32) -> Item {
        let mut values: Item = [(":pk".to_owned(), s(format!("AUDIT#{}#{shard}", self.trial)))].into();
        let bounds = [(":lower", &self.range.lower), (":upper", &self.range.upper)];
        for (name, bound) in bounds {
            if let Some(b) = bound {
                values.insert(name.to_owned(), AttributeValue::S(b.clone()));
            }
        }
        if let Some(e) = self.entity {
            values.insert(":entity".to_owned(), s(e));
        }
        values
    }
}

#[async_trait]
impl AuditTrail for DynamoStore {
    async fn audit_page(&self, trial: &TrialId, filter: &AuditFilter, page: &PageRequest) -> Result<Page<AuditEntry>, StorageError> {
        let after = page.cursor.as_deref().map(Position::decode).transpose()?;
        let range = KeyRange::new(filter, after.as_ref());
        if range.is_empty() {
            return Ok(Page { items: vec![], next_cursor: None });
        }
        let shards = Shards { store: self, trial, range, entity: filter.entity.as_deref() };
        let limit = usize::try_from(page_limit(page.limit)).unwrap_or(50);
        merge(&shards, AUDIT_SHARDS, limit).await
    }
}
