//! The report-generator Lambda: configuration and adapters built once in init,
//! then one handler for both the HTTP API and the weekly schedule.

use lambda_runtime::service_fn;

use trialwatch::telemetry::invocation;

/// One thread, not a worker per core: Lambda runs one invocation at a time per execution
/// environment and gives 128 MB about 1/14 of a vCPU, so worker threads cost init (their
/// creation, their allocator heaps) and cross-thread wake-ups, and never add parallelism.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    trialwatch::telemetry::init("report-generator");
    let config = report_generator::Config::from_env()?;
    let sdk = trialwatch::aws::lambda_sdk_config();
    let deps = report_generator::Deps::warmed_up(config, sdk).await;
    lambda_runtime::run(service_fn(|event| invocation(report_generator::handle_event(&deps, event)))).await
}
