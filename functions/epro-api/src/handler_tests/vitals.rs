//! Vitals ingest: validation, FIFO packing, FHIR input, failures.

use serde_json::json;
use trialwatch::vitals::{VitalCode, VitalValue};

use super::*;

const VITALS: &str = "/v1/trials/tw-demo/patients/P0001/vitals";

fn sample_body(name: &str) -> Value {
    let event: Value = serde_json::from_str(match name {
        "native" => include_str!("../../../../events/epro-post-vitals.json"),
        _ => include_str!("../../../../events/epro-post-vitals-fhir.json"),
    })
    .unwrap();
    serde_json::from_str(event["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn readings_are_202_and_queued_in_one_message_grouped_by_patient() {
    let w = world();
    let r = w.call("POST", VITALS, Some(patient("P0001")), Some(sample_body("native"))).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": 8}));
    let sent = w.queue.sent_vitals();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].group_id(), "tw-demo#P0001");
    assert_eq!(sent[0].readings.len(), 8);
    assert_eq!(w.queue.requests.get("sqs.SendMessageBatch"), 1);
}

#[tokio::test]
async fn a_retried_body_yields_the_same_dedup_id() {
    let w = world();
    w.call("POST", VITALS, Some(patient("P0001")), Some(sample_body("native"))).await;
    w.call("POST", VITALS, Some(patient("P0001")), Some(sample_body("native"))).await;
    let sent = w.queue.sent_vitals();
    assert_eq!(sent[0].dedup_id(), sent[1].dedup_id());
}

#[tokio::test]
async fn an_implausible_value_is_422_naming_the_reading() {
    let w = world();
    let mut body = sample_body("native");
    body["readings"][0]["value"] = json!(301);
    body["readings"][3]["unit"] = json!("kPa");
    let r = w.call("POST", VITALS, Some(patient("P0001")), Some(body)).await;
    assert_eq!(r.status, 422);
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["readings[0].value", "readings[3].unit"]);
    assert!(w.queue.sent_vitals().is_empty());
}

#[tokio::test]
async fn more_than_500_readings_or_none_is_422() {
    let w = world();
    let one = sample_body("native")["readings"][0].clone();
    for n in [0, 501] {
        let r = w.call("POST", VITALS, Some(patient("P0001")), Some(json!({"readings": vec![one.clone(); n]}))).await;
        assert_eq!(r.status, 422, "{n}");
        assert_eq!(r.body["errors"][0]["field"], "readings");
    }
    let r = w.call("POST", VITALS, Some(patient("P0001")), Some(json!({"readings": vec![one; 500]}))).await;
    assert_eq!(r.status, 202);
}

#[tokio::test]
async fn an_unknown_code_is_422_naming_the_field() {
    let w = world();
    let body = json!({"readings": [{"code": "glucose", "value": 5, "observedAt": "2026-11-26T19:00:00Z"}]});
    let r = w.call("POST", VITALS, Some(patient("P0001")), Some(body)).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "readings[0].code");
}

#[tokio::test]
async fn a_fhir_bundle_with_a_blood_pressure_panel_is_accepted() {
    let w = world();
    let r = w.call_fhir("POST", VITALS, Some(staff("[site-leeds]")), sample_body("fhir")).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": 5}));
    let readings = &w.queue.sent_vitals()[0].readings;
    let got: Vec<(VitalCode, VitalValue)> = readings.iter().map(|r| (r.code, r.value)).collect();
    assert_eq!(
        got,
        vec![
            (VitalCode::HeartRate, VitalValue::Number(91.0)),
            (VitalCode::Spo2, VitalValue::Number(94.0)),
            (VitalCode::Temperature, VitalValue::Number(37.9)),
            (VitalCode::SystolicBp, VitalValue::Number(124.0)),
            (VitalCode::DiastolicBp, VitalValue::Number(79.0)),
        ]
    );
    assert_eq!(readings[3].reading_id.as_str(), "wd-bp-1.sys");
}

#[tokio::test]
async fn a_single_fhir_observation_is_accepted_and_an_implausible_one_named() {
    let w = world();
    let obs = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "9279-1"}]},
        "effectiveDateTime": "2026-11-26T19:58:00Z", "valueQuantity": {"value": 22, "unit": "/min"}});
    assert_eq!(w.call_fhir("POST", VITALS, Some(patient("P0001")), obs.clone()).await.status, 202);
    let mut bad = obs;
    bad["valueQuantity"]["value"] = json!(120);
    let r = w.call_fhir("POST", VITALS, Some(patient("P0001")), bad).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "valueQuantity.value");
}

#[tokio::test]
async fn a_withdrawn_patients_readings_observed_after_the_withdrawal_are_422_naming_each_reading() {
    // GIVEN P0003, withdrawn before this change recorded withdrawal times (its update time stands in)
    let w = world();
    let r = w.call("POST", "/v1/trials/tw-demo/patients/P0003/vitals", Some(patient("P0003")), Some(sample_body("native"))).await;
    // THEN every reading, all observed weeks later, is named and nothing is queued
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 8);
    assert_eq!(r.body["errors"][0]["field"], "readings[0].observedAt");
    assert!(w.queue.sent_vitals().is_empty());
}

#[tokio::test]
async fn readings_observed_before_the_withdrawal_are_accepted_and_later_ones_are_named() {
    // GIVEN P0004 withdrew consent at 19:57:45
    let w = world();
    let mut e = enrolment("P0004", "site-leeds", EnrolmentStatus::Withdrawn);
    e.withdrawn_at = Some("2026-11-26T19:57:45.000Z".into());
    w.store.seed_enrolment(e);
    let path = "/v1/trials/tw-demo/patients/P0004/vitals";
    // WHEN its device uploads the sample: 19:56 and 19:57:30 readings (2 BP, temperature), the rest at 19:58
    let r = w.call("POST", path, Some(staff("site-leeds")), Some(sample_body("native"))).await;
    // THEN 422 names exactly the five readings observed after the withdrawal, and nothing is queued
    assert_eq!(r.status, 422, "{}", r.text);
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        ["readings[0].observedAt", "readings[1].observedAt", "readings[2].observedAt", "readings[6].observedAt", "readings[7].observedAt"]
    );
    assert!(w.queue.sent_vitals().is_empty());
    // WHEN only the readings observed before the withdrawal are sent THEN they are accepted for scoring
    let mut before = sample_body("native");
    let kept: Vec<Value> = before["readings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["observedAt"].as_str() < Some("2026-11-26T19:57:45Z"))
        .cloned()
        .collect();
    before["readings"] = json!(kept);
    let r = w.call("POST", path, Some(staff("site-leeds")), Some(before)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": 3}));
    assert_eq!(w.queue.sent_vitals()[0].readings.len(), 3);
}

#[tokio::test]
async fn a_completed_patients_vitals_are_still_409() {
    let w = world();
    w.store.seed_enrolment(enrolment("P0005", "site-leeds", EnrolmentStatus::Completed));
    let r = w.call("POST", "/v1/trials/tw-demo/patients/P0005/vitals", Some(staff("site-leeds")), Some(sample_body("native"))).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["type"], "https://trialwatch.dev/problems/patient-not-enrolled");
}

#[tokio::test]
async fn a_failed_send_is_503_with_retry_after() {
    let w = world();
    w.queue.fail_next("send_vitals", 1);
    let r = w.call("POST", VITALS, Some(patient("P0001")), Some(sample_body("native"))).await;
    assert_eq!(r.status, 503);
    assert!(r.headers.contains_key("retry-after"));
}
