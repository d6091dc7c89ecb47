//! Reading DynamoDB Queries: every page of one, and the sparse "due" indexes
//! the sweepers read (the PRO-alert outbox and the pending domain events).

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::{s, DynamoStore, Item};
use crate::aws::errors::{codec, from_sdk};
use crate::ports::StorageError;
use crate::timestamp;

/// Hands every page of `query` to `page`, in order, until DynamoDB reports no
/// `LastEvaluatedKey` (a Query returns at most 1 MB per call). The SDK's
/// paginator follows the key, so no adapter carries its own loop.
pub(crate) async fn query_pages(
    op: &'static str,
    query: QueryFluentBuilder,
    mut page: impl FnMut(Vec<Item>) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut pages = query.into_paginator().send();
    while let Some(out) = pages.next().await {
        page(out.map_err(|e| from_sdk(op, &e))?.items.unwrap_or_default())?;
    }
    Ok(())
}

/// A sparse, sharded index of items waiting for a due time: partition key
/// `<pk> = <PREFIX>#<shard>`, sort key `<sk> = <due>#<id>` (fixed-width UTC
/// first, so `<= now` is "due by now"), projecting the record in `payload`.
pub(crate) struct DueIndex {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
    pub payload: &'static str,
}

/// A payload attribute's record: JSON text (pending events since issue 16) or the record's own
/// attribute tree (alerts, and events written before).
pub(super) fn payload_record<T: DeserializeOwned>(
    op: &'static str,
    what: &'static str,
    payload: AttributeValue,
) -> Result<T, StorageError> {
    match payload {
        AttributeValue::S(text) => {
            serde_json::from_str(&text).map_err(|_| StorageError::Corrupt(format!("{op}: {what} does not fit its stored form")))
        }
        tree => serde_dynamo::from_attribute_value(tree).map_err(codec(op, what)),
    }
}

impl DynamoStore {
    /// The items of `partition` due at or before `now`, oldest first, at most
    /// `limit`, each with the due time its key holds (a deferral is
    /// conditional on it). One Query: what is left waits for the next sweep.
    pub(crate) async fn query_due<T: DeserializeOwned>(
        &self,
        op: &'static str,
        index: &DueIndex,
        partition: String,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<(T, DateTime<Utc>)>, StorageError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index.name)
            .key_condition_expression(format!("{} = :p AND {} <= :now", index.pk, index.sk))
            .expression_attribute_values(":p", s(partition))
            .expression_attribute_values(":now", s(timestamp::format(now)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| from_sdk(op, &e))?;
        let mut due = Vec::new();
        for item in out.items.unwrap_or_default() {
            let due_at = item
                .get(index.sk)
                .and_then(|v| v.as_s().ok())
                .and_then(|k| k.split('#').next())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| StorageError::Corrupt(format!("{op}: malformed {} key", index.name)))?;
            // The index projects the record only: nothing else of the item is read.
            let payload = item
                .get(index.payload)
                .cloned()
                .ok_or_else(|| StorageError::Corrupt(format!("{op}: {} item without its {}", index.name, index.payload)))?;
            due.push((payload_record(op, index.payload, payload)?, due_at));
        }
        Ok(due)
    }
}
