//! The baseline `make coldstart` divides by: a `lambda_runtime` function that echoes its event,
//! so the ratios show what TrialWatch's own code and dependencies add to a cold start.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<_, Error>(event.payload) })).await
}
