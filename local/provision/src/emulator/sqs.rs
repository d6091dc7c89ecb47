//! SQS: each queue with its FIFO settings, visibility timeout and redrive policy.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use super::{aws_error, resolve, template_error, DeadLetter, PhysicalResource};
use crate::template::{as_u32, get_att_target, Resource, QUEUE_TYPE};
use crate::ProvisionError;

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

pub(super) fn queue_dependencies<'t>(r: &Resource<'t>) -> Vec<&'t str> {
    r.properties.get("RedrivePolicy").and_then(|p| p.get("deadLetterTargetArn")).and_then(get_att_target).into_iter().collect()
}

pub(super) async fn create_queue(
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
