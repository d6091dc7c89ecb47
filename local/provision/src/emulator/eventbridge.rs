//! EventBridge: the bus, and the local subscriber's queue and rule.

use std::collections::BTreeMap;

use aws_config::SdkConfig;

use super::{aws_error, PhysicalResource};
use crate::template::{Resource, EVENT_BUS_TYPE};
use crate::ProvisionError;

/// The bus, and (local only, not in the template) a rule delivering every
/// TrialWatch event to the queue `<bus>-subscriber`, which the local runner's
/// subscriber reads: the emulator's PutEvents delivers to SQS targets.
pub(super) async fn create_event_bus(
    client: &aws_sdk_eventbridge::Client,
    r: &Resource<'_>,
    name: &str,
) -> Result<PhysicalResource, ProvisionError> {
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
