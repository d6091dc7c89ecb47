//! SNS: each topic.

use std::collections::BTreeMap;

use super::{aws_error, is_true, PhysicalResource};
use crate::template::{Resource, TOPIC_TYPE};
use crate::ProvisionError;

pub(super) async fn create_topic(client: &aws_sdk_sns::Client, r: &Resource<'_>, name: &str) -> Result<PhysicalResource, ProvisionError> {
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
