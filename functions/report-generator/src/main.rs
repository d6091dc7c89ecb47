//! The report-generator Lambda: adapters built once in init, then one handler
//! for both the HTTP API and the weekly schedule.

use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    trialwatch::telemetry::init();
    let deps = report_generator::from_env().await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event| report_generator::handle_event(deps, event))).await
}
