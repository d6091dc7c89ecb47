//! vitals-analyzer Lambda: adapters built once in init, then the runtime loop.
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    trialwatch::telemetry::init();
    let deps = vitals_analyzer::AwsDeps::from_env().await?;
    lambda_runtime::run(service_fn(|event| vitals_analyzer::handle(&deps, event))).await
}
