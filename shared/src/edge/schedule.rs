//! The schedule edge (an EventBridge rule invoking a function): the time the
//! run is for, the use case invoked with it, and its result mapped once to
//! the invocation's outcome.
//!
//! A scheduled invocation that returns an error is retried by Lambda (twice,
//! asynchronously), so a run that is only partly done fails the invocation:
//! the retry redoes what is missing, provided the use case skips what is done.

use std::future::Future;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use serde_json::Value;

use crate::Error;

/// One scheduled run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// The time the run is for: the event's own, so a retry hours later still
    /// works on the same period.
    pub time: DateTime<Utc>,
    /// The rule's ARN, when the event names it.
    pub rule: Option<String>,
}

impl Scheduled {
    /// Reads an EventBridge scheduled event. Anything else (a rule's constant
    /// `Input`, a manual invoke) is a run for `now`.
    pub fn from_event(payload: &Value, now: DateTime<Utc>) -> Self {
        match serde_json::from_value::<EventBridgeEvent<Value>>(payload.clone()) {
            Ok(e) => Scheduled { time: e.time.unwrap_or(now), rule: e.resources.and_then(|r| r.into_iter().next()) },
            Err(_) => Scheduled { time: now, rule: None },
        }
    }
}

/// What a scheduled use case returns: figures to report (counts and codes
/// only: they are logged), and whether part of the run failed.
pub trait Outcome: Serialize {
    /// Why the run is incomplete, when it is: the invocation then fails so
    /// that Lambda retries it.
    fn incomplete(&self) -> Option<String>;
}

/// Runs `use_case` for the scheduled event and maps its result once: the
/// outcome as the invocation's result, or an error naming `job` and a code.
pub async fn run<O, F, Fut>(
    job: &'static str,
    event: LambdaEvent<Value>,
    now: DateTime<Utc>,
    use_case: F,
) -> Result<Value, lambda_runtime::Error>
where
    O: Outcome,
    F: FnOnce(Scheduled) -> Fut,
    Fut: Future<Output = Result<O, Error>>,
{
    let scheduled = Scheduled::from_event(&event.payload, now);
    let outcome = use_case(scheduled).await.map_err(|e| {
        tracing::error!(job, code = e.code(), "scheduled run failed");
        lambda_runtime::Error::from(format!("{job}: {}", e.code()))
    })?;
    let value = serde_json::to_value(&outcome)?;
    tracing::info!(job, outcome = %value, "scheduled run");
    match outcome.incomplete() {
        Some(reason) => Err(format!("{job}: {reason}").into()),
        None => Ok(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;

    #[derive(Serialize)]
    struct Done {
        failed: u32,
    }
    impl Outcome for Done {
        fn incomplete(&self) -> Option<String> {
            (self.failed > 0).then(|| format!("{} failed", self.failed))
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }
    fn event() -> LambdaEvent<Value> {
        LambdaEvent::new(serde_json::from_str(include_str!("../../../events/report-schedule.json")).unwrap(), Context::default())
    }

    #[test]
    fn the_run_is_for_the_events_own_time_and_rule() {
        let s = Scheduled::from_event(&event().payload, now());
        assert_eq!(s.time, "2026-11-23T06:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(s.rule.as_deref(), Some("arn:aws:events:eu-west-2:123456789012:rule/trialwatch-WeeklyReports"));
    }

    #[test]
    fn a_constant_input_or_an_event_without_a_time_runs_for_now() {
        for payload in [
            serde_json::json!({"trial": "x"}),
            serde_json::json!({}),
            serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
        ] {
            assert_eq!(Scheduled::from_event(&payload, now()).time, now(), "{payload}");
        }
    }

    #[tokio::test]
    async fn a_complete_run_returns_its_outcome() {
        let out = run("job", event(), now(), |s| async move {
            assert_eq!(s.time.to_rfc3339(), "2026-11-23T06:00:00+00:00");
            Ok(Done { failed: 0 })
        })
        .await
        .unwrap();
        assert_eq!(out, serde_json::json!({"failed": 0}));
    }

    #[tokio::test]
    async fn a_partly_failed_or_failed_run_fails_the_invocation_for_a_retry() {
        let e = run("job", event(), now(), |_| async { Ok(Done { failed: 2 }) }).await.unwrap_err();
        assert_eq!(e.to_string(), "job: 2 failed");
        let e = run("job", event(), now(), |_| async { Err::<Done, _>(Error::Unavailable("throttled".into())) }).await.unwrap_err();
        assert_eq!(e.to_string(), "job: unavailable", "a code, never the dependency's detail");
    }
}
