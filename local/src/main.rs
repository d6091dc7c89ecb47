//! `trialwatch-local`: serve the whole stack, mint dev tokens, fire schedules, run the demo.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::filter::LevelFilter;
use trialwatch_local::auth::{self, DevIdentity};
use trialwatch_local::{Stack, StackConfig};

#[derive(Parser)]
#[command(name = "trialwatch-local", about = "The whole TrialWatch stack on this machine, from template.yaml, against the AWS emulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Provision (idempotent), then serve the HttpApi routes and poll every SQS source until Ctrl-C.
    Serve,
    /// Print a dev JWT signed with TRIALWATCH_DEV_JWT_SECRET.
    Token {
        /// patient, site_staff, sponsor, auditor (with --trial) or admin.
        #[arg(long)]
        role: String,
        /// Trial id(s), comma-separated.
        #[arg(long, default_value = "")]
        trial: String,
        #[arg(long, default_value = "")]
        patient: String,
        /// Staff sites, comma-separated `trialId/siteId` pairs (a bare site id counts only with exactly one --trial).
        #[arg(long, default_value = "")]
        sites: String,
        /// Validity in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        #[arg(long)]
        sub: Option<String>,
    },
    /// The main job end to end: trial, enrolment, an ePRO burst, vitals, alerts to a webhook, a report, a summary.
    Demo(trialwatch_local::demo::DemoOptions),
    /// Drive a running stack's API with distinct submissions and vitals for a bounded time; report
    /// throughput, p50/p99/p99.9, errors and the server's CPU µs per request (`make load`).
    Load(trialwatch_local::load::LoadOptions),
    /// Fire a schedule of the template now (e.g. WeeklyReports) against the local stack's resources.
    Fire { name: String },
    /// Recompute every audit chain of a trial, check heads and anchors; exit 1 naming the first broken entry.
    /// Emulator stack by default; a deployed one when TABLE_NAME, AUDIT_TABLE_NAME and AUDIT_ANCHOR_BUCKET are set.
    VerifyAudit {
        trial: String,
        /// Resource prefix of the emulator stack (ignored for a deployed one).
        #[arg(long, default_value = trialwatch_local::stack::DEFAULT_PREFIX)]
        prefix: String,
    },
}

fn split(list: &str) -> Vec<&str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Token { role, trial, patient, sites, ttl, sub } => {
            let mut who = DevIdentity::new(&role).sites(&split(&sites));
            for t in split(&trial) {
                who = who.trial(t);
            }
            if !patient.is_empty() {
                who = who.patient(&patient);
            }
            if let Some(s) = sub {
                who = who.subject(&s);
            }
            match auth::issue(&auth::dev_secret(), &who, chrono::Utc::now().timestamp(), ttl) {
                Ok(t) => {
                    println!("{t}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Serve => {
            trialwatch_local::logs::init(std::io::stdout, LevelFilter::INFO);
            match serve().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Demo(opts) => {
            // The demo prints its own progress; functions' warnings and errors go
            // to stderr, and every INFO line is kept in memory so the summary can
            // trace one alert's correlation id through them (RUST_LOG overrides).
            trialwatch_local::logs::init(trialwatch_local::logs::Capture, LevelFilter::INFO);
            match trialwatch_local::demo::run(opts).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Load(opts) => {
            trialwatch_local::logs::init(std::io::stderr, LevelFilter::WARN);
            match trialwatch_local::load::run(&opts).await {
                Ok(report) => {
                    report.print();
                    if report.errors == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        // 1: the trail is broken; 2: it could not be checked.
        Command::VerifyAudit { trial, prefix } => match trialwatch_local::verify_audit::run(&trial, &prefix).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("trialwatch-local: {e}");
                ExitCode::from(2)
            }
        },
        Command::Fire { name } => {
            trialwatch_local::logs::init(std::io::stdout, LevelFilter::INFO);
            match fire(&name).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("trialwatch-local: {message}");
    ExitCode::FAILURE
}

async fn serve() -> Result<(), String> {
    let config = StackConfig::from_env().map_err(|e| e.to_string())?;
    let stack = Stack::start(config).await.map_err(|e| e.to_string())?;
    let url = &stack.base_url;
    let token = auth::issue(&auth::dev_secret(), &DevIdentity::new("admin").subject("dev-admin"), chrono::Utc::now().timestamp(), 3600)
        .map_err(|e| e.to_string())?;
    println!(
        "trialwatch-local: routes {}, SQS sources {}, schedules {}",
        stack.plan.routes.len(),
        stack.plan.sources.len(),
        stack.plan.schedules.len()
    );
    for s in &stack.plan.sources {
        println!("  poll {} -> {} (batch {}, max concurrency {})", s.queue_logical_id, s.function, s.batch_size, s.max_concurrency);
    }
    for s in &stack.plan.schedules {
        println!("  schedule {} ({}) -> {}: curl -X POST {url}/__local/schedules/{}", s.name, s.expression, s.function, s.name);
    }
    println!("trialwatch-local: ready on {url}");
    println!("try it (a dev admin token, valid 1 h; `make token ROLE=...` makes others):");
    println!("  TOKEN={token}");
    println!(
        "  curl -s -X PUT {url}/v1/trials/demo-trial -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"name\":\"Demo trial\",\"sites\":[{{\"id\":\"s1\",\"name\":\"Leeds\"}}]}}'"
    );
    println!("  curl -s {url}/v1/trials/demo-trial -H \"Authorization: Bearer $TOKEN\"");
    println!("Ctrl-C stops it.");
    wait_for_signal().await;
    println!("trialwatch-local: stopping (draining in-flight requests and batches)");
    stack.shutdown().await;
    println!("trialwatch-local: stopped");
    Ok(())
}

async fn fire(name: &str) -> Result<(), String> {
    let mut config = StackConfig::from_env().map_err(|e| e.to_string())?;
    // Fire against the long-lived stack's resources without serving HTTP or polling.
    config.http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.pollers = false;
    let stack = Stack::start(config).await.map_err(|e| e.to_string())?;
    let result = stack.fire(name).await;
    stack.shutdown().await;
    let value = result.map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
