//! The init warm-up call against the emulator: it reads the sentinel key through
//! the function's own SDK configuration, and whatever goes wrong, init goes on.

mod aws_support;

use std::time::Duration;

use aws_support::Emulator;
use trialwatch::aws::{lambda_sdk_config, warm_up};

#[tokio::test]
async fn the_warm_up_reads_the_sentinel_key_through_the_functions_own_sdk_configuration() {
    // GIVEN the template's table and the SDK configuration a function builds in init
    let env = Emulator::provision("warmup").await;
    let sdk = lambda_sdk_config();
    // WHEN the warm-up runs
    let w = warm_up(&aws_sdk_dynamodb::Client::new(&sdk), env.table()).await;
    // THEN the GetItem succeeded (no item lives at the sentinel key, which is no error)
    assert_eq!(w.outcome, "ok");
}

#[tokio::test]
async fn a_store_warms_up_its_own_client_on_its_own_table() {
    // GIVEN a function's store on the template's table (a function's main calls this in init)
    let env = Emulator::provision("warmup-store").await;
    // WHEN its warm-up runs
    let w = env.store().warm_up().await;
    // THEN the GetItem went to that table and succeeded
    assert_eq!(w.outcome, "ok");
}

#[tokio::test]
async fn every_sdk_client_of_a_function_shares_one_https_client() {
    // GIVEN the SDK configuration a function builds in init
    let sdk = lambda_sdk_config();
    // THEN it carries an HTTP client, which every service client built from it uses
    // (without one, each client builds its own pool, and the warm-up would warm only its own)
    assert!(sdk.http_client().is_some());
}

#[tokio::test]
async fn a_functions_configuration_comes_from_its_environment_alone() {
    // GIVEN the environment Lambda (here: the emulator's harness) gives a function
    let _env = Emulator::provision("warmup-env").await;
    // WHEN a function builds its configuration
    let sdk = lambda_sdk_config();
    // THEN region, endpoint and credentials are the environment's
    assert_eq!(sdk.region().map(|r| r.as_ref().to_owned()), std::env::var("AWS_REGION").ok());
    assert_eq!(sdk.endpoint_url().map(str::to_owned), std::env::var("AWS_ENDPOINT_URL").ok());
    assert!(sdk.credentials_provider().is_some());
    assert!(sdk.timeout_config().and_then(|t| t.operation_timeout()).is_some());
}

#[tokio::test]
async fn a_warm_up_of_a_missing_table_reports_the_code_and_does_not_fail_init() {
    // GIVEN a table name that does not exist
    let _env = Emulator::provision("warmup-missing").await;
    let sdk = lambda_sdk_config();
    // WHEN the warm-up runs
    let w = warm_up(&aws_sdk_dynamodb::Client::new(&sdk), "no-such-table-warm-up").await;
    // THEN it returns the service's error code instead of failing
    assert_eq!(w.outcome, "ResourceNotFoundException");
}

#[tokio::test]
async fn a_warm_up_against_an_unreachable_endpoint_gives_up_quickly() {
    // GIVEN an endpoint where nothing listens (a port just released)
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
        .http_client(trialwatch::aws::https_client())
        .load()
        .await;
    // WHEN the warm-up runs
    let w = warm_up(&aws_sdk_dynamodb::Client::new(&sdk), "any-table").await;
    // THEN it names a failure, and init is delayed by at most the warm-up's bound
    assert_ne!(w.outcome, "ok");
    assert!(w.elapsed < Duration::from_secs(2), "took {:?}", w.elapsed);
}

#[tokio::test]
async fn the_other_adapters_are_built_on_a_blocking_thread_while_the_warm_up_call_runs() {
    // GIVEN a function's store on the template's table, on a one-thread runtime as in main
    let env = Emulator::provision("warmup-while").await;
    let store = env.store();
    let runtime_thread = std::thread::current().id();
    // WHEN the rest of init is built while the store warms up
    let (built_on, table) = store.warm_up_while_building(|store| (std::thread::current().id(), store.table_name().to_owned())).await;
    // THEN the building ran off the runtime's thread (which was left to drive the call), on a
    // clone of the same store, and what it built is returned
    assert_ne!(built_on, runtime_thread);
    assert_eq!(table, env.table());
}

#[tokio::test]
async fn a_panic_while_building_the_adapters_fails_init_as_it_did_inline() {
    use futures::FutureExt;
    // GIVEN a build that panics (a bad configuration found while building, say)
    let env = Emulator::provision("warmup-panic").await;
    let store = env.store();
    // WHEN init builds while warming up
    let outcome = std::panic::AssertUnwindSafe(store.warm_up_while_building(|_| -> u8 { panic!("bad adapter") })).catch_unwind().await;
    // THEN the panic reaches the caller with its own message, not as a cancelled task
    let payload = outcome.expect_err("the build panicked");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"bad adapter"));
}
