//! One cheap request in init, so the first invocation does not pay for the
//! HTTPS connection (on AWS, the TLS handshake: hundreds of ms on a small
//! function), the credentials, the endpoint resolution and the signing set-up.
//! It goes through the shared HTTP client of [`super::sdk_config`], so the
//! connection it opens is the one the function's own DynamoDB client reuses.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;

/// The key read: no item lives there, and the read costs half a capacity unit.
const SENTINEL: &str = "warm-up#sentinel";

/// A failed warm-up must not fail init, nor delay it for long: the first
/// invocation would then simply pay the connection itself.
const LIMIT: Duration = Duration::from_millis(1500);

/// How the call ended: `ok`, the service's error code, `timeout` or `dispatch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmUp {
    pub elapsed: Duration,
    pub outcome: String,
}

/// A consistent-read-free `GetItem` of a sentinel key of `table`, bounded by [`LIMIT`].
/// Logs `warm_up_us` and the outcome (the `make coldstart` harness reads the figure);
/// never fails. `client` is the function's own: a client built for the call alone
/// would cost init time and resolve its endpoint and signing set-up for nothing.
pub async fn warm_up(client: &aws_sdk_dynamodb::Client, table: &str) -> WarmUp {
    let started = Instant::now();
    let request = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(SENTINEL.to_owned()))
        .key("sk", AttributeValue::S(SENTINEL.to_owned()))
        .projection_expression("pk")
        .send();
    let outcome = match tokio::time::timeout(LIMIT, request).await {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(e)) => e.code().unwrap_or("dispatch").to_owned(),
        Err(_) => "timeout".to_owned(),
    };
    let elapsed = started.elapsed();
    let warm_up_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    if outcome == "ok" {
        tracing::info!(warm_up_us, outcome = %outcome, "init warm-up call");
    } else {
        tracing::warn!(warm_up_us, outcome = %outcome, "init warm-up call failed; the first invocation connects instead");
    }
    WarmUp { elapsed, outcome }
}

impl super::DynamoStore {
    /// [`warm_up`] on this store's client and table.
    pub async fn warm_up(&self) -> WarmUp {
        warm_up(self.client(), self.table_name()).await
    }

    /// Init's one network wait, put to use: `build` makes the function's other clients and
    /// adapters (given a clone of this store) on a blocking thread while [`Self::warm_up`]'s
    /// call is in flight, and its result is returned once both are done.
    ///
    /// Why: each further SDK client costs about 0.7M instructions of init (its crate's endpoint
    /// partitions are parsed and its region patterns compiled when the client is built), and
    /// the warm-up call is, on AWS, a DNS lookup, a TCP connect and a TLS handshake during which
    /// the main thread only waits (hundreds of ms at 128 MB). Building the other clients
    /// after the call added their cost to init; building them during it hides it. Only
    /// this store's client, which the call needs, is built before.
    ///
    /// A panic in `build` is resumed here, as if `build` had run inline.
    pub async fn warm_up_while_building<T, F>(&self, build: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(super::DynamoStore) -> T + Send + 'static,
    {
        let store = self.clone();
        let building = tokio::task::spawn_blocking(move || build(store));
        self.warm_up().await;
        match building.await {
            Ok(built) => built,
            Err(e) => match e.try_into_panic() {
                Ok(payload) => std::panic::resume_unwind(payload),
                // Only a runtime shutting down cancels a blocking task: init cannot go on.
                Err(e) => panic!("init: building the adapters was cancelled: {e}"),
            },
        }
    }
}
