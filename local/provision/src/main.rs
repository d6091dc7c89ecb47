//! Provisions template.yaml's data resources on the emulator and prints them as
//! shell exports:
//!
//! ```sh
//! eval "$(cargo run -q -p trialwatch-provision -- trialwatch)"
//! ```
//!
//! Usage: `trialwatch-provision [PREFIX] [TEMPLATE]` (defaults: `trialwatch`, the workspace's template.yaml).

use std::path::PathBuf;
use std::process::ExitCode;

use trialwatch_provision::{provision_all, template_path, try_emulator_sdk_config, ProvisionError, Provisioned};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let prefix = args.next().unwrap_or_else(|| "trialwatch".to_string());
    let template = args.next().map(PathBuf::from).unwrap_or_else(template_path);
    match run(&prefix, &template).await {
        Ok(provisioned) => {
            print!("{}", exports(&provisioned));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("trialwatch-provision: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(prefix: &str, template: &std::path::Path) -> Result<Provisioned, ProvisionError> {
    let sdk = try_emulator_sdk_config().await?;
    provision_all(&sdk, template, prefix).await
}

/// `export NAME='value'` for every function variable, plus `<DLQ>_URL` for each dead-letter queue.
fn exports(p: &Provisioned) -> String {
    let mut out = String::new();
    for (name, value) in &p.environment {
        out.push_str(&format!("export {name}={}\n", shell_quote(value)));
    }
    // A function-level variable (report-generator's), not in Globals.
    if let Some(bucket) = p.anchor_bucket() {
        out.push_str(&format!("export {}={}\n", trialwatch::settings::AUDIT_ANCHOR_BUCKET, shell_quote(bucket)));
    }
    for dead_letter in p.dead_letters.values() {
        let name = format!("{}_URL", screaming(&dead_letter.queue_logical_id));
        out.push_str(&format!("export {name}={}\n", shell_quote(&dead_letter.url)));
    }
    out
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `VitalsDLQ` -> `VITALS_DLQ`.
fn screaming(logical_id: &str) -> String {
    let chars: Vec<char> = logical_id.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let starts_word = i > 0
            && c.is_ascii_uppercase()
            && (chars[i - 1].is_ascii_lowercase()
                || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()) && chars[i - 1].is_ascii_uppercase());
        if starts_word {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_so_eval_cannot_run_them() {
        assert_eq!(shell_quote("http://x/q"), "'http://x/q'");
        assert_eq!(shell_quote("a'b; rm -rf /"), r"'a'\''b; rm -rf /'");
    }

    #[test]
    fn dead_letter_variables_are_named_after_the_queue() {
        assert_eq!(screaming("VitalsDLQ"), "VITALS_DLQ");
        assert_eq!(screaming("AlertDLQ"), "ALERT_DLQ");
    }
}
