//! S3: each bucket, versioned, and Object Lock with its default retention where
//! the template sets one.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use serde_json::Value;

use super::{aws_error, is_true, template_error, PhysicalResource};
use crate::template::{as_u32, Resource, BUCKET_TYPE};
use crate::{ProvisionError, Template};

/// The template's default retention (mode and days, the days possibly a
/// `!Ref` to a parameter, which takes its `Default` here), when it has one.
fn default_retention(template: &Template, r: &Resource<'_>) -> Result<Option<(String, i32)>, ProvisionError> {
    let Some(retention) = r.properties.pointer("/ObjectLockConfiguration/Rule/DefaultRetention") else { return Ok(None) };
    let mode =
        retention.get("Mode").and_then(Value::as_str).ok_or_else(|| template_error(r.logical_id, "DefaultRetention needs a Mode"))?;
    let days = match retention.get("Days") {
        Some(Value::Object(o)) => o
            .get("Ref")
            .and_then(Value::as_str)
            .and_then(|param| template.as_json().pointer(&format!("/Parameters/{param}/Default")))
            .and_then(as_u32),
        Some(v) => as_u32(v),
        None => None,
    };
    let days = days
        .and_then(|d| i32::try_from(d).ok())
        .ok_or_else(|| template_error(r.logical_id, "DefaultRetention needs Days as a number or a !Ref to a parameter with a Default"))?;
    Ok(Some((mode.to_string(), days)))
}

async fn put_default_retention(
    client: &aws_sdk_s3::Client,
    template: &Template,
    r: &Resource<'_>,
    name: &str,
) -> Result<(), ProvisionError> {
    use aws_sdk_s3::types::{DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule};
    let Some((mode, days)) = default_retention(template, r)? else { return Ok(()) };
    // Idempotent without a write: moto refuses to change the lock configuration of a bucket that
    // holds objects, which a second `make up` after an anchoring run would otherwise hit.
    if let Ok(current) = client.get_object_lock_configuration().bucket(name).send().await {
        let retention = current.object_lock_configuration().and_then(|c| c.rule()).and_then(|r| r.default_retention());
        if retention.is_some_and(|d| d.mode().map(|m| m.as_str()) == Some(mode.as_str()) && d.days() == Some(days)) {
            return Ok(());
        }
    }
    let rule = ObjectLockRule::builder()
        .default_retention(DefaultRetention::builder().mode(ObjectLockRetentionMode::from(mode.as_str())).days(days).build())
        .build();
    client
        .put_object_lock_configuration()
        .bucket(name)
        .object_lock_configuration(ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).rule(rule).build())
        .send()
        .await
        .map_err(|e| aws_error(r.logical_id, "PutObjectLockConfiguration", e))?;
    Ok(())
}

pub(super) async fn create_bucket(
    client: &aws_sdk_s3::Client,
    sdk: &SdkConfig,
    template: &Template,
    r: &Resource<'_>,
    name: &str,
) -> Result<PhysicalResource, ProvisionError> {
    use aws_sdk_s3::types::{BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, VersioningConfiguration};
    let id = r.logical_id;
    let region = sdk.region().map(|r| r.as_ref().to_string()).unwrap_or_else(|| "us-east-1".to_string());
    // Object Lock can only be switched on when a bucket is created.
    let object_lock = r.properties.get("ObjectLockEnabled").is_some_and(is_true);
    let mut request = client.create_bucket().bucket(name).set_object_lock_enabled_for_bucket(object_lock.then_some(true));
    // us-east-1 is the one region that rejects an explicit location constraint.
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region.as_str())).build(),
        );
    }
    if let Err(create_error) = request.send().await {
        if client.head_bucket().bucket(name).send().await.is_err() {
            return Err(aws_error(id, "CreateBucket", create_error));
        }
    }
    if r.properties.pointer("/VersioningConfiguration/Status").and_then(Value::as_str) == Some("Enabled") {
        client
            .put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
            .send()
            .await
            .map_err(|e| aws_error(id, "PutBucketVersioning", e))?;
    }
    if object_lock {
        put_default_retention(client, template, r, name).await?;
    }
    Ok(PhysicalResource {
        kind: BUCKET_TYPE.to_string(),
        reference: name.to_string(),
        attributes: BTreeMap::from([("Arn".to_string(), format!("arn:aws:s3:::{name}"))]),
    })
}
