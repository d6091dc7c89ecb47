//! Environment configuration, read once in init into each function's typed
//! `Config`. A missing required variable fails init naming it; a variable that
//! is present but invalid fails init naming it too (never a silent default);
//! only an absent optional variable takes its documented default.

use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {0} is invalid: {1}")]
    Invalid(&'static str, String),
}

impl SettingsError {
    /// The variable at fault.
    pub fn variable(&self) -> &'static str {
        match self {
            Self::Missing(v) | Self::Invalid(v, _) => v,
        }
    }
}

/// Names of AWS resources, as `template.yaml` passes them to every function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub table_name: String,
    /// The audit trail's own table (appends only).
    pub audit_table_name: String,
    pub vitals_queue_url: String,
    pub alert_queue_url: String,
    pub reports_bucket: String,
    pub alert_topic_arn: String,
}

pub const TABLE_NAME: &str = "TABLE_NAME";
pub const AUDIT_TABLE_NAME: &str = "AUDIT_TABLE_NAME";
pub const VITALS_QUEUE_URL: &str = "VITALS_QUEUE_URL";
pub const ALERT_QUEUE_URL: &str = "ALERT_QUEUE_URL";
pub const REPORTS_BUCKET: &str = "REPORTS_BUCKET";
pub const ALERT_TOPIC_ARN: &str = "ALERT_TOPIC_ARN";
/// The EventBridge bus domain events are put on (README, "Integrations").
pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
pub const CONFIG_TTL_SECONDS: &str = "CONFIG_TTL_SECONDS";
pub const REPORTS_KMS_KEY_ID: &str = "REPORTS_KMS_KEY_ID";
/// The Object Lock bucket audit chain heads are anchored to (report-generator's schedule).
pub const AUDIT_ANCHOR_BUCKET: &str = "AUDIT_ANCHOR_BUCKET";
/// Days each anchor stays locked ([`crate::audit::anchor::DEFAULT_RETENTION_DAYS`] when unset).
pub const AUDIT_ANCHOR_RETENTION_DAYS: &str = "AUDIT_ANCHOR_RETENTION_DAYS";

/// Default of `CONFIG_TTL_SECONDS`: how long per-trial configuration is trusted.
pub const DEFAULT_CONFIG_TTL: Duration = Duration::from_secs(300);

impl Resources {
    /// These names as an environment (tests building a function's `Config`
    /// for resources they provisioned; tunables then take their defaults).
    pub fn env(&self) -> Env {
        Env::vars([
            (TABLE_NAME, self.table_name.as_str()),
            (AUDIT_TABLE_NAME, self.audit_table_name.as_str()),
            (VITALS_QUEUE_URL, self.vitals_queue_url.as_str()),
            (ALERT_QUEUE_URL, self.alert_queue_url.as_str()),
            (REPORTS_BUCKET, self.reports_bucket.as_str()),
            (ALERT_TOPIC_ARN, self.alert_topic_arn.as_str()),
        ])
    }
}

/// Where a `Config` reads its variables: the process environment in a Lambda
/// binary's init; a function's template environment in the local runner; a
/// list in tests (no process-wide state to race on). Sources are consulted in
/// order and the first that has the variable answers.
pub struct Env {
    sources: Vec<Source>,
}

enum Source {
    Process,
    Vars(BTreeMap<String, String>),
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self { sources: vec![Source::Process] }
    }

    /// Exactly these variables.
    pub fn vars<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { sources: vec![Source::Vars(vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect())] }
    }

    /// This environment, then `fallback` for the variables it lacks.
    pub fn or(mut self, fallback: Env) -> Self {
        self.sources.extend(fallback.sources);
        self
    }

    /// The raw value, if any source has the variable (empty included).
    pub fn get(&self, name: &str) -> Option<String> {
        self.sources.iter().find_map(|s| match s {
            // Lossy: a non-UTF-8 value then fails to parse and is reported, not skipped.
            Source::Process => std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
            Source::Vars(m) => m.get(name).cloned(),
        })
    }

    /// A variable that must be set to a non-blank value.
    pub fn required(&self, name: &'static str) -> Result<String, SettingsError> {
        self.optional(name).ok_or(SettingsError::Missing(name))
    }

    /// A variable whose absence (or blank value) means "not configured".
    pub fn optional(&self, name: &'static str) -> Option<String> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// A parsed variable: `default` when absent; an error naming it when
    /// present but not a valid value (blank included).
    pub fn parsed<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, SettingsError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) if v.trim().is_empty() => Err(SettingsError::Invalid(name, "is empty".into())),
            Some(v) => v.trim().parse().map_err(|e: T::Err| SettingsError::Invalid(name, e.to_string())),
        }
    }

    /// `CONFIG_TTL_SECONDS` (default 300 s): how long per-trial configuration
    /// is trusted before a reload.
    pub fn config_ttl(&self) -> Result<Duration, SettingsError> {
        self.parsed::<u64>(CONFIG_TTL_SECONDS, DEFAULT_CONFIG_TTL.as_secs()).map(Duration::from_secs)
    }
}

/// A process variable that is set and not blank (for tools reading their own
/// environment, e.g. the emulator endpoint).
pub fn optional(name: &'static str) -> Option<String> {
    Env::process().optional(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_optional_value_takes_its_default() {
        assert_eq!(Env::vars::<&str, &str>([]).config_ttl().unwrap(), DEFAULT_CONFIG_TTL);
    }

    #[test]
    fn a_present_but_invalid_value_is_an_error_naming_the_variable() {
        for bad in ["abc", "", " ", "-5", "1.5"] {
            // GIVEN CONFIG_TTL_SECONDS set to something that is not a number of seconds
            let env = Env::vars([(CONFIG_TTL_SECONDS, bad)]);
            // THEN reading it fails, naming it, instead of falling back to 300
            let e = env.config_ttl().unwrap_err();
            assert_eq!(e.variable(), CONFIG_TTL_SECONDS, "{bad:?}");
            assert!(e.to_string().contains(CONFIG_TTL_SECONDS), "{e}");
        }
    }

    #[test]
    fn a_missing_or_blank_required_value_names_the_variable() {
        for env in [Env::vars::<&str, &str>([]), Env::vars([(TABLE_NAME, "  ")])] {
            let e = env.required(TABLE_NAME).unwrap_err();
            assert!(matches!(e, SettingsError::Missing(TABLE_NAME)), "{e}");
            assert_eq!(e.to_string(), "environment variable TABLE_NAME is required");
        }
    }

    #[test]
    fn the_first_source_that_has_a_variable_answers() {
        let env = Env::vars([(TABLE_NAME, "mine")]).or(Env::vars([(TABLE_NAME, "theirs"), (CONFIG_TTL_SECONDS, "5")]));
        assert_eq!(env.required(TABLE_NAME).unwrap(), "mine");
        assert_eq!(env.config_ttl().unwrap(), Duration::from_secs(5));
    }
}
