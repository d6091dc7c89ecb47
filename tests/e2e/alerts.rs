use std::time::Duration;

use serde_json::json;
use trialwatch_e2e::{World, TRIAL};
use trialwatch_local::scenario::{self, Condition};

/// Posts one set of vitals per step and waits for the analyzer to consume it
/// (the vitals queue drained), as the FIFO queue orders a patient's readings.
pub(crate) async fn stream_vitals(w: &World, patient: &str, course: &[Condition]) {
    let path = format!("/v1/trials/{TRIAL}/patients/{patient}/vitals");
    let token = w.patient(patient);
    let sqs = aws_sdk_sqs_client(w);
    let url = w.stack.provisioned.queue_url("VitalsQueue").expect("VitalsQueue").to_owned();
    for c in course {
        let a = w.post(&path, &token, &scenario::vitals(*c, chrono::Utc::now())).await;
        assert_eq!(a.status, 202, "{}", a.body);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while trialwatch_local::poller::queue_depth(&sqs, &url).await != Ok(0) {
            assert!(tokio::time::Instant::now() < deadline, "the vitals queue did not drain within 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn aws_sdk_sqs_client(w: &World) -> trialwatch_local::poller::SqsClient {
    trialwatch_local::poller::SqsClient::new(&w.stack.sdk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deteriorating_vitals_raise_a_high_alert_delivered_once_with_a_valid_signature_then_acknowledged_once() {
    // GIVEN a patient at Leeds and a stable one
    let w = World::start("e2e-alerts").await;
    let sick = w.enrol(0).await;
    let well = w.enrol(3).await;
    let staff = w.staff(&[scenario::site_of(0)]);

    // WHEN the patient's vitals deteriorate step by step to NEWS2 high, and the other's stay normal
    stream_vitals(&w, &sick, &scenario::DETERIORATION).await;
    stream_vitals(&w, &well, &[Condition::Well, Condition::Well]).await;

    // THEN the patient's latest NEWS2 is high
    let view = w.get(&format!("/v1/trials/{TRIAL}/patients/{sick}"), &staff).await;
    assert_eq!(view.status, 200, "{}", view.body);
    assert_eq!(view.body["latestNews2"]["riskLevel"], "high", "{}", view.body["latestNews2"]);

    // AND every alert the API lists reaches the site's webhook, signed, exactly once
    let alerts = w.api.patient_alerts(TRIAL, &sick, &staff).await.expect("alerts");
    let high: Vec<&serde_json::Value> = alerts.iter().filter(|a| a["alert"]["level"] == "high").collect();
    assert_eq!(high.len(), 1, "one high alert: {alerts:?}");
    let ids: Vec<String> = alerts.iter().filter_map(|a| a["alert"]["alertId"].as_str().map(str::to_owned)).collect();
    let all_in = w.receiver.wait_until(Duration::from_secs(60), |got| ids.iter().all(|id| got.contains_key(id))).await;
    assert!(all_in, "alerts {ids:?} not all delivered; got {:?}", w.receiver.received().keys().collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = w.receiver.received();
    for id in &ids {
        assert_eq!(got[id].deliveries, 1, "alert {id} delivered {} times", got[id].deliveries);
        assert_eq!(got[id].alert["patientId"], sick.as_str());
    }
    assert_eq!(w.receiver.rejected(), 0, "every delivery carried a valid signature");
    assert_eq!(got.len(), ids.len(), "nothing was delivered for the stable patient");
    assert!(w.api.patient_alerts(TRIAL, &well, &staff).await.expect("alerts").is_empty());

    // WHEN staff of another site try to acknowledge THEN 403; WHEN the patient's site staff do THEN 200, once
    let high_id = high[0]["alert"]["alertId"].as_str().expect("id").to_owned();
    let ack = format!("/v1/trials/{TRIAL}/alerts/{high_id}/ack");
    let elsewhere = w.post(&ack, &w.staff(&[scenario::site_of(1)]), &json!({})).await;
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);
    let first = w.post(&ack, &staff, &json!({"note": "patient called, ambulance sent"})).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["status"], "acknowledged");
    let again = w.post(&ack, &staff, &json!({})).await;
    assert_eq!(again.status, 409, "{}", again.body);

    // AND no message is left in either dead-letter queue
    let sqs = aws_sdk_sqs_client(&w);
    for url in [w.stack.provisioned.vitals_dlq_url(), w.stack.provisioned.alert_dlq_url()] {
        assert_eq!(trialwatch_local::poller::queue_depth(&sqs, url.expect("DLQ")).await, Ok(0));
    }

    // AND the stack's subscriber received the events of all this, each valid against its
    // schema, AlertRaised and AlertDelivered among them, no eventId twice
    let url = w.stack.events_queue_url.as_deref().expect("the template's bus has a subscriber queue");
    let received = trialwatch_local::subscriber::drain(&sqs, url).await.expect("the subscriber queue drains");
    for (kind, detail) in &received.details {
        assert_matches_schema(kind, detail);
    }
    for kind in ["AlertRaised", "AlertDelivered"] {
        assert!(received.by_type.get(kind).is_some_and(|n| *n > 0), "no {kind} received: {:?}", received.by_type);
    }
    let mut ids: Vec<&str> = received.details.iter().filter_map(|(_, d)| d["eventId"].as_str()).collect();
    assert_eq!(ids.len(), received.details.len(), "every event has an eventId");
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "an eventId was received twice: {:?}", received.by_type);
    w.shutdown().await;
}

/// Validates an event's `detail` against `docs/events/<detail-type>.schema.json`.
fn assert_matches_schema(kind: &str, detail: &serde_json::Value) {
    let path = format!("{}/../docs/events/{kind}.schema.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("no schema for {kind} at {path}: {e}"));
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(detail).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{kind} as received does not match {path}: {errors:?}\n{detail}");
}
