//! The real handler with the production AWS adapters against the local
//! emulator. Requests are built from the sample events in `events/`. Each
//! test provisions its own uniquely prefixed table and queues from
//! `template.yaml`, so tests run in parallel.
//!
//! Needs AWS_ENDPOINT_URL (run `make test`); without it they fail loudly.
//!
//! The DynamoDB adapter is wrapped in [`Serial`], one request at a time,
//! because the emulator's transactions lack DynamoDB's isolation (see there).

#[path = "emulator_support/serial.rs"]
mod serial;

use std::time::Duration;

use serial::Serial;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};
use trialwatch::page::PageRequest;
use trialwatch::ports::{ReportFigures, SubmissionLedger};
use trialwatch::settings::Resources;
use trialwatch::vitals::VitalsMessage;
use trialwatch::{PatientId, SubmissionId, TrialId};

type EmulatorDeps = epro_api::Deps<
    Serial<trialwatch::aws::DynamoStore>,
    trialwatch::aws::SqsVitalsQueue,
    trialwatch::aws::SqsAlertQueue,
    trialwatch::clock::SystemClock,
>;

struct Stack {
    sdk: SdkConfig,
    resources: Resources,
    deps: EmulatorDeps,
}

async fn stack(label: &str) -> Stack {
    let sdk = trialwatch_provision::emulator_sdk_config().await;
    let prefix = trialwatch_provision::unique_prefix(label);
    let resources = trialwatch_provision::provision(&sdk, &trialwatch_provision::template_path(), &prefix)
        .await
        .unwrap_or_else(|e| panic!("provisioning {prefix} on the emulator failed: {e} (run `make test`)"));
    let store = Serial::new(trialwatch::aws::DynamoStore::new(&sdk, resources.table_name.clone(), resources.audit_table_name.clone()));
    let vitals = trialwatch::aws::SqsVitalsQueue::new(&sdk, resources.vitals_queue_url.clone());
    let alerts = trialwatch::aws::SqsAlertQueue::new(&sdk, resources.alert_queue_url.clone());
    let deps = epro_api::Deps::new(store, vitals, alerts, trialwatch::clock::SystemClock, Duration::from_secs(300));
    Stack { sdk, resources, deps }
}

fn sample(name: &str) -> Value {
    let text = match name {
        "put-trial" => include_str!("../../../events/epro-put-trial.json"),
        "put-patient" => include_str!("../../../events/epro-put-patient.json"),
        "post-submission" => include_str!("../../../events/epro-post-submission.json"),
        "post-vitals" => include_str!("../../../events/epro-post-vitals.json"),
        "get-patient" => include_str!("../../../events/epro-get-patient.json"),
        other => panic!("no sample event {other}"),
    };
    serde_json::from_str(text).unwrap()
}

/// A sample event with its patient (path, path parameter and, for a patient's token, claim) and body replaced.
fn event(name: &str, patient: &str, body: Option<Value>) -> lambda_http::Request {
    let mut e = sample(name);
    let path = e["rawPath"].as_str().unwrap().replace("P0001", patient);
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    // API Gateway sends the ids as path parameters; the function reads them there.
    e["pathParameters"]["patientId"] = json!(patient);
    let claims = &mut e["requestContext"]["authorizer"]["jwt"]["claims"];
    if claims.get("patient_id").is_some() {
        claims["patient_id"] = json!(patient);
    }
    if let Some(b) = body {
        e["body"] = json!(b.to_string());
    }
    let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(e).unwrap();
    lambda_http::Request::from(lambda)
}

fn sample_body(name: &str) -> Value {
    serde_json::from_str(sample(name)["body"].as_str().unwrap()).unwrap()
}

async fn call(s: &Stack, req: lambda_http::Request) -> (u16, Value) {
    let r = epro_api::handle(&s.deps, req).await;
    let status = r.status().as_u16();
    (status, serde_json::from_slice(r.body()).unwrap_or(Value::Null))
}

/// GIVEN trial tw-demo from the sample event, P0001 enrolled at site-leeds,
/// P0002 enrolled at site-york and P0003 withdrawn at site-leeds.
async fn seeded(label: &str) -> Stack {
    let s = stack(label).await;
    let (status, body) = call(&s, event("put-trial", "P0001", None)).await;
    assert_eq!(status, 201, "{body}");
    for (p, site, status) in [("P0001", "site-leeds", "enrolled"), ("P0002", "site-york", "enrolled"), ("P0003", "site-leeds", "withdrawn")]
    {
        let (code, body) = call(&s, event("put-patient", p, Some(json!({"siteId": site, "status": status, "reason": "seeded"})))).await;
        assert_eq!(code, 201, "{p}: {body}");
    }
    s
}

fn submission_body(id: &str, completed_at: &str) -> Value {
    let mut b = sample_body("post-submission");
    b["submissionId"] = json!(id);
    b["completedAt"] = json!(completed_at);
    b
}

fn minute_ago() -> String {
    (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Entries about `entity` in the chains of the patients these tests submit for.
async fn audit_entries(s: &Stack, entity: &str) -> usize {
    let client = aws_sdk_dynamodb::Client::new(&s.sdk);
    let mut n = 0;
    for patient in ["P0001", "P0003"] {
        let out = client
            .query()
            .table_name(&s.resources.audit_table_name)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("CHAIN#tw-demo#patient/{patient}")))
            .send()
            .await
            .unwrap();
        n += out.items().iter().filter(|i| i.get("entity").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(entity)).count();
    }
    n
}

async fn day_count(s: &Stack, day: chrono::NaiveDate) -> u64 {
    s.deps.store().daily_counts(&TrialId::parse("tw-demo").unwrap(), day, day).await.unwrap().iter().map(|c| c.submissions).sum()
}

fn trial_day(at: &str) -> chrono::NaiveDate {
    let t: chrono::DateTime<Utc> = at.parse().unwrap();
    t.with_timezone(&trialwatch::zone::Zone::parse("Europe/London").unwrap()).date_naive()
}

#[tokio::test]
async fn the_submission_transaction_writes_its_four_parts_or_none() {
    let s = seeded("epro-txn").await;
    let at = minute_ago();
    let day = trial_day(&at);

    // WHEN a withdrawn patient submits
    let refused = uuid::Uuid::new_v4().to_string();
    let (status, body) = call(&s, event("post-submission", "P0003", Some(submission_body(&refused, &at)))).await;
    // THEN 409 and none of the four parts exists
    assert_eq!(status, 409, "{body}");
    assert!(body["type"].as_str().unwrap().ends_with("/patient-not-enrolled"));
    let refused_id = SubmissionId::parse(&refused).unwrap();
    let (tw, p1, p3) = (TrialId::parse("tw-demo").unwrap(), PatientId::parse("P0001").unwrap(), PatientId::parse("P0003").unwrap());
    assert_eq!(s.deps.store().get_submission(&tw, &p3, &refused_id).await.unwrap(), None, "submission");
    assert_eq!(audit_entries(&s, &format!("submission/{refused}")).await, 0, "audit entry");
    assert_eq!(day_count(&s, day).await, 0, "counter");
    // AND the guard was not written: the same id is still free for an enrolled patient
    let (status, body) = call(&s, event("post-submission", "P0001", Some(submission_body(&refused, &at)))).await;
    assert_eq!(status, 201, "the idempotency guard of a refused submission must not exist: {body}");

    // THEN all four parts of that accepted submission exist
    assert!(s.deps.store().get_submission(&tw, &p1, &refused_id).await.unwrap().is_some(), "submission");
    assert_eq!(audit_entries(&s, &format!("submission/{refused}")).await, 1, "audit entry");
    assert_eq!(day_count(&s, day).await, 1, "counter");
    let (status, again) = call(&s, event("post-submission", "P0001", Some(submission_body(&refused, &at)))).await;
    assert_eq!((status, &again), (200, &body), "guard: an identical replay returns the original receipt");
    // AND the patient's summary counts it once
    let (_, patient) = call(&s, event("get-patient", "P0001", None)).await;
    assert_eq!(patient["submissions"]["count"], 1, "{patient}");
}

#[tokio::test]
async fn twenty_concurrent_duplicate_submissions_store_exactly_one() {
    let s = seeded("epro-dupes").await;
    let at = minute_ago();
    let id = uuid::Uuid::new_v4().to_string();
    let body = submission_body(&id, &at);
    // WHEN 20 identical requests race
    let replies = futures::future::join_all((0..20).map(|_| call(&s, event("post-submission", "P0001", Some(body.clone()))))).await;
    // THEN exactly one created it; the rest replayed it (or were asked to retry)
    let created = replies.iter().filter(|(code, _)| *code == 201).count();
    assert_eq!(created, 1, "{:?}", replies.iter().map(|r| r.0).collect::<Vec<_>>());
    for (code, reply) in &replies {
        assert!(matches!(code, 200 | 201 | 503), "{code}: {reply}");
        if *code == 200 {
            assert_eq!(reply["submissionId"], json!(id));
        }
    }
    // AND one submission, one counter increment, one audit entry are stored
    let (t, p) = (TrialId::parse("tw-demo").unwrap(), PatientId::parse("P0001").unwrap());
    let page = s.deps.store().list_submissions(&t, &p, &PageRequest::first(50)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(day_count(&s, trial_day(&at)).await, 1);
    assert_eq!(audit_entries(&s, &format!("submission/{id}")).await, 1);
}

#[tokio::test]
async fn vitals_land_on_the_fifo_queue_grouped_by_trial_and_patient() {
    let s = seeded("epro-vitals").await;
    let mut body = sample_body("post-vitals");
    let at = minute_ago();
    for r in body["readings"].as_array_mut().unwrap() {
        r["observedAt"] = json!(at);
    }
    // WHEN P0001 posts readings, and site-york staff post the same for P0002
    let (a, reply_a) = call(&s, event("post-vitals", "P0001", Some(body.clone()))).await;
    assert_eq!(a, 202, "{reply_a}");
    let mut e2 = sample("post-vitals");
    e2["rawPath"] = json!("/v1/trials/tw-demo/patients/P0002/vitals");
    e2["requestContext"]["http"]["path"] = e2["rawPath"].clone();
    e2["pathParameters"]["patientId"] = json!("P0002");
    e2["requestContext"]["authorizer"]["jwt"]["claims"] =
        json!({"sub": "s-york", "role": "site_staff", "site_ids": "site-york", "trial_ids": "tw-demo"});
    e2["body"] = json!(body.to_string());
    let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(e2).unwrap();
    let (b, reply_b) = call(&s, lambda_http::Request::from(lambda)).await;
    assert_eq!(b, 202, "{reply_b}");

    // THEN each patient's message is on the queue with its group id
    let sqs = aws_sdk_sqs::Client::new(&s.sdk);
    let mut seen = Vec::new();
    for _ in 0..10 {
        let out = sqs
            .receive_message()
            .queue_url(&s.resources.vitals_queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            let group = m
                .attributes()
                .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId))
                .cloned()
                .unwrap_or_default();
            let msg: VitalsMessage = serde_json::from_str(m.body().unwrap()).unwrap();
            assert_eq!(group, msg.group_id());
            seen.push((group, msg.readings.len()));
        }
        if seen.len() >= 2 {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, vec![("tw-demo#P0001".to_owned(), 8), ("tw-demo#P0002".to_owned(), 8)]);
}

#[tokio::test]
async fn a_decimal_answer_beyond_dynamodbs_number_range_is_422_not_500() {
    // GIVEN a trial whose decimal item `weight` has no bounds, and P0001 enrolled
    let s = stack("epro-number").await;
    let mut trial = sample_body("put-trial");
    for item in trial["questionnaires"][0]["items"].as_array_mut().unwrap() {
        let item = item.as_object_mut().unwrap();
        item.remove("min");
        item.remove("max");
    }
    let (status, body) = call(&s, event("put-trial", "P0001", Some(trial))).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(&s, event("put-patient", "P0001", Some(json!({"siteId": "site-leeds", "status": "enrolled"})))).await;
    assert_eq!(status, 201, "{body}");
    // AND the table itself refuses that number, as DynamoDB does: before the
    // check, this is what turned the request into a 500
    let refused = aws_sdk_dynamodb::Client::new(&s.sdk)
        .put_item()
        .table_name(&s.resources.table_name)
        .item("pk", AttributeValue::S("PROBE#number".into()))
        .item("sk", AttributeValue::S("PROBE".into()))
        .item("n", AttributeValue::N("1e130".into()))
        .send()
        .await;
    let err = refused.expect_err("the emulator enforces DynamoDB's number range");
    assert!(format!("{:?}", err.into_service_error()).contains("Number overflow"));

    // WHEN the patient answers weight = 1e130
    let id = uuid::Uuid::new_v4().to_string();
    let mut answers = submission_body(&id, &minute_ago());
    answers["answers"][2] = json!({"linkId": "weight", "value": 1e130});
    let (status, body) = call(&s, event("post-submission", "P0001", Some(answers))).await;
    // THEN 422 naming the answer, and nothing is stored
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "answers[2].value", "{body}");
    let (tw, p1) = (TrialId::parse("tw-demo").unwrap(), PatientId::parse("P0001").unwrap());
    assert_eq!(s.deps.store().get_submission(&tw, &p1, &SubmissionId::parse(&id).unwrap()).await.unwrap(), None);
}
