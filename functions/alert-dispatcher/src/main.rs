//! alert-dispatcher Lambda: SQS alert queue -> signed webhook + SNS; the
//! one-minute schedule runs the outbox sweeper.

use trialwatch::telemetry::invocation;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    trialwatch::telemetry::init("alert-dispatcher");
    let config = alert_dispatcher::Config::from_env()?;
    let sdk = trialwatch::aws::lambda_sdk_config();
    let deps = alert_dispatcher::Deps::from_config(&config, &sdk);
    deps.store.warm_up().await;
    lambda_runtime::run(lambda_runtime::service_fn(|event| invocation(alert_dispatcher::handle_event(&deps, event)))).await
}
