//! Creating the template's data resources on the emulator: one module per
//! service, driven from [`provision_all`], and the intrinsics (`Ref`,
//! `Fn::GetAtt`) resolved against what was made.

mod dynamodb;
mod eventbridge;
mod s3;
mod sns;
mod sqs;

use std::collections::BTreeMap;
use std::path::Path;

use aws_config::SdkConfig;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::Value;

use crate::template::{Resource, BUCKET_TYPE, EVENT_BUS_TYPE, QUEUE_TYPE, TABLE_TYPE, TOPIC_TYPE};
use crate::{kebab, resources_from, validate_prefix, FunctionSpec, ProvisionError, Template};
use dynamodb::create_table;
use eventbridge::create_event_bus;
pub use eventbridge::subscribe_queue;
use s3::create_bucket;
use sns::create_topic;
use sqs::{create_queue, queue_dependencies};
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
