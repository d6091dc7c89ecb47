//! Replays an SQS event through the real handler on the in-memory adapters
//! and prints the handler's CPU time per batch:
//!
//! ```text
//! cargo run --release -p vitals-analyzer --example replay -- <sqs-event.json> [iterations]
//! ```
//!
//! Every (trial, patient) of the event is enrolled in a trial seeded from its
//! id, the clock stands one minute after the newest reading, and each
//! iteration starts from an empty state on fresh adapters whose config cache
//! was warmed by another patient's batch (a warm Lambda). Only `handle` is
//! timed, as thread CPU time (`CLOCK_THREAD_CPUTIME_ID`, so a loaded machine
//! inflates it less than wall time); the median and quartiles are printed.
//! No tracing subscriber is installed: log formatting is not measured.
//!
//! For instruction counts, the timed call is one symbol callgrind can toggle on:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='replay::timed*' target/release/examples/replay <event.json> 50
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use lambda_runtime::{Context, LambdaEvent};
use trialwatch::clock::FakeClock;
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::memory::{MemoryDeadLetters, MemoryQueue, MemoryStore};
use trialwatch::trial::Trial;
use trialwatch::vitals::{VitalCode, VitalReading, VitalValue, VitalsMessage};
use trialwatch::{PatientId, ReadingId, SiteId, TrialId};
use vitals_analyzer::{handle, Deps};

/// The Lambda binary's allocator (`src/main.rs`), so the replay measures what runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type MemDeps = Deps<MemoryStore, MemoryQueue, Arc<FakeClock>, MemoryDeadLetters>;

/// The warm-up patient: never in a replayed event.
const WARM: &str = "P-replay-warm-up";

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn trial(id: &TrialId) -> Trial {
    serde_json::from_value(serde_json::json!({
        "trialId": id.as_str(), "name": "replay", "sites": [{"id": "site-replay", "name": "Replay"}],
        "updatedAt": "2026-01-01T00:00:00.000Z"
    }))
    .expect("trial")
}

fn enrolment(trial: &TrialId, patient: &PatientId) -> Enrolment {
    Enrolment {
        trial_id: trial.clone(),
        patient_id: patient.clone(),
        site_id: SiteId::parse("site-replay").expect("site"),
        status: EnrolmentStatus::Enrolled,
        hypercapnic: false,
        enrolled_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
        submission_count: 0,
        last_submission_at: None,
        withdrawn_at: None,
        audit_head: Default::default(),
    }
}

/// The trials and patients of the event's parseable bodies, and its newest reading.
fn survey(event: &SqsEvent) -> (BTreeSet<(TrialId, PatientId)>, Option<DateTime<Utc>>) {
    let mut patients = BTreeSet::new();
    let mut newest = None;
    for m in event.records.iter().filter_map(|r| r.body.as_deref()).filter_map(|b| serde_json::from_str::<VitalsMessage>(b).ok()) {
        newest = m.readings.iter().map(|r| r.observed_at).chain(newest).max();
        patients.insert((m.trial_id, m.patient_id));
    }
    (patients, newest)
}

fn deps(patients: &BTreeSet<(TrialId, PatientId)>, now: DateTime<Utc>) -> MemDeps {
    let store = MemoryStore::new();
    let warm = PatientId::parse(WARM).expect("warm-up id");
    for t in patients.iter().map(|(t, _)| t).collect::<BTreeSet<_>>() {
        store.seed_trial(trial(t));
        store.seed_enrolment(enrolment(t, &warm));
    }
    for (t, p) in patients {
        store.seed_enrolment(enrolment(t, p));
    }
    let clock = Arc::new(FakeClock::at(&now.to_rfc3339()));
    Deps::new(Arc::new(store), MemoryQueue::new(), clock, MemoryDeadLetters::new(), Duration::from_secs(300), 8)
}

/// One record per trial of the warm-up patient, to load each trial into the config cache.
fn warm_up(patients: &BTreeSet<(TrialId, PatientId)>, now: DateTime<Utc>) -> SqsEvent {
    let warm = PatientId::parse(WARM).expect("warm-up id");
    let trials: BTreeSet<&TrialId> = patients.iter().map(|(t, _)| t).collect();
    let mut event = SqsEvent::default();
    event.records = trials
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let body = VitalsMessage {
                trial_id: t.clone(),
                patient_id: warm.clone(),
                readings: vec![VitalReading {
                    reading_id: ReadingId::parse("warm-up").expect("id"),
                    code: VitalCode::HeartRate,
                    value: VitalValue::Number(70.0),
                    observed_at: now,
                }],
            };
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("warm-up-{i}"));
            m.body = Some(serde_json::to_string(&body).expect("body"));
            m
        })
        .collect();
    event
}

/// The handler's call alone: not inlined, so callgrind counts exactly it.
#[inline(never)]
fn timed(
    rt: &tokio::runtime::Runtime,
    d: &MemDeps,
    input: LambdaEvent<SqsEvent>,
) -> Result<aws_lambda_events::event::sqs::SqsBatchResponse, lambda_runtime::Error> {
    rt.block_on(handle(d, input))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| {
        eprintln!("usage: replay <sqs-event.json> [iterations]");
        std::process::exit(2)
    });
    let iterations: usize = args.next().map(|n| n.parse().expect("iterations: a number")).unwrap_or(2001).max(1);
    let event: SqsEvent = serde_json::from_slice(&std::fs::read(&path).expect("read the event file")).expect("an SQS event");
    let (patients, newest) = survey(&event);
    let now = newest.unwrap_or_else(Utc::now) + chrono::Duration::minutes(1);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    let mut samples = Vec::with_capacity(iterations);
    let mut last = None;
    for _ in 0..iterations {
        let d = deps(&patients, now);
        rt.block_on(handle(&d, LambdaEvent::new(warm_up(&patients, now), Context::default()))).expect("warm-up");
        d.store.requests.reset();
        let input = LambdaEvent::new(event.clone(), Context::default());
        let started = thread_cpu();
        let response = timed(&rt, &d, input);
        samples.push(thread_cpu() - started);
        last = Some((response.expect("handler"), d));
    }
    samples.sort();
    let q = |f: f64| samples[((samples.len() - 1) as f64 * f).round() as usize].as_secs_f64() * 1e6;
    let (response, d) = last.expect("one iteration");
    let readings: usize = event
        .records
        .iter()
        .filter_map(|r| r.body.as_deref())
        .filter_map(|b| serde_json::from_str::<VitalsMessage>(b).ok())
        .map(|m| m.readings.len())
        .sum();
    println!("{path}: {} records, {readings} readings, {} patients; {iterations} iterations", event.records.len(), patients.len());
    println!("handler CPU per batch: median {:.1} µs (p25 {:.1}, p75 {:.1}, min {:.1})", q(0.5), q(0.25), q(0.75), q(0.0));
    println!(
        "last batch: {} failed, {} parked, {} alerts; AWS requests {:?} + alerts {:?} + DLQ {:?}",
        response.batch_item_failures.len(),
        d.dead_letters.parked().len(),
        d.alerts.sent_alerts().len(),
        d.store.requests.snapshot(),
        d.alerts.requests.snapshot(),
        d.dead_letters.requests.snapshot()
    );
}
