//! The running stack: the gateway on loopback, one poller per SQS event
//! source, on-demand schedules, and a graceful stop. The CLI (`serve`, `demo`)
//! and the end-to-end tests all start it through [`Stack::start`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::Instrument;
use trialwatch_provision::{FunctionSpec, ProvisionError, Provisioned, Template};

use crate::auth::Authorizer;
use crate::gateway::{gateway_reply, route_table, Gateway, Route, MAX_BODY_BYTES};
use crate::invoke::{Functions, InitError, InvokeError};
use crate::memory::{MemoryBackend, MemoryFunctions};
use crate::poller::{PollerStats, SqsSource, DEFAULT_CONCURRENCY};

/// Environment variable naming the HTTP port (default 3000).
pub const HTTP_PORT_VAR: &str = "TRIALWATCH_HTTP_PORT";
pub const DEFAULT_HTTP_PORT: u16 = 3000;
/// The provisioning prefix `serve` uses: one long-lived local stack.
pub const DEFAULT_PREFIX: &str = "trialwatch";

/// How long a stop waits for in-flight requests and batches before giving up on them.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct StackConfig {
    pub template: PathBuf,
    /// Resource-name prefix on the emulator; a fresh one per test.
    pub prefix: String,
    /// Where the gateway listens; port 0 picks a free one.
    pub http_addr: SocketAddr,
    pub jwt_secret: String,
    /// Run the SQS event sources (tests of the HTTP side alone may turn them off).
    pub pollers: bool,
    /// What the functions store to and queue through.
    pub store: StoreKind,
}

/// Environment variable choosing the backend (`emulator`, the default, or `memory`).
pub const STORE_VAR: &str = "TRIALWATCH_STORE";

/// Where the stack's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreKind {
    /// The template's resources, provisioned on the AWS emulator, through the production adapters.
    #[default]
    Emulator,
    /// `trialwatch::memory` adapters and in-process queues: no emulator. Measures TrialWatch's own code.
    Memory,
}

impl StoreKind {
    pub fn parse(s: &str) -> Result<Self, StackError> {
        match s.trim() {
            "" | "emulator" => Ok(StoreKind::Emulator),
            "memory" => Ok(StoreKind::Memory),
            other => Err(StackError::Config(format!("{STORE_VAR}={other}: expected emulator or memory"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Emulator => "emulator",
            StoreKind::Memory => "memory",
        }
    }
}

impl StackConfig {
    /// The developer stack: prefix `trialwatch`, port from `TRIALWATCH_HTTP_PORT`.
    pub fn from_env() -> Result<Self, StackError> {
        let port = match std::env::var(HTTP_PORT_VAR) {
            Ok(p) if !p.is_empty() => p.parse().map_err(|_| StackError::Config(format!("{HTTP_PORT_VAR}={p} is not a port number")))?,
            _ => DEFAULT_HTTP_PORT,
        };
        Ok(Self {
            template: trialwatch_provision::template_path(),
            prefix: DEFAULT_PREFIX.to_owned(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            jwt_secret: crate::auth::dev_secret(),
            pollers: true,
            store: StoreKind::parse(&std::env::var(STORE_VAR).unwrap_or_default())?,
        })
    }

    /// An isolated stack for one test: unique resources, a free port.
    pub fn for_test(label: &str) -> Self {
        Self {
            template: trialwatch_provision::template_path(),
            prefix: trialwatch_provision::unique_prefix(label),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            jwt_secret: crate::auth::dev_secret(),
            pollers: true,
            store: StoreKind::Emulator,
        }
    }

    /// An isolated stack on the in-memory adapters, on a free port.
    pub fn in_memory() -> Self {
        Self { prefix: "memory".into(), store: StoreKind::Memory, ..Self::for_test("memory") }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("the AWS emulator does not answer at {0}: start it with `scripts/emulator.sh start` (port TRIALWATCH_EMULATOR_PORT), or use `make up`, which starts one; `make up STORE=memory` needs none")]
    EmulatorDown(String),
    #[error("cannot listen on {addr}: {source} (is another stack running? set {HTTP_PORT_VAR})")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Functions(#[from] InitError),
    #[error("queue {queue}: {message}")]
    Queue { queue: String, message: String },
}

/// A schedule of the template, fired on demand; one of `rate(...)` up to an
/// hour (the outbox sweeper's minute) also fires on its own, as EventBridge would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTarget {
    pub name: String,
    pub function: String,
    pub expression: String,
    pub input: Option<String>,
    pub timeout: Duration,
}

/// What a stack runs, derived from the template and the provisioned resources.
#[derive(Debug, Clone)]
pub struct Plan {
    pub routes: Vec<Route>,
    pub sources: Vec<SqsSource>,
    pub schedules: Vec<ScheduleTarget>,
    pub timeouts: HashMap<String, Duration>,
}

impl Plan {
    /// Resolves every trigger of every function; a source naming a queue that
    /// was not provisioned is an error, not a silently idle poller.
    pub async fn build(functions: &[FunctionSpec], provisioned: &Provisioned, sqs: &aws_sdk_sqs::Client) -> Result<Plan, StackError> {
        let mut arns = HashMap::new();
        for f in functions {
            for s in &f.sqs_sources {
                let Some(url) = provisioned.queue_url(&s.queue_logical_id) else { continue };
                if !arns.contains_key(url) {
                    let arn = crate::poller::queue_arn(sqs, url)
                        .await
                        .map_err(|message| StackError::Queue { queue: s.queue_logical_id.clone(), message })?;
                    arns.insert(url.to_owned(), arn);
                }
            }
        }
        Self::with_arns(functions, provisioned, &arns)
    }

    /// The plan, given each source queue's ARN by URL.
    pub fn with_arns(functions: &[FunctionSpec], provisioned: &Provisioned, arns: &HashMap<String, String>) -> Result<Plan, StackError> {
        let mut plan = Plan { routes: vec![], sources: vec![], schedules: vec![], timeouts: HashMap::new() };
        for f in functions {
            let timeout = Duration::from_secs(u64::from(f.timeout_seconds.max(1)));
            plan.timeouts.insert(f.logical_id.clone(), timeout);
            for r in &f.http_routes {
                plan.routes.push(Route {
                    method: r.method.clone(),
                    path: r.path.clone(),
                    function: f.logical_id.clone(),
                    authorized: r.auth,
                });
            }
            for s in &f.sqs_sources {
                let url = provisioned.queue_url(&s.queue_logical_id).ok_or_else(|| StackError::Queue {
                    queue: s.queue_logical_id.clone(),
                    message: format!("{} polls it, but it was not provisioned", f.logical_id),
                })?;
                let arn = arns
                    .get(url)
                    .cloned()
                    .ok_or_else(|| StackError::Queue { queue: s.queue_logical_id.clone(), message: "its ARN is unknown".into() })?;
                plan.sources.push(SqsSource {
                    function: f.logical_id.clone(),
                    queue_logical_id: s.queue_logical_id.clone(),
                    queue_url: url.to_owned(),
                    queue_arn: arn,
                    batch_size: usize::try_from(s.batch_size).unwrap_or(10).max(1),
                    max_concurrency: s.maximum_concurrency.and_then(|c| usize::try_from(c).ok()).unwrap_or(DEFAULT_CONCURRENCY).max(1),
                    report_batch_item_failures: s.report_batch_item_failures,
                    timeout,
                });
            }
            for s in &f.schedules {
                plan.schedules.push(ScheduleTarget {
                    name: s.name.clone(),
                    function: f.logical_id.clone(),
                    expression: s.expression.clone(),
                    input: s.input.clone(),
                    timeout,
                });
            }
        }
        Ok(plan)
    }
}

/// The event EventBridge Scheduler delivers, or the template's constant input.
pub fn scheduled_event(target: &ScheduleTarget, now: chrono::DateTime<chrono::Utc>) -> Value {
    if let Some(input) = &target.input {
        if let Ok(v) = serde_json::from_str(input) {
            return v;
        }
    }
    let region = crate::region();
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:123456789012:rule/{}", target.name)],
        "detail": {},
    })
}

/// Fires one schedule now and returns the function's result.
pub async fn fire(functions: &dyn Functions, target: &ScheduleTarget) -> Result<Value, InvokeError> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = crate::invoke::context(&target.function, &request_id, target.timeout);
    let span = crate::invoke::span(&ctx);
    let event = lambda_runtime::LambdaEvent::new(scheduled_event(target, chrono::Utc::now()), ctx);
    let call = crate::invoke::guarded(&target.function, functions.schedule(&target.function, event));
    match tokio::time::timeout(target.timeout, call).instrument(span).await {
        Ok(r) => r,
        Err(_) => Err(InvokeError::Failed { function: target.function.clone(), message: "timed out".into() }),
    }
}

struct Shared {
    gateway: Gateway,
    schedules: Vec<ScheduleTarget>,
}

pub struct Stack {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base_url: String,
    pub addr: SocketAddr,
    pub provisioned: Provisioned,
    pub sdk: SdkConfig,
    pub plan: Plan,
    /// Per source queue logical id.
    pub poller_stats: BTreeMap<String, Arc<PollerStats>>,
    /// The in-memory table and queues (`StoreKind::Memory`); `None` on the emulator.
    pub memory: Option<Arc<MemoryBackend>>,
    /// The local event subscriber's queue (every `trialwatch` event on the bus), when the template has a bus.
    pub events_queue_url: Option<String>,
    functions: Arc<dyn Functions>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    pollers: tokio::task::JoinSet<()>,
}

impl Stack {
    /// Provisions the template's resources under the prefix (idempotent),
    /// builds every function's dependencies once, and starts serving.
    pub async fn start(config: StackConfig) -> Result<Stack, StackError> {
        if config.store == StoreKind::Memory {
            return Self::start_in_memory(config).await;
        }
        let sdk = trialwatch_provision::try_emulator_sdk_config().await?;
        // One plain line instead of the SDK's transport error chain from the first provisioning call.
        if let Some(endpoint) = std::env::var("AWS_ENDPOINT_URL").ok().filter(|e| !e.is_empty()) {
            if !answers(&endpoint).await {
                return Err(StackError::EmulatorDown(endpoint));
            }
        }
        let provisioned = trialwatch_provision::provision_all(&sdk, &config.template, &config.prefix).await?;
        let template = Template::load(&config.template)?;
        let functions = crate::functions::TrialWatchFunctions::build(&sdk, &provisioned, &template.functions())?;
        let bus = provisioned.physical.get("EventBus").map(|b| b.reference.clone());
        let mut stack = Self::start_with(config, sdk, provisioned, template.functions(), Arc::new(functions)).await?;
        if let Some(bus) = bus {
            stack.events_queue_url = Some(trialwatch_provision::subscribe_queue(&stack.sdk, &bus).await?);
        }
        Ok(stack)
    }

    /// Starts serving given functions (the real ones, or scripted ones in tests).
    pub async fn start_with(
        config: StackConfig,
        sdk: SdkConfig,
        provisioned: Provisioned,
        specs: Vec<FunctionSpec>,
        functions: Arc<dyn Functions>,
    ) -> Result<Stack, StackError> {
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let plan = Plan::build(&specs, &provisioned, &sqs).await?;
        Self::launch(config, sdk, provisioned, plan, functions, None).await
    }

    /// The stack on the in-memory adapters: no emulator, no provisioning;
    /// the template still decides the routes, sources, schedules and settings.
    async fn start_in_memory(config: StackConfig) -> Result<Stack, StackError> {
        let template = Template::load(&config.template)?;
        let backend = Arc::new(MemoryBackend::from_template(&template));
        let provisioned = backend.provisioned(&template);
        let specs = template.functions();
        let functions = MemoryFunctions::build(&backend, &provisioned, &specs)?;
        let region = crate::region();
        let arns: HashMap<String, String> = backend
            .queues
            .keys()
            .map(|id| (format!("{}{id}", crate::memory::QUEUE_URL_PREFIX), format!("arn:aws:sqs:{region}:123456789012:{id}")))
            .collect();
        let plan = Plan::with_arns(&specs, &provisioned, &arns)?;
        // Never used to reach AWS: nothing in this mode holds an SDK client.
        let sdk =
            SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new(region)).build();
        Self::launch(config, sdk, provisioned, plan, Arc::new(functions), Some(backend)).await
    }

    async fn launch(
        config: StackConfig,
        sdk: SdkConfig,
        provisioned: Provisioned,
        plan: Plan,
        functions: Arc<dyn Functions>,
        memory: Option<Arc<MemoryBackend>>,
    ) -> Result<Stack, StackError> {
        let (stop, stopped) = watch::channel(false);

        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| StackError::Listen { addr: config.http_addr, source })?;
        let addr = listener.local_addr().map_err(|source| StackError::Listen { addr: config.http_addr, source })?;
        let shared = Arc::new(Shared {
            gateway: Gateway {
                routes: route_table(&plan.routes),
                authorizer: Authorizer::new(&config.jwt_secret),
                functions: functions.clone(),
                timeouts: plan.timeouts.clone(),
            },
            schedules: plan.schedules.clone(),
        });
        let app = axum::Router::new()
            .route("/__local/schedules/{name}", axum::routing::post(fire_schedule))
            .fallback(serve_api)
            .with_state(shared);
        let mut server_stop = stopped.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = server_stop.wait_for(|s| *s).await;
            };
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "http server stopped");
            }
        });

        let mut pollers = tokio::task::JoinSet::new();
        let mut poller_stats = BTreeMap::new();
        if config.pollers {
            for source in &plan.sources {
                let stats = Arc::new(PollerStats::default());
                poller_stats.insert(source.queue_logical_id.clone(), stats.clone());
                match &memory {
                    Some(backend) => {
                        let queue = backend.queue_at(&source.queue_url).cloned().ok_or_else(|| StackError::Queue {
                            queue: source.queue_logical_id.clone(),
                            message: "no in-memory queue".into(),
                        })?;
                        pollers.spawn(crate::memory::poller::run(queue, functions.clone(), source.clone(), stats, stopped.clone()));
                    }
                    None => {
                        let sqs = aws_sdk_sqs::Client::new(&sdk);
                        pollers.spawn(crate::poller::run(sqs, functions.clone(), source.clone(), stats, stopped.clone()));
                    }
                }
            }
            for target in &plan.schedules {
                if let Some(period) = rate_period(&target.expression).filter(|p| *p <= Duration::from_secs(3600)) {
                    pollers.spawn(run_schedule(functions.clone(), target.clone(), period, stopped.clone()));
                }
            }
        }
        Ok(Stack {
            base_url: format!("http://{addr}"),
            addr,
            provisioned,
            sdk,
            plan,
            poller_stats,
            memory,
            events_queue_url: None,
            functions,
            stop,
            server,
            pollers,
        })
    }

    /// Fires the named schedule now (`trialwatch-local fire <name>`).
    pub async fn fire(&self, name: &str) -> Result<Value, InvokeError> {
        let target = self.plan.schedules.iter().find(|s| s.name == name).ok_or_else(|| InvokeError::UnknownFunction(name.to_owned()))?;
        fire(self.functions.as_ref(), target).await
    }

    /// Stops accepting requests and polling, waits (bounded) for the requests
    /// and batches in flight, then returns.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let drain = async {
            let _ = (&mut self.server).await;
            while self.pollers.join_next().await.is_some() {}
        };
        if tokio::time::timeout(DRAIN_LIMIT, drain).await.is_err() {
            tracing::warn!("in-flight work did not finish within the drain limit; abandoning it (SQS will redeliver)");
            self.server.abort();
            self.pollers.abort_all();
        }
    }
}

/// Whether anything answers HTTP at `url` (any status counts), asked up to four times, 2 s
/// apart: an emulator started a moment before (`make demo` starts one, then builds and runs
/// the runner) once failed a single 3 s request and the demo stopped at its first step.
/// Nothing listening fails each try at once, so a stopped emulator is reported in about 6 s.
pub async fn answers(url: &str) -> bool {
    let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(3)).no_proxy().build() else {
        return false;
    };
    for attempt in 0..4 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        if client.get(url).send().await.is_ok() {
            return true;
        }
    }
    false
}

/// The period of a `rate(N unit)` schedule expression; `None` for a cron.
pub fn rate_period(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(seconds)?)).filter(|d| !d.is_zero())
}

/// Fires `target` every `period` until the stack stops.
async fn run_schedule(functions: Arc<dyn Functions>, target: ScheduleTarget, period: Duration, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(period) => {}
        }
        if let Err(e) = fire(functions.as_ref(), &target).await {
            tracing::warn!(schedule = %target.name, error = %e, "scheduled run failed");
        }
    }
}

/// Every request that is not a `/__local` route goes through the gateway.
async fn serve_api(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return gateway_reply(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    shared.gateway.serve(parts.method, &parts.uri, parts.headers, bytes, Some(peer)).await
}

/// `POST /__local/schedules/{name}`: the runner's own route, loopback only.
async fn fire_schedule(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> axum::response::Response {
    let Some(target) = shared.schedules.iter().find(|s| s.name == name) else {
        let known: Vec<&str> = shared.schedules.iter().map(|s| s.name.as_str()).collect();
        return json_reply(StatusCode::NOT_FOUND, json!({"message": format!("no schedule {name}"), "schedules": known}));
    };
    match fire(shared.gateway.functions.as_ref(), target).await {
        Ok(result) => json_reply(StatusCode::OK, json!({"schedule": target.name, "function": target.function, "result": result})),
        Err(e) => json_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"schedule": target.name, "function": target.function, "error": e.to_string()}),
        ),
    }
}

fn json_reply(status: StatusCode, body: Value) -> axum::response::Response {
    let mut r = axum::response::Response::new(axum::body::Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_schedules_have_a_period_and_crons_fire_only_on_demand() {
        assert_eq!(rate_period("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(rate_period("rate(5 minutes)"), Some(Duration::from_secs(300)));
        assert_eq!(rate_period("rate(7 days)"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(rate_period("cron(0 6 ? * MON *)"), None);
        assert_eq!(rate_period("rate(0 minutes)"), None);
    }
}
