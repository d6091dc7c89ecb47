//! Production wiring: DynamoDB, SNS, SQS and reqwest behind the ports.

use std::sync::Arc;

use aws_config::SdkConfig;
use trialwatch::aws::{DynamoStore, SnsNotifier, SqsAlertQueue};
use trialwatch::clock::SystemClock;

use crate::visibility::SqsVisibility;
use crate::webhook::HttpWebhookSender;
use crate::{Config, Deps};

pub type AwsDeps = Deps<DynamoStore, SnsNotifier, HttpWebhookSender, SystemClock>;

impl AwsDeps {
    /// The production adapters, built once in init from the function's
    /// configuration and one SDK configuration.
    pub fn from_config(config: &Config, sdk: &SdkConfig) -> Self {
        Self::with_store(config, sdk, Self::dynamo_store(config, sdk))
    }

    /// [`Self::from_config`] for `main`, with init's warm-up call: the store is built first and
    /// its call goes out while the rest is built ([`DynamoStore::warm_up_while_building`]).
    ///
    /// [`DynamoStore::warm_up_while_building`]: trialwatch::aws::DynamoStore::warm_up_while_building
    pub async fn warmed_up(config: Config, sdk: SdkConfig) -> Self {
        Self::dynamo_store(&config, &sdk).warm_up_while_building(move |store| Self::with_store(&config, &sdk, store)).await
    }

    fn dynamo_store(config: &Config, sdk: &SdkConfig) -> DynamoStore {
        DynamoStore::new(sdk, config.table_name.clone(), config.audit_table_name.clone())
    }

    fn with_store(config: &Config, sdk: &SdkConfig, store: DynamoStore) -> Self {
        // One client per service, shared by its adapters: each construction costs init time.
        let sqs = trialwatch::aws::sqs_client(sdk);
        let deps = Deps::new(
            Arc::new(store),
            SnsNotifier::new(sdk, config.alert_topic_arn.clone()),
            HttpWebhookSender::with_policy(config.egress),
            SystemClock,
            Arc::new(SqsVisibility::with_client(sqs.clone(), config.alert_queue_url.clone())),
            config.dispatch.clone(),
        )
        .with_outbox_queue(Arc::new(SqsAlertQueue::with_client(sqs, config.alert_queue_url.clone())));
        match &config.event_bus_name {
            Some(bus) => deps.with_event_bus(Arc::new(trialwatch::aws::EventBridgePublisher::new(sdk, bus.clone()))),
            None => deps,
        }
    }
}
