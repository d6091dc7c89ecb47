//! SNS adapter of the Notifier port.
use async_trait::async_trait;
use aws_config::SdkConfig;

use crate::alert::Alert;
use crate::error::Error;
use crate::ports::Notifier;

#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    default_topic_arn: String,
}

impl SnsNotifier {
    pub fn new(config: &SdkConfig, default_topic_arn: impl Into<String>) -> Self {
        Self { client: aws_sdk_sns::Client::new(config), default_topic_arn: default_topic_arn.into() }
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, _topic: Option<&str>, _alert: &Alert) -> Result<(), Error> {
        let _ = (&self.client, &self.default_topic_arn);
        todo!()
    }
}
