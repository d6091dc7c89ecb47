//! AWS adapters of the ports: DynamoDB (single table), SQS, SNS, S3. Every
//! client is built once in init from one `SdkConfig` and cloned cheaply (the
//! SDK clients are `Arc`s inside).

mod anchors;
// pub(crate): the in-memory store builds its requests with the adapter's own code.
pub(crate) mod dynamo;
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

#[cfg(test)]
mod roots_tests;

/// The configuration of the developer tools (`trialwatch-local verify-audit`
/// against a deployed stack, the provisioner): the SDK's default chain, so a
/// profile, SSO-less web identity or instance role works as the AWS CLI's does.
/// The Lambda functions use [`lambda_sdk_config`] instead. The SDK honours
/// `AWS_ENDPOINT_URL`, which points every client at a local emulator.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts()).http_client(https_client()).load().await
}

/// The configuration of a deployed function, from its environment alone.
///
/// Lambda hands every function its region and its role's credentials as
/// environment variables (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), so the default chain's other
/// sources (profile files, web identity, ECS, IMDS) are never the ones used
/// there. [`sdk_config`] still resolves a dozen settings through them at every
/// cold start, and links all of them (an STS client among them) into the
/// binary. `AWS_ENDPOINT_URL` still points every client at an emulator. Retries
/// and the credentials cache are the clients' defaults (standard mode, 3
/// attempts), as with [`sdk_config`].
pub fn lambda_sdk_config() -> aws_config::SdkConfig {
    use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
    use aws_config::{BehaviorVersion, Region};
    use aws_credential_types::provider::SharedCredentialsProvider;

    let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut config = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new()))
        .timeout_config(timeouts())
        .http_client(https_client());
    config.set_region(non_empty("AWS_REGION").map(Region::new));
    config.set_endpoint_url(non_empty("AWS_ENDPOINT_URL"));
    config.build()
}

/// Bounded so that a stalled connection becomes a retryable `Unavailable`
/// (503 / SQS redelivery) well inside the 10 s function timeout, rather than
/// the invocation dying with nothing recorded.
fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(2))
        .operation_attempt_timeout(std::time::Duration::from_secs(3))
        .operation_timeout(std::time::Duration::from_secs(7))
        .build()
}

/// One HTTPS client for every SDK client of the function (and the credential
/// providers): one connection pool, so the connection [`warm_up`] opens in init
/// is the one the first request reuses, and one TLS configuration, built once.
/// Without it each service client builds its own. rustls on ring (the
/// SDK's `rustls-ring` mode): the only provider linked (scripts/dup-gate.sh),
/// about 1.5 MB smaller per binary than the default aws-lc-rs.
///
/// It trusts the roots AWS endpoints chain to ([`AWS_ROOTS`]), not the
/// platform's store: the SDK's default reads and parses every certificate of
/// the system bundle (about 140) when it builds its first connector, which is
/// in the cold start. An operator who sets `SSL_CERT_FILE` or `SSL_CERT_DIR`
/// gets the platform store, as that variable asks.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider, TlsContext, TrustStore};
    let builder = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring));
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        return builder.build_https();
    }
    let roots = AWS_ROOTS.iter().fold(TrustStore::empty(), |store, (_, pem)| store.with_pem_certificate(*pem));
    match TlsContext::builder().with_trust_store(roots).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // Never happens today (the builder cannot fail); the platform store is the safe fallback.
        Err(_) => builder.build_https(),
    }
}

/// The Amazon Trust Services roots, which every AWS service endpoint's
/// certificate chains to (Amazon Root CA 1-4, and the Starfield Services G2
/// root that cross-signs them for older clients). Copied from the Mozilla
/// store (Debian's ca-certificates); the test `the_aws_roots_are_the_five_amazon_trust_services_roots`
/// pins their SHA-256 fingerprints.
pub const AWS_ROOTS: [(&str, &[u8]); 5] = [
    ("Amazon Root CA 1", include_bytes!("roots/Amazon_Root_CA_1.pem")),
    ("Amazon Root CA 2", include_bytes!("roots/Amazon_Root_CA_2.pem")),
    ("Amazon Root CA 3", include_bytes!("roots/Amazon_Root_CA_3.pem")),
    ("Amazon Root CA 4", include_bytes!("roots/Amazon_Root_CA_4.pem")),
    ("Starfield Services Root Certificate Authority - G2", include_bytes!("roots/Starfield_Services_Root_Certificate_Authority_-_G2.pem")),
];

/// Whether clients are pointed at an emulator (S3 then needs path-style URLs,
/// since `bucket.127.0.0.1` does not resolve).
/// The SQS client of `config`, for a function's queue adapters to share (`with_client`).
pub fn sqs_client(config: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

/// The S3 client of `config`. Build it once per function and share it (the client is a
/// handle): each construction is init time, resolved again per client (see `make coldstart`).
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    // An emulator on 127.0.0.1 has no `bucket.host` DNS names: path style there.
    let s3_config = aws_sdk_s3::config::Builder::from(config).force_path_style(custom_endpoint(config)).build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

pub(crate) fn custom_endpoint(config: &aws_config::SdkConfig) -> bool {
    config.endpoint_url().is_some()
}
