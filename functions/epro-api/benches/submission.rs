//! Handler CPU per 20-item ePRO submission, excluding I/O (in-memory adapters,
//! warm caches), and the AWS requests one submission costs.
//!
//! Budgets (ARCHITECTURE.md): <= 20 µs of handler CPU; 1 DynamoDB request
//! (the TransactWriteItems) + at most 1 SQS request.
//!
//! Run: `cargo bench -p epro-api --bench submission`

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};
use trialwatch::clock::FakeClock;
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::memory::{MemoryQueue, MemoryStore};
use trialwatch::trial::{Trial, TrialDefinition};
use trialwatch::{PatientId, SiteId, TrialId};

const ITEMS: usize = 20;

/// A trial whose questionnaire has 20 items of every type, and one PRO rule.
fn trial() -> Trial {
    let items: Vec<Value> = (0..ITEMS)
        .map(|i| match i % 5 {
            0 => json!({"linkId": format!("q{i}"), "type": "integer", "min": 0, "max": 10, "required": true}),
            1 => json!({"linkId": format!("q{i}"), "type": "decimal", "min": 0, "max": 300}),
            2 => json!({"linkId": format!("q{i}"), "type": "choice", "options": [0, 1, 2, 3, 4]}),
            3 => json!({"linkId": format!("q{i}"), "type": "boolean"}),
            _ => json!({"linkId": format!("q{i}"), "type": "string", "maxLength": 200}),
        })
        .collect();
    let def: TrialDefinition = serde_json::from_value(json!({
        "name": "Bench", "sites": [{"id": "site-leeds", "name": "Leeds"}],
        "questionnaires": [{"id": "q20", "version": "1", "items": items}],
        "timezone": "Europe/London",
        "alerting": {"proRules": [{"questionnaireId": "q20", "linkId": "q0", "atLeast": 8, "level": "medium"}]}
    }))
    .unwrap();
    Trial { trial_id: TrialId::parse("tw-bench").unwrap(), definition: def, updated_at: "2026-11-01T00:00:00.000Z".into() }
}

fn body(id: &str, q0: i64) -> Vec<u8> {
    let answers: Vec<Value> = (0..ITEMS)
        .map(|i| {
            let value = match i % 5 {
                0 if i == 0 => json!(q0),
                0 => json!(5),
                1 => json!(72.5),
                2 => json!(3),
                3 => json!(true),
                _ => json!("felt fine today"),
            };
            json!({"linkId": format!("q{i}"), "value": value})
        })
        .collect();
    serde_json::to_vec(&json!({"submissionId": id, "questionnaireId": "q20", "questionnaireVersion": "1",
        "completedAt": "2026-11-26T19:00:00Z", "answers": answers}))
    .unwrap()
}

fn request(bytes: Vec<u8>) -> lambda_http::Request {
    let event = json!({
        "version": "2.0", "routeKey": "$default",
        "rawPath": "/v1/trials/tw-bench/patients/P0001/submissions", "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "api.trialwatch.example"},
        "requestContext": {"accountId": "1", "apiId": "a", "domainName": "api.trialwatch.example", "requestId": "r", "stage": "$default", "timeEpoch": 0,
            "http": {"method": "POST", "path": "/v1/trials/tw-bench/patients/P0001/submissions", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1", "userAgent": "b"},
            "authorizer": {"jwt": {"claims": {"sub": "u", "role": "patient", "patient_id": "P0001", "trial_ids": "tw-bench"}, "scopes": null}}},
        "body": String::from_utf8(bytes).unwrap(), "isBase64Encoded": false
    });
    let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
    lambda_http::Request::from(lambda)
}

type BenchDeps = epro_api::Deps<MemoryStore, MemoryQueue, MemoryQueue, Arc<FakeClock>>;

fn deps() -> (BenchDeps, Arc<MemoryStore>, Arc<MemoryQueue>) {
    let store = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::new());
    store.seed_trial(trial());
    store.seed_enrolment(Enrolment {
        trial_id: TrialId::parse("tw-bench").unwrap(),
        patient_id: PatientId::parse("P0001").unwrap(),
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
    let clock = Arc::new(FakeClock::at("2026-11-26T20:00:00Z"));
    (epro_api::Deps::from_shared(store.clone(), queue.clone(), queue.clone(), clock, Duration::from_secs(3600)), store, queue)
}

fn submission(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (deps, store, queue) = deps();

    // Warm the caches, then count one submission's AWS requests (one that fires a PRO rule).
    let warm = rt.block_on(epro_api::handle(&deps, request(body(&uuid::Uuid::new_v4().to_string(), 1))));
    assert_eq!(warm.status(), 201);
    store.requests.reset();
    queue.requests.reset();
    let r = rt.block_on(epro_api::handle(&deps, request(body(&uuid::Uuid::new_v4().to_string(), 9))));
    assert_eq!(r.status(), 201);
    println!(
        "AWS requests per submission (warm, PRO rule fired): dynamodb={} {:?}, sqs={} {:?}",
        store.requests.service_total("dynamodb"),
        store.requests.snapshot(),
        queue.requests.service_total("sqs"),
        queue.requests.snapshot()
    );

    // The request is built outside the timed section (lambda_runtime does
    // that before the handler runs); the in-memory store's own work is inside,
    // but not its growth: what it stored is dropped between iterations, as a
    // real client holds nothing after the write.
    c.bench_function("submission_20_items_handler_cpu", |b| {
        b.iter_batched(
            || {
                store.forget_submissions();
                request(body(&uuid::Uuid::new_v4().to_string(), 1))
            },
            |req| {
                let r = rt.block_on(epro_api::handle(&deps, req));
                debug_assert_eq!(r.status(), 201);
                r
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = submission
}
criterion_main!(benches);
