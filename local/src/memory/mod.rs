//! The local stack on the in-memory adapters (`make up STORE=memory`): every
//! function of the template with the same handlers and the same gateway, but
//! the store is `trialwatch::memory::MemoryStore` (one table shared by all
//! functions, as they share the DynamoDB table) and the queues are
//! [`queue::LocalQueue`]s polled as Lambda polls SQS. No emulator is started
//! or needed. What it measures is TrialWatch's own code: HTTP, the JWT
//! authorizer, validation, the handlers and the pollers. Not a database.

pub mod poller;
pub mod queue;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use trialwatch::clock::SystemClock;
use trialwatch::memory::{
    MemoryAnchors, MemoryAuditTrail, MemoryDeadLetters, MemoryEventBus, MemoryNotifier, MemoryReportStore, MemoryStore,
};
use trialwatch::ports::EventPublisher;
use trialwatch::settings::{Env, Resources, SettingsError};
use trialwatch_provision::{FunctionSpec, PhysicalResource, Provisioned, Template, QUEUE_TYPE};

use crate::functions::{function_env, off_thread};
use crate::invoke::{Functions, InitError, InvokeError};
use queue::{LocalQueue, MemoryAlertQueue, MemoryVisibility, MemoryVitalsQueue};

/// Where a `memory://` queue URL points: `memory://sqs/<logical id>`.
pub const QUEUE_URL_PREFIX: &str = "memory://sqs/";

/// SQS moves a message to the DLQ after this many receives when the template says nothing.
const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

/// The in-memory resources of one stack: the table and every queue of the template.
pub struct MemoryBackend {
    pub store: MemoryStore,
    /// By queue logical id.
    pub queues: BTreeMap<String, Arc<LocalQueue>>,
}

impl MemoryBackend {
    /// One queue per `AWS::SQS::Queue` of the template, with its redrive policy's maxReceiveCount.
    pub fn from_template(template: &Template) -> Self {
        let queues = template
            .resources_of_type(QUEUE_TYPE)
            .into_iter()
            .map(|r| {
                let max = r.properties["RedrivePolicy"]["maxReceiveCount"]
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(DEFAULT_MAX_RECEIVE_COUNT);
                (r.logical_id.to_owned(), Arc::new(LocalQueue::new(r.logical_id, max)))
            })
            .collect();
        Self { store: MemoryStore::new(), queues }
    }

    pub fn queue(&self, logical_id: &str) -> Option<&Arc<LocalQueue>> {
        self.queues.get(logical_id)
    }

    /// The queue behind a `memory://` URL.
    pub fn queue_at(&self, url: &str) -> Option<&Arc<LocalQueue>> {
        url.strip_prefix(QUEUE_URL_PREFIX).and_then(|id| self.queue(id))
    }

    /// Names for every resource of the template, so each function's `Config`
    /// is read from the same environment as on the emulator (the template's
    /// settings apply); queues are `memory://sqs/<logical id>`.
    pub fn provisioned(&self, template: &Template) -> Provisioned {
        let physical: BTreeMap<String, PhysicalResource> = template
            .resources()
            .into_iter()
            .map(|r| {
                let reference = if r.kind == QUEUE_TYPE {
                    format!("{QUEUE_URL_PREFIX}{}", r.logical_id)
                } else if r.kind == trialwatch_provision::TOPIC_TYPE {
                    format!("arn:aws:sns:{}:123456789012:memory-{}", crate::region(), r.logical_id)
                } else {
                    format!("memory-{}", r.logical_id)
                };
                (r.logical_id.to_owned(), PhysicalResource { kind: r.kind.to_owned(), reference, attributes: BTreeMap::new() })
            })
            .collect();
        let reference = |id: &str| physical.get(id).map(|p| p.reference.clone()).unwrap_or_else(|| format!("memory-{id}"));
        Provisioned {
            prefix: "memory".into(),
            resources: Resources {
                table_name: reference("TrialTable"),
                audit_table_name: reference("AuditTable"),
                vitals_queue_url: reference("VitalsQueue"),
                alert_queue_url: reference("AlertQueue"),
                reports_bucket: reference("ReportsBucket"),
                alert_topic_arn: reference("AlertTopic"),
            },
            environment: BTreeMap::new(),
            physical,
            dead_letters: BTreeMap::new(),
        }
    }

    fn queues_for_functions(&self) -> Result<(MemoryVitalsQueue, MemoryAlertQueue), InitError> {
        let get = |id: &str| self.queue(id).cloned().ok_or_else(|| InitError(format!("the template has no queue {id}")));
        Ok((MemoryVitalsQueue(get("VitalsQueue")?), MemoryAlertQueue(get("AlertQueue")?)))
    }
}

type EproDeps = epro_api::Deps<MemoryStore, MemoryVitalsQueue, MemoryAlertQueue, SystemClock>;
type AnalyzerDeps = vitals_analyzer::Deps<MemoryStore, MemoryAlertQueue, SystemClock, MemoryDeadLetters>;
type DispatcherDeps = alert_dispatcher::Deps<MemoryStore, MemoryNotifier, alert_dispatcher::HttpWebhookSender, SystemClock>;
type ReportDeps = report_generator::Deps<MemoryStore, MemoryReportStore, SystemClock>;

enum Function {
    EproApi(Box<EproDeps>),
    VitalsAnalyzer(Arc<AnalyzerDeps>),
    AlertDispatcher(Arc<DispatcherDeps>),
    ReportGenerator(Box<ReportDeps>),
}

/// The four functions on the in-memory adapters, keyed by logical id.
pub struct MemoryFunctions {
    by_logical_id: HashMap<String, Function>,
}

impl MemoryFunctions {
    /// Builds each function's `Config` from the same environment the emulator
    /// stack gives it, then its `Deps` on `backend`'s adapters.
    pub fn build(backend: &MemoryBackend, provisioned: &Provisioned, specs: &[FunctionSpec]) -> Result<Self, InitError> {
        let (vitals_queue, alert_queue) = backend.queues_for_functions()?;
        // One bus for all four, as on AWS: events are published and settled
        // (not left pending for a sweep that could never publish them).
        let bus: Arc<dyn EventPublisher> = Arc::new(MemoryEventBus::new());
        let mut by_logical_id = HashMap::new();
        for spec in specs {
            let env: Env = function_env(provisioned, spec, Env::process());
            let init = |e: SettingsError| InitError(format!("{} ({}): {e}", spec.logical_id, spec.binary));
            let store = Arc::new(backend.store.clone());
            let f = match spec.binary.as_str() {
                "epro-api" => {
                    let config = epro_api::Config::from_vars(&env).map_err(init)?;
                    let (vitals, alerts) = (Arc::new(vitals_queue.clone()), Arc::new(alert_queue.clone()));
                    let deps = epro_api::Deps::from_shared(store, vitals, alerts, SystemClock, config.config_ttl);
                    Function::EproApi(Box::new(deps.with_egress(config.egress).with_event_bus(bus.clone())))
                }
                "vitals-analyzer" => {
                    let config = vitals_analyzer::Config::from_vars(&env).map_err(init)?;
                    let deps = vitals_analyzer::Deps::new(
                        store,
                        alert_queue.clone(),
                        SystemClock,
                        MemoryDeadLetters::new(),
                        config.config_ttl,
                        config.concurrency,
                    )
                    .with_integrators(config.integrators.clone())
                    .with_event_bus(bus.clone());
                    Function::VitalsAnalyzer(Arc::new(deps))
                }
                "alert-dispatcher" => {
                    let config = alert_dispatcher::Config::from_vars(&env).map_err(init)?;
                    let deps = alert_dispatcher::Deps::new(
                        store,
                        MemoryNotifier::new(),
                        alert_dispatcher::HttpWebhookSender::with_policy(config.egress),
                        SystemClock,
                        Arc::new(MemoryVisibility(alert_queue.0.clone())),
                        config.dispatch.clone(),
                    )
                    .with_outbox_queue(Arc::new(alert_queue.clone()))
                    .with_event_bus(bus.clone());
                    Function::AlertDispatcher(Arc::new(deps))
                }
                "report-generator" => {
                    let config = report_generator::Config::from_vars(&env).map_err(init)?;
                    // Chain heads live on the enrolment and trial items in DynamoDB; the in-memory
                    // table keeps them apart, so anchoring here anchors nothing (the emulator stack does).
                    let anchoring = report_generator::Anchoring {
                        heads: Arc::new(MemoryAuditTrail::default()),
                        anchors: Arc::new(MemoryAnchors::default()),
                        retention_days: config.audit_anchor_retention_days,
                    };
                    Function::ReportGenerator(Box::new(report_generator::Deps {
                        store: backend.store.clone(),
                        reports: MemoryReportStore::on(&backend.store),
                        clock: SystemClock,
                        anchoring,
                        event_bus: bus.clone(),
                    }))
                }
                other => {
                    return Err(InitError(format!(
                    "template function {} (binary {other}) has no in-memory handler in trialwatch-local; add it to local/src/memory/mod.rs",
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

fn failed(function: &str, e: lambda_runtime::Error) -> InvokeError {
    InvokeError::Failed { function: function.to_owned(), message: e.to_string() }
}

#[async_trait]
impl Functions for MemoryFunctions {
    async fn http(&self, function: &str, request: lambda_http::Request) -> Result<lambda_http::Response<lambda_http::Body>, InvokeError> {
        match self.get(function)? {
            Function::EproApi(deps) => Ok(epro_api::handle(deps, request).await),
            Function::ReportGenerator(deps) => Ok(report_generator::handle_http(deps, request).await),
            _ => Err(InvokeError::UnknownFunction(format!("{function} (not an HTTP function)"))),
        }
    }

    async fn sqs(&self, function: &str, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, InvokeError> {
        let failed = |message| InvokeError::Failed { function: function.to_owned(), message };
        match self.get(function)? {
            Function::VitalsAnalyzer(deps) => {
                let deps = deps.clone();
                off_thread(move || async move { vitals_analyzer::handle(&deps, event).await.map_err(|e| e.to_string()) })
                    .await
                    .map_err(failed)
            }
            Function::AlertDispatcher(deps) => {
                let deps = deps.clone();
                off_thread(move || async move { alert_dispatcher::handle(&deps, event).await.map_err(|e| e.to_string()) })
                    .await
                    .map_err(failed)
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
