//! Environment configuration, read once in init into a typed struct. A missing
//! variable fails init with a message naming it.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {0} is invalid: {1}")]
    Invalid(&'static str, String),
}

/// Names of AWS resources, as `template.yaml` passes them to every function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub table_name: String,
    pub vitals_queue_url: String,
    pub alert_queue_url: String,
    pub reports_bucket: String,
    pub alert_topic_arn: String,
}

pub const TABLE_NAME: &str = "TABLE_NAME";
pub const VITALS_QUEUE_URL: &str = "VITALS_QUEUE_URL";
pub const ALERT_QUEUE_URL: &str = "ALERT_QUEUE_URL";
pub const REPORTS_BUCKET: &str = "REPORTS_BUCKET";
pub const ALERT_TOPIC_ARN: &str = "ALERT_TOPIC_ARN";
pub const CONFIG_TTL_SECONDS: &str = "CONFIG_TTL_SECONDS";
pub const REPORTS_KMS_KEY_ID: &str = "REPORTS_KMS_KEY_ID";

pub fn required(name: &'static str) -> Result<String, SettingsError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(SettingsError::Missing(name)),
    }
}

pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses an optional variable, falling back to `default` when unset.
pub fn parsed<T: std::str::FromStr>(name: &'static str, default: T) -> Result<T, SettingsError>
where
    T::Err: std::fmt::Display,
{
    match optional(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|e: T::Err| SettingsError::Invalid(name, e.to_string())),
    }
}

/// How long per-trial configuration is trusted before a reload (default 300 s).
pub fn config_ttl() -> Result<Duration, SettingsError> {
    parsed::<u64>(CONFIG_TTL_SECONDS, 300).map(Duration::from_secs)
}

impl Resources {
    /// Every function reads only the variables it needs; this reads them all
    /// and names the first missing one.
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Self {
            table_name: required(TABLE_NAME)?,
            vitals_queue_url: required(VITALS_QUEUE_URL)?,
            alert_queue_url: required(ALERT_QUEUE_URL)?,
            reports_bucket: required(REPORTS_BUCKET)?,
            alert_topic_arn: required(ALERT_TOPIC_ARN)?,
        })
    }
}
