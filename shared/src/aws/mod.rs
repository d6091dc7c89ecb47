//! AWS adapters of the ports: DynamoDB (single table), SQS, SNS, S3. Every
//! client is built once in init from one `SdkConfig` and cloned cheaply (the
//! SDK clients are `Arc`s inside).

mod anchors;
mod dynamo;
mod errors;
mod eventbridge;
mod s3;
mod sns;
pub mod sqs;
mod warm_up;

pub use anchors::S3Anchors;
#[cfg(any(test, feature = "test-util"))]
pub(crate) use dynamo::audit_shard;
pub use dynamo::{
    chain_pk, chain_sk, BatchKeys, DynamoStore, AUDIT_SHARDS, COUNTER_SHARDS, MAX_BATCH_GET, MAX_BATCH_WRITE, MAX_WRITE_ATTEMPTS,
};
pub use eventbridge::EventBridgePublisher;
pub use s3::S3ReportStore;
pub use sns::SnsNotifier;
pub use sqs::{SqsAlertQueue, SqsDeadLetters, SqsQueue, SqsVitalsQueue};
pub use warm_up::{warm_up, WarmUp};

/// Loads the AWS configuration from the environment. The SDK itself honours
/// `AWS_ENDPOINT_URL`, which points every client at a local emulator.
///
/// Timeouts are bounded so that a stalled connection becomes a retryable
/// `Unavailable` (503 / SQS redelivery) well inside the 10 s function timeout,
/// rather than the invocation dying with nothing recorded.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .operation_attempt_timeout(std::time::Duration::from_secs(3))
        .operation_timeout(std::time::Duration::from_secs(7))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts).http_client(https_client()).load().await
}

/// One HTTPS client for every SDK client of the function (and the credential
/// providers): one connection pool, so the connection [`warm_up`] opens in init
/// is the one the first request reuses, and one TLS configuration, built once.
/// Without it each service client builds its own. rustls on aws-lc-rs, the
/// SDK's own default provider; the only one linked (see scripts/test.sh's gate).
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc)).build_https()
}

/// Whether clients are pointed at an emulator (S3 then needs path-style URLs,
/// since `bucket.127.0.0.1` does not resolve).
pub(crate) fn custom_endpoint(config: &aws_config::SdkConfig) -> bool {
    config.endpoint_url().is_some()
}
