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
    // The DynamoDB client first: the warm-up call goes out on it while the rest is built.
    let store = trialwatch::aws::DynamoStore::new(&sdk, config.table_name.clone(), config.audit_table_name.clone());
    let deps = store.warm_up_while_building(move |store| alert_dispatcher::Deps::with_store(&config, &sdk, store)).await;
    lambda_runtime::run(lambda_runtime::service_fn(|event| invocation(alert_dispatcher::handle_event(&deps, event)))).await
}
