//! DynamoDB: each table with its key schema, GSIs, TTL and point-in-time recovery.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, PointInTimeRecoverySpecification, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
};
use serde_json::Value;

use super::{aws_error, is_true, template_error, PhysicalResource};
use crate::template::{Resource, TABLE_TYPE};
use crate::ProvisionError;

pub(super) async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    r: &Resource<'_>,
    name: &str,
) -> Result<PhysicalResource, ProvisionError> {
    let id = r.logical_id;
    let p = r.properties;
    let attributes = p
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .ok_or_else(|| template_error(id, "AttributeDefinitions is required"))?
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(str_field(a, "AttributeName", id)?)
                .attribute_type(ScalarAttributeType::from(str_field(a, "AttributeType", id)?))
                .build()
                .map_err(|e| template_error(id, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key_schema = parse_key_schema(p.get("KeySchema"), id)?;
    let indexes = p
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_array)
        .map(|gsis| {
            gsis.iter()
                .map(|g| {
                    let projection = g.get("Projection").unwrap_or(&Value::Null);
                    let non_key: Option<Vec<String>> = projection
                        .get("NonKeyAttributes")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
                    GlobalSecondaryIndex::builder()
                        .index_name(str_field(g, "IndexName", id)?)
                        .set_key_schema(Some(parse_key_schema(g.get("KeySchema"), id)?))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::from(
                                    projection.get("ProjectionType").and_then(Value::as_str).unwrap_or("ALL"),
                                ))
                                .set_non_key_attributes(non_key)
                                .build(),
                        )
                        .build()
                        .map_err(|e| template_error(id, e))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let billing = p.get("BillingMode").and_then(Value::as_str).unwrap_or("PAY_PER_REQUEST");
    if billing != "PAY_PER_REQUEST" {
        return Err(template_error(id, "only BillingMode PAY_PER_REQUEST is provisioned locally"));
    }
    let wanted_indexes: Vec<String> = indexes.iter().flatten().map(|g| g.index_name().to_string()).collect();

    let created = client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attributes))
        .set_key_schema(Some(key_schema.clone()))
        .set_global_secondary_indexes(indexes)
        .billing_mode(BillingMode::PayPerRequest)
        .set_deletion_protection_enabled(p.get("DeletionProtectionEnabled").map(is_true))
        .send()
        .await;
    if let Err(create_error) = created {
        // Already there (a rerun)? Then it must have the shape the template asks for.
        let existing = match client.describe_table().table_name(name).send().await {
            Ok(d) => d,
            Err(_) => return Err(aws_error(id, "CreateTable", create_error)),
        };
        let table = existing.table().ok_or_else(|| aws_error(id, "DescribeTable", std::io::Error::other("no table description")))?;
        let mut have: Vec<String> = table.global_secondary_indexes().iter().filter_map(|g| g.index_name().map(str::to_string)).collect();
        let mut want = wanted_indexes.clone();
        have.sort();
        want.sort();
        if table.key_schema() != key_schema.as_slice() || have != want {
            return Err(ProvisionError::Mismatch {
                resource: name.to_string(),
                detail: format!("key schema/GSIs {:?}/{have:?}, template wants {key_schema:?}/{want:?}", table.key_schema()),
            });
        }
    }

    let arn = wait_until_active(client, id, name).await?;

    if let Some(ttl) = p.get("TimeToLiveSpecification").filter(|t| t.get("Enabled").is_some_and(is_true)) {
        let attribute = str_field(ttl, "AttributeName", id)?;
        let current = client.describe_time_to_live().table_name(name).send().await.map_err(|e| aws_error(id, "DescribeTimeToLive", e))?;
        let already = current.time_to_live_description().is_some_and(|d| {
            d.attribute_name() == Some(attribute)
                && matches!(d.time_to_live_status(), Some(TimeToLiveStatus::Enabled) | Some(TimeToLiveStatus::Enabling))
        });
        // AWS rejects enabling TTL twice, so a rerun must not ask again.
        if !already {
            let spec =
                TimeToLiveSpecification::builder().attribute_name(attribute).enabled(true).build().map_err(|e| template_error(id, e))?;
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| aws_error(id, "UpdateTimeToLive", e))?;
        }
    }

    if p.pointer("/PointInTimeRecoverySpecification/PointInTimeRecoveryEnabled").is_some_and(is_true) {
        let spec =
            PointInTimeRecoverySpecification::builder().point_in_time_recovery_enabled(true).build().map_err(|e| template_error(id, e))?;
        client
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(spec)
            .send()
            .await
            .map_err(|e| aws_error(id, "UpdateContinuousBackups", e))?;
    }

    Ok(PhysicalResource {
        kind: TABLE_TYPE.to_string(),
        reference: name.to_string(),
        attributes: BTreeMap::from([("Arn".to_string(), arn)]),
    })
}

fn parse_key_schema(value: Option<&Value>, id: &str) -> Result<Vec<KeySchemaElement>, ProvisionError> {
    value
        .and_then(Value::as_array)
        .ok_or_else(|| template_error(id, "KeySchema is required"))?
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(str_field(k, "AttributeName", id)?)
                .key_type(KeyType::from(str_field(k, "KeyType", id)?))
                .build()
                .map_err(|e| template_error(id, e))
        })
        .collect()
}

fn str_field<'v>(value: &'v Value, field: &str, id: &str) -> Result<&'v str, ProvisionError> {
    value.get(field).and_then(Value::as_str).ok_or_else(|| template_error(id, format!("{field} must be a string")))
}

/// The emulator creates tables ACTIVE at once; AWS takes seconds. Returns the table ARN.
async fn wait_until_active(client: &aws_sdk_dynamodb::Client, id: &str, name: &str) -> Result<String, ProvisionError> {
    for _ in 0..120 {
        let described = client.describe_table().table_name(name).send().await.map_err(|e| aws_error(id, "DescribeTable", e))?;
        if let Some(table) = described.table() {
            if table.table_status() == Some(&aws_sdk_dynamodb::types::TableStatus::Active) {
                return Ok(table.table_arn().unwrap_or_default().to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(aws_error(id, "DescribeTable", std::io::Error::other("table not ACTIVE after 60 s")))
}
