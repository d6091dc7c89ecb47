//! `make coldstart` (scripts/coldstart.sh): sizes, init, first and warm response and
//! peak RSS of every template function's release binary and of hello-world, under a
//! loopback Runtime API, against the emulator; medians of `--runs` alternated runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use trialwatch_local::coldstart::{run_once, stripped_size, table, zipped_size, Row, Sample, Subject};
use trialwatch_provision::{provision_all, template_path, try_emulator_sdk_config, Template};

/// The baseline's binary name (local/hello-world).
const HELLO: &str = "hello-world";

#[derive(Parser)]
#[command(name = "coldstart", about = "Cold-start figures of the Lambda binaries, against hello-world")]
struct Cli {
    /// Where the release binaries are (`$CARGO_TARGET_DIR/release`).
    #[arg(long)]
    bin_dir: PathBuf,
    /// Cold starts per binary; the table shows medians.
    #[arg(long, default_value_t = 11)]
    runs: usize,
    /// Warm invocations after the first, per cold start.
    #[arg(long, default_value_t = 3)]
    warm: usize,
    /// Prefix of the emulator resources the functions get.
    #[arg(long, default_value = "coldstart")]
    prefix: String,
    /// Echo every child's log lines.
    #[arg(long)]
    verbose: bool,
}

/// The event each binary gets: one that reaches its table, from `events/`.
fn event_file(binary: &str) -> &'static str {
    match binary {
        "epro-api" => "epro-get-patient.json",
        "vitals-analyzer" => "vitals-normal.json",
        "alert-dispatcher" => "alert-sqs.json",
        "report-generator" => "report-schedule.json",
        _ => "epro-health.json",
    }
}

async fn subjects(cli: &Cli) -> Result<Vec<(Subject, u32)>, String> {
    let sdk = try_emulator_sdk_config().await.map_err(|e| e.to_string())?;
    let provisioned = provision_all(&sdk, &template_path(), &cli.prefix).await.map_err(|e| e.to_string())?;
    let template = Template::load(&template_path()).map_err(|e| e.to_string())?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let region = trialwatch_local::region();
    // What Lambda puts in every function's environment besides the template's variables.
    let aws = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", region.as_str()),
        ("AWS_DEFAULT_REGION", region.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_SESSION_TOKEN", "test"),
    ];
    let events = template_path().parent().map(|root| root.join("events")).unwrap_or_default();
    let read_event = |binary: &str| -> Result<serde_json::Value, String> {
        let path = events.join(event_file(binary));
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let mut out = vec![(Subject { name: HELLO.to_owned(), path: cli.bin_dir.join(HELLO), env: vec![], event: read_event(HELLO)? }, 128)];
    for spec in template.functions() {
        let mut env: Vec<(String, String)> = provisioned.environment_for(&spec).into_iter().collect();
        env.extend(aws.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let subject = Subject { name: spec.binary.clone(), path: cli.bin_dir.join(&spec.binary), env, event: read_event(&spec.binary)? };
        out.push((subject, spec.memory_mb));
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let subjects = match subjects(&cli).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("coldstart: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut samples: Vec<Vec<Sample>> = vec![vec![]; subjects.len()];
    // Alternating binaries run by run, so a burst of load on this machine hits them all alike.
    for run in 0..cli.runs.max(1) {
        eprint!("coldstart: run {}/{}", run + 1, cli.runs);
        for (i, (subject, memory)) in subjects.iter().enumerate() {
            match run_once(subject, cli.warm.max(1), *memory, cli.verbose).await {
                Ok(s) => samples[i].push(s),
                Err(e) => {
                    eprintln!("\ncoldstart: {e}");
                    return ExitCode::FAILURE;
                }
            }
            eprint!(" {}", subject.name);
        }
        eprintln!();
    }
    let mut rows = Vec::new();
    for ((subject, _), samples) in subjects.iter().zip(&samples) {
        let bytes = match std::fs::read(&subject.path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("coldstart: {}: {e}", subject.path.display());
                return ExitCode::FAILURE;
            }
        };
        let stripped = stripped_size(&subject.path).unwrap_or(bytes.len() as u64);
        rows.push(Row::from_samples(&subject.name, stripped, zipped_size(&bytes), samples));
    }
    let (hello, functions) = rows.split_first().expect("hello-world is the first subject");
    let mut ordered = functions.to_vec();
    ordered.push(hello.clone());
    println!("coldstart: {} runs each, medians, {} warm invocations per run, binaries from {}", cli.runs, cli.warm, cli.bin_dir.display());
    print!("{}", table(&ordered, hello));
    ExitCode::SUCCESS
}
