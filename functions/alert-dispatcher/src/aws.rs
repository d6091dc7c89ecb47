//! Production wiring: DynamoDB, SNS, SQS and reqwest behind the ports.

use std::sync::Arc;

use aws_config::SdkConfig;
use trialwatch::aws::{DynamoStore, SnsNotifier};
use trialwatch::clock::SystemClock;
use trialwatch::settings::{required, Resources, SettingsError, ALERT_QUEUE_URL, ALERT_TOPIC_ARN, TABLE_NAME};

use crate::settings::DispatchSettings;
use crate::visibility::SqsVisibility;
use crate::webhook::HttpWebhookSender;
use crate::Deps;

pub type AwsDeps = Deps<DynamoStore, SnsNotifier, HttpWebhookSender, SystemClock>;

/// The AWS adapters for `resources`, with default dispatch settings.
pub async fn aws_deps(sdk: &SdkConfig, resources: &Resources) -> AwsDeps {
    aws_deps_with(sdk, resources, DispatchSettings::default())
}

pub fn aws_deps_with(sdk: &SdkConfig, resources: &Resources, settings: DispatchSettings) -> AwsDeps {
    Deps::new(
        Arc::new(DynamoStore::new(sdk, resources.table_name.clone())),
        SnsNotifier::new(sdk, resources.alert_topic_arn.clone()),
        HttpWebhookSender::new(),
        SystemClock,
        Arc::new(SqsVisibility::new(sdk, resources.alert_queue_url.clone())),
        settings,
    )
}

impl AwsDeps {
    /// For `main.rs`: reads `TABLE_NAME`, `ALERT_QUEUE_URL`, `ALERT_TOPIC_ARN`
    /// and the dispatch settings; a missing or invalid one fails init naming it.
    pub fn from_env(sdk: &SdkConfig) -> Result<Self, SettingsError> {
        let resources = Resources {
            table_name: required(TABLE_NAME)?,
            alert_queue_url: required(ALERT_QUEUE_URL)?,
            alert_topic_arn: required(ALERT_TOPIC_ARN)?,
            // Not used by this function, so not required of its environment.
            vitals_queue_url: String::new(),
            reports_bucket: String::new(),
        };
        Ok(aws_deps_with(sdk, &resources, DispatchSettings::from_env()?))
    }
}
