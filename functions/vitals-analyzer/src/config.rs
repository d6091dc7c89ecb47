//! What vitals-analyzer reads from its environment, once, in init.

use std::time::Duration;

use crate::senders::{Integrators, INTEGRATORS_VAR};
use trialwatch::settings::{Env, SettingsError, ALERT_QUEUE_URL, AUDIT_TABLE_NAME, TABLE_NAME};

/// Patients of one batch processed at once (loads and writes in flight).
pub const CONCURRENCY_VAR: &str = "ANALYZER_CONCURRENCY";
pub const DEFAULT_CONCURRENCY: usize = 8;
/// The vitals DLQ (the vitals queue's redrive target), where the analyzer
/// parks records that failed for good. The name `make provision` exports it under.
pub const DLQ_URL_VAR: &str = "VITALS_DLQ_URL";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TABLE_NAME` (required).
    pub table_name: String,
    /// `AUDIT_TABLE_NAME` (required): the audit trail, appended to only.
    pub audit_table_name: String,
    /// `ALERT_QUEUE_URL` (required): where escalations go.
    pub alert_queue_url: String,
    /// `VITALS_DLQ_URL` (required): where permanently failed records are parked.
    pub dead_letter_queue_url: String,
    /// `CONFIG_TTL_SECONDS` (default 300): how long a trial's definition is trusted.
    pub config_ttl: Duration,
    /// `ANALYZER_CONCURRENCY` (default 8, at least 1).
    pub concurrency: usize,
    /// `VITALS_INTEGRATORS` (default none): direct integrators and their trials.
    pub integrators: Integrators,
    /// `EVENT_BUS_NAME` (optional): where risk-level changes and alerts are
    /// announced. Absent: events stay pending for the dispatcher's sweep.
    pub event_bus_name: Option<String>,
}

impl Config {
    /// From the process environment; see [`Config::from_vars`].
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(&Env::process())
    }

    /// A missing required variable, or a present but invalid one, fails naming it.
    pub fn from_vars(env: &Env) -> Result<Self, SettingsError> {
        let concurrency = match env.parsed::<usize>(CONCURRENCY_VAR, DEFAULT_CONCURRENCY)? {
            0 => return Err(SettingsError::Invalid(CONCURRENCY_VAR, "must be at least 1".into())),
            n => n,
        };
        Ok(Self {
            table_name: env.required(TABLE_NAME)?,
            audit_table_name: env.required(AUDIT_TABLE_NAME)?,
            alert_queue_url: env.required(ALERT_QUEUE_URL)?,
            dead_letter_queue_url: env.required(DLQ_URL_VAR)?,
            config_ttl: env.config_ttl()?,
            concurrency,
            integrators: Integrators::parse(&env.optional(INTEGRATORS_VAR).unwrap_or_default())
                .map_err(|e| SettingsError::Invalid(INTEGRATORS_VAR, e))?,
            event_bus_name: env.optional(trialwatch::settings::EVENT_BUS_NAME),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::settings::CONFIG_TTL_SECONDS;

    fn with(extra: &[(&'static str, &'static str)]) -> Env {
        Env::vars(
            [(TABLE_NAME, "t"), (AUDIT_TABLE_NAME, "audit"), (ALERT_QUEUE_URL, "http://q/a"), (DLQ_URL_VAR, "http://q/d.fifo")]
                .into_iter()
                .chain(extra.iter().copied()),
        )
    }

    #[test]
    fn absent_tunables_take_their_documented_defaults() {
        let c = Config::from_vars(&with(&[])).unwrap();
        assert_eq!((c.config_ttl, c.concurrency), (Duration::from_secs(300), 8));
    }

    #[test]
    fn a_missing_table_is_named() {
        let e = Config::from_vars(&Env::vars([(ALERT_QUEUE_URL, "http://q/a")])).unwrap_err();
        assert!(e.to_string().contains(TABLE_NAME), "{e}");
    }

    #[test]
    fn a_missing_dead_letter_queue_is_named() {
        let e =
            Config::from_vars(&Env::vars([(TABLE_NAME, "t"), (AUDIT_TABLE_NAME, "audit"), (ALERT_QUEUE_URL, "http://q/a")])).unwrap_err();
        assert!(e.to_string().contains(DLQ_URL_VAR), "{e}");
    }

    #[test]
    fn present_but_invalid_tunables_are_named() {
        for (var, bad) in [(CONCURRENCY_VAR, "0"), (CONCURRENCY_VAR, "eight"), (CONFIG_TTL_SECONDS, "-1"), (INTEGRATORS_VAR, "AROAX")] {
            let e = Config::from_vars(&with(&[(var, bad)])).unwrap_err();
            assert!(e.to_string().contains(var), "{var}={bad}: {e}");
        }
    }
}
