//! What alert-dispatcher reads from its environment, once, in init.

use trialwatch::egress::EgressPolicy;
use trialwatch::settings::{Env, SettingsError, ALERT_QUEUE_URL, ALERT_TOPIC_ARN, AUDIT_TABLE_NAME, EVENT_BUS_NAME, TABLE_NAME};

use crate::settings::DispatchSettings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TABLE_NAME` (required): alerts, claims, attempts, trials.
    pub table_name: String,
    /// `AUDIT_TABLE_NAME` (required): the audit trail, appended to only.
    pub audit_table_name: String,
    /// `ALERT_QUEUE_URL` (required): the queue this function consumes (visibility backoff).
    pub alert_queue_url: String,
    /// `ALERT_TOPIC_ARN` (required): the SNS topic for trials without their own.
    pub alert_topic_arn: String,
    /// Timeouts, lease, breaker and config TTL; see [`DispatchSettings::from_vars`].
    pub dispatch: DispatchSettings,
    /// Where webhooks may connect. `TRIALWATCH_LOCAL_ALLOW_LOOPBACK_WEBHOOK=1`
    /// relaxes it to allow loopback; only the local runner sets it, and a test
    /// holds that `template.yaml` never does, so in Lambda this is always
    /// [`EgressPolicy::DEPLOYED`].
    pub egress: EgressPolicy,
    /// `EVENT_BUS_NAME` (optional): delivery outcomes are announced, and the
    /// sweep publishes pending events, on this bus. Absent: they stay pending.
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
            alert_queue_url: env.required(ALERT_QUEUE_URL)?,
            alert_topic_arn: env.required(ALERT_TOPIC_ARN)?,
            dispatch: DispatchSettings::from_vars(env)?,
            egress: EgressPolicy::from_vars(env),
            event_bus_name: env.optional(EVENT_BUS_NAME),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{LEASE_SECONDS, WEBHOOK_TIMEOUT_MS};

    fn with(extra: &[(&'static str, &'static str)]) -> Env {
        Env::vars(
            [
                (TABLE_NAME, "t"),
                (AUDIT_TABLE_NAME, "audit"),
                (ALERT_QUEUE_URL, "http://q/a"),
                (ALERT_TOPIC_ARN, "arn:aws:sns:us-east-1:1:t"),
            ]
            .into_iter()
            .chain(extra.iter().copied()),
        )
    }

    #[test]
    fn absent_settings_take_the_documented_defaults() {
        assert_eq!(Config::from_vars(&with(&[])).unwrap().dispatch, DispatchSettings::default());
    }

    #[test]
    fn the_deployed_template_never_relaxes_webhook_egress() {
        // GIVEN every function's environment as template.yaml declares it
        let template = trialwatch_provision::Template::load(&trialwatch_provision::template_path()).unwrap();
        let text = std::fs::read_to_string(trialwatch_provision::template_path()).unwrap();
        // THEN none sets the local stack's loopback allowance (nor mentions it at all)
        assert!(!text.contains(trialwatch::egress::LOCAL_ALLOW_LOOPBACK_WEBHOOK));
        let dispatcher = template.function("AlertDispatcherFunction").expect("AlertDispatcherFunction");
        let env = Env::vars(dispatcher.environment.clone()).or(with(&[]));
        assert_eq!(Config::from_vars(&env).unwrap().egress, EgressPolicy::DEPLOYED);
        // AND absent, the policy is the deployed one
        assert_eq!(Config::from_vars(&with(&[])).unwrap().egress, EgressPolicy::DEPLOYED);
    }

    #[test]
    fn a_missing_topic_is_named() {
        let e = Config::from_vars(&Env::vars([(TABLE_NAME, "t"), (AUDIT_TABLE_NAME, "audit"), (ALERT_QUEUE_URL, "u")])).unwrap_err();
        assert!(e.to_string().contains(ALERT_TOPIC_ARN), "{e}");
    }

    #[test]
    fn present_but_invalid_settings_are_named() {
        for (var, bad) in [(WEBHOOK_TIMEOUT_MS, "5s"), (WEBHOOK_TIMEOUT_MS, ""), (LEASE_SECONDS, "5")] {
            let e = Config::from_vars(&with(&[(var, bad)])).unwrap_err();
            assert!(e.to_string().contains(var), "{var}={bad}: {e}");
        }
    }
}
