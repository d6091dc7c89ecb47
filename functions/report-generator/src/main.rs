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
    // The DynamoDB client first: the warm-up call goes out on it while the rest is built.
    let store = trialwatch::aws::DynamoStore::new(&sdk, config.table_name.clone(), config.audit_table_name.clone());
    let deps = store.warm_up_while_building(move |store| report_generator::Deps::with_store(&config, &sdk, store)).await;
    lambda_runtime::run(service_fn(|event| invocation(report_generator::handle_event(&deps, event)))).await
}
