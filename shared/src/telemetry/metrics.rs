//! Business metrics, in CloudWatch Embedded Metric Format (EMF): JSON log
//! lines that CloudWatch turns into metrics, with no API call and no extra
//! latency. Written through the `metrics` facade by
//! `metrics_cloudwatch_embedded`, flushed once per invocation ([`invocation`]).
//!
//! Namespace [`NAMESPACE`]. Every metric has the dimension `Function` (the
//! function's short name); some add one or two of `Level` (a NEWS2 or PRO
//! level), `ProblemType` (a problem+json type), `From`/`To` (risk levels). All
//! of them come from small fixed sets: never an id, a trial, a patient or a
//! value, so the metric count stays bounded and nothing identifies a person.
//!
//! The call sites use the functions below, so a name or dimension is spelt
//! once. Without a recorder (tests, the local runner) every call is a no-op.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_histogram, histogram, Unit};
use metrics_cloudwatch_embedded::Collector;

use crate::news2::RiskLevel;

pub const NAMESPACE: &str = "TrialWatch";
/// The dimension every metric carries.
pub const FUNCTION_DIMENSION: &str = "Function";

pub const SUBMISSIONS_ACCEPTED: &str = "SubmissionsAccepted";
pub const SUBMISSIONS_REJECTED: &str = "SubmissionsRejected";
pub const SUBMISSION_LATENCY: &str = "SubmissionLatency";
pub const READINGS_SCORED: &str = "ReadingsScored";
pub const RISK_LEVEL_TRANSITIONS: &str = "RiskLevelTransitions";
pub const ALERTS_RAISED: &str = "AlertsRaised";
pub const ALERTS_DELIVERED: &str = "AlertsDelivered";
pub const ALERTS_FAILED: &str = "AlertsFailed";
pub const ALERT_DELIVERY_LATENCY: &str = "AlertDeliveryLatency";
pub const ALERT_END_TO_END_LATENCY: &str = "AlertEndToEndLatency";
pub const COLD_STARTS: &str = "ColdStarts";

static COLLECTOR: OnceLock<Option<&'static Collector>> = OnceLock::new();

/// Installs the EMF recorder for `function` (once per process; later calls
/// return the first one) and counts this cold start. `None` when another
/// recorder was installed first.
pub fn init(function: &'static str) -> Option<&'static Collector> {
    *COLLECTOR.get_or_init(|| {
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(NAMESPACE)
            .with_dimension(FUNCTION_DIMENSION, function)
            .init()
            .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
            .ok()?;
        for name in [SUBMISSIONS_ACCEPTED, SUBMISSIONS_REJECTED, READINGS_SCORED, RISK_LEVEL_TRANSITIONS, COLD_STARTS] {
            describe_counter!(name, Unit::Count, "");
        }
        for name in [ALERTS_RAISED, ALERTS_DELIVERED, ALERTS_FAILED] {
            describe_counter!(name, Unit::Count, "");
        }
        for name in [SUBMISSION_LATENCY, ALERT_DELIVERY_LATENCY, ALERT_END_TO_END_LATENCY] {
            describe_histogram!(name, Unit::Milliseconds, "");
        }
        counter!(COLD_STARTS).increment(1);
        Some(collector)
    })
}

/// Writes every metric recorded since the last flush as EMF lines to `out`.
pub fn flush_to(out: impl std::io::Write) -> std::io::Result<()> {
    match COLLECTOR.get().copied().flatten() {
        Some(c) => c.flush(out),
        None => Ok(()),
    }
}

/// Runs one invocation, then flushes its metrics to stdout (where Lambda
/// sends them to CloudWatch Logs) before the response: nothing runs after
/// it, the environment may freeze. A failed write loses metrics, never the
/// invocation.
pub async fn invocation<F: std::future::Future>(work: F) -> F::Output {
    let out = work.await;
    if let Err(e) = flush_to(std::io::stdout().lock()) {
        tracing::warn!(error = %e, "metrics flush failed");
    }
    out
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Whole-number milliseconds from a chrono span; a negative one (clock skew) is 0.
pub fn since(earlier: chrono::DateTime<chrono::Utc>, later: chrono::DateTime<chrono::Utc>) -> Duration {
    (later - earlier).to_std().unwrap_or_default()
}

pub fn submission_accepted(latency: Duration) {
    counter!(SUBMISSIONS_ACCEPTED).increment(1);
    histogram!(SUBMISSION_LATENCY).record(millis(latency));
}

/// `problem_type`: the problem+json type's slug (`validation`, `forbidden`, ...).
pub fn submission_rejected(problem_type: &'static str, latency: Duration) {
    counter!(SUBMISSIONS_REJECTED, "ProblemType" => problem_type).increment(1);
    histogram!(SUBMISSION_LATENCY).record(millis(latency));
}

pub fn readings_scored(count: usize) {
    if count > 0 {
        counter!(READINGS_SCORED).increment(count as u64);
    }
}

/// A patient's NEWS2 risk level moved (`from` is `none` before any score).
pub fn risk_level_changed(from: Option<RiskLevel>, to: RiskLevel) {
    counter!(RISK_LEVEL_TRANSITIONS, "From" => from.map_or("none", RiskLevel::as_str), "To" => to.as_str()).increment(1);
}

/// An alert was raised; `since_observed`: from the reading it stands on
/// (or the submission) to now.
pub fn alert_raised(level: RiskLevel, since_observed: Duration) {
    counter!(ALERTS_RAISED, "Level" => level.as_str()).increment(1);
    histogram!(ALERT_END_TO_END_LATENCY, "Level" => level.as_str()).record(millis(since_observed));
}

/// An alert was delivered on every channel; `since_raised`: from its raise to now.
pub fn alert_delivered(level: RiskLevel, since_raised: Option<Duration>) {
    counter!(ALERTS_DELIVERED, "Level" => level.as_str()).increment(1);
    if let Some(d) = since_raised {
        histogram!(ALERT_DELIVERY_LATENCY, "Level" => level.as_str()).record(millis(d));
    }
}

/// An alert failed for good on a channel.
pub fn alert_failed(level: RiskLevel) {
    counter!(ALERTS_FAILED, "Level" => level.as_str()).increment(1);
}

/// Checks one EMF document against the keys the EMF specification requires
/// (CloudWatch drops a document that lacks them), for tests: `_aws.Timestamp`
/// (epoch milliseconds), `_aws.CloudWatchMetrics[]` each with a `Namespace`,
/// `Dimensions` (sets of at most 30 names, each a string member of the root)
/// and `Metrics[]` with a `Name`, and for every metric a root member holding
/// a number or at most 100 numbers.
#[cfg(any(test, feature = "test-util"))]
pub fn check_emf(doc: &serde_json::Value) -> Result<(), String> {
    let aws = doc.get("_aws").and_then(|a| a.as_object()).ok_or("no _aws object")?;
    aws.get("Timestamp").and_then(|t| t.as_u64()).ok_or("_aws.Timestamp is not epoch milliseconds")?;
    let directives = aws.get("CloudWatchMetrics").and_then(|d| d.as_array()).ok_or("no _aws.CloudWatchMetrics array")?;
    if directives.is_empty() {
        return Err("_aws.CloudWatchMetrics is empty".into());
    }
    for d in directives {
        let ns = d.get("Namespace").and_then(|n| n.as_str()).ok_or("a directive has no Namespace")?;
        if ns.is_empty() || ns.len() > 255 {
            return Err(format!("Namespace {ns:?} is not 1-255 characters"));
        }
        for set in d.get("Dimensions").and_then(|s| s.as_array()).ok_or("a directive has no Dimensions array")? {
            let set = set.as_array().ok_or("a dimension set is not an array")?;
            if set.len() > 30 {
                return Err("a dimension set has more than 30 dimensions".into());
            }
            for name in set {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                doc.get(name).and_then(|v| v.as_str()).ok_or_else(|| format!("dimension {name} has no string value at the root"))?;
            }
        }
        let metrics = d.get("Metrics").and_then(|m| m.as_array()).ok_or("a directive has no Metrics array")?;
        for m in metrics {
            let name = m.get("Name").and_then(|n| n.as_str()).ok_or("a metric has no Name")?;
            let ok = match doc.get(name) {
                Some(v) if v.is_number() => true,
                Some(serde_json::Value::Array(values)) => !values.is_empty() && values.len() <= 100 && values.iter().all(|v| v.is_number()),
                _ => false,
            };
            if !ok {
                return Err(format!("metric {name} has no number (or 1-100 numbers) at the root"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_emf_check_accepts_a_spec_document_and_names_what_a_broken_one_lacks() {
        let good = json!({
            "_aws": {"Timestamp": 1_764_000_000_000_u64, "CloudWatchMetrics": [{
                "Namespace": "TrialWatch", "Dimensions": [["Function", "Level"]],
                "Metrics": [{"Name": "AlertsRaised", "Unit": "Count"}, {"Name": "AlertEndToEndLatency", "Unit": "Milliseconds"}]}]},
            "Function": "vitals-analyzer", "Level": "high", "AlertsRaised": 1, "AlertEndToEndLatency": [61000.0]
        });
        assert_eq!(check_emf(&good), Ok(()));
        let broken = [
            ("/_aws/Timestamp", "Timestamp"),
            ("/_aws/CloudWatchMetrics/0/Namespace", "Namespace"),
            ("/Level", "dimension Level"),
            ("/AlertsRaised", "metric AlertsRaised"),
        ];
        for (pointer, named) in broken {
            let mut doc = good.clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            doc.pointer_mut(if parent.is_empty() { "" } else { parent }).unwrap().as_object_mut().unwrap().remove(key);
            let e = check_emf(&doc).unwrap_err();
            assert!(e.contains(named), "{pointer}: {e}");
        }
    }
}
