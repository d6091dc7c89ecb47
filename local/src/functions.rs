//! The real functions, in-process: each template function's binary name maps
//! to its crate's library entry points, with dependencies built once, as each
//! Lambda binary's `main.rs` builds them in init.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use trialwatch::provision::{FunctionSpec, Provisioned};

use crate::invoke::{Functions, InvokeError};
use crate::stack::StackError;

/// The four TrialWatch functions, each with its dependencies, keyed by the
/// template's logical id.
pub struct TrialWatchFunctions {
    by_logical_id: std::collections::HashMap<String, Function>,
}

enum Function {
    EproApi(Box<epro_api::AwsDeps>),
    VitalsAnalyzer(std::sync::Arc<vitals_analyzer::AwsDeps>),
    AlertDispatcher(std::sync::Arc<alert_dispatcher::AwsDeps>),
    ReportGenerator(Box<report_generator::AwsDeps>),
}

impl TrialWatchFunctions {
    /// Builds every template function's dependencies once. A function whose
    /// binary the runner does not know fails start-up, naming it.
    pub async fn build(sdk: &SdkConfig, provisioned: &Provisioned, specs: &[FunctionSpec]) -> Result<Self, StackError> {
        let resources = &provisioned.resources;
        let mut by_logical_id = std::collections::HashMap::new();
        for spec in specs {
            let f = match spec.binary.as_str() {
                "epro-api" => Function::EproApi(Box::new(epro_api::aws_deps(sdk, resources).await)),
                "vitals-analyzer" => Function::VitalsAnalyzer(std::sync::Arc::new(
                    vitals_analyzer::aws_deps(sdk, resources)
                        .await
                        .map_err(|e| StackError::Functions(format!("{}: {e}", spec.logical_id)))?,
                )),
                "report-generator" => Function::ReportGenerator(Box::new(report_generator::aws_deps(sdk, resources).await)),
                "alert-dispatcher" => Function::AlertDispatcher(std::sync::Arc::new(alert_dispatcher::aws_deps(sdk, resources).await)),
                other => {
                    return Err(StackError::Functions(format!(
                    "template function {} (binary {other}) has no in-process handler in trialwatch-local; add it to local/src/functions.rs",
                    spec.logical_id
                )))
                }
            };
            by_logical_id.insert(spec.logical_id.clone(), f);
        }
        Ok(Self { by_logical_id })
    }

    fn get(&self, function: &str) -> Result<&Function, InvokeError> {
        self.by_logical_id.get(function).ok_or_else(|| InvokeError::UnknownFunction(function.to_owned()))
    }
}

/// Runs a handler whose future the compiler cannot prove `Send` (a known
/// rustc limitation with closures over borrowed stream items, rust#102211) on
/// a blocking-pool thread, driven by this runtime's reactor.
async fn off_thread<F, Fut, T>(make: F) -> Result<T, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>>,
    T: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(make())).await.map_err(|_| "handler panicked".to_owned())?
}

fn failed(function: &str, e: lambda_runtime::Error) -> InvokeError {
    InvokeError::Failed { function: function.to_owned(), message: e.to_string() }
}

#[async_trait]
impl Functions for TrialWatchFunctions {
    async fn http(&self, function: &str, request: lambda_http::Request) -> Result<lambda_http::Response<lambda_http::Body>, InvokeError> {
        match self.get(function)? {
            Function::EproApi(deps) => Ok(epro_api::handle(deps, request).await),
            Function::ReportGenerator(deps) => Ok(report_generator::handle_http(deps, request).await),
            _ => Err(InvokeError::UnknownFunction(format!("{function} (not an HTTP function)"))),
        }
    }

    async fn sqs(&self, function: &str, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, InvokeError> {
        match self.get(function)? {
            Function::VitalsAnalyzer(deps) => {
                let deps = deps.clone();
                off_thread(move || async move { vitals_analyzer::handle(&deps, event).await.map_err(|e| e.to_string()) })
                    .await
                    .map_err(|message| InvokeError::Failed { function: function.to_owned(), message })
            }
            Function::AlertDispatcher(deps) => {
                let deps = deps.clone();
                off_thread(move || async move { alert_dispatcher::handle(&deps, event).await.map_err(|e| e.to_string()) })
                    .await
                    .map_err(|message| InvokeError::Failed { function: function.to_owned(), message })
            }
            _ => Err(InvokeError::UnknownFunction(format!("{function} (not an SQS function)"))),
        }
    }

    async fn schedule(&self, function: &str, event: LambdaEvent<Value>) -> Result<Value, InvokeError> {
        match self.get(function)? {
            Function::ReportGenerator(deps) => report_generator::handle_schedule(deps, event).await.map_err(|e| failed(function, e)),
            _ => Err(InvokeError::UnknownFunction(format!("{function} (not a scheduled function)"))),
        }
    }
}
