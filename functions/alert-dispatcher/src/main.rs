//! alert-dispatcher Lambda: SQS alert queue -> signed webhook + SNS; the
//! one-minute schedule runs the outbox sweeper.

use trialwatch::telemetry::invocation;

/// One thread, not a worker per core: Lambda runs one invocation at a time per execution
/// environment and gives 128 MB about 1/14 of a vCPU, so worker threads cost init (their
/// creation, their allocator heaps) and cross-thread wake-ups, and never add parallelism.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    trialwatch::telemetry::init("alert-dispatcher");
    let config = alert_dispatcher::Config::from_env()?;
    let sdk = trialwatch::aws::lambda_sdk_config();
    let deps = alert_dispatcher::Deps::warmed_up(config, sdk).await;
    lambda_runtime::run(lambda_runtime::service_fn(|event| invocation(alert_dispatcher::handle_event(&deps, event)))).await
}
