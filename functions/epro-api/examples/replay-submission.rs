//! Replays an API Gateway (HTTP API, payload v2) event through the real
//! handler (router, claims, validation, use case) on the in-memory adapters
//! and prints the handler's CPU time per request:
//!
//! ```text
//! cargo run --profile bench -p epro-api --example replay-submission -- <apigw-event.json> [iterations]
//! ```
//!
//! The world is seeded from the event: the trial and patient of its path
//! parameters, the patient enrolled (at the site the claims name, if any) a
//! month before, and, for a native submission body, a questionnaire with one
//! required item per answer, typed by the answer's JSON type. The clock is
//! the event's `requestContext.timeEpoch`.
//!
//! A submission is idempotent on its `submissionId`, so replaying the same
//! body measures the 200 replay path. For a body with a `submissionId`, each
//! iteration gets its own id (the body rewritten outside the timed section),
//! so every iteration measures the accept path (201); the statuses are
//! printed. One request first warms the caches (trial, enrolment), as a warm
//! Lambda has them; the store forgets stored submissions between iterations
//! (outside the timed section), as no real client holds what it wrote.
//!
//! Only `handle` is timed, as thread CPU time (`CLOCK_THREAD_CPUTIME_ID`); the
//! request is built before, as `lambda_runtime` builds it before the handler
//! runs. No tracing subscriber is installed: log formatting is not measured.
//! For instruction counts, the timed call is one symbol callgrind can toggle on:
//! `valgrind --tool=callgrind --toggle-collect='replay::timed*' target/release/examples/replay <event.json> 50`.
//! The in-memory store builds the DynamoDB requests the AWS adapter would
//! send (the submission's TransactWriteItems, its items), so the figure is
//! the handler's CPU on AWS less the HTTP and the SDK's JSON.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use trialwatch::clock::FakeClock;
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::memory::{MemoryQueue, MemoryStore};
use trialwatch::trial::Trial;
use trialwatch::{PatientId, SiteId, TrialId};

/// The Lambda binary's allocator (`src/main.rs`), so the replay measures what runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type MemDeps = epro_api::Deps<MemoryStore, MemoryQueue, MemoryQueue, Arc<FakeClock>>;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One required item per answer of a native submission body, typed by the answer.
fn questionnaire(body: &Value) -> Option<Value> {
    let items: Vec<Value> = body
        .get("answers")?
        .as_array()?
        .iter()
        .filter_map(|a| {
            let link_id = a.get("linkId")?.as_str()?;
            Some(match a.get("value")? {
                Value::Bool(_) => json!({"linkId": link_id, "type": "boolean", "required": true}),
                Value::String(_) => json!({"linkId": link_id, "type": "string", "maxLength": 500, "required": true}),
                Value::Number(n) if n.is_i64() => json!({"linkId": link_id, "type": "integer", "min": 0, "max": 1000, "required": true}),
                Value::Number(_) => json!({"linkId": link_id, "type": "decimal", "min": 0, "max": 1000, "required": true}),
                _ => return None,
            })
        })
        .collect();
    Some(json!({
        "id": body.get("questionnaireId")?.as_str()?,
        "version": body.get("questionnaireVersion")?.as_str()?,
        "items": items
    }))
}

fn seeded(trial: &TrialId, patient: &PatientId, site: &SiteId, body: Option<&Value>, now: DateTime<Utc>) -> MemDeps {
    let store = Arc::new(MemoryStore::new());
    let questionnaires: Vec<Value> = body.and_then(questionnaire).into_iter().collect();
    let trial_json: Trial = serde_json::from_value(json!({
        "trialId": trial.as_str(), "name": "replay", "sites": [{"id": site.as_str(), "name": "Replay"}],
        "questionnaires": questionnaires, "timezone": "Europe/London",
        "updatedAt": "2026-01-01T00:00:00.000Z"
    }))
    .expect("the seeded trial");
    store.seed_trial(trial_json);
    let enrolled_at = trialwatch::timestamp::format(now - chrono::Duration::days(30));
    store.seed_enrolment(Enrolment {
        trial_id: trial.clone(),
        patient_id: patient.clone(),
        site_id: site.clone(),
        status: EnrolmentStatus::Enrolled,
        hypercapnic: false,
        enrolled_at: enrolled_at.clone(),
        updated_at: enrolled_at,
        submission_count: 0,
        last_submission_at: None,
        withdrawn_at: None,
        audit_head: Default::default(),
    });
    let clock = Arc::new(FakeClock::at(&now.to_rfc3339()));
    let queue = Arc::new(MemoryQueue::new());
    epro_api::Deps::from_shared(store, queue.clone(), queue, clock, Duration::from_secs(3600))
}

/// The event with its body's `submissionId` replaced by the `n`th distinct id.
fn distinct(event: &Value, body: Option<&Value>, n: u64) -> Value {
    let mut event = event.clone();
    if let Some(mut body) = body.filter(|b| b.get("submissionId").is_some()).cloned() {
        body["submissionId"] = json!(format!("00000000-0000-4000-8000-{:012x}", n + 1));
        event["body"] = json!(body.to_string());
    }
    event
}

fn request(event: &Value) -> lambda_http::Request {
    let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(event.clone()).expect("an API Gateway v2 event");
    lambda_http::Request::from(lambda)
}

/// The handler's call alone: not inlined, so callgrind counts exactly it.
#[inline(never)]
fn timed(rt: &tokio::runtime::Runtime, deps: &MemDeps, req: lambda_http::Request) -> trialwatch::edge::http::respond::HttpResponse {
    rt.block_on(epro_api::handle(deps, req))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| {
        eprintln!("usage: replay <apigw-event.json> [iterations]");
        std::process::exit(2)
    });
    let iterations: u64 = args.next().map(|n| n.parse().expect("iterations: a number")).unwrap_or(2001).max(1);
    let event: Value = serde_json::from_slice(&std::fs::read(&path).expect("read the event file")).expect("JSON");
    let param = |name: &str| event["pathParameters"][name].as_str().map(str::to_owned);
    let trial = TrialId::parse(&param("trialId").unwrap_or_else(|| "tw-replay".into())).expect("trialId");
    let patient = PatientId::parse(&param("patientId").unwrap_or_else(|| "P0001".into())).expect("patientId");
    // A staff caller's site (`trialId/siteId` pairs, or one bare site id).
    let site = event["requestContext"]["authorizer"]["jwt"]["claims"]["site_ids"]
        .as_str()
        .and_then(|s| s.split(',').map(|p| p.rsplit('/').next().unwrap_or(p)).next().map(str::to_owned))
        .unwrap_or_else(|| "site-replay".into());
    let site = SiteId::parse(&site).expect("site id");
    let body: Option<Value> = event["body"].as_str().and_then(|b| serde_json::from_str(b).ok());
    let now = event["requestContext"]["timeEpoch"]
        .as_i64()
        .filter(|ms| *ms > 0)
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_else(Utc::now);

    let deps = seeded(&trial, &patient, &site, body.as_ref(), now);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let warm = rt.block_on(epro_api::handle(&deps, request(&distinct(&event, body.as_ref(), iterations))));
    let store: &MemoryStore = deps.store();
    let queue: &MemoryQueue = deps.alert_queue();

    let mut samples = Vec::with_capacity(iterations as usize);
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for n in 0..iterations {
        store.forget_submissions();
        store.requests.reset();
        queue.requests.reset();
        let req = request(&distinct(&event, body.as_ref(), n));
        let started = thread_cpu();
        let response = timed(&rt, &deps, req);
        samples.push(thread_cpu() - started);
        *statuses.entry(response.status().as_u16()).or_default() += 1;
    }
    samples.sort();
    let q = |f: f64| samples[((samples.len() - 1) as f64 * f).round() as usize].as_secs_f64() * 1e6;
    let answers = body.as_ref().and_then(|b| b["answers"].as_array()).map_or(0, Vec::len);
    println!(
        "{path}: {} {} ({answers} answers); warm-up {}; {iterations} iterations",
        event["requestContext"]["http"]["method"].as_str().unwrap_or("?"),
        event["rawPath"].as_str().unwrap_or("?"),
        warm.status().as_u16()
    );
    println!("handler CPU per request: median {:.1} µs (p25 {:.1}, p75 {:.1}, min {:.1})", q(0.5), q(0.25), q(0.75), q(0.0));
    println!("statuses {statuses:?}; last request's AWS requests {:?} + {:?}", store.requests.snapshot(), queue.requests.snapshot());
}
