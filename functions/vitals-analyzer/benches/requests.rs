//! The AWS adapter's request building for the replay fixture
//! (`cargo bench -p vitals-analyzer --bench requests`): the item conversion,
//! key strings and SDK builders, which the in-memory adapters share with the
//! AWS adapter since session 7 (so the replay includes them).

use aws_lambda_events::event::sqs::SqsEvent;
use criterion::{black_box, Criterion};
use trialwatch::aws::{BatchKeys, DynamoStore};
use trialwatch::ports::PatientReadings;
use trialwatch::vitals::VitalsMessage;
use trialwatch::{PatientId, TrialId};

/// The Lambda binary's allocator (`src/main.rs`): request building is mostly allocation, so
/// the figure is only the binary's with the binary's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fixture() -> Vec<VitalsMessage> {
    let event: SqsEvent = serde_json::from_str(include_str!("../fixtures/vitals-10x7.json")).unwrap();
    event.records.iter().map(|r| serde_json::from_str(r.body.as_deref().unwrap()).unwrap()).collect()
}

fn main() {
    let messages = fixture();
    let sdk = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
    let store = DynamoStore::new(&sdk, "table", "audit");
    let mut patients: Vec<(&TrialId, &PatientId)> = messages.iter().map(|m| (&m.trial_id, &m.patient_id)).collect();
    patients.sort();
    patients.dedup();
    let trial = &messages[0].trial_id;
    let writes: Vec<PatientReadings<'_>> =
        messages.iter().map(|m| PatientReadings { trial: &m.trial_id, patient: &m.patient_id, readings: &m.readings }).collect();

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("aws_request_building_replay_fixture");
    g.bench_function("batch_get_item_input", |b| {
        b.iter(|| {
            let keys = BatchKeys::new(black_box(&[trial]), black_box(&patients));
            keys.chunks().into_iter().map(|k| BatchKeys::request(k).unwrap()).collect::<Vec<_>>()
        })
    });
    g.bench_function("batch_write_item_readings_70", |b| b.iter(|| store.reading_requests(black_box(&writes)).unwrap().len()));
    g.finish();
    c.final_summary();
}
