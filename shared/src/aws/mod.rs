//! AWS adapters of the ports: DynamoDB (single table), SQS, SNS, S3. Every
//! client is built once in init from one `SdkConfig` and cloned cheaply (the
//! SDK clients are `Arc`s inside).

mod dynamo;
mod errors;
mod s3;
mod sns;
mod sqs;

pub use dynamo::{DynamoStore, COUNTER_SHARDS, MAX_BATCH_WRITE, MAX_WRITE_ATTEMPTS};
pub use s3::S3ReportStore;
pub use sns::SnsNotifier;
pub use sqs::{SqsAlertQueue, SqsVitalsQueue};

/// Loads the AWS configuration from the environment. The SDK itself honours
/// `AWS_ENDPOINT_URL`, which points every client at a local emulator.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Whether clients are pointed at an emulator (S3 then needs path-style URLs,
/// since `bucket.127.0.0.1` does not resolve).
pub(crate) fn custom_endpoint(config: &aws_config::SdkConfig) -> bool {
    config.endpoint_url().is_some()
}
