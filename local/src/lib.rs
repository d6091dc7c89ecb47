//! The whole TrialWatch stack on one machine: every function of
//! `template.yaml` runs in-process with the same library code its Lambda
//! binary uses, against the AWS emulator. HTTP routes are served as API
//! Gateway would (JWT authorizer included), SQS event sources are polled as
//! Lambda's event source mappings do, and schedules fire on demand.

pub mod auth;
pub mod client;
pub mod coldstart;
pub mod demo;
pub mod functions;
pub mod gateway;
pub mod invoke;
pub mod load;
pub mod logs;
pub mod measure;
pub mod memory;
pub mod poller;
pub mod receiver;
pub mod scenario;
pub mod stack;
pub mod subscriber;
pub mod verify_audit;

pub use stack::{Stack, StackConfig, StackError, StoreKind};

/// The region events and ARNs name (`AWS_REGION`, default us-east-1).
pub fn region() -> String {
    std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()).unwrap_or_else(|| "us-east-1".to_owned())
}

/// A short, loggable description of an SDK failure: the service's error code,
/// or the transport error chain (no request or response bodies).
pub fn sdk_error_code<E, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    match e.code() {
        Some(code) => code.to_owned(),
        None => aws_sdk_sqs::error::DisplayErrorContext(e).to_string(),
    }
}
