//! The report-generator Lambda: configuration and adapters built once in init,
//! then one handler for both the HTTP API and the weekly schedule.

use lambda_runtime::service_fn;

use trialwatch::telemetry::invocation;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    trialwatch::telemetry::init("report-generator");
    let config = report_generator::Config::from_env()?;
    let sdk = trialwatch::aws::lambda_sdk_config();
    let deps = report_generator::Deps::from_config(&config, &sdk);
    deps.store.warm_up().await;
    lambda_runtime::run(service_fn(|event| invocation(report_generator::handle_event(&deps, event)))).await
}
