//! Creating the template's data resources on the emulator.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, PointInTimeRecoverySpecification, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::Value;

use super::template::{as_u32, get_att_target, Resource, BUCKET_TYPE, EVENT_BUS_TYPE, QUEUE_TYPE, TABLE_TYPE, TOPIC_TYPE};
use super::{kebab, resources_from, validate_prefix, FunctionSpec, ProvisionError, Template};
use trialwatch::settings::Resources;

/// The template's logical id of the audit anchor bucket.
pub const AUDIT_ANCHOR_BUCKET_ID: &str = "AuditAnchorBucket";

/// What [`provision_all`] made: enough to run any function of the template
/// against the emulator, and to inspect dead-letter queues in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub prefix: String,
    /// The five resource names of `Globals.Function.Environment`.
    pub resources: Resources,
    /// `Globals.Function.Environment.Variables` with each `!Ref` resolved to the
    /// physical name made here; variables referring to cloud-only resources
    /// (`REPORTS_KMS_KEY_ID` -> `DataKey`) are absent.
    pub environment: BTreeMap<String, String>,
    /// Every resource created, by logical id.
    pub physical: BTreeMap<String, PhysicalResource>,
    /// By source-queue logical id (e.g. `VitalsQueue`): the DLQ its redrive
    /// policy targets and after how many receives a message moves there.
    pub dead_letters: BTreeMap<String, DeadLetter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalResource {
    /// CloudFormation type, e.g. `AWS::SQS::Queue`.
    pub kind: String,
    /// What `!Ref` returns: table name, queue URL, bucket name or topic ARN.
    pub reference: String,
    /// What `!GetAtt` returns, by attribute (`Arn`, `QueueName`, `QueueUrl`, `TopicName`...).
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub queue_logical_id: String,
    pub url: String,
    pub max_receive_count: u32,
}

impl Provisioned {
    /// URL of a queue by logical id, e.g. for an SQS event source's `queue_logical_id`.
    pub fn queue_url(&self, logical_id: &str) -> Option<&str> {
        self.physical.get(logical_id).filter(|p| p.kind == QUEUE_TYPE).map(|p| p.reference.as_str())
    }

    /// URL of the DLQ behind `source_logical_id`'s redrive policy.
    pub fn dead_letter_url(&self, source_logical_id: &str) -> Option<&str> {
        self.dead_letters.get(source_logical_id).map(|d| d.url.as_str())
    }

    pub fn vitals_dlq_url(&self) -> Option<&str> {
        self.dead_letter_url("VitalsQueue")
    }

    pub fn alert_dlq_url(&self) -> Option<&str> {
        self.dead_letter_url("AlertQueue")
    }

    /// The bucket audit chain heads are anchored to (`AuditAnchorBucket`).
    pub fn anchor_bucket(&self) -> Option<&str> {
        self.physical.get(AUDIT_ANCHOR_BUCKET_ID).filter(|p| p.kind == BUCKET_TYPE).map(|p| p.reference.as_str())
    }

    /// [`Resources::env`] plus the function-level resource names a test
    /// needs (`AUDIT_ANCHOR_BUCKET`), for building any function's `Config`.
    pub fn function_env(&self) -> trialwatch::settings::Env {
        let extra = self.anchor_bucket().map(|b| (trialwatch::settings::AUDIT_ANCHOR_BUCKET, b.to_owned()));
        trialwatch::settings::Env::vars(extra).or(self.resources.env())
    }

    /// The environment `function` would get from SAM: literals as written, and
    /// `!Ref`s resolved to what was provisioned here (unresolvable ones left out).
    pub fn environment_for(&self, function: &FunctionSpec) -> BTreeMap<String, String> {
        let mut env = function.environment.clone();
        for (name, target) in &function.environment_refs {
            if let Some(p) = self.physical.get(target) {
                env.insert(name.clone(), p.reference.clone());
            }
        }
        env
    }
}

/// Provisions the template's data resources under `prefix` and returns the
/// names every function reads. See [`provision_all`] for the DLQs and more.
pub async fn provision(sdk: &SdkConfig, template: &Path, prefix: &str) -> Result<Resources, ProvisionError> {
    provision_all(sdk, template, prefix).await.map(|p| p.resources)
}

/// Provisions every DynamoDB table, SQS queue, S3 bucket and SNS topic of the
/// template under `prefix`. Idempotent.
pub async fn provision_all(sdk: &SdkConfig, template: &Path, prefix: &str) -> Result<Provisioned, ProvisionError> {
    validate_prefix(prefix)?;
    let template = Template::load(template)?;
    let clients = Clients::new(sdk);
    let mut physical = BTreeMap::new();

    for r in template.resources_of_type(TABLE_TYPE) {
        let made = create_table(&clients.dynamodb, &r, &physical_name(prefix, &r)).await?;
        physical.insert(r.logical_id.to_string(), made);
    }
    for r in template.resources_of_type(TOPIC_TYPE) {
        let made = create_topic(&clients.sns, &r, &physical_name(prefix, &r)).await?;
        physical.insert(r.logical_id.to_string(), made);
    }
    for r in template.resources_of_type(EVENT_BUS_TYPE) {
        let made = create_event_bus(&clients.events, &r, &physical_name(prefix, &r)).await?;
        physical.insert(r.logical_id.to_string(), made);
    }
    for r in template.resources_of_type(BUCKET_TYPE) {
        let made = create_bucket(&clients.s3, sdk, &template, &r, &physical_name(prefix, &r)).await?;
        physical.insert(r.logical_id.to_string(), made);
    }

    // A redrive policy names its DLQ's ARN, so DLQs come first: each pass makes
    // the queues whose references are all resolvable by now.
    let mut pending = template.resources_of_type(QUEUE_TYPE);
    let mut dead_letters = BTreeMap::new();
    while !pending.is_empty() {
        let (ready, waiting): (Vec<_>, Vec<_>) =
            pending.into_iter().partition(|r| queue_dependencies(r).iter().all(|d| physical.contains_key(*d)));
        if ready.is_empty() {
            let ids: Vec<_> = waiting.iter().map(|r| r.logical_id).collect();
            return Err(ProvisionError::Template(format!("queues {ids:?} refer to queues that are not in the template or to each other")));
        }
        for r in ready {
            let (made, dead_letter) = create_queue(&clients.sqs, &r, &physical_name(prefix, &r), &physical).await?;
            physical.insert(r.logical_id.to_string(), made);
            if let Some(d) = dead_letter {
                dead_letters.insert(r.logical_id.to_string(), d);
            }
        }
        pending = waiting;
    }

    let environment: BTreeMap<String, String> = template
        .global_environment()
        .iter()
        .filter_map(|(name, value)| resolve_scalar(value, &physical).map(|v| (name.clone(), v)))
        .collect();
    let resources = resources_from(&environment)?;
    Ok(Provisioned { prefix: prefix.to_string(), resources, environment, physical, dead_letters })
}

struct Clients {
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    sns: aws_sdk_sns::Client,
    events: aws_sdk_eventbridge::Client,
}

impl Clients {
    fn new(sdk: &SdkConfig) -> Self {
        // Emulators serve buckets by path, not by virtual-host DNS names.
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build());
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            s3,
            sns: aws_sdk_sns::Client::new(sdk),
            events: aws_sdk_eventbridge::Client::new(sdk),
        }
    }
}

fn physical_name(prefix: &str, r: &Resource<'_>) -> String {
    let base = format!("{prefix}-{}", kebab(r.logical_id));
    let fifo = matches!(r.properties.get("FifoQueue").or_else(|| r.properties.get("FifoTopic")), Some(v) if is_true(v));
    if fifo {
        format!("{base}.fifo")
    } else {
        base
    }
}

fn is_true(v: &Value) -> bool {
    v.as_bool().unwrap_or_else(|| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true")))
}

fn aws_error<E>(resource: &str, operation: &'static str, err: E) -> ProvisionError
where
    E: std::error::Error,
{
    ProvisionError::Aws { resource: resource.to_string(), operation, message: DisplayErrorContext(err).to_string() }
}

fn template_error(resource: &str, detail: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Template(format!("{resource}: {detail}"))
}

// ---------------------------------------------------------------------- DynamoDB

async fn create_table(client: &aws_sdk_dynamodb::Client, r: &Resource<'_>, name: &str) -> Result<PhysicalResource, ProvisionError> {
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

// --------------------------------------------------------------------------- SQS

/// Queue properties the emulator applies, under the same names as SQS attributes.
/// `KmsMasterKeyId`/`KmsDataKeyReusePeriodSeconds` are cloud-only: no KMS key here.
const QUEUE_ATTRIBUTES: &[&str] = &[
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
];

fn queue_dependencies<'t>(r: &Resource<'t>) -> Vec<&'t str> {
    r.properties.get("RedrivePolicy").and_then(|p| p.get("deadLetterTargetArn")).and_then(get_att_target).into_iter().collect()
}

async fn create_queue(
    client: &aws_sdk_sqs::Client,
    r: &Resource<'_>,
    name: &str,
    physical: &BTreeMap<String, PhysicalResource>,
) -> Result<(PhysicalResource, Option<DeadLetter>), ProvisionError> {
    let id = r.logical_id;
    let mut attributes: HashMap<QueueAttributeName, String> = HashMap::new();
    let mut dead_letter = None;
    for &attribute in QUEUE_ATTRIBUTES {
        let Some(value) = r.properties.get(attribute) else { continue };
        let resolved =
            resolve(value, physical).ok_or_else(|| template_error(id, format!("{attribute} refers to something not provisioned")))?;
        let text = match resolved {
            Value::String(s) => s,
            Value::Object(_) => resolved.to_string(),
            other => other.to_string(),
        };
        attributes.insert(QueueAttributeName::from(attribute), text);
    }
    if let Some(policy) = r.properties.get("RedrivePolicy") {
        let target = policy.get("deadLetterTargetArn").and_then(get_att_target);
        let url = target.and_then(|t| physical.get(t)).map(|p| p.reference.clone());
        let max = policy.get("maxReceiveCount").and_then(as_u32);
        match (target, url, max) {
            (Some(target), Some(url), Some(max_receive_count)) => {
                dead_letter = Some(DeadLetter { queue_logical_id: target.to_string(), url, max_receive_count })
            }
            _ => return Err(template_error(id, "RedrivePolicy needs deadLetterTargetArn: !GetAtt <queue>.Arn and a maxReceiveCount")),
        }
    }

    let url = match client.create_queue().queue_name(name).set_attributes(Some(attributes.clone())).send().await {
        Ok(out) => out.queue_url().unwrap_or_default().to_string(),
        Err(create_error) => {
            // A rerun, possibly after the template changed: converge the existing
            // queue on the template (FifoQueue cannot change after creation).
            let existing = match client.get_queue_url().queue_name(name).send().await {
                Ok(out) => out.queue_url().unwrap_or_default().to_string(),
                Err(_) => return Err(aws_error(id, "CreateQueue", create_error)),
            };
            attributes.remove(&QueueAttributeName::FifoQueue);
            client
                .set_queue_attributes()
                .queue_url(&existing)
                .set_attributes(Some(attributes))
                .send()
                .await
                .map_err(|e| aws_error(id, "SetQueueAttributes", e))?;
            existing
        }
    };
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws_error(id, "GetQueueAttributes", e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| aws_error(id, "GetQueueAttributes", std::io::Error::other("no QueueArn returned")))?;
    let made = PhysicalResource {
        kind: QUEUE_TYPE.to_string(),
        reference: url.clone(),
        attributes: BTreeMap::from([("Arn".to_string(), arn), ("QueueName".to_string(), name.to_string()), ("QueueUrl".to_string(), url)]),
    };
    Ok((made, dead_letter))
}

// ---------------------------------------------------------------------------- S3

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

async fn create_bucket(
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

// --------------------------------------------------------------------------- SNS

async fn create_topic(client: &aws_sdk_sns::Client, r: &Resource<'_>, name: &str) -> Result<PhysicalResource, ProvisionError> {
    let id = r.logical_id;
    let mut request = client.create_topic().name(name);
    if r.properties.get("FifoTopic").is_some_and(is_true) {
        request = request.attributes("FifoTopic", "true");
    }
    // CreateTopic is idempotent by name.
    let arn = request.send().await.map_err(|e| aws_error(id, "CreateTopic", e))?.topic_arn().unwrap_or_default().to_string();
    Ok(PhysicalResource {
        kind: TOPIC_TYPE.to_string(),
        reference: arn.clone(),
        attributes: BTreeMap::from([("TopicArn".to_string(), arn), ("TopicName".to_string(), name.to_string())]),
    })
}

/// The bus, and (local only, not in the template) a rule delivering every
/// TrialWatch event to the queue `<bus>-subscriber`, which the local runner's
/// subscriber reads: the emulator's PutEvents delivers to SQS targets.
async fn create_event_bus(client: &aws_sdk_eventbridge::Client, r: &Resource<'_>, name: &str) -> Result<PhysicalResource, ProvisionError> {
    let id = r.logical_id;
    let arn = match client.describe_event_bus().name(name).send().await {
        Ok(found) => found.arn().unwrap_or_default().to_string(),
        Err(_) => client
            .create_event_bus()
            .name(name)
            .send()
            .await
            .map_err(|e| aws_error(id, "CreateEventBus", e))?
            .event_bus_arn()
            .unwrap_or_default()
            .to_string(),
    };
    Ok(PhysicalResource {
        kind: EVENT_BUS_TYPE.to_string(),
        reference: name.to_string(),
        attributes: BTreeMap::from([("Arn".to_string(), arn), ("Name".to_string(), name.to_string())]),
    })
}

/// The local subscriber's queue: a rule on the bus matching `source: trialwatch`
/// with this queue as its target. Idempotent. Returns the queue URL.
pub async fn subscribe_queue(sdk: &SdkConfig, bus_name: &str) -> Result<String, ProvisionError> {
    let (events, sqs) = (aws_sdk_eventbridge::Client::new(sdk), aws_sdk_sqs::Client::new(sdk));
    let queue = format!("{bus_name}-subscriber");
    let url = sqs
        .create_queue()
        .queue_name(&queue)
        .send()
        .await
        .map_err(|e| aws_error("EventSubscriber", "CreateQueue", e))?
        .queue_url()
        .unwrap_or_default()
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws_error("EventSubscriber", "GetQueueAttributes", e))?;
    let arn = attrs.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)).cloned().unwrap_or_default();
    let rule = format!("{bus_name}-all");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(bus_name)
        .event_pattern(r#"{"source":["trialwatch"]}"#)
        .send()
        .await
        .map_err(|e| aws_error("EventSubscriber", "PutRule", e))?;
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("local-subscriber")
        .arn(arn)
        .build()
        .map_err(|e| ProvisionError::Template(e.to_string()))?;
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(bus_name)
        .targets(target)
        .send()
        .await
        .map_err(|e| aws_error("EventSubscriber", "PutTargets", e))?;
    Ok(url)
}

// ------------------------------------------------------------------ intrinsics

/// Resolves `Ref`/`Fn::GetAtt` to provisioned resources, recursively through
/// objects and arrays; `None` when something refers to what was not provisioned.
fn resolve(value: &Value, physical: &BTreeMap<String, PhysicalResource>) -> Option<Value> {
    match value {
        Value::Object(map) if map.len() == 1 && (map.contains_key("Ref") || map.contains_key("Fn::GetAtt")) => {
            resolve_scalar(value, physical).map(Value::String)
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| resolve(v, physical).map(|v| (k.clone(), v)))
            .collect::<Option<serde_json::Map<_, _>>>()
            .map(Value::Object),
        Value::Array(items) => items.iter().map(|v| resolve(v, physical)).collect::<Option<Vec<_>>>().map(Value::Array),
        other => Some(other.clone()),
    }
}

fn resolve_scalar(value: &Value, physical: &BTreeMap<String, PhysicalResource>) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => {
            if let Some(target) = value.get("Ref").and_then(Value::as_str) {
                return physical.get(target).map(|p| p.reference.clone());
            }
            let parts = value.get("Fn::GetAtt").and_then(Value::as_array)?;
            let (target, attribute) = (parts.first()?.as_str()?, parts.get(1)?.as_str()?);
            physical.get(target)?.attributes.get(attribute).cloned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn queue(reference: &str, arn: &str) -> PhysicalResource {
        PhysicalResource {
            kind: QUEUE_TYPE.into(),
            reference: reference.into(),
            attributes: BTreeMap::from([("Arn".to_string(), arn.to_string())]),
        }
    }

    #[test]
    fn a_redrive_policy_resolves_to_the_dead_letter_queue_made_here() {
        // GIVEN a provisioned DLQ
        let physical = BTreeMap::from([("DLQ".to_string(), queue("http://q/dlq", "arn:aws:sqs:us-east-1:1:dlq"))]);
        // WHEN a redrive policy pointing at it is resolved
        let policy = json!({"deadLetterTargetArn": {"Fn::GetAtt": ["DLQ", "Arn"]}, "maxReceiveCount": 5});
        // THEN the ARN is the DLQ's and the count is kept
        assert_eq!(resolve(&policy, &physical), Some(json!({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:1:dlq", "maxReceiveCount": 5})));
    }

    #[test]
    fn references_to_resources_not_provisioned_do_not_resolve() {
        // GIVEN nothing provisioned WHEN a KMS key is referenced THEN it is unresolved, not empty
        let physical = BTreeMap::new();
        assert_eq!(resolve_scalar(&json!({"Ref": "DataKey"}), &physical), None);
        assert_eq!(resolve(&json!({"a": [{"Fn::GetAtt": ["DataKey", "Arn"]}]}), &physical), None);
    }

    #[test]
    fn fifo_resources_get_the_fifo_suffix_aws_requires() {
        let (fifo, standard) = (json!({"FifoQueue": true}), json!({"VisibilityTimeout": 30}));
        let r = |p| Resource { logical_id: "VitalsDLQ", kind: QUEUE_TYPE, properties: p };
        assert_eq!(physical_name("tw", &r(&fifo)), "tw-vitals-dlq.fifo");
        assert_eq!(physical_name("tw", &r(&standard)), "tw-vitals-dlq");
    }
}
