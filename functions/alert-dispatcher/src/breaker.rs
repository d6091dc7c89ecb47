//! A circuit breaker per trial webhook, so a site that is down costs its own
//! alerts a fast failure instead of every record of the batch a timeout.
//!
//! State lives in memory, per execution environment: each concurrent Lambda
//! instance learns separately that an endpoint is down (up to K failed calls
//! each) and cools off on its own clock. That bounds wasted calls per
//! instance, not globally; a shared breaker would need a store round trip on
//! every delivery, which costs more than it saves here.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use trialwatch::TrialId;

use crate::settings::BreakerSettings;

/// Whether a call to the endpoint may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The circuit is closed: call.
    Allowed,
    /// The cool-off passed: this one call tests whether the endpoint recovered.
    Probe,
    /// Open (or a probe is in flight): fail fast without calling.
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Circuit {
    Closed { consecutive_failures: u32 },
    Open { until: DateTime<Utc> },
    HalfOpen { probe_started: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Endpoint {
    trial: TrialId,
    url: String,
}

pub struct CircuitBreaker {
    settings: BreakerSettings,
    circuits: Mutex<HashMap<Endpoint, Circuit>>,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self { settings, circuits: Mutex::new(HashMap::new()) }
    }

    fn cooloff(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.cooloff).unwrap_or(chrono::Duration::MAX)
    }

    /// Asks to call `url` for `trial` at `now`. A `Probe` or `Allowed` must be
    /// followed by [`CircuitBreaker::record`].
    pub fn admit(&self, trial: &TrialId, url: &str, now: DateTime<Utc>) -> Admission {
        let key = Endpoint { trial: trial.clone(), url: url.to_owned() };
        let mut circuits = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        let circuit = circuits.entry(key).or_insert(Circuit::Closed { consecutive_failures: 0 });
        match *circuit {
            Circuit::Closed { .. } => Admission::Allowed,
            Circuit::Open { until } if now < until => Admission::Rejected,
            Circuit::Open { .. } => {
                *circuit = Circuit::HalfOpen { probe_started: now };
                Admission::Probe
            }
            // A probe whose outcome never came back (its invocation died) must
            // not keep the circuit half-open forever: after a cool-off, probe again.
            Circuit::HalfOpen { probe_started } if now >= probe_started + self.cooloff() => {
                *circuit = Circuit::HalfOpen { probe_started: now };
                Admission::Probe
            }
            Circuit::HalfOpen { .. } => Admission::Rejected,
        }
    }

    /// Records a call's result: `endpoint_unavailable` for 5xx/408/429/timeouts/
    /// network errors. Any answer that shows the endpoint up (2xx, other 4xx) closes it.
    pub fn record(&self, trial: &TrialId, url: &str, now: DateTime<Utc>, endpoint_unavailable: bool) {
        let key = Endpoint { trial: trial.clone(), url: url.to_owned() };
        let mut circuits = self.circuits.lock().unwrap_or_else(|p| p.into_inner());
        let circuit = circuits.entry(key).or_insert(Circuit::Closed { consecutive_failures: 0 });
        *circuit = match (*circuit, endpoint_unavailable) {
            (_, false) => Circuit::Closed { consecutive_failures: 0 },
            (Circuit::Closed { consecutive_failures }, true) => {
                let failures = consecutive_failures.saturating_add(1);
                if failures >= self.settings.threshold {
                    Circuit::Open { until: now + self.cooloff() }
                } else {
                    Circuit::Closed { consecutive_failures: failures }
                }
            }
            (Circuit::HalfOpen { .. }, true) => Circuit::Open { until: now + self.cooloff() },
            // A call admitted before the circuit opened, failing late: already open.
            (open @ Circuit::Open { .. }, true) => open,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const URL: &str = "https://site.example/hook";

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerSettings { threshold: 3, cooloff: Duration::from_secs(60) })
    }
    fn t0() -> DateTime<Utc> {
        "2026-11-26T20:00:00Z".parse().unwrap()
    }
    fn secs(s: i64) -> chrono::Duration {
        chrono::Duration::seconds(s)
    }

    #[test]
    fn opens_after_k_consecutive_failures_and_not_before() {
        // GIVEN a breaker with K = 3 and a trial webhook that keeps failing
        let b = breaker();
        let trial = TrialId::parse("t1").unwrap();
        for _ in 0..2 {
            assert_eq!(b.admit(&trial, URL, t0()), Admission::Allowed);
            b.record(&trial, URL, t0(), true);
        }
        // WHEN the third consecutive failure is recorded
        assert_eq!(b.admit(&trial, URL, t0()), Admission::Allowed);
        b.record(&trial, URL, t0(), true);
        // THEN calls are refused
        assert_eq!(b.admit(&trial, URL, t0()), Admission::Rejected);
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let b = breaker();
        let trial = TrialId::parse("t1").unwrap();
        b.record(&trial, URL, t0(), true);
        b.record(&trial, URL, t0(), true);
        b.record(&trial, URL, t0(), false);
        b.record(&trial, URL, t0(), true);
        b.record(&trial, URL, t0(), true);
        assert_eq!(b.admit(&trial, URL, t0()), Admission::Allowed);
    }

    #[test]
    fn stays_open_for_the_cooloff_then_lets_exactly_one_probe_through() {
        // GIVEN an open circuit
        let b = breaker();
        let trial = TrialId::parse("t1").unwrap();
        (0..3).for_each(|_| b.record(&trial, URL, t0(), true));
        // THEN it refuses until the cool-off has passed
        assert_eq!(b.admit(&trial, URL, t0() + secs(59)), Admission::Rejected);
        // WHEN the cool-off has passed, one probe goes through and others still wait
        assert_eq!(b.admit(&trial, URL, t0() + secs(60)), Admission::Probe);
        assert_eq!(b.admit(&trial, URL, t0() + secs(61)), Admission::Rejected);
    }

    #[test]
    fn a_successful_probe_closes_and_a_failed_one_reopens() {
        let b = breaker();
        let trial = TrialId::parse("t1").unwrap();
        (0..3).for_each(|_| b.record(&trial, URL, t0(), true));
        // WHEN the probe fails THEN the circuit is open for another cool-off
        assert_eq!(b.admit(&trial, URL, t0() + secs(60)), Admission::Probe);
        b.record(&trial, URL, t0() + secs(60), true);
        assert_eq!(b.admit(&trial, URL, t0() + secs(119)), Admission::Rejected);
        // WHEN the next probe succeeds THEN the circuit is closed
        assert_eq!(b.admit(&trial, URL, t0() + secs(120)), Admission::Probe);
        b.record(&trial, URL, t0() + secs(120), false);
        assert_eq!(b.admit(&trial, URL, t0() + secs(120)), Admission::Allowed);
        assert_eq!(b.admit(&trial, URL, t0() + secs(120)), Admission::Allowed);
    }

    #[test]
    fn a_probe_that_never_reports_back_is_replaced_after_a_cooloff() {
        let b = breaker();
        let trial = TrialId::parse("t1").unwrap();
        (0..3).for_each(|_| b.record(&trial, URL, t0(), true));
        assert_eq!(b.admit(&trial, URL, t0() + secs(60)), Admission::Probe);
        assert_eq!(b.admit(&trial, URL, t0() + secs(119)), Admission::Rejected);
        assert_eq!(b.admit(&trial, URL, t0() + secs(120)), Admission::Probe);
    }

    #[test]
    fn circuits_are_per_trial_and_per_url() {
        // GIVEN trial t1's circuit is open
        let b = breaker();
        let (t1, t2) = (TrialId::parse("t1").unwrap(), TrialId::parse("t2").unwrap());
        (0..3).for_each(|_| b.record(&t1, URL, t0(), true));
        // THEN t2 on the same URL, and t1 on a new URL, are unaffected
        assert_eq!(b.admit(&t1, URL, t0()), Admission::Rejected);
        assert_eq!(b.admit(&t2, URL, t0()), Admission::Allowed);
        assert_eq!(b.admit(&t1, "https://site.example/new-hook", t0()), Admission::Allowed);
    }
}
