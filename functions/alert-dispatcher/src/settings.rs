//! The dispatcher's own settings, read once in init as part of its
//! [`crate::Config`].

use std::time::Duration;

use trialwatch::settings::{Env, SettingsError};

pub const WEBHOOK_TIMEOUT_MS: &str = "WEBHOOK_TIMEOUT_MS";
pub const LEASE_SECONDS: &str = "LEASE_SECONDS";
pub const BREAKER_THRESHOLD: &str = "BREAKER_THRESHOLD";
pub const BREAKER_COOLOFF_SECONDS: &str = "BREAKER_COOLOFF_SECONDS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchSettings {
    /// How long one webhook POST may take before it counts as a retryable timeout.
    pub webhook_timeout: Duration,
    /// How long a claim owns an alert's delivery. Longer than the webhook
    /// timeout, so a live delivery is never taken over by a duplicate.
    pub lease: Duration,
    pub breaker: BreakerSettings,
    pub backoff: Backoff,
    /// How long a trial's webhook/topic configuration is trusted.
    pub config_ttl: Duration,
    /// Records of one batch delivered at the same time (a standard queue: no order to keep).
    pub max_concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive retryable failures that open a trial's circuit.
    pub threshold: u32,
    /// How long an open circuit refuses calls before one probe is let through.
    pub cooloff: Duration,
}

/// Visibility backoff of a retried message: `base * 2^(receives-1)` seconds
/// with equal jitter, at most `max` (SQS allows up to 12 h; 15 min keeps a
/// recovering site from waiting long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_seconds: u32,
    pub max_seconds: u32,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            webhook_timeout: Duration::from_millis(5000),
            lease: Duration::from_secs(60),
            breaker: BreakerSettings { threshold: 5, cooloff: Duration::from_secs(60) },
            backoff: Backoff { base_seconds: 10, max_seconds: 900 },
            config_ttl: Duration::from_secs(300),
            max_concurrency: 10,
        }
    }
}

impl DispatchSettings {
    /// Reads `WEBHOOK_TIMEOUT_MS` (5000), `LEASE_SECONDS` (60), `BREAKER_THRESHOLD` (5),
    /// `BREAKER_COOLOFF_SECONDS` (60) and `CONFIG_TTL_SECONDS` (300).
    pub fn from_vars(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        let s = Self {
            webhook_timeout: Duration::from_millis(env.parsed(WEBHOOK_TIMEOUT_MS, 5000u64)?),
            lease: Duration::from_secs(env.parsed(LEASE_SECONDS, 60u64)?),
            breaker: BreakerSettings {
                threshold: env.parsed(BREAKER_THRESHOLD, 5u32)?,
                cooloff: Duration::from_secs(env.parsed(BREAKER_COOLOFF_SECONDS, 60u64)?),
            },
            config_ttl: env.config_ttl()?,
            ..d
        };
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.webhook_timeout.is_zero() {
            return Err(SettingsError::Invalid(WEBHOOK_TIMEOUT_MS, "must be positive".into()));
        }
        // A lease shorter than a delivery would let a redelivered duplicate take
        // over while the first POST is still in flight: two notifications.
        if self.lease <= self.webhook_timeout * 2 {
            return Err(SettingsError::Invalid(LEASE_SECONDS, "must exceed twice the webhook timeout".into()));
        }
        if self.breaker.threshold == 0 {
            return Err(SettingsError::Invalid(BREAKER_THRESHOLD, "must be at least 1".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones_and_valid() {
        let s = DispatchSettings::default();
        assert_eq!(s.webhook_timeout, Duration::from_secs(5));
        assert_eq!(s.lease, Duration::from_secs(60));
        assert_eq!(s.breaker.threshold, 5);
        assert_eq!(s.breaker.cooloff, Duration::from_secs(60));
        s.validate().unwrap();
    }

    #[test]
    fn a_lease_no_longer_than_a_delivery_is_refused() {
        // GIVEN a lease that a slow webhook could outlive
        let s = DispatchSettings { lease: Duration::from_secs(10), ..DispatchSettings::default() };
        // THEN init fails naming the variable
        let e = s.validate().unwrap_err();
        assert!(e.to_string().contains(LEASE_SECONDS), "{e}");
    }
}
