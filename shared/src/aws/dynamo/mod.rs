//! DynamoDB adapter of every store port and of the audit log.
//!
//! Clinical data lives in one table; the audit trail in a second one
//! (`AuditTable`), to which function roles may only PutItem (see below).
//!
//! The data table: attributes `pk`/`sk`, two GSIs (`gsi1`, `gsi2`, projection ALL)
//! and the TTL attribute `expiresAt`. Domain records are stored as their serde
//! form (camelCase attributes) plus the key attributes, which are stripped
//! again before decoding.
//!
//! | item                | pk                        | sk                                       | gsi1 / gsi2                                   |
//! |---------------------|---------------------------|------------------------------------------|-----------------------------------------------|
//! | trial               | `TRIAL#t`                 | `META`                                   | `TRIALS` / `t`                                |
//! | enrolment           | `TRIAL#t`                 | `PATIENT#p`                              | `TRIAL#t#SITE#s` / `PATIENT#p`                |
//! | submission          | `PATIENT#t#p`             | `SUB#<completedAt>#<id>`                 |                                               |
//! | idempotency guard   | `SUBID#<id>`              | `SUBID`                                  |                                               |
//! | vital reading       | `PATIENT#t#p`             | `VITAL#<observedAt>#<code>#<readingId>`  |                                               |
//! | vitals state        | `PATIENT#t#p`             | `STATE#VITALS`                           |                                               |
//! | alert               | `ALERT#t`                 | `<alertId>`                              | `ALERTS#t#p` / `<createdAt>#<id>`; `ALERTS#t` |
//! | day counter         | `STATS#t#<shard>`         | `DAY#<day>#<site>#<questionnaire>`       |                                               |
//! | enrolment counter   | `STATS#t`                 | `ENROL#<site>#<status>`                  |                                               |
//! | risk-level counter  | `STATS#t`                 | `RISK#<level>`                           |                                               |
//! | report metadata     | `REPORT#t`                | `<reportId>`                             |                                               |
//!
//! The audit table holds only audit entries, each put once, conditional on
//! absence, inside the transaction of the change it records. Entries form
//! hash chains (`crate::audit::chain`): one per patient, one per trial, each
//! a partition read in order with one Query:
//!
//! | item        | pk                     | sk                         | gsi1                                              |
//! |-------------|------------------------|----------------------------|---------------------------------------------------|
//! | audit entry | `CHAIN#t#<chain>`      | `<seq>` (12 digits)        | `AUDIT#t#<shard>` / `<at>#<entryId>` (trial time) |
//!
//! A chain's head is `auditSeq`/`auditHash` on the enrolment (patient chain)
//! or the trial item (trial chain); every append's transaction moves it,
//! conditional on the head the entries were linked from (`crate::audit::append`).
//!
//! Ids are validated to `[A-Za-z0-9._-]`, so `#` can never be smuggled into a key.
//! Timestamps in keys use [`crate::timestamp::format`] (fixed-width millis, `Z`),
//! so text order is time order.

mod alerts;
mod audit;
mod audit_log;
mod batch;
mod chains;
mod events;
mod item_codec;
mod outbox;
mod query;
mod reads;
mod report_figures;
mod submissions;
mod trials;
mod vitals;

// The in-memory adapters build these adapters' own requests (issue 16: honest replays).
#[cfg(any(test, feature = "test-util"))]
pub(crate) use submissions::patient_pk;
#[cfg(any(test, feature = "test-util"))]
pub(crate) use vitals::{reading_requests, StateRequest};

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::errors::{codec, from_sdk, is_retryable_code};
use crate::audit::AuditEntry;
use crate::ids::{ReportId, TrialId};
use crate::page::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::ports::StorageError;
use crate::report::ReportMeta;

pub(crate) use audit_log::*;
pub use audit_log::{chain_pk, chain_sk, AUDIT_SHARDS};
pub use batch::{MAX_BATCH_GET, MAX_BATCH_WRITE, MAX_WRITE_ATTEMPTS};
pub use reads::BatchKeys;
pub use submissions::COUNTER_SHARDS;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) const GSI1: &str = "gsi1";
pub(crate) const GSI2: &str = "gsi2";

/// Attributes the adapter adds around a domain record; removed before decoding
/// (some domain types deny unknown fields).
const STORAGE_ATTRS: &[&str] = &[
    "pk",
    "sk",
    "gsi1pk",
    "gsi1sk",
    "gsi2pk",
    "gsi2sk",
    "outboxpk",
    "outboxsk",
    "eventspk",
    "eventssk",
    "expiresAt",
    "riskLevel",
    HEAD_SEQ,
    HEAD_HASH,
];

/// A chain's head on its head item (the enrolment, the trial): absent = genesis.
pub(crate) const HEAD_SEQ: &str = "auditSeq";
pub(crate) const HEAD_HASH: &str = "auditHash";

/// The store over the data table and the audit table. Cheap to clone: the SDK
/// client is an `Arc` inside.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    audit_table: String,
}

impl DynamoStore {
    pub fn new(config: &SdkConfig, table: impl Into<String>, audit_table: impl Into<String>) -> Self {
        Self::with_client(aws_sdk_dynamodb::Client::new(config), table, audit_table)
    }

    /// For a client built with extra configuration (e.g. a request-counting
    /// interceptor in tests and benchmarks).
    pub fn with_client(client: aws_sdk_dynamodb::Client, table: impl Into<String>, audit_table: impl Into<String>) -> Self {
        Self { client, table: table.into(), audit_table: audit_table.into() }
    }

    pub(crate) fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    pub fn audit_table_name(&self) -> &str {
        &self.audit_table
    }

    pub(crate) async fn get(&self, op: &'static str, pk: String, sk: String, consistent: bool) -> Result<Option<Item>, StorageError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| from_sdk(op, &e))?;
        Ok(out.item)
    }

    /// Runs one TransactWriteItems. Condition failures come back as
    /// `Cancelled` with one reason per item (same order) for the caller to
    /// interpret; conflicts and throttling without a failed condition are
    /// `Unavailable`.
    pub(crate) async fn transact(&self, op: &'static str, items: Vec<TransactWriteItem>) -> Result<Transacted, StorageError> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(Transacted::Committed),
            Err(err) => {
                if let Some(TransactWriteItemsError::TransactionCanceledException(c)) = err.as_service_error() {
                    let reasons = c.cancellation_reasons().to_vec();
                    if reasons.iter().any(|r| r.code() == Some(CONDITION_FAILED)) {
                        return Ok(Transacted::Cancelled(reasons));
                    }
                    let code = reasons.iter().filter_map(|r| r.code()).find(|c| *c != "None").unwrap_or("unknown");
                    let code = code.chars().filter(|c| c.is_ascii_alphanumeric()).take(60).collect::<String>();
                    return Err(if is_retryable_code(&code) {
                        StorageError::Unavailable(format!("{op}: {code}"))
                    } else {
                        StorageError::Corrupt(format!("{op}: cancelled {code}"))
                    });
                }
                Err(from_sdk(op, &err))
            }
        }
    }

    /// A transactional Put of `item` under `condition`, returning the old item
    /// when the condition fails (saves a read to explain the failure).
    pub(crate) fn tx_put(&self, op: &'static str, item: Item, condition: &str, expr: Expr) -> Result<TransactWriteItem, StorageError> {
        let (names, values) = expr.into_parts();
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error(op))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transactional Update of the item at (pk, sk).
    pub(crate) fn tx_update(
        &self,
        op: &'static str,
        pk: String,
        sk: String,
        update: &str,
        condition: Option<&str>,
        expr: Expr,
    ) -> Result<TransactWriteItem, StorageError> {
        let (names, values) = expr.into_parts();
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(update)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .set_return_values_on_condition_check_failure(condition.map(|_| ReturnValuesOnConditionCheckFailure::AllOld))
            .build()
            .map_err(build_error(op))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The audit entry as a transactional Put into the audit table that never
    /// overwrites (a transaction may span tables).
    pub(crate) fn tx_audit(&self, op: &'static str, entry: &AuditEntry) -> Result<TransactWriteItem, StorageError> {
        let put = Put::builder()
            .table_name(&self.audit_table)
            .set_item(Some(audit_item(op, entry)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error(op))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The report's record, alone (PutItem) or, with events, in one
    /// TransactWriteItems with their pending items. Unconditional: a retried
    /// report (the weekly id is fixed) rewrites the same items.
    pub(crate) async fn put_report_meta(&self, meta: &ReportMeta, events: &[crate::domain_event::DomainEvent]) -> Result<(), StorageError> {
        let keys = || [("pk", report_pk(&meta.trial_id)), ("sk", meta.report_id.to_string())];
        if events.is_empty() {
            const OP: &str = "dynamodb.PutItem(report)";
            let item = to_record(OP, "report", meta, keys())?;
            self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(|e| from_sdk(OP, &e))?;
            return Ok(());
        }
        const OP: &str = "dynamodb.TransactWriteItems(report)";
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_record(OP, "report", meta, keys())?))
            .build()
            .map_err(build_error(OP))?;
        let mut tx = vec![TransactWriteItem::builder().put(put).build()];
        tx.extend(self.tx_events(OP, events)?);
        match self.transact(OP, tx).await? {
            Transacted::Committed => Ok(()),
            // No item carries a condition, so no condition can fail.
            Transacted::Cancelled(_) => Err(StorageError::Corrupt(format!("{OP}: cancelled without a condition"))),
        }
    }

    pub(crate) async fn get_report_meta(&self, trial: &TrialId, id: &ReportId) -> Result<Option<ReportMeta>, StorageError> {
        const OP: &str = "dynamodb.GetItem(report)";
        self.get(OP, report_pk(trial), id.to_string(), false).await?.map(|item| from_record(OP, "report", item)).transpose()
    }
}

pub(crate) const CONDITION_FAILED: &str = "ConditionalCheckFailed";

pub(crate) enum Transacted {
    Committed,
    Cancelled(Vec<CancellationReason>),
}

/// Whether the transaction's `index`-th item failed its condition.
pub(crate) fn condition_failed(reasons: &[CancellationReason], index: usize) -> bool {
    reasons.get(index).and_then(|r| r.code()) == Some(CONDITION_FAILED)
}

/// The old item DynamoDB returned for the `index`-th item's failed condition.
pub(crate) fn old_item(reasons: &[CancellationReason], index: usize) -> Option<Item> {
    reasons.get(index).and_then(|r| r.item()).filter(|i| !i.is_empty()).cloned()
}

fn report_pk(trial: &TrialId) -> String {
    format!("REPORT#{trial}")
}

/// Expression attribute names and values, built alongside the expression.
#[derive(Default, Clone)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    values: Item,
}

impl Expr {
    /// Room for this many names and values: each map otherwise grows (and rehashes its keys)
    /// two or three times while a transaction's expressions are built.
    pub(crate) fn sized(names: usize, values: usize) -> Self {
        Self { names: HashMap::with_capacity(names), values: Item::with_capacity(values) }
    }
    pub(crate) fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.names.insert(placeholder.to_owned(), attribute.to_owned());
        self
    }
    pub(crate) fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }
    fn without(mut self, placeholders: &[&str]) -> Self {
        for p in placeholders {
            self.values.remove(*p);
        }
        self
    }
    pub(crate) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
    pub(crate) fn values(&self) -> Option<Item> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
    /// [`Expr::names`] and [`Expr::values`] by move: a request that consumes the
    /// expression need not copy its maps.
    pub(crate) fn into_parts(self) -> (Option<HashMap<String, String>>, Option<Item>) {
        ((!self.names.is_empty()).then_some(self.names), (!self.values.is_empty()).then_some(self.values))
    }
}

/// `expr` without values an expression does not use (DynamoDB refuses unused ones).
pub(crate) fn expr_without(expr: Expr, placeholders: &[&str]) -> Expr {
    expr.without(placeholders)
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Serialises a domain record and adds its key attributes. Null attributes are
/// dropped, so "absent" has one representation (conditions such as
/// `attribute_not_exists(leaseUntil)` depend on it).
pub(crate) fn to_record<T: Serialize>(
    op: &'static str,
    what: &'static str,
    value: &T,
    keys: impl IntoIterator<Item = (&'static str, String)>,
) -> Result<Item, StorageError> {
    let mut item: Item = item_codec::to_item(value).map_err(codec(op, what))?;
    item.retain(|_, v| !matches!(v, AttributeValue::Null(_)));
    for (k, v) in keys {
        item.insert(k.to_owned(), s(v));
    }
    Ok(item)
}

/// Decodes a stored record, ignoring the storage attributes around it.
pub(crate) fn from_record<T: DeserializeOwned>(op: &'static str, what: &'static str, mut item: Item) -> Result<T, StorageError> {
    for attr in STORAGE_ATTRS {
        item.remove(*attr);
    }
    serde_dynamo::from_item(item).map_err(codec(op, what))
}

pub(crate) fn attr_str<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

pub(crate) fn attr_u64(item: &Item, name: &str) -> Option<u64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

pub(crate) fn attr_i64(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

fn build_error(op: &'static str) -> impl FnOnce(aws_sdk_dynamodb::error::BuildError) -> StorageError {
    move |_| StorageError::Corrupt(format!("{op}: request-build"))
}

/// A page size within the API's bounds.
pub(crate) fn page_limit(requested: u32) -> i32 {
    let limit = if requested == 0 { DEFAULT_LIMIT } else { requested.min(MAX_LIMIT) };
    i32::try_from(limit).unwrap_or(50)
}

/// Encodes a LastEvaluatedKey as an opaque cursor. Keys are strings only.
pub(crate) fn encode_position(op: &'static str, key: Option<Item>) -> Result<Option<String>, StorageError> {
    let Some(key) = key.filter(|k| !k.is_empty()) else { return Ok(None) };
    let mut json = serde_json::Map::new();
    for (k, v) in key {
        let AttributeValue::S(v) = v else { return Err(StorageError::Corrupt(format!("{op}: non-string key attribute"))) };
        json.insert(k, serde_json::Value::String(v));
    }
    Ok(Some(crate::page::encode_cursor(&serde_json::Value::Object(json))))
}

/// Decodes a cursor into an ExclusiveStartKey, refusing any cursor that is not
/// exactly a key of this index in the partition being queried: a tampered
/// cursor must never start a read in another patient's partition.
pub(crate) fn decode_position(
    cursor: Option<&str>,
    key_attrs: &[&str],
    partition_attr: &str,
    partition: &str,
) -> Result<Option<Item>, StorageError> {
    let Some(cursor) = cursor else { return Ok(None) };
    let foreign = || StorageError::ForeignCursor("is not a cursor of this list");
    let serde_json::Value::Object(map) = crate::page::decode_cursor(cursor)? else { return Err(foreign()) };
    if map.len() != key_attrs.len() || map.get(partition_attr).and_then(|v| v.as_str()) != Some(partition) {
        return Err(foreign());
    }
    let mut key = Item::new();
    for attr in key_attrs {
        match map.get(*attr) {
            Some(serde_json::Value::String(v)) if !v.is_empty() && v.len() <= 1024 => {
                key.insert((*attr).to_owned(), s(v.clone()));
            }
            _ => return Err(foreign()),
        }
    }
    Ok(Some(key))
}

pub(crate) const TABLE_KEY: &[&str] = &["pk", "sk"];
pub(crate) const GSI1_KEY: &[&str] = &["pk", "sk", "gsi1pk", "gsi1sk"];

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor_of(pairs: &[(&str, &str)]) -> String {
        let map: serde_json::Map<_, _> = pairs.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned()))).collect();
        crate::page::encode_cursor(&serde_json::Value::Object(map))
    }

    #[test]
    fn a_cursor_round_trips_within_its_partition() {
        // GIVEN a LastEvaluatedKey of patient p1's partition
        let key: Item = [("pk".to_owned(), s("PATIENT#t#p1")), ("sk".to_owned(), s("SUB#2026#x"))].into();
        let cursor = encode_position("test", Some(key.clone())).unwrap().unwrap();
        // WHEN it is used to continue p1's list
        let back = decode_position(Some(&cursor), TABLE_KEY, "pk", "PATIENT#t#p1").unwrap();
        // THEN the same key comes back
        assert_eq!(back, Some(key));
    }

    #[test]
    fn a_cursor_of_another_partition_is_refused() {
        // GIVEN a cursor forged (or copied) from patient p2's list
        let cursor = cursor_of(&[("pk", "PATIENT#t#p2"), ("sk", "SUB#x")]);
        // WHEN used on p1's list THEN it is a 422 naming the cursor
        let err = crate::Error::from(decode_position(Some(&cursor), TABLE_KEY, "pk", "PATIENT#t#p1").unwrap_err());
        assert!(matches!(&err, crate::Error::Validation(e) if e[0].field == "cursor"));
        assert_eq!(crate::edge::http::HttpError::from(err).status(), 422);
    }

    #[test]
    fn a_cursor_with_extra_or_missing_attributes_is_refused() {
        let extra = cursor_of(&[("pk", "P"), ("sk", "S"), ("gsi9", "x")]);
        assert!(decode_position(Some(&extra), TABLE_KEY, "pk", "P").is_err());
        let missing = cursor_of(&[("pk", "P")]);
        assert!(decode_position(Some(&missing), TABLE_KEY, "pk", "P").is_err());
        assert!(decode_position(Some("garbage!"), TABLE_KEY, "pk", "P").is_err());
        let gsi = cursor_of(&[("pk", "ALERT#t"), ("sk", "a"), ("gsi1pk", "ALERTS#t#p2"), ("gsi1sk", "x")]);
        assert!(decode_position(Some(&gsi), GSI1_KEY, "gsi1pk", "ALERTS#t#p1").is_err());
    }

    #[test]
    fn page_limits_are_clamped() {
        assert_eq!(page_limit(0), DEFAULT_LIMIT as i32);
        assert_eq!(page_limit(10_000), MAX_LIMIT as i32);
        assert_eq!(page_limit(7), 7);
    }

    #[test]
    fn storage_attributes_are_stripped_and_nulls_dropped() {
        #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        struct Strict {
            a: u32,
            b: Option<String>,
        }
        let item = to_record("t", "strict", &Strict { a: 1, b: None }, [("pk", "X".to_owned()), ("sk", "Y".to_owned())]).unwrap();
        assert!(!item.contains_key("b"));
        assert_eq!(from_record::<Strict>("t", "strict", item).unwrap(), Strict { a: 1, b: None });
    }
}
