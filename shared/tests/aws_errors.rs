//! How SDK failures reach the domain: retryable ones as `Unavailable` (503,
//! SQS redelivery), the rest as `Internal`, never as a panic.

mod aws_support;

use aws_support::{trial, Emulator};
use trialwatch::aws::{DynamoStore, SqsAlertQueue};
use trialwatch::edge::http::HttpError;
use trialwatch::ports::{AlertQueue, TrialConfig};
use trialwatch::Error;

#[tokio::test]
async fn an_unreachable_endpoint_is_a_retryable_unavailable() {
    // GIVEN clients pointed at a port nobody listens on
    let env = Emulator::provision("unreachable").await;
    let config = env.sdk.to_builder().endpoint_url("http://127.0.0.1:9").build();
    // WHEN a store and a queue are used
    let read = DynamoStore::new(&config, env.table(), env.audit_table()).get_trial(&trial()).await;
    let send = SqsAlertQueue::new(&config, "http://127.0.0.1:9/000000000000/q").enqueue(&[]).await;
    // THEN the read is Unavailable (the caller answers 503 with Retry-After), and an empty send makes no call at all
    let err = Error::from(read.unwrap_err());
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(HttpError::from(err).status(), 503);
    assert!(send.is_ok());
}

#[tokio::test]
async fn a_missing_table_is_an_internal_error_naming_the_operation_and_code_only() {
    // GIVEN a store whose table does not exist (a deployment mistake)
    let env = Emulator::provision("notable").await;
    let store = DynamoStore::new(&env.sdk, format!("{}-missing", env.table()), env.audit_table());
    // WHEN read
    let err = Error::from(store.get_trial(&trial()).await.unwrap_err());
    // THEN it is a 500 whose detail names the call and the AWS code, and nothing of the request
    let Error::Internal(detail) = &err else { panic!("expected Internal, got {err:?}") };
    assert!(detail.contains("GetItem") && detail.contains("ResourceNotFoundException"), "{detail}");
    assert!(!detail.contains(trial().as_str()), "{detail}");
    assert_eq!(HttpError::from(err).to_problem().status, 500);
}
