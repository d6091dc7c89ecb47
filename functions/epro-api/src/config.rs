//! What epro-api reads from its environment, once, in init.

use std::time::Duration;

use trialwatch::egress::EgressPolicy;
use trialwatch::settings::{Env, SettingsError, ALERT_QUEUE_URL, AUDIT_TABLE_NAME, EVENT_BUS_NAME, TABLE_NAME, VITALS_QUEUE_URL};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TABLE_NAME` (required): the single table.
    pub table_name: String,
    /// `AUDIT_TABLE_NAME` (required): the audit trail, appended to only.
    pub audit_table_name: String,
    /// `VITALS_QUEUE_URL` (required): the FIFO queue vitals ingest feeds.
    pub vitals_queue_url: String,
    /// `ALERT_QUEUE_URL` (required): where PRO-rule alerts go.
    pub alert_queue_url: String,
    /// `CONFIG_TTL_SECONDS` (default 300): how long a trial's definition is trusted.
    pub config_ttl: Duration,
    /// Which webhook URLs a trial may name: always [`EgressPolicy::DEPLOYED`]
    /// in Lambda, since the template never sets `TRIALWATCH_LOCAL_ALLOW_LOOPBACK_WEBHOOK`
    /// (only the local runner does, for its `http://127.0.0.1` receiver).
    pub egress: EgressPolicy,
    /// `EVENT_BUS_NAME` (optional): the bus domain events are put on. Absent
    /// (a local run without a bus), events stay pending for the sweep.
    pub event_bus_name: Option<String>,
}

impl Config {
    /// From the process environment; see [`Config::from_vars`].
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(&Env::process())
    }

    /// A missing required variable, or a present but invalid one, fails naming it.
    pub fn from_vars(env: &Env) -> Result<Self, SettingsError> {
        Ok(Self {
            table_name: env.required(TABLE_NAME)?,
            audit_table_name: env.required(AUDIT_TABLE_NAME)?,
            vitals_queue_url: env.required(VITALS_QUEUE_URL)?,
            alert_queue_url: env.required(ALERT_QUEUE_URL)?,
            config_ttl: env.config_ttl()?,
            egress: EgressPolicy::from_vars(env),
            event_bus_name: env.optional(EVENT_BUS_NAME),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::settings::CONFIG_TTL_SECONDS;

    fn complete() -> Vec<(&'static str, &'static str)> {
        vec![(TABLE_NAME, "t"), (AUDIT_TABLE_NAME, "audit"), (VITALS_QUEUE_URL, "http://q/v.fifo"), (ALERT_QUEUE_URL, "http://q/a")]
    }

    #[test]
    fn a_complete_environment_gives_the_documented_defaults() {
        let c = Config::from_vars(&Env::vars(complete())).unwrap();
        assert_eq!(c.table_name, "t");
        assert_eq!(c.config_ttl, Duration::from_secs(300));
    }

    #[test]
    fn each_missing_required_variable_is_named() {
        for missing in [TABLE_NAME, AUDIT_TABLE_NAME, VITALS_QUEUE_URL, ALERT_QUEUE_URL] {
            let env = Env::vars(complete().into_iter().filter(|(k, _)| *k != missing));
            let e = Config::from_vars(&env).unwrap_err();
            assert!(e.to_string().contains(missing), "{e}");
        }
    }

    #[test]
    fn a_bad_config_ttl_fails_init_naming_it() {
        let mut vars = complete();
        vars.push((CONFIG_TTL_SECONDS, "five minutes"));
        let e = Config::from_vars(&Env::vars(vars)).unwrap_err();
        assert!(e.to_string().contains(CONFIG_TTL_SECONDS), "{e}");
    }
}
