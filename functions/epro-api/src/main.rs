//! The epro-api Lambda: adapters built once in init, then the HTTP handler.

use lambda_http::{service_fn, Request};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    trialwatch::telemetry::init();
    let sdk = trialwatch::aws::sdk_config().await;
    let deps = epro_api::AwsDeps::from_env(&sdk).await?;
    let deps = &deps;
    lambda_http::run(service_fn(move |req: Request| async move { Ok::<_, std::convert::Infallible>(epro_api::handle(deps, req).await) }))
        .await
}
