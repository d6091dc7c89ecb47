//! Emulator resources created from `template.yaml`, so that the local stack and
//! the cloud cannot drift: the table (key schema, GSIs, TTL), every queue (FIFO
//! settings, visibility timeout, redrive policy to the DLQ created here), the
//! bucket and the topics come from the template, not from a second description.
//!
//! Names are `<prefix>-<logical id in kebab case>` (`.fifo` appended for FIFO
//! queues), so every test provisions its own copy with [`unique_prefix`] and
//! tests run in parallel without sharing state. Provisioning is idempotent: a
//! second run with the same prefix converges on the same resources.
//!
//! Only what the emulator needs to behave like AWS is applied. KMS settings are
//! cloud-only (the emulator has no copy of `DataKey`), as are alarms, IAM and
//! the functions themselves, which `local/` runs in-process.
//!
//! A dev crate (`trialwatch-provision`, under `local/`): used by the local runner,
//! the scripts and the tests, never by a Lambda binary, so the domain crate carries
//! no provisioning code and no YAML parser.

mod emulator;
mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};

use trialwatch::settings::{self, Resources};

pub use emulator::{provision, provision_all, subscribe_queue, DeadLetter, PhysicalResource, Provisioned, AUDIT_ANCHOR_BUCKET_ID};
pub use template::{
    FunctionSpec, HttpRoute, Resource, Schedule, SqsSource, Template, BUCKET_TYPE, FUNCTION_TYPE, QUEUE_TYPE, TABLE_TYPE, TOPIC_TYPE,
};

/// Everything that can go wrong between reading the template and the emulator
/// holding its resources. Messages name the resource and the step.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot read template {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("template is not valid YAML: {0}")]
    Yaml(String),
    #[error("template: {0}")]
    Template(String),
    #[error("prefix {prefix:?} is invalid: {reason}")]
    InvalidPrefix { prefix: String, reason: String },
    #[error("{resource}: {operation} failed: {message}")]
    Aws { resource: String, operation: &'static str, message: String },
    #[error("{resource} already exists with a different shape: {detail}")]
    Mismatch { resource: String, detail: String },
    #[error("AWS_ENDPOINT_URL is not set: run the tests with `make test`, which starts the emulator")]
    EmulatorNotConfigured,
}

/// The workspace's `template.yaml`.
pub fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join("template.yaml")
}

/// SDK configuration for the emulator named by `AWS_ENDPOINT_URL`, with dummy
/// credentials and `us-east-1` where the environment sets none.
///
/// # Panics
/// When `AWS_ENDPOINT_URL` is unset: an integration test must fail loudly, never
/// skip silently, and never reach a real AWS account.
pub async fn emulator_sdk_config() -> SdkConfig {
    match try_emulator_sdk_config().await {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    }
}

/// [`emulator_sdk_config`] for binaries, which report instead of panicking.
pub async fn try_emulator_sdk_config() -> Result<SdkConfig, ProvisionError> {
    let endpoint = settings::optional("AWS_ENDPOINT_URL").ok_or(ProvisionError::EmulatorNotConfigured)?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).endpoint_url(endpoint).http_client(trialwatch::aws::https_client());
    if settings::optional("AWS_ACCESS_KEY_ID").is_none() {
        // The emulator accepts any signature; dummy keys keep the default chain from probing IMDS.
        loader = loader.credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "trialwatch-emulator"));
    }
    if settings::optional("AWS_REGION").is_none() && settings::optional("AWS_DEFAULT_REGION").is_none() {
        loader = loader.region(Region::new("us-east-1"));
    }
    Ok(loader.load().await)
}

/// A fresh resource-name prefix, e.g. `tw-submissions-4242-3-9f1c2a`: unique per
/// process (pid), per call (counter) and per run (random), lower case, and short
/// enough that `<prefix>-reports-bucket` stays within S3's 63 characters.
pub fn unique_prefix(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut clean: String =
        label.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(MAX_LABEL).collect();
    clean = clean.trim_matches('-').to_string();
    if clean.is_empty() {
        clean.push('t');
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("tw-{clean}-{}-{n}-{}", std::process::id(), &random[..6])
}

// "tw-" + label + pid (<= 10) + counter (<= 10) + random (6) + 3 dashes stays <= 48,
// the longest prefix `validate_prefix` accepts.
const MAX_LABEL: usize = 16;

/// Longest prefix such that every name derived from the template fits the
/// tightest AWS limit (S3 bucket names: 63 characters).
pub(crate) const MAX_PREFIX: usize = 48;

pub(crate) fn validate_prefix(prefix: &str) -> Result<(), ProvisionError> {
    let invalid = |reason: &str| Err(ProvisionError::InvalidPrefix { prefix: prefix.to_string(), reason: reason.to_string() });
    if prefix.is_empty() || prefix.len() > MAX_PREFIX {
        return invalid(&format!("must be 1 to {MAX_PREFIX} characters"));
    }
    if !prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return invalid("only a-z, 0-9 and '-' are allowed (S3 bucket names)");
    }
    if prefix.starts_with('-') || prefix.ends_with('-') {
        return invalid("must not start or end with '-'");
    }
    Ok(())
}

/// `VitalsDLQ` -> `vitals-dlq`, `HttpApiAccessLogs` -> `http-api-access-logs`.
pub(crate) fn kebab(logical_id: &str) -> String {
    let chars: Vec<char> = logical_id.chars().collect();
    let mut out = String::with_capacity(chars.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            // A word starts at an upper-case letter after a lower-case one, or at
            // the last capital of an acronym followed by lower case ("DLQAlarm").
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_is_lower) {
                out.push('-');
            }
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push('-');
        }
    }
    out
}

/// Environment variables every function sees, read from provisioned resources.
pub(crate) fn resources_from(environment: &BTreeMap<String, String>) -> Result<Resources, ProvisionError> {
    let get = |name: &str| {
        environment.get(name).cloned().ok_or_else(|| {
            ProvisionError::Template(format!("Globals.Function.Environment.Variables.{name} must be !Ref to a provisioned resource"))
        })
    };
    Ok(Resources {
        table_name: get(settings::TABLE_NAME)?,
        audit_table_name: get(settings::AUDIT_TABLE_NAME)?,
        vitals_queue_url: get(settings::VITALS_QUEUE_URL)?,
        alert_queue_url: get(settings::ALERT_QUEUE_URL)?,
        reports_bucket: get(settings::REPORTS_BUCKET)?,
        alert_topic_arn: get(settings::ALERT_TOPIC_ARN)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_become_kebab_case_with_acronyms_kept_whole() {
        let cases = [
            ("TrialTable", "trial-table"),
            ("VitalsDLQ", "vitals-dlq"),
            ("VitalsDLQAlarm", "vitals-dlq-alarm"),
            ("HttpApi", "http-api"),
            ("Queue2Fast", "queue2-fast"),
            ("S3Bucket", "s3-bucket"),
        ];
        for (id, expected) in cases {
            assert_eq!(kebab(id), expected, "{id}");
        }
    }

    #[test]
    fn unique_prefixes_differ_and_are_valid_bucket_name_prefixes() {
        // GIVEN a label that is long and has characters S3 forbids
        let label = "Submissions_Replay With/Spaces and a very long tail";
        // WHEN two prefixes are made
        let (a, b) = (unique_prefix(label), unique_prefix(label));
        // THEN they differ and both pass the provisioning checks
        assert_ne!(a, b);
        for p in [&a, &b] {
            assert!(validate_prefix(p).is_ok(), "{p}");
            assert!(format!("{p}-reports-bucket").len() <= 63, "{p}");
        }
    }

    #[test]
    fn prefixes_that_would_make_invalid_names_are_rejected() {
        for bad in ["", "UPPER", "has_underscore", "-leading", "trailing-", &"x".repeat(MAX_PREFIX + 1)] {
            assert!(matches!(validate_prefix(bad), Err(ProvisionError::InvalidPrefix { .. })), "{bad:?}");
        }
        assert!(validate_prefix("trialwatch").is_ok());
    }

    #[test]
    fn resources_come_from_the_global_environment_and_name_what_is_missing() {
        // GIVEN an environment lacking ALERT_TOPIC_ARN
        let mut env: BTreeMap<String, String> = [
            (settings::TABLE_NAME, "t"),
            (settings::AUDIT_TABLE_NAME, "audit"),
            (settings::VITALS_QUEUE_URL, "v"),
            (settings::ALERT_QUEUE_URL, "a"),
            (settings::REPORTS_BUCKET, "b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // WHEN resources are read THEN the error names it
        let err = resources_from(&env).expect_err("missing topic").to_string();
        assert!(err.contains(settings::ALERT_TOPIC_ARN), "{err}");
        // AND once present, every field is filled from its variable
        env.insert(settings::ALERT_TOPIC_ARN.into(), "arn".into());
        let r = resources_from(&env).expect("complete");
        assert_eq!((r.table_name.as_str(), r.alert_topic_arn.as_str()), ("t", "arn"));
    }
}
