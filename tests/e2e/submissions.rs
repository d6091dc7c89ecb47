use serde_json::json;
use trialwatch_e2e::{World, TRIAL};
use trialwatch_local::scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_is_read_back_as_stored_and_its_replay_is_200_with_the_same_receipt() {
    // GIVEN an enrolled patient
    let w = World::start("e2e-submit").await;
    let p = w.enrol(0).await;
    let token = w.patient(&p);
    let id = uuid::Uuid::new_v4().to_string();
    let completed_at = chrono::Utc::now() - chrono::Duration::minutes(5);
    let body = scenario::submission(&id, completed_at, 7, 4);
    let path = format!("/v1/trials/{TRIAL}/patients/{p}/submissions");

    // WHEN the patient submits
    let first = w.post(&path, &token, &body).await;

    // THEN it is created, and reads back with the answers as sent
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["submissionId"], id);
    let list = w.get(&path, &token).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let items = list.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    let stored = &items[0];
    assert_eq!(stored["submissionId"], id);
    assert_eq!(stored["siteId"], scenario::site_of(0));
    assert_eq!(stored["questionnaireId"], scenario::QUESTIONNAIRE);
    let sent = body["answers"].as_array().expect("answers");
    let got = stored["answers"].as_array().expect("answers");
    assert_eq!(got.len(), sent.len());
    for a in sent {
        let back = got.iter().find(|g| g["linkId"] == a["linkId"]).unwrap_or_else(|| panic!("{} missing", a["linkId"]));
        match (a["value"].as_f64(), back["value"].as_f64()) {
            (Some(x), Some(y)) => assert!((x - y).abs() < 1e-9, "{}: {x} != {y}", a["linkId"]),
            _ => assert_eq!(back["value"], a["value"], "{}", a["linkId"]),
        }
    }

    // AND the patient view counts it
    let patient = w.get(&format!("/v1/trials/{TRIAL}/patients/{p}"), &token).await;
    assert_eq!(patient.status, 200, "{}", patient.body);
    assert_eq!(patient.body["submissions"]["count"], 1);

    // WHEN the client retries the identical body THEN 200 with the original receipt
    let replay = w.post(&path, &token, &body).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.body["receivedAt"], first.body["receivedAt"]);

    // WHEN the same id comes with a different body THEN 409
    let other = scenario::submission(&id, completed_at, 8, 5);
    let conflict = w.post(&path, &token, &other).await;
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    assert_eq!(w.get(&path, &token).await.body["items"].as_array().map(Vec::len), Some(1));
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_cannot_submit_for_another_patient_and_bad_input_is_a_field_level_4xx() {
    let w = World::start("e2e-scope").await;
    let (p0, p1) = (w.enrol(0).await, w.enrol(1).await);
    let body = scenario::submission(&uuid::Uuid::new_v4().to_string(), chrono::Utc::now(), 1, 1);

    // A patient's token does not reach another patient's data.
    let other = w.post(&format!("/v1/trials/{TRIAL}/patients/{p1}/submissions"), &w.patient(&p0), &body).await;
    assert_eq!(other.status, 403, "{}", other.body);

    // Out-of-range answers are refused naming the field, never a 5xx.
    let mut bad = body.clone();
    bad["answers"][0]["value"] = json!(11);
    let r = w.post(&format!("/v1/trials/{TRIAL}/patients/{p0}/submissions"), &w.patient(&p0), &bad).await;
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.body);
    let fields: Vec<String> =
        r.body["errors"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect();
    assert!(!fields.is_empty(), "no field-level errors in {}", r.body);
    w.shutdown().await;
}
