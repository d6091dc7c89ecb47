//! vitals-analyzer benchmarks (`cargo bench -p vitals-analyzer --bench analyzer`):
//! 1. NEWS2 engine alone: aggregates and single readings scored per second on one core;
//! 2. handler CPU per 10-record batch, excluding I/O (in-memory adapters, one thread);
//! 3. AWS requests per batch of N readings from P patients, counted by the
//!    in-memory adapters exactly as the AWS adapters issue them, against the budget
//!    1 BatchGetItem + ceil(N/25) BatchWriteItem + P state writes + ceil(alerts/10) SendMessageBatch.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Duration, Utc};
use criterion::{black_box, Criterion, Throughput};
use lambda_runtime::{Context, LambdaEvent};
use trialwatch::clock::FakeClock;
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::memory::{MemoryDeadLetters, MemoryQueue, MemoryStore};
use trialwatch::news2::{self, Parameter, Spo2Scale};
use trialwatch::trial::Trial;
use trialwatch::vitals::{Avpu, LatestVitals, Observation, VitalCode, VitalReading, VitalValue, VitalsMessage};
use trialwatch::{PatientId, ReadingId, SiteId, TrialId};
use vitals_analyzer::{handle, Deps};

const NOW: &str = "2026-11-26T20:00:00Z";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

fn full_set() -> LatestVitals {
    let at = now() - Duration::minutes(3);
    let o = |value| Observation { value, observed_at: at };
    LatestVitals::from([
        (VitalCode::RespiratoryRate, o(VitalValue::Number(22.0))),
        (VitalCode::Spo2, o(VitalValue::Number(94.0))),
        (VitalCode::SupplementalOxygen, o(VitalValue::Flag(false))),
        (VitalCode::SystolicBp, o(VitalValue::Number(104.0))),
        (VitalCode::DiastolicBp, o(VitalValue::Number(70.0))),
        (VitalCode::HeartRate, o(VitalValue::Number(112.0))),
        (VitalCode::Consciousness, o(VitalValue::Avpu(Avpu::A))),
        (VitalCode::Temperature, o(VitalValue::Number(38.45))),
    ])
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("news2");
    let latest = full_set();
    // Hoisted: parsing the RFC 3339 instant inside the loop measured chrono's parser, not NEWS2.
    let (at, freshness) = (now(), Duration::minutes(60));
    g.throughput(Throughput::Elements(1));
    g.bench_function("aggregate_of_7_parameters", |b| {
        b.iter(|| news2::score(black_box(&latest), Spo2Scale::Scale1, black_box(at), black_box(freshness)))
    });
    g.bench_function("one_reading", |b| {
        b.iter(|| news2::score_parameter(Parameter::Temperature, black_box(VitalValue::Number(38.45)), Spo2Scale::Scale1, false))
    });
    g.finish();
}

fn trial_id() -> TrialId {
    TrialId::parse("tw-bench").unwrap()
}

fn patient(i: usize) -> PatientId {
    PatientId::parse(&format!("P{i:05}")).unwrap()
}

fn seeded_store(patients: usize) -> MemoryStore {
    let store = MemoryStore::new();
    let trial: Trial = serde_json::from_value(serde_json::json!({
        "trialId": "tw-bench", "name": "bench", "sites": [{"id": "s1", "name": "Site 1"}],
        "updatedAt": "2026-11-01T00:00:00.000Z"
    }))
    .unwrap();
    store.seed_trial(trial);
    for i in 0..patients {
        store.seed_enrolment(Enrolment {
            trial_id: trial_id(),
            patient_id: patient(i),
            site_id: SiteId::parse("s1").unwrap(),
            status: EnrolmentStatus::Enrolled,
            hypercapnic: false,
            enrolled_at: "2026-11-01T00:00:00.000Z".into(),
            updated_at: "2026-11-01T00:00:00.000Z".into(),
            submission_count: 0,
            last_submission_at: None,
            withdrawn_at: None,
            audit_head: Default::default(),
        });
    }
    store
}

/// `readings` readings for record `record`; `high` makes the patient's aggregate 7+.
fn readings(record: usize, readings: usize, high: bool) -> Vec<VitalReading> {
    let codes = [
        (VitalCode::HeartRate, if high { 135.0 } else { 72.0 }),
        (VitalCode::RespiratoryRate, if high { 26.0 } else { 16.0 }),
        (VitalCode::Temperature, if high { 38.5 } else { 36.8 }),
        (VitalCode::Spo2, 97.0),
        (VitalCode::SystolicBp, 120.0),
    ];
    (0..readings)
        .map(|k| {
            let (code, value) = codes[k % codes.len()];
            VitalReading {
                reading_id: ReadingId::parse(&format!("r{record}-{k}")).unwrap(),
                code,
                value: VitalValue::Number(value),
                observed_at: now() - Duration::seconds((k / codes.len()) as i64 + 1),
            }
        })
        .collect()
}

/// 10 records (the FIFO maximum) spread round-robin over `patients`, N readings in all.
fn batch(patients: usize, total_readings: usize, high: bool) -> LambdaEvent<SqsEvent> {
    let records = 10usize;
    let mut event = SqsEvent::default();
    event.records = (0..records)
        .map(|r| {
            let n = total_readings / records + usize::from(r < total_readings % records);
            let body = VitalsMessage { trial_id: trial_id(), patient_id: patient(r % patients), readings: readings(r, n, high) };
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{r}"));
            m.body = Some(serde_json::to_string(&body).unwrap());
            m
        })
        .collect();
    LambdaEvent::new(event, Context::default())
}

/// One record of patient `p`, used only to load the trial into the config cache.
fn warm_up_event(p: usize) -> LambdaEvent<SqsEvent> {
    let body = VitalsMessage { trial_id: trial_id(), patient_id: patient(p), readings: readings(99, 1, false) };
    let mut m = SqsMessage::default();
    m.message_id = Some("warm-up".into());
    m.body = Some(serde_json::to_string(&body).unwrap());
    let mut event = SqsEvent::default();
    event.records = vec![m];
    LambdaEvent::new(event, Context::default())
}

type MemDeps = Deps<MemoryStore, MemoryQueue, FakeClock, MemoryDeadLetters>;

fn fresh_deps(patients: usize) -> MemDeps {
    Deps::new(
        Arc::new(seeded_store(patients)),
        MemoryQueue::new(),
        FakeClock::at(NOW),
        MemoryDeadLetters::new(),
        StdDuration::from_secs(300),
        8,
    )
}

fn handler(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut g = c.benchmark_group("handler_cpu_per_10_record_batch");
    for (name, patients, total, high) in [
        ("10_patients_40_readings_all_escalate", 10, 40, true),
        ("10_patients_40_readings_steady_low", 10, 40, false),
        ("1_patient_40_readings", 1, 40, true),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut busy = StdDuration::ZERO;
                for _ in 0..iters {
                    // Untimed: fresh adapters (so state never grows) and a config cache
                    // warmed by a batch of another patient, as in a warm Lambda.
                    let deps = fresh_deps(patients + 1);
                    rt.block_on(handle(&deps, warm_up_event(patients))).unwrap();
                    let event = batch(patients, total, high);
                    let started = Instant::now();
                    let response = rt.block_on(handle(&deps, event)).unwrap();
                    busy += started.elapsed();
                    assert!(response.batch_item_failures.is_empty());
                }
                busy
            })
        });
    }
    g.finish();
}

/// Prints AWS requests per batch for a few (N, P) against the budget; panics if over.
fn request_budget() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    println!("\nAWS requests per 10-record batch of N readings from P patients (in-memory adapters count what the AWS adapters send)");
    println!(
        "{:>4} {:>3} {:>6} | {:>14} {:>6} | {:>12} {:>6} | {:>16} {:>6} | {:>7}",
        "N", "P", "alerts", "BatchWriteItem", "budget", "state writes", "budget", "SendMessageBatch", "budget", "BatchGetItem"
    );
    for (total, patients, high) in
        [(10, 10, true), (40, 10, true), (40, 10, false), (100, 5, true), (250, 1, true), (30, 3, false), (500, 10, true)]
    {
        let deps = fresh_deps(patients);
        let response = rt.block_on(handle(&deps, batch(patients, total, high))).unwrap();
        assert!(response.batch_item_failures.is_empty());
        let r = &deps.store.requests;
        let writes = r.get("dynamodb.BatchWriteItem");
        let states = r.get("dynamodb.PutItem") + r.get("dynamodb.TransactWriteItems") + r.get("dynamodb.UpdateItem");
        let alerts = deps.alerts.sent_alerts().len() as u64;
        let sends = deps.alerts.requests.get("sqs.SendMessageBatch");
        let budget = ((total as u64).div_ceil(25), patients as u64, alerts.div_ceil(10));
        println!(
            "{total:>4} {patients:>3} {alerts:>6} | {writes:>14} {:>6} | {states:>12} {:>6} | {sends:>16} {:>6} | {:>7}",
            budget.0,
            budget.1,
            budget.2,
            r.get("dynamodb.BatchGetItem")
        );
        assert!(writes <= budget.0 && states <= budget.1 && sends <= budget.2, "over budget for N={total}, P={patients}");
        assert_eq!((r.get("dynamodb.BatchGetItem"), r.get("dynamodb.GetItem")), (1, 0), "one read for the batch");
        // Parking costs one SendMessage per permanently failed record, and these batches have none.
        assert_eq!(deps.dead_letters.requests.total(), 0, "a clean batch parks nothing");
    }
    println!("BatchGetItem = 1 consistent read of every enrolment and state, with the trial on a config-cache miss (no GetItem)");
    println!("DLQ SendMessage = 1 per permanently failed record (0 above)\n");
}

fn main() {
    request_budget();
    let mut c = Criterion::default().configure_from_args();
    engine(&mut c);
    handler(&mut c);
    c.final_summary();
}
