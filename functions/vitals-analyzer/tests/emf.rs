//! The metrics of one analyzer run, as CloudWatch receives them: EMF lines
//! checked against the specification's required keys, with the documented
//! namespace and low-cardinality dimensions, and no id of a person.
//! One test in its own binary: the recorder is process-wide.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use lambda_runtime::{Context, LambdaEvent};
use trialwatch::clock::SystemClock;
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::memory::{MemoryDeadLetters, MemoryQueue, MemoryStore};
use trialwatch::telemetry::metrics::{self, check_emf};
use trialwatch::{PatientId, SiteId, TrialId};

#[tokio::test]
async fn a_handler_run_writes_valid_emf_with_the_documented_metrics_and_no_patient_id() {
    // GIVEN the EMF recorder of this function, a trial and an enrolled patient
    assert!(metrics::init("vitals-analyzer").is_some(), "the recorder is installed");
    let store = MemoryStore::new();
    store.seed_trial(
        serde_json::from_value(serde_json::json!({
            "trialId": "tw-emf", "name": "emf", "sites": [{"id": "site-leeds", "name": "Leeds"}],
            "updatedAt": "2026-11-01T00:00:00.000Z"
        }))
        .unwrap(),
    );
    store.seed_enrolment(Enrolment {
        trial_id: TrialId::parse("tw-emf").unwrap(),
        patient_id: PatientId::parse("P-EMF-0001").unwrap(),
        site_id: SiteId::parse("site-leeds").unwrap(),
        status: EnrolmentStatus::Enrolled,
        hypercapnic: false,
        enrolled_at: "2026-11-01T00:00:00.000Z".into(),
        updated_at: "2026-11-01T00:00:00.000Z".into(),
        submission_count: 0,
        last_submission_at: None,
        withdrawn_at: None,
        audit_head: Default::default(),
    });
    let deps =
        vitals_analyzer::Deps::new(Arc::new(store), MemoryQueue::new(), SystemClock, MemoryDeadLetters::new(), Duration::from_secs(300), 8);
    // AND high readings (NEWS2 7+) observed a minute ago
    let at = trialwatch::timestamp::format(Utc::now() - chrono::Duration::minutes(1));
    let reading = |code: &str, value: serde_json::Value| serde_json::json!({"readingId": format!("r-{code}"), "code": code, "value": value, "observedAt": at});
    let body = serde_json::json!({"trialId": "tw-emf", "patientId": "P-EMF-0001", "readings": [
        reading("heart_rate", 135.into()), reading("respiratory_rate", 26.into()),
        reading("consciousness", "A".into()), reading("temperature", 38.5.into())
    ]});
    let mut record = SqsMessage::default();
    record.message_id = Some("m-emf-1".into());
    record.body = Some(body.to_string());
    record.attributes.insert("MessageGroupId".into(), "tw-emf#P-EMF-0001".into());
    let mut event = SqsEvent::default();
    event.records = vec![record];

    // WHEN one invocation runs and its metrics are flushed, as `telemetry::invocation` does
    let response = vitals_analyzer::handle(&deps, LambdaEvent::new(event, Context::default())).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
    let mut out = Vec::new();
    metrics::flush_to(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    println!("{text}");

    // THEN every line is an EMF document with the specification's required keys
    let docs: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert!(!docs.is_empty(), "no EMF written");
    let mut names = Vec::new();
    for doc in &docs {
        check_emf(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], metrics::NAMESPACE);
        assert_eq!(doc["Function"], "vitals-analyzer");
        // AND only the documented, low-cardinality dimensions
        for d in directive["Dimensions"][0].as_array().unwrap() {
            assert!(["Function", "Level", "From", "To", "ProblemType"].contains(&d.as_str().unwrap()), "{d}");
        }
        names.extend(directive["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap().to_owned()));
    }
    // AND the run's metrics are there: the cold start, readings scored, the transition, the alert and its latency
    for expected in [
        metrics::COLD_STARTS,
        metrics::READINGS_SCORED,
        metrics::RISK_LEVEL_TRANSITIONS,
        metrics::ALERTS_RAISED,
        metrics::ALERT_END_TO_END_LATENCY,
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    let raised = docs.iter().find(|d| d.get(metrics::ALERTS_RAISED).is_some()).unwrap();
    assert_eq!((raised["Level"].as_str(), raised[metrics::ALERTS_RAISED].as_u64()), (Some("high"), Some(1)));
    let transition = docs.iter().find(|d| d.get(metrics::RISK_LEVEL_TRANSITIONS).is_some()).unwrap();
    assert_eq!((transition["From"].as_str(), transition["To"].as_str()), (Some("none"), Some("high")));
    // AND nothing identifies the patient or the trial
    assert!(!text.contains("P-EMF-0001") && !text.contains("tw-emf"), "{text}");
}
