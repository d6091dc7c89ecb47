//! Vitals ingest: validation, FIFO packing, FHIR input, failures.

use serde_json::json;
use trialwatch::news2::{self, RiskLevel, Spo2Scale};
use trialwatch::vitals::{merge_latest, LatestVitals, VitalCode, VitalValue};

use super::*;

const VITALS: &str = "/v1/trials/tw-demo/patients/P0001/vitals";

fn sample_body(name: &str) -> Value {
    let event: Value = serde_json::from_str(match name {
        "native" => include_str!("../../../../events/epro-post-vitals.json"),
        "fhir-news2" => include_str!("../../../../events/epro-post-vitals-fhir-news2.json"),
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

/// The NEWS2 of everything one world queued, scored at NOW.
fn queued_news2(w: &World) -> news2::News2Result {
    let mut latest = LatestVitals::new();
    for m in w.queue.sent_vitals() {
        merge_latest(&mut latest, &m.readings);
    }
    news2::score(&latest, Spo2Scale::Scale1, NOW.parse().unwrap(), chrono::Duration::hours(1))
}

#[tokio::test]
async fn a_full_fhir_news2_panel_scores_the_same_as_its_native_json() {
    // GIVEN all seven NEWS2 parameters as a FHIR Bundle coded per NHS England's
    // FHIR-NEWS2 guidance (LOINC and SNOMED CT, air-or-oxygen code-only, ACVPU coded)
    let fhir = world();
    let r = fhir.call_fhir("POST", VITALS, Some(patient("P0001")), sample_body("fhir-news2")).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body, json!({"accepted": 8}));
    // AND the same readings in native JSON
    let native = world();
    let body = json!({"readings": [
        {"code": "respiratory_rate", "value": 22, "observedAt": "2026-11-26T19:58:00Z"},
        {"code": "spo2", "value": 95, "observedAt": "2026-11-26T19:58:00Z"},
        {"code": "supplemental_oxygen", "value": true, "observedAt": "2026-11-26T19:58:00Z"},
        {"code": "systolic_bp", "value": 105, "observedAt": "2026-11-26T19:57:30Z"},
        {"code": "diastolic_bp", "value": 70, "observedAt": "2026-11-26T19:57:30Z"},
        {"code": "heart_rate", "value": 95, "observedAt": "2026-11-26T19:58:00Z"},
        {"code": "consciousness", "value": "C", "observedAt": "2026-11-26T19:58:00Z"},
        {"code": "temperature", "value": 38.5, "observedAt": "2026-11-26T19:56:00Z"}
    ]});
    assert_eq!(native.call("POST", VITALS, Some(patient("P0001")), Some(body)).await.status, 202);
    // WHEN both are scored
    let (from_fhir, from_native) = (queued_news2(&fhir), queued_news2(&native));
    // THEN the score, level and every component agree, and nothing is missing
    assert_eq!(from_fhir, from_native);
    assert!(from_fhir.missing.is_empty(), "{:?}", from_fhir.missing);
    assert_eq!(from_fhir.components.len(), 7);
    // RR 22 (2) + SpO2 95 (1) + oxygen (2) + systolic 105 (1) + pulse 95 (1) + C (3) + 38.5 °C (1)
    assert_eq!((from_fhir.score, from_fhir.risk_level), (11, RiskLevel::High));
}

#[tokio::test]
async fn air_or_oxygen_and_acvpu_are_read_from_their_snomed_codes() {
    let w = world();
    let snomed = |code: &str| json!({"coding": [{"system": "http://snomed.info/sct", "code": code}]});
    let obs = |code: &str| {
        json!({"resourceType": "Observation", "status": "final", "code": snomed(code),
        "subject": {"reference": "Patient/P0001"}, "effectiveDateTime": "2026-11-26T19:58:00Z"})
    };
    let mut cases = vec![
        (obs("722742002"), VitalCode::SupplementalOxygen, json!(false)),
        (obs("371825009"), VitalCode::SupplementalOxygen, json!(true)),
    ];
    for (level, code) in [("A", "248234008"), ("C", "130987000"), ("V", "300202002"), ("P", "450847001"), ("U", "422768004")] {
        let mut o = obs("1104441000000107");
        o["valueCodeableConcept"] = snomed(code);
        cases.push((o, VitalCode::Consciousness, json!(level)));
    }
    for (o, vital, value) in cases {
        w.queue.clear();
        let r = w.call_fhir("POST", VITALS, Some(patient("P0001")), o.clone()).await;
        assert_eq!(r.status, 202, "{o}: {}", r.text);
        let sent = &w.queue.sent_vitals()[0].readings[0];
        assert_eq!((sent.code, serde_json::to_value(sent.value).unwrap()), (vital, value), "{o}");
    }
    // AND an unknown ACVPU level, or a value on the code-only observation, is 422 naming it
    let mut bad = obs("1104441000000107");
    bad["valueCodeableConcept"] = snomed("12345");
    let r = w.call_fhir("POST", VITALS, Some(patient("P0001")), bad).await;
    assert_eq!((r.status, r.body["errors"][0]["field"].as_str()), (422, Some("valueCodeableConcept")));
    let mut valued = obs("371825009");
    valued["valueBoolean"] = json!(false);
    let r = w.call_fhir("POST", VITALS, Some(patient("P0001")), valued).await;
    assert_eq!((r.status, r.body["errors"][0]["field"].as_str()), (422, Some("valueBoolean")));
}

#[tokio::test]
async fn an_observation_about_another_patient_is_422_naming_the_subject() {
    let w = world();
    // GIVEN a single Observation about P0002 posted under P0001
    let mut obs = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "subject": {"reference": "Patient/P0002"},
        "effectiveDateTime": "2026-11-26T19:58:00Z", "valueQuantity": {"value": 80, "unit": "/min"}});
    let r = w.call_fhir("POST", VITALS, Some(patient("P0001")), obs.clone()).await;
    // THEN 422 naming subject.reference
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"][0]["field"], "subject.reference");
    // AND a subject that cannot be checked (identifier only) is refused too
    obs["subject"] = json!({"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}});
    let r = w.call_fhir("POST", VITALS, Some(patient("P0001")), obs.clone()).await;
    assert_eq!((r.status, r.body["errors"][0]["field"].as_str()), (422, Some("subject.reference")));
    // AND no subject at all is filed under the path's patient
    obs.as_object_mut().unwrap().remove("subject");
    assert_eq!(w.call_fhir("POST", VITALS, Some(patient("P0001")), obs).await.status, 202);

    // GIVEN a Bundle whose fourth entry is about another patient
    w.queue.clear();
    let mut bundle = sample_body("fhir-news2");
    bundle["entry"][3]["resource"]["subject"]["reference"] = json!("https://fhir.example.nhs.uk/Patient/P0002");
    let r = w.call_fhir("POST", VITALS, Some(patient("P0001")), bundle).await;
    // THEN 422 naming that entry's subject, and nothing of the bundle is queued
    assert_eq!(r.status, 422, "{}", r.text);
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["entry[3].resource.subject.reference"]);
    assert!(w.queue.sent_vitals().is_empty());
}

#[tokio::test]
async fn a_vital_value_dynamodb_cannot_hold_is_422_naming_it() {
    // GIVEN a respiratory rate of 1e-200: inside the plausible 0-80, below DynamoDB's 1e-130
    let w = world();
    let body = json!({"readings": [{"code": "respiratory_rate", "value": 1e-200, "observedAt": "2026-11-26T19:00:00Z"}]});
    let r = w.call("POST", VITALS, Some(patient("P0001")), Some(body)).await;
    // THEN 422 naming it, rather than a record the analyzer can never store
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"][0]["field"], "readings[0].value");
    assert!(w.queue.sent_vitals().is_empty());
}

#[tokio::test]
async fn a_fhir_array_in_place_of_an_object_is_422_naming_it() {
    // GIVEN a valid Observation, then serde's positional (array) form of one of its elements,
    // which a derived reader took field by field (22 /min, read from [22, "/min"])
    let obs = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "9279-1"}]}, "subject": {"reference": "Patient/P0001"},
        "effectiveDateTime": "2026-11-26T19:58:00Z", "valueQuantity": {"value": 22, "unit": "/min"}});
    assert_eq!(world().call_fhir("POST", VITALS, Some(patient("P0001")), obs.clone()).await.status, 202);
    // The field the error names, and the edit that puts an array where its object belongs.
    type Case = (&'static str, fn(&mut serde_json::Value));
    let cases: [Case; 5] = [
        ("valueQuantity", |o| o["valueQuantity"] = json!([22, "/min"])),
        ("code", |o| o["code"] = json!([[{"system": "http://loinc.org", "code": "9279-1"}]])),
        ("code.coding[0]", |o| o["code"]["coding"][0] = json!(["http://loinc.org", "9279-1"])),
        ("subject", |o| o["subject"] = json!(["Patient/P0001"])),
        ("entry[0]", |o| *o = json!({"resourceType": "Bundle", "entry": [[o.take()]]})),
    ];
    for (field, positional) in cases {
        let mut body = obs.clone();
        positional(&mut body);
        // WHEN it is posted
        let w = world();
        let r = w.call_fhir("POST", VITALS, Some(patient("P0001")), body).await;
        // THEN 422 naming the element, and nothing is queued
        assert_eq!(r.status, 422, "{field}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], field, "{}", r.text);
        assert!(w.queue.sent_vitals().is_empty(), "{field}");
    }
}
