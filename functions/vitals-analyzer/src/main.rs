//! vitals-analyzer Lambda: configuration and adapters built once in init, then the runtime loop.
use lambda_runtime::service_fn;

use trialwatch::telemetry::invocation;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    trialwatch::telemetry::init("vitals-analyzer");
    let config = vitals_analyzer::Config::from_env()?;
    let sdk = trialwatch::aws::lambda_sdk_config();
    let deps = vitals_analyzer::Deps::from_config(&config, &sdk);
    deps.store.warm_up().await;
    lambda_runtime::run(service_fn(|event| invocation(vitals_analyzer::handle(&deps, event)))).await
}
