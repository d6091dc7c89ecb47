//! The epro-api Lambda: configuration and adapters built once in init, then the HTTP handler.

use lambda_http::{service_fn, Request};
use trialwatch::telemetry::invocation;

/// mimalloc, not glibc's malloc, which was about a third of the handler's instructions (issue 16;
/// README "Handler CPU (replays)"). In the binary, not the library: a process has one global
/// allocator, and the local runner and the end-to-end tests link every function's library.
/// The replay example declares the same one, so it measures what runs here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One thread, not a worker per core: Lambda runs one invocation at a time per execution
/// environment and gives 128 MB about 1/14 of a vCPU, so worker threads cost init (their
/// creation, their allocator heaps) and cross-thread wake-ups, and never add parallelism.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    trialwatch::telemetry::init("epro-api");
    let config = epro_api::Config::from_env()?;
    let sdk = trialwatch::aws::lambda_sdk_config();
    let deps = &epro_api::Deps::warmed_up(config, sdk).await;
    lambda_http::run(service_fn(move |req: Request| {
        invocation(async move { Ok::<_, std::convert::Infallible>(epro_api::handle(deps, req).await) })
    }))
    .await
}
