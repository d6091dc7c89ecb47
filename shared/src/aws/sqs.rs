//! SQS adapters: the FIFO vitals queue and the alert queue.
use async_trait::async_trait;
use aws_config::SdkConfig;

use crate::alert::Alert;
use crate::error::Error;
use crate::ports::{AlertQueue, VitalsQueue};
use crate::vitals::VitalsMessage;

#[derive(Clone, Debug)]
pub struct SqsVitalsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsVitalsQueue {
    pub fn new(config: &SdkConfig, url: impl Into<String>) -> Self {
        Self { client: aws_sdk_sqs::Client::new(config), url: url.into() }
    }
}

#[async_trait]
impl VitalsQueue for SqsVitalsQueue {
    async fn send_vitals(&self, _messages: &[VitalsMessage]) -> Result<(), Error> {
        let _ = (&self.client, &self.url);
        todo!()
    }
}

#[derive(Clone, Debug)]
pub struct SqsAlertQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsAlertQueue {
    pub fn new(config: &SdkConfig, url: impl Into<String>) -> Self {
        Self { client: aws_sdk_sqs::Client::new(config), url: url.into() }
    }
}

#[async_trait]
impl AlertQueue for SqsAlertQueue {
    async fn enqueue(&self, _alerts: &[Alert]) -> Result<(), Error> {
        let _ = (&self.client, &self.url);
        todo!()
    }
}
