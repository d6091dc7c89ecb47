//! The real functions, in-process: each template function's binary name maps
//! to its crate's library entry points, with dependencies built once, as each
//! Lambda binary's `main.rs` builds them in init.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::Instrument;
use trialwatch::egress::LOCAL_ALLOW_LOOPBACK_WEBHOOK;
use trialwatch::settings::{Env, SettingsError};
use trialwatch_provision::{FunctionSpec, Provisioned};

use crate::invoke::{Functions, InitError, InvokeError};

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
    /// Builds every template function's configuration and dependencies once,
    /// as its Lambda binary's `main.rs` does in init, from the environment
    /// [`function_env`] gives it. A variable that is missing or invalid, or a
    /// binary the runner does not know, fails start-up naming it.
    pub fn build(sdk: &SdkConfig, provisioned: &Provisioned, specs: &[FunctionSpec]) -> Result<Self, InitError> {
        Self::with_envs(sdk, specs.iter().map(|spec| (spec, function_env(provisioned, spec, Env::process()))))
    }

    fn with_envs<'a>(sdk: &SdkConfig, functions: impl IntoIterator<Item = (&'a FunctionSpec, Env)>) -> Result<Self, InitError> {
        let mut by_logical_id = std::collections::HashMap::new();
        for (spec, env) in functions {
            let init = |e: SettingsError| InitError(format!("{} ({}): {e}", spec.logical_id, spec.binary));
            let f = match spec.binary.as_str() {
                "epro-api" => {
                    let config = epro_api::Config::from_vars(&env).map_err(init)?;
                    Function::EproApi(Box::new(epro_api::Deps::from_config(&config, sdk)))
                }
                "vitals-analyzer" => {
                    let config = vitals_analyzer::Config::from_vars(&env).map_err(init)?;
                    Function::VitalsAnalyzer(std::sync::Arc::new(vitals_analyzer::Deps::from_config(&config, sdk)))
                }
                "report-generator" => {
                    let config = report_generator::Config::from_vars(&env).map_err(init)?;
                    Function::ReportGenerator(Box::new(report_generator::Deps::from_config(&config, sdk)))
                }
                "alert-dispatcher" => {
                    let config = alert_dispatcher::Config::from_vars(&env).map_err(init)?;
                    Function::AlertDispatcher(std::sync::Arc::new(alert_dispatcher::Deps::from_config(&config, sdk)))
                }
                other => {
                    return Err(InitError(format!(
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

/// The environment a function gets here: its `!Ref` variables resolved to
/// this stack's provisioned resources first (a shell's `TABLE_NAME` must not
/// point a test's stack at another prefix), then `shell` (so a developer can
/// try, say, `CONFIG_TTL_SECONDS=5`), then the template's literal values, as
/// SAM would set them in Lambda, and last the local stack's own settings:
/// [`LOCAL_ALLOW_LOOPBACK_WEBHOOK`] lets trials name the loopback webhook
/// receiver (`http://127.0.0.1:<port>`). The template never sets it, so no
/// deployed function is relaxed.
pub fn function_env(provisioned: &Provisioned, spec: &FunctionSpec, shell: Env) -> Env {
    let resolved = provisioned.environment_for(spec);
    let resources = resolved.into_iter().filter(|(name, _)| spec.environment_refs.contains_key(name));
    Env::vars(resources).or(shell).or(Env::vars(spec.environment.clone())).or(Env::vars([(LOCAL_ALLOW_LOOPBACK_WEBHOOK, "1")]))
}

/// Runs a handler whose future the compiler cannot prove `Send` (a known
/// rustc limitation with closures over borrowed stream items, rust#102211) on
/// a blocking-pool thread, driven by this runtime's reactor.
pub(crate) async fn off_thread<F, Fut, T>(make: F) -> Result<T, String>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>>,
    T: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    // The invocation's span does not follow a future to another thread by itself.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || handle.block_on(make().instrument(span))).await.map_err(|_| "handler panicked".to_owned())?
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
            Function::AlertDispatcher(deps) => alert_dispatcher::handle_sweep(deps, event).await.map_err(|e| failed(function, e)),
            _ => Err(InvokeError::UnknownFunction(format!("{function} (not a scheduled function)"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use trialwatch::settings::{Resources, ALERT_QUEUE_URL, AUDIT_TABLE_NAME, CONFIG_TTL_SECONDS, TABLE_NAME, VITALS_QUEUE_URL};
    use trialwatch_provision::PhysicalResource;

    use super::*;

    fn sdk() -> SdkConfig {
        SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new("us-east-1")).build()
    }

    fn spec(binary: &str, literals: &[(&str, &str)]) -> FunctionSpec {
        FunctionSpec {
            logical_id: "EproApiFunction".into(),
            binary: binary.into(),
            http_routes: vec![],
            sqs_sources: vec![],
            schedules: vec![],
            environment: literals.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            environment_refs: [
                (TABLE_NAME, "TrialTable"),
                (AUDIT_TABLE_NAME, "AuditTable"),
                (VITALS_QUEUE_URL, "VitalsQueue"),
                (ALERT_QUEUE_URL, "AlertQueue"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            timeout_seconds: 10,
            memory_mb: 128,
        }
    }

    fn provisioned() -> Provisioned {
        let physical =
            |kind: &str, reference: &str| PhysicalResource { kind: kind.into(), reference: reference.into(), attributes: BTreeMap::new() };
        Provisioned {
            prefix: "t".into(),
            resources: Resources {
                table_name: "t-trial-table".into(),
                audit_table_name: "t-audit-table".into(),
                vitals_queue_url: "http://q/t-vitals.fifo".into(),
                alert_queue_url: "http://q/t-alerts".into(),
                reports_bucket: "t-reports".into(),
                alert_topic_arn: "arn:aws:sns:us-east-1:123456789012:t-alerts".into(),
            },
            environment: BTreeMap::new(),
            physical: [
                ("TrialTable".to_owned(), physical("AWS::DynamoDB::Table", "t-trial-table")),
                ("AuditTable".to_owned(), physical("AWS::DynamoDB::Table", "t-audit-table")),
                ("VitalsQueue".to_owned(), physical("AWS::SQS::Queue", "http://q/t-vitals.fifo")),
                ("AlertQueue".to_owned(), physical("AWS::SQS::Queue", "http://q/t-alerts")),
            ]
            .into_iter()
            .collect(),
            dead_letters: BTreeMap::new(),
        }
    }

    fn build(spec: &FunctionSpec, shell: Env) -> Result<TrialWatchFunctions, InitError> {
        TrialWatchFunctions::with_envs(&sdk(), [(spec, function_env(&provisioned(), spec, shell))])
    }

    #[test]
    fn a_bad_config_ttl_fails_start_up_naming_it_instead_of_becoming_300() {
        // GIVEN a shell that sets CONFIG_TTL_SECONDS to something that is not seconds
        let spec = spec("epro-api", &[(CONFIG_TTL_SECONDS, "300")]);
        // WHEN the runner builds the function
        let e = build(&spec, Env::vars([(CONFIG_TTL_SECONDS, "5m")])).err().expect("a bad TTL must fail start-up");
        // THEN start-up fails naming the variable and the function
        let message = e.to_string();
        assert!(message.contains(CONFIG_TTL_SECONDS) && message.contains("EproApiFunction"), "{message}");
    }

    #[test]
    fn a_variable_the_function_needs_but_the_template_does_not_give_is_named() {
        // GIVEN a function whose template environment has no ALERT_QUEUE_URL (nothing padded in)
        let mut spec = spec("epro-api", &[]);
        spec.environment_refs.remove(ALERT_QUEUE_URL);
        // THEN start-up fails naming it
        let e = build(&spec, Env::vars::<&str, &str>([])).err().expect("a missing variable must fail start-up");
        assert!(e.to_string().contains(ALERT_QUEUE_URL), "{e}");
    }

    #[test]
    fn provisioned_resources_win_over_the_shell_and_the_shell_over_template_literals() {
        // GIVEN a shell naming another table and a short TTL, and a template literal TTL
        let spec = spec("epro-api", &[(CONFIG_TTL_SECONDS, "300")]);
        let shell = Env::vars([(TABLE_NAME, "someone-elses-table"), (CONFIG_TTL_SECONDS, "5")]);
        // WHEN the function's environment is put together
        let config = epro_api::Config::from_vars(&function_env(&provisioned(), &spec, shell)).unwrap();
        // THEN the table is this stack's, and the TTL is the shell's
        assert_eq!(config.table_name, "t-trial-table");
        assert_eq!(config.config_ttl, std::time::Duration::from_secs(5));
        // AND without the shell's value the template's literal applies
        let config = epro_api::Config::from_vars(&function_env(&provisioned(), &spec, Env::vars::<&str, &str>([]))).unwrap();
        assert_eq!(config.config_ttl, std::time::Duration::from_secs(300));
        assert!(build(&spec, Env::vars::<&str, &str>([])).is_ok());
    }
}
