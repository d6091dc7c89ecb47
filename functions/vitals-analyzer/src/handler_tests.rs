//! Handler specifications, driven through `handle` with the in-memory adapters.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Duration, Utc};
use lambda_runtime::{Context, LambdaEvent};
use trialwatch::alert::{Alert, AlertReason};
use trialwatch::audit::AuditEntry;
use trialwatch::clock::FakeClock;
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::memory::{MemoryDeadLetters, MemoryQueue, MemoryStore};
use trialwatch::news2::RiskLevel;
use trialwatch::ports::*;
use trialwatch::trial::Trial;
use trialwatch::vitals::{Avpu, VitalCode, VitalReading, VitalValue, VitalsMessage};
use trialwatch::vitals_state::VitalsState;
use trialwatch::{PatientId, ReadingId, SiteId, TrialId};

use crate::{handle, Deps};

const START: &str = "2026-11-26T20:00:00Z";

pub(crate) fn trial_id() -> TrialId {
    TrialId::parse("tw-demo").unwrap()
}

pub(crate) fn pid(s: &str) -> PatientId {
    PatientId::parse(s).unwrap()
}

fn trial(cooldown_minutes: u32) -> Trial {
    serde_json::from_value(serde_json::json!({
        "trialId": "tw-demo",
        "name": "demo",
        "sites": [{"id": "site-leeds", "name": "Leeds"}],
        "alerting": {"news2": {"freshnessMinutes": 60, "cooldownMinutes": cooldown_minutes}},
        "updatedAt": "2026-11-01T00:00:00.000Z"
    }))
    .unwrap()
}

fn enrolment(patient: &str) -> Enrolment {
    Enrolment {
        trial_id: trial_id(),
        patient_id: pid(patient),
        site_id: SiteId::parse("site-leeds").unwrap(),
        status: EnrolmentStatus::Enrolled,
        hypercapnic: false,
        enrolled_at: "2026-11-01T00:00:00.000Z".into(),
        updated_at: "2026-11-01T00:00:00.000Z".into(),
        submission_count: 0,
        last_submission_at: None,
        withdrawn_at: None,
        audit_head: Default::default(),
    }
}

/// A memory store with the demo trial and these patients enrolled.
pub(crate) fn seeded(patients: &[&str], cooldown_minutes: u32) -> MemoryStore {
    let store = MemoryStore::new();
    store.seed_trial(trial(cooldown_minutes));
    for p in patients {
        store.seed_enrolment(enrolment(p));
    }
    store
}

type TestDeps<S> = Deps<S, MemoryQueue, Arc<FakeClock>, MemoryDeadLetters>;

fn deps<S: VitalsStore + EnrolmentStore + TrialConfig + BatchReader + trialwatch::ports::PendingEvents + 'static>(
    store: S,
) -> (TestDeps<S>, Arc<FakeClock>) {
    let clock = Arc::new(FakeClock::at(START));
    (Deps::new(Arc::new(store), MemoryQueue::new(), clock.clone(), MemoryDeadLetters::new(), StdDuration::from_secs(300), 8), clock)
}

/// Readings at `at` whose aggregate NEWS2 gives `level` on scale 1.
pub(crate) fn readings_for(level: RiskLevel, at: DateTime<Utc>) -> Vec<VitalReading> {
    let (pulse, rr, acvpu, temperature) = match level {
        RiskLevel::Low => (72.0, 16.0, Avpu::A, 36.8),
        RiskLevel::LowMedium => (72.0, 16.0, Avpu::V, 36.8), // one 3
        RiskLevel::Medium => (115.0, 22.0, Avpu::A, 38.5),   // 2 + 2 + 1
        RiskLevel::High => (135.0, 26.0, Avpu::A, 38.5),     // 3 + 3 + 1
    };
    let r = |code: VitalCode, value: VitalValue| VitalReading {
        reading_id: ReadingId::parse(&format!("r-{}-{}", code.as_str(), at.timestamp())).unwrap(),
        code,
        value,
        observed_at: at,
    };
    vec![
        r(VitalCode::HeartRate, VitalValue::Number(pulse)),
        r(VitalCode::RespiratoryRate, VitalValue::Number(rr)),
        r(VitalCode::Consciousness, VitalValue::Avpu(acvpu)),
        r(VitalCode::Temperature, VitalValue::Number(temperature)),
    ]
}

fn body(patient: &str, readings: Vec<VitalReading>) -> String {
    serde_json::to_string(&VitalsMessage { trial_id: trial_id(), patient_id: pid(patient), readings }).unwrap()
}

fn sqs_event(records: &[(&str, String)]) -> LambdaEvent<SqsEvent> {
    let mut event = SqsEvent::default();
    event.records = records
        .iter()
        .map(|(id, body)| {
            let mut m = SqsMessage::default();
            m.message_id = Some((*id).to_owned());
            m.receipt_handle = Some(format!("rh-{id}"));
            m.body = Some(body.clone());
            m.event_source = Some("aws:sqs".into());
            m
        })
        .collect();
    LambdaEvent::new(event, Context::default())
}

/// As Lambda delivers from the FIFO vitals queue: each record carries its
/// `MessageGroupId` attribute, `tw-demo#<group patient>` as epro-api sends
/// (the group is given, not read from the body, as a producer may get it wrong).
fn fifo_event(records: &[(&str, &str, String)]) -> LambdaEvent<SqsEvent> {
    let plain: Vec<(&str, String)> = records.iter().map(|(id, _, body)| (*id, body.clone())).collect();
    let mut event = sqs_event(&plain);
    for (m, (_, patient, _)) in event.payload.records.iter_mut().zip(records) {
        m.attributes.insert("MessageGroupId".into(), format!("tw-demo#{patient}"));
    }
    event
}

fn failed_ids(r: &SqsBatchResponse) -> Vec<String> {
    r.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
}

async fn state_of<S: VitalsStore>(store: &S, patient: &str) -> Option<VitalsState> {
    store.get_state(&trial_id(), &pid(patient)).await.unwrap()
}

fn levels(alerts: &[Alert]) -> Vec<RiskLevel> {
    alerts.iter().map(|a| a.level).collect()
}

#[tokio::test]
async fn a_malformed_record_is_parked_and_four_other_patients_are_scored_in_the_same_invocation() {
    // GIVEN a device cloud's batch: a broken message first, then four patients' good readings
    let (d, clock) = deps(seeded(&["P0001", "P0002", "P0003", "P0004"], 60));
    let at = clock.now() - Duration::minutes(1);
    let broken = "{\"trialId\":\"tw-demo\"".to_owned();
    let batch = [
        ("m0", "P0009", broken.clone()),
        ("m1", "P0001", body("P0001", readings_for(RiskLevel::Low, at))),
        ("m2", "P0002", body("P0002", readings_for(RiskLevel::High, at))),
        ("m3", "P0003", body("P0003", readings_for(RiskLevel::Medium, at))),
        ("m4", "P0004", body("P0004", readings_for(RiskLevel::Low, at))),
    ];
    // WHEN handled
    let response = handle(&d, fifo_event(&batch)).await.unwrap();
    // THEN nothing is reported: every record is either done or parked
    assert!(response.batch_item_failures.is_empty(), "{:?}", failed_ids(&response));
    // AND all four patients were scored in this invocation
    for p in ["P0001", "P0002", "P0003", "P0004"] {
        assert!(state_of(&*d.store, p).await.and_then(|s| s.news2).is_some(), "{p} not scored");
    }
    assert_eq!(levels(&d.alerts.sent_alerts()), [RiskLevel::High, RiskLevel::Medium]);
    // AND the broken record is in the DLQ, unchanged, with its reason, group and dedup id
    let parked = d.dead_letters.parked();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].body.as_str(), parked[0].reason), (broken.as_str(), "malformed-json"));
    assert_eq!((parked[0].group_id.as_str(), parked[0].dedup_id.as_str()), ("tw-demo#P0009", "m0"));
}

#[tokio::test]
async fn a_parked_record_does_not_hold_back_the_rest_of_its_own_group() {
    // GIVEN one patient's group: good, implausible, good
    let (d, clock) = deps(seeded(&["P0001"], 60));
    let at = clock.now() - Duration::minutes(2);
    let mut implausible = readings_for(RiskLevel::Low, at);
    implausible[0].value = VitalValue::Number(400.0);
    let batch = [
        ("m1", "P0001", body("P0001", readings_for(RiskLevel::Low, at))),
        ("m2", "P0001", body("P0001", implausible)),
        ("m3", "P0001", body("P0001", readings_for(RiskLevel::High, at + Duration::minutes(1)))),
    ];
    // WHEN handled
    let response = handle(&d, fifo_event(&batch)).await.unwrap();
    // THEN the implausible record is parked with its reason code (never the value) and the later one scored
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(d.dead_letters.parked().iter().map(|p| (p.dedup_id.as_str(), p.reason)).collect::<Vec<_>>(), [("m2", "value-out-of-range")]);
    assert_eq!(state_of(&*d.store, "P0001").await.unwrap().news2.unwrap().risk_level, RiskLevel::High);
    assert_eq!(d.store.readings(&trial_id(), &pid("P0001")).len(), 8);
}

#[tokio::test]
async fn a_record_that_cannot_be_parked_is_redelivered_instead_and_holds_back_only_its_group() {
    // GIVEN the DLQ refuses the next send, and a malformed record in P0001's group before a good one
    let (d, clock) = deps(seeded(&["P0001", "P0002"], 60));
    d.dead_letters.fail_next(1);
    let batch = [
        ("m1", "P0001", "{not json".to_owned()),
        ("m2", "P0002", body("P0002", readings_for(RiskLevel::Low, clock.now()))),
        ("m3", "P0001", body("P0001", readings_for(RiskLevel::Low, clock.now()))),
    ];
    // WHEN handled
    let response = handle(&d, fifo_event(&batch)).await.unwrap();
    // THEN nothing is lost: the malformed record and its group's later record come back
    assert_eq!(failed_ids(&response), ["m1", "m3"]);
    assert!(d.dead_letters.parked().is_empty());
    // AND the other patient was scored
    assert!(state_of(&*d.store, "P0002").await.is_some());
}

#[tokio::test]
async fn a_transient_failure_for_one_patient_holds_back_only_that_patient_s_later_records() {
    // GIVEN patient A's state write fails (a dependency), in a batch A, B, A, C
    let store = Hooked { unavailable_for: Some(pid("P000A")), ..hooked(&["P000A", "P000B", "P000C"]) };
    let (d, clock) = deps(store);
    let at = clock.now();
    let batch = [
        ("a1", "P000A", body("P000A", readings_for(RiskLevel::High, at))),
        ("b1", "P000B", body("P000B", readings_for(RiskLevel::High, at))),
        ("a2", "P000A", body("P000A", readings_for(RiskLevel::Low, at))),
        ("c1", "P000C", body("P000C", readings_for(RiskLevel::Low, at))),
    ];
    // WHEN handled
    let response = handle(&d, fifo_event(&batch)).await.unwrap();
    // THEN only A's records come back, and A's state is not written (its
    // readings are: the batch-wide write is idempotent, a redelivery rewrites them) nor parked
    assert_eq!(failed_ids(&response), ["a1", "a2"]);
    assert!(state_of(&d.store.inner, "P000A").await.is_none());
    assert!(d.dead_letters.parked().is_empty(), "a transient failure is retried, never parked");
    // AND B and C were processed in this invocation (A's alert went out before its state write
    // failed: send, then record; the redelivery computes the same alert id)
    assert_eq!(d.alerts.sent_alerts().iter().map(|a| a.patient_id.as_str()).collect::<Vec<_>>(), ["P000A", "P000B"]);
    assert!(state_of(&d.store.inner, "P000C").await.is_some());
}

#[tokio::test]
async fn a_record_without_a_message_id_that_succeeds_is_processed_and_acknowledged() {
    // GIVEN a batch whose first record has no message id (and the second an empty one)
    let (d, clock) = deps(seeded(&["P0001", "P0002"], 60));
    let mut event = sqs_event(&[
        ("m1", body("P0001", readings_for(RiskLevel::Low, clock.now()))),
        ("m2", body("P0002", readings_for(RiskLevel::Low, clock.now()))),
    ]);
    event.payload.records[0].message_id = None;
    event.payload.records[1].message_id = Some(String::new());
    // WHEN handled
    let response = handle(&d, event).await.unwrap();
    // THEN both records took effect and nothing needs reporting: a success needs no id
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(d.store.readings(&trial_id(), &pid("P0001")).len(), 4);
    assert_eq!(d.store.readings(&trial_id(), &pid("P0002")).len(), 4);
}

#[tokio::test]
async fn a_record_without_a_message_id_that_must_be_redelivered_fails_the_whole_invocation() {
    // GIVEN a record without a message id whose body is malformed
    let (d, clock) = deps(seeded(&["P0001"], 60));
    let mut failed = sqs_event(&[("m1", "{not json".to_owned())]);
    failed.payload.records[0].message_id = None;
    // THEN it cannot be reported by id, so the invocation fails and SQS redelivers the batch
    assert!(handle(&d, failed).await.is_err());

    // GIVEN a record without a message id after a record of the same patient whose batch read fails
    d.store.fail_next("read_batch", 1);
    let mut held_back = sqs_event(&[
        ("m1", body("P0001", readings_for(RiskLevel::Low, clock.now()))),
        ("m2", body("P0001", readings_for(RiskLevel::Low, clock.now() + Duration::seconds(1)))),
    ]);
    held_back.payload.records[1].message_id = None;
    // THEN the unnamed record must come back but cannot be named: the invocation fails
    assert!(handle(&d, held_back).await.is_err());
    assert!(d.store.readings(&trial_id(), &pid("P0001")).is_empty(), "nothing of the failed patient is processed");
    // AND a malformed record without an id cannot be deduplicated in the DLQ, so it is not parked
    assert!(d.dead_letters.parked().is_empty());
}

#[tokio::test]
async fn a_rise_from_low_to_medium_then_to_high_alerts_at_each_level() {
    // GIVEN a patient at low
    let (d, clock) = deps(seeded(&["P0001"], 60));
    handle(&d, sqs_event(&[("m1", body("P0001", readings_for(RiskLevel::Low, clock.now())))])).await.unwrap();
    assert!(d.alerts.sent_alerts().is_empty(), "low never alerts");
    // WHEN medium arrives THEN one medium alert for the patient's site
    clock.advance(Duration::minutes(5));
    let r = handle(&d, sqs_event(&[("m2", body("P0001", readings_for(RiskLevel::Medium, clock.now())))])).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    let alerts = d.alerts.sent_alerts();
    assert_eq!(levels(&alerts), [RiskLevel::Medium]);
    assert_eq!(alerts[0].site_id.as_str(), "site-leeds");
    assert!(matches!(&alerts[0].reason, AlertReason::News2 { score: 5, components } if components.len() == 4));
    // WHEN high arrives five minutes later (inside the cooldown) THEN a high alert still fires: it is a rise
    clock.advance(Duration::minutes(5));
    handle(&d, sqs_event(&[("m3", body("P0001", readings_for(RiskLevel::High, clock.now())))])).await.unwrap();
    assert_eq!(levels(&d.alerts.sent_alerts()), [RiskLevel::Medium, RiskLevel::High]);
    let state = state_of(&*d.store, "P0001").await.unwrap();
    assert_eq!((state.last_alert_level, state.version), (Some(RiskLevel::High), 3));
}

#[tokio::test]
async fn a_sustained_medium_is_not_repeated_within_the_cooldown_and_is_repeated_after_it() {
    // GIVEN a medium alert with a 30 minute cooldown
    let (d, clock) = deps(seeded(&["P0001"], 30));
    handle(&d, sqs_event(&[("m1", body("P0001", readings_for(RiskLevel::Medium, clock.now())))])).await.unwrap();
    // WHEN medium persists 20 minutes later THEN no new alert
    clock.advance(Duration::minutes(20));
    handle(&d, sqs_event(&[("m2", body("P0001", readings_for(RiskLevel::Medium, clock.now())))])).await.unwrap();
    assert_eq!(d.alerts.sent_alerts().len(), 1);
    // WHEN it persists 30 minutes after the alert THEN a second alert with a new id
    clock.advance(Duration::minutes(10));
    handle(&d, sqs_event(&[("m3", body("P0001", readings_for(RiskLevel::Medium, clock.now())))])).await.unwrap();
    let alerts = d.alerts.sent_alerts();
    assert_eq!(levels(&alerts), [RiskLevel::Medium, RiskLevel::Medium]);
    assert_ne!(alerts[0].alert_id, alerts[1].alert_id);
}

/// The three readings `readings_for` leaves out, normal, so the set is complete.
fn completing(at: DateTime<Utc>) -> Vec<VitalReading> {
    let r = |code: VitalCode, value: VitalValue| VitalReading {
        reading_id: ReadingId::parse(&format!("r-{}-{}", code.as_str(), at.timestamp())).unwrap(),
        code,
        value,
        observed_at: at,
    };
    vec![
        r(VitalCode::Spo2, VitalValue::Number(97.0)),
        r(VitalCode::SupplementalOxygen, VitalValue::Flag(false)),
        r(VitalCode::SystolicBp, VitalValue::Number(120.0)),
    ]
}

fn distinct_ids(alerts: &[Alert]) -> usize {
    alerts.iter().map(|a| &a.alert_id).collect::<std::collections::HashSet<_>>().len()
}

const WEEK: u32 = 7 * 24 * 60;

#[tokio::test]
async fn high_acknowledged_then_a_complete_low_then_high_inside_a_seven_day_cooldown_raises_a_second_alert() {
    // GIVEN a high alert with a 7-day cooldown, claimed by the dispatcher and acknowledged by staff
    let (d, clock) = deps(seeded(&["P0001"], WEEK));
    handle(&d, sqs_event(&[("m1", body("P0001", readings_for(RiskLevel::High, clock.now())))])).await.unwrap();
    let first = d.alerts.sent_alerts()[0].clone();
    d.store.claim(&first, clock.now(), clock.now()).await.unwrap();
    clock.advance(Duration::minutes(5));
    let nurse = trialwatch::audit::Actor { role: "site_staff".into(), subject: Some("nurse-7".into()) };
    let audit = AuditEntry::new(trial_id(), format!("alert/{}", first.alert_id), "alert.acknowledged", nurse.clone(), clock.now());
    d.store.acknowledge(&trial_id(), &first.alert_id, &nurse, None, clock.now(), &audit, Some(&pid("P0001")), &[]).await.unwrap();
    // AND the patient recovers: a complete low set after the acknowledgement
    clock.advance(Duration::minutes(1));
    let mut low = readings_for(RiskLevel::Low, clock.now());
    low.extend(completing(clock.now()));
    let r = handle(&d, sqs_event(&[("m2", body("P0001", low))])).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    // WHEN high returns 10 minutes later, inside the cooldown and inside clearMinutes
    clock.advance(Duration::minutes(10));
    handle(&d, sqs_event(&[("m3", body("P0001", readings_for(RiskLevel::High, clock.now())))])).await.unwrap();
    // THEN a second alert with its own id, which the dispatcher would deliver
    let alerts = d.alerts.sent_alerts();
    assert_eq!(levels(&alerts), [RiskLevel::High, RiskLevel::High]);
    assert_eq!(distinct_ids(&alerts), 2);
    let claim = d.store.claim(&alerts[1], clock.now(), clock.now() + Duration::minutes(1)).await.unwrap();
    assert!(matches!(claim, trialwatch::alert::Claim::Acquired(_)), "not dropped as already handled: {claim:?}");
}

#[tokio::test]
async fn high_then_low_for_clear_minutes_then_high_inside_a_seven_day_cooldown_raises_a_second_alert() {
    // GIVEN a high alert with a 7-day cooldown and no acknowledgement
    let (d, clock) = deps(seeded(&["P0001"], WEEK));
    handle(&d, sqs_event(&[("m1", body("P0001", readings_for(RiskLevel::High, clock.now())))])).await.unwrap();
    // WHEN the patient is low at +10 and +45 minutes, then high at +3 hours (data times)
    for (i, (minutes, level)) in [(10, RiskLevel::Low), (35, RiskLevel::Low), (135, RiskLevel::High)].into_iter().enumerate() {
        clock.advance(Duration::minutes(minutes));
        let r = handle(&d, sqs_event(&[(&format!("m{}", i + 2), body("P0001", readings_for(level, clock.now())))])).await.unwrap();
        assert!(r.batch_item_failures.is_empty());
    }
    // THEN two high alerts with distinct ids
    let alerts = d.alerts.sent_alerts();
    assert_eq!(levels(&alerts), [RiskLevel::High, RiskLevel::High]);
    assert_eq!(distinct_ids(&alerts), 2);
}

#[tokio::test]
async fn high_then_medium_then_high_within_clear_minutes_raises_one_alert() {
    let (d, clock) = deps(seeded(&["P0001"], WEEK));
    for (i, (minutes, level)) in [(0, RiskLevel::High), (5, RiskLevel::Medium), (10, RiskLevel::High)].into_iter().enumerate() {
        clock.advance(Duration::minutes(minutes));
        let r = handle(&d, sqs_event(&[(&format!("m{i}"), body("P0001", readings_for(level, clock.now())))])).await.unwrap();
        assert!(r.batch_item_failures.is_empty());
    }
    assert_eq!(d.alerts.sent_alerts().len(), 1);
}

fn withdrawn_at(patient: &str, at: &str) -> Enrolment {
    Enrolment { status: EnrolmentStatus::Withdrawn, withdrawn_at: Some(at.into()), ..enrolment(patient) }
}

#[tokio::test]
async fn readings_observed_after_the_withdrawal_are_skipped_and_earlier_ones_are_still_scored() {
    // GIVEN P0001 withdrew consent at 19:58
    let store = seeded(&[], 60);
    store.seed_enrolment(withdrawn_at("P0001", "2026-11-26T19:58:00.000Z"));
    let (d, clock) = deps(store);
    // WHEN a batch holds its high readings from 19:55 and low readings from 19:59
    let batch = [
        ("m1", body("P0001", readings_for(RiskLevel::High, clock.now() - Duration::minutes(5)))),
        ("m2", body("P0001", readings_for(RiskLevel::Low, clock.now() - Duration::minutes(1)))),
    ];
    let r = handle(&d, sqs_event(&batch)).await.unwrap();
    // THEN both records are acknowledged (nothing to retry), only the earlier readings are stored and scored
    assert!(r.batch_item_failures.is_empty());
    let stored = d.store.readings(&trial_id(), &pid("P0001"));
    assert_eq!(stored.len(), 4);
    assert!(stored.iter().all(|r| r.observed_at < "2026-11-26T19:58:00Z".parse::<DateTime<Utc>>().unwrap()));
    assert_eq!(state_of(&*d.store, "P0001").await.unwrap().news2.unwrap().risk_level, RiskLevel::High);
    // AND the deterioration observed under consent still alerts
    assert_eq!(levels(&d.alerts.sent_alerts()), [RiskLevel::High]);
}

#[tokio::test]
async fn a_batch_observed_wholly_after_the_withdrawal_writes_nothing_and_is_acknowledged() {
    // GIVEN P0001 withdrew at 19:00 and P0002 is enrolled
    let store = seeded(&["P0002"], 60);
    store.seed_enrolment(withdrawn_at("P0001", "2026-11-26T19:00:00.000Z"));
    let (d, clock) = deps(store);
    let batch = [
        ("m1", body("P0001", readings_for(RiskLevel::High, clock.now()))),
        ("m2", body("P0002", readings_for(RiskLevel::Low, clock.now()))),
    ];
    // WHEN handled
    let r = handle(&d, sqs_event(&batch)).await.unwrap();
    // THEN no record fails, P0001 has no readings, state or alert, and P0002 is processed as usual
    assert!(r.batch_item_failures.is_empty());
    assert!(d.store.readings(&trial_id(), &pid("P0001")).is_empty());
    assert!(state_of(&*d.store, "P0001").await.is_none());
    assert!(d.alerts.sent_alerts().is_empty());
    assert_eq!(d.store.readings(&trial_id(), &pid("P0002")).len(), 4);
    // AND the skipped patient cost only its plan's loads: one readings write and one state write in all
    assert_eq!(d.store.requests.get("dynamodb.BatchWriteItem"), 1);
    assert_eq!(d.store.requests.get("dynamodb.PutItem") + d.store.requests.get("dynamodb.TransactWriteItems"), 1);
}

#[tokio::test]
async fn a_redelivered_batch_does_not_alert_twice() {
    // GIVEN a high batch handled successfully
    let (d, clock) = deps(seeded(&["P0001"], 60));
    let batch = [("m1", body("P0001", readings_for(RiskLevel::High, clock.now())))];
    handle(&d, sqs_event(&batch)).await.unwrap();
    // WHEN SQS redelivers the same batch a minute later
    clock.advance(Duration::minutes(1));
    d.store.requests.reset();
    let r = handle(&d, sqs_event(&batch)).await.unwrap();
    // THEN it succeeds, nothing new is sent, and the unchanged state is not rewritten
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(d.alerts.sent_alerts().len(), 1);
    assert_eq!(state_of(&*d.store, "P0001").await.unwrap().version, 1);
    assert_eq!(d.store.requests.get("dynamodb.PutItem") + d.store.requests.get("dynamodb.TransactWriteItems"), 0);
}

#[tokio::test]
async fn when_the_state_write_fails_after_the_alert_was_sent_the_retry_resends_the_same_alert_id() {
    // GIVEN the state write fails once after the alert went out
    let (d, clock) = deps(seeded(&["P0001"], 60));
    clock.set("2026-11-26T19:59:50Z".parse().unwrap());
    d.store.fail_next("put_state", 1);
    let batch = [("m1", body("P0001", readings_for(RiskLevel::High, clock.now() - Duration::seconds(10))))];
    let first = handle(&d, sqs_event(&batch)).await.unwrap();
    assert_eq!(failed_ids(&first), ["m1"]);
    assert_eq!(d.alerts.sent_alerts().len(), 1, "send first, then record");
    // WHEN SQS redelivers after its visibility timeout, across an hour boundary of the wall clock
    clock.advance(Duration::minutes(3));
    let retry = handle(&d, sqs_event(&batch)).await.unwrap();
    // THEN the retry succeeds and sends the identical alert, which the dispatcher delivers once
    assert!(retry.batch_item_failures.is_empty());
    let alerts = d.alerts.sent_alerts();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0], alerts[1]);
    assert_eq!(state_of(&*d.store, "P0001").await.unwrap().last_alert_level, Some(RiskLevel::High));
}

#[tokio::test]
async fn when_the_alert_send_fails_the_state_is_not_written_so_the_retry_alerts() {
    let (d, clock) = deps(seeded(&["P0001", "P0002"], 60));
    d.alerts.fail_next("enqueue", 1);
    let batch = [
        ("m1", body("P0002", readings_for(RiskLevel::Low, clock.now()))),
        ("m2", body("P0001", readings_for(RiskLevel::High, clock.now()))),
    ];
    let first = handle(&d, sqs_event(&batch)).await.unwrap();
    // THEN only the alerting patient's record fails; its state does not claim an alert
    assert_eq!(failed_ids(&first), ["m2"]);
    assert!(state_of(&*d.store, "P0001").await.is_none());
    assert!(state_of(&*d.store, "P0002").await.is_some());
    // WHEN the failed record is redelivered THEN the alert goes out and is recorded
    handle(&d, sqs_event(&batch[1..])).await.unwrap();
    assert_eq!(levels(&d.alerts.sent_alerts()), [RiskLevel::High]);
    assert_eq!(state_of(&*d.store, "P0001").await.unwrap().last_alert_level, Some(RiskLevel::High));
}

#[tokio::test]
async fn an_unknown_trial_or_patient_is_parked_after_a_consistent_read_and_holds_back_nobody() {
    // GIVEN a batch: P0001 enrolled, P0001 in an unknown trial, P0009 not enrolled, P0001 again
    let (d, clock) = deps(seeded(&["P0001"], 60));
    let mut other_trial: VitalsMessage = serde_json::from_str(&body("P0001", readings_for(RiskLevel::Low, clock.now()))).unwrap();
    other_trial.trial_id = TrialId::parse("tw-unknown").unwrap();
    let batch = [
        ("m1", body("P0001", readings_for(RiskLevel::Low, clock.now()))),
        ("m2", serde_json::to_string(&other_trial).unwrap()),
        ("m3", body("P0009", readings_for(RiskLevel::Low, clock.now()))),
        ("m4", body("P0001", readings_for(RiskLevel::Low, clock.now() + Duration::seconds(1)))),
    ];
    // WHEN handled (no group ids: even the strict whole-batch rule applies, parking holds nothing back)
    let r = handle(&d, sqs_event(&batch)).await.unwrap();
    // THEN nothing comes back: the two are parked with their reasons, P0001's records are processed
    assert!(r.batch_item_failures.is_empty(), "{:?}", failed_ids(&r));
    let parked: Vec<(String, &str)> = d.dead_letters.parked().into_iter().map(|p| (p.dedup_id, p.reason)).collect();
    assert_eq!(parked, [("m2".to_owned(), "unknown-trial"), ("m3".to_owned(), "patient-not-enrolled")]);
    assert!(d.store.readings(&TrialId::parse("tw-unknown").unwrap(), &pid("P0001")).is_empty(), "nothing stored for an unknown trial");
    assert!(d.store.readings(&trial_id(), &pid("P0009")).is_empty(), "nothing stored for an unenrolled patient");
    assert_eq!(d.store.readings(&trial_id(), &pid("P0001")).len(), 8);
}

#[tokio::test]
async fn a_trial_found_absent_is_not_cached_so_a_trial_created_next_is_read_and_scored() {
    // GIVEN a batch of a trial that does not exist yet: parked after the consistent batch read
    let (d, clock) = deps(Hooked::default());
    let r = handle(&d, fifo_event(&[("m1", "P0001", body("P0001", readings_for(RiskLevel::High, clock.now())))])).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(d.dead_letters.parked().into_iter().map(|p| p.reason).collect::<Vec<_>>(), ["unknown-trial"]);
    // WHEN the trial and the enrolment are written and the next record arrives within the cache TTL
    d.store.inner.seed_trial(self::trial(60));
    d.store.inner.seed_enrolment(enrolment("P0001"));
    clock.advance(Duration::minutes(1));
    let r = handle(&d, fifo_event(&[("m2", "P0001", body("P0001", readings_for(RiskLevel::High, clock.now())))])).await.unwrap();
    // THEN the absence was not trusted: the trial was read again (in the batch read) and the record scored
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(levels(&d.alerts.sent_alerts()), [RiskLevel::High]);
    assert_eq!(d.store.trial_loads.load(Ordering::SeqCst), 2);
    // AND each batch cost one BatchGetItem and no GetItem
    assert_eq!(d.store.inner.requests.get("dynamodb.BatchGetItem"), 2);
    assert_eq!(d.store.inner.requests.get("dynamodb.GetItem"), 0);
}

#[tokio::test]
async fn parking_costs_one_send_message_per_permanent_failure_and_nothing_else() {
    // GIVEN 10 records: 5 patients' good ones, 3 malformed or implausible, 2 of a patient not enrolled
    let patients = ["P0001", "P0002", "P0003", "P0004", "P0005"];
    let (d, clock) = deps(seeded(&patients, 60));
    let at = clock.now();
    let mut implausible = readings_for(RiskLevel::Low, at);
    implausible[1].value = VitalValue::Number(-1.0);
    let mut records: Vec<(String, String, String)> =
        patients.iter().map(|p| (format!("ok-{p}"), p.to_string(), body(p, readings_for(RiskLevel::High, at)))).collect();
    records.push(("bad-1".into(), "P0001".into(), "{not json".into()));
    records.push(("bad-2".into(), "P0002".into(), "[]".into()));
    records.push(("bad-3".into(), "P0003".into(), body("P0003", implausible)));
    records.push(("gone-1".into(), "P0099".into(), body("P0099", readings_for(RiskLevel::Low, at))));
    records.push(("gone-2".into(), "P0099".into(), body("P0099", readings_for(RiskLevel::Low, at + Duration::seconds(1)))));
    let event: Vec<(&str, &str, String)> = records.iter().map(|(id, g, b)| (id.as_str(), g.as_str(), b.clone())).collect();
    // WHEN handled
    let r = handle(&d, fifo_event(&event)).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    // THEN exactly one SendMessage to the DLQ per parked record (5), no batch send
    assert_eq!(d.dead_letters.parked().len(), 5);
    assert_eq!(d.dead_letters.requests.get("sqs.SendMessage"), 5);
    assert_eq!(d.dead_letters.requests.total(), 5);
    // AND the good records' budget is unchanged: ceil(20/25) = 1 BatchWriteItem, 5 state writes, 1 alert send
    assert_eq!(d.store.requests.get("dynamodb.BatchWriteItem"), 1);
    assert_eq!(d.store.requests.get("dynamodb.PutItem") + d.store.requests.get("dynamodb.TransactWriteItems"), 5);
    assert_eq!(d.alerts.requests.get("sqs.SendMessageBatch"), 1);
    // AND reads: ONE consistent BatchGetItem (the trial, 6 enrolments, 6 states: 13 keys),
    // which also confirms P0099's absence; no GetItem
    assert_eq!(d.store.requests.get("dynamodb.BatchGetItem"), 1);
    assert_eq!(d.store.requests.get("dynamodb.GetItem"), 0);
}

#[tokio::test]
async fn a_batch_of_n_readings_from_p_patients_stays_within_the_request_budget() {
    // GIVEN 10 records from 7 patients, 4 readings each (N = 40), 7 of them escalating to high
    let patients: Vec<String> = (1..=7).map(|i| format!("P{i:04}")).collect();
    let names: Vec<&str> = patients.iter().map(String::as_str).collect();
    let (d, clock) = deps(seeded(&names, 60));
    let records: Vec<(String, String)> = (0..10)
        .map(|i| (format!("m{i}"), body(&patients[i % 7], readings_for(RiskLevel::High, clock.now() - Duration::seconds(i as i64)))))
        .collect();
    let batch: Vec<(&str, String)> = records.iter().map(|(id, b)| (id.as_str(), b.clone())).collect();
    // WHEN handled
    let r = handle(&d, sqs_event(&batch)).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    // THEN ceil(40/25) = 2 BatchWriteItem, 7 state writes, ceil(7/10) = 1 SendMessageBatch
    assert_eq!(d.store.requests.get("dynamodb.BatchWriteItem"), 2);
    assert_eq!(d.store.requests.get("dynamodb.PutItem") + d.store.requests.get("dynamodb.TransactWriteItems"), 7);
    // AND the only read is ONE consistent BatchGetItem of the trial (a config cache
    // miss), 7 enrolments and 7 states; the state write reads nothing again
    assert_eq!(d.store.requests.get("dynamodb.BatchGetItem"), 1);
    assert_eq!(d.store.requests.get("dynamodb.GetItem"), 0);
    assert_eq!(d.alerts.requests.get("sqs.SendMessageBatch"), 1);
    assert_eq!(d.alerts.sent_alerts().len(), 7);
    // AND parking costs nothing when nothing failed for good
    assert_eq!(d.dead_letters.requests.total(), 0);
}

#[tokio::test]
async fn readings_of_one_patient_across_records_are_scored_once_on_their_merged_latest() {
    // GIVEN the escalating fixture: three records of one patient, normal then medium then high
    let (d, clock) = deps(seeded(&["P0001"], 60));
    let event: SqsEvent = serde_json::from_str(include_str!("../../../events/vitals-escalating.json")).unwrap();
    clock.set("2026-11-26T20:00:00Z".parse().unwrap());
    // WHEN handled
    let r = handle(&d, LambdaEvent::new(event, Context::default())).await.unwrap();
    // THEN one high alert (not one per record) and every reading stored
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(levels(&d.alerts.sent_alerts()), [RiskLevel::High]);
    assert_eq!(d.store.readings(&trial_id(), &pid("P0001")).len(), 14);
    assert_eq!(state_of(&*d.store, "P0001").await.unwrap().news2.unwrap().score, 9);
}

#[tokio::test]
async fn the_normal_fixture_stores_everything_and_alerts_nobody() {
    let (d, _clock) = deps(seeded(&["P0001", "P0002"], 60));
    let event: SqsEvent = serde_json::from_str(include_str!("../../../events/vitals-normal.json")).unwrap();
    let r = handle(&d, LambdaEvent::new(event, Context::default())).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert!(d.alerts.sent_alerts().is_empty());
    let state = state_of(&*d.store, "P0001").await.unwrap();
    assert_eq!((state.news2.unwrap().risk_level, state.latest.len()), (RiskLevel::Low, 8));
    assert_eq!(d.store.readings(&trial_id(), &pid("P0002")).len(), 2);
}

#[tokio::test]
async fn the_malformed_fixture_parks_the_bad_record_and_processes_the_others() {
    let (d, _clock) = deps(seeded(&["P0001", "P0002", "P0003"], 60));
    let event: SqsEvent = serde_json::from_str(include_str!("../../../events/vitals-malformed.json")).unwrap();
    let r = handle(&d, LambdaEvent::new(event, Context::default())).await.unwrap();
    assert!(r.batch_item_failures.is_empty(), "{:?}", failed_ids(&r));
    let parked = d.dead_letters.parked();
    assert_eq!(
        parked.iter().map(|p| (p.dedup_id.as_str(), p.group_id.as_str(), p.reason)).collect::<Vec<_>>(),
        [("3d5f7a9b-1c2e-4d6f-8a0b-c1d2e3f4a502", "tw-demo#P0002", "not-a-vitals-message")]
    );
    assert_eq!(d.store.readings(&trial_id(), &pid("P0001")).len(), 8);
    assert_eq!(d.store.readings(&trial_id(), &pid("P0003")).len(), 1, "P0003 is not held back by P0002's broken record");
}

/// A memory store with hooks: a competing writer, a panicking patient,
/// counted trial loads (in the batch read) and in-flight state writes.
#[derive(Default)]
struct Hooked {
    inner: MemoryStore,
    /// This many `put_state` calls find that another writer got there first.
    races: AtomicUsize,
    /// `put_state` for this patient panics.
    panic_for: Option<PatientId>,
    /// `put_state` for this patient fails as a dependency would (transient).
    unavailable_for: Option<PatientId>,
    /// Trials asked for in batch reads.
    trial_loads: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    load_delay: Option<StdDuration>,
    competitor_versions: Mutex<Vec<u64>>,
}

#[async_trait]
impl TrialConfig for Hooked {
    async fn get_trial(&self, id: &TrialId) -> Result<Option<Trial>, StorageError> {
        self.inner.get_trial(id).await
    }
}

#[async_trait]
impl TrialRegistry for Hooked {
    async fn put_trial(&self, trial: &Trial, audit: &AuditEntry) -> Result<Upsert, StorageError> {
        self.inner.put_trial(trial, audit).await
    }
    async fn list_trial_ids(&self) -> Result<Vec<TrialId>, StorageError> {
        self.inner.list_trial_ids().await
    }
}

#[async_trait]
impl EnrolmentStore for Hooked {
    async fn get_enrolment(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<Enrolment>, StorageError> {
        self.inner.get_enrolment(trial, patient).await
    }
    async fn put_enrolment(
        &self,
        enrolment: &Enrolment,
        audit: &AuditEntry,
        events: &[trialwatch::domain_event::DomainEvent],
    ) -> Result<Upsert, StorageError> {
        self.inner.put_enrolment(enrolment, audit, events).await
    }
}

#[async_trait]
impl VitalsStore for Hooked {
    async fn put_readings(&self, trial: &TrialId, patient: &PatientId, readings: &[VitalReading]) -> Result<(), StorageError> {
        self.inner.put_readings(trial, patient, readings).await
    }
    async fn put_readings_batch(&self, batch: &[PatientReadings<'_>]) -> Result<(), StorageError> {
        self.inner.put_readings_batch(batch).await
    }
    async fn get_state(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<VitalsState>, StorageError> {
        self.inner.get_state(trial, patient).await
    }
    async fn put_state(
        &self,
        previous: Option<&VitalsState>,
        state: &VitalsState,
        raised: &[AuditEntry],
        events: &[trialwatch::domain_event::DomainEvent],
    ) -> Result<StateWrite, StorageError> {
        if self.panic_for.as_ref() == Some(&state.patient_id) {
            panic!("injected panic in put_state");
        }
        if self.unavailable_for.as_ref() == Some(&state.patient_id) {
            return Err(StorageError::Unavailable("injected".into()));
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if let Some(d) = self.load_delay {
            tokio::time::sleep(d).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let raced = self.races.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if raced {
            // Another invocation writes a newer version with its own reading first.
            let stored = self.inner.get_state(&state.trial_id, &state.patient_id).await?;
            let mut theirs = stored.clone().unwrap_or_else(|| VitalsState::new(state.trial_id.clone(), state.patient_id.clone()));
            theirs.version += 1;
            let at: DateTime<Utc> = START.parse().unwrap();
            trialwatch::vitals::merge_latest(
                &mut theirs.latest,
                &[VitalReading {
                    reading_id: ReadingId::parse(&format!("theirs-{}", theirs.version)).unwrap(),
                    code: VitalCode::Spo2,
                    value: VitalValue::Number(97.0),
                    observed_at: at - Duration::seconds(theirs.version as i64),
                }],
            );
            self.competitor_versions.lock().unwrap().push(theirs.version);
            assert_eq!(self.inner.put_state(stored.as_ref(), &theirs, &[], &[]).await?, StateWrite::Written);
        }
        self.inner.put_state(previous, state, raised, events).await
    }
}

#[async_trait]
impl BatchReader for Hooked {
    async fn read_batch(&self, trials: &[&TrialId], patients: &[(&TrialId, &PatientId)]) -> Result<BatchRead, StorageError> {
        self.trial_loads.fetch_add(trials.len(), Ordering::SeqCst);
        self.inner.read_batch(trials, patients).await
    }
}

fn hooked(patients: &[&str]) -> Hooked {
    Hooked { inner: seeded(patients, 60), ..Hooked::default() }
}

#[tokio::test]
async fn a_stale_state_writer_reloads_merges_and_retries() {
    // GIVEN another writer wins the first state write
    let store = hooked(&["P0001"]);
    store.races.store(1, Ordering::SeqCst);
    let (d, clock) = deps(store);
    // WHEN a medium batch is handled
    let r = handle(&d, sqs_event(&[("m1", body("P0001", readings_for(RiskLevel::Medium, clock.now())))])).await.unwrap();
    // THEN it succeeds on version 2, keeping the other writer's SpO2 and its own readings
    assert!(r.batch_item_failures.is_empty());
    let state = state_of(&*d.store, "P0001").await.unwrap();
    assert_eq!(state.version, 2);
    assert!(state.latest.contains_key(&VitalCode::Spo2) && state.latest.contains_key(&VitalCode::HeartRate));
    assert_eq!(state.last_alert_level, Some(RiskLevel::Medium));
    // AND the alert was sent once (same decision on the reloaded state)
    assert_eq!(d.alerts.sent_alerts().len(), 1);
}

#[tokio::test]
async fn a_state_that_stays_contended_fails_the_patients_records_after_bounded_retries() {
    let store = hooked(&["P0001"]);
    store.races.store(usize::MAX, Ordering::SeqCst);
    let (d, clock) = deps(store);
    let r = handle(&d, sqs_event(&[("m1", body("P0001", readings_for(RiskLevel::Low, clock.now())))])).await.unwrap();
    assert_eq!(failed_ids(&r), ["m1"]);
    assert_eq!(d.store.competitor_versions.lock().unwrap().len(), crate::patient::STATE_RETRIES + 1);
}

#[tokio::test]
async fn a_panicking_dependency_fails_only_its_patient_and_the_records_after_it() {
    // GIVEN writing P0002's state panics
    let store = Hooked { panic_for: Some(pid("P0002")), ..hooked(&["P0001", "P0002", "P0003"]) };
    let (d, clock) = deps(store);
    let batch = [
        ("m1", body("P0001", readings_for(RiskLevel::High, clock.now()))),
        ("m2", body("P0002", readings_for(RiskLevel::High, clock.now()))),
        ("m3", body("P0003", readings_for(RiskLevel::Low, clock.now()))),
    ];
    // WHEN handled
    let r = handle(&d, sqs_event(&batch)).await.unwrap();
    // THEN the invocation survives; P0002's record and the later one are reported
    assert_eq!(failed_ids(&r), ["m2", "m3"]);
    // AND P0001 was processed and alerted (P0002's alert went out before its state write
    // panicked: send, then record; the redelivery computes the same alert id)
    assert_eq!(d.alerts.sent_alerts().iter().map(|a| a.patient_id.as_str()).collect::<Vec<_>>(), ["P0001", "P0002"]);
    assert!(state_of(&d.store.inner, "P0002").await.is_none());
    assert!(state_of(&d.store.inner, "P0001").await.is_some());
}

#[tokio::test]
async fn patients_are_processed_concurrently_up_to_the_limit_and_no_further() {
    // GIVEN 9 patients, a limit of 3, and state writes that take 20 ms
    let patients: Vec<String> = (1..=9).map(|i| format!("P{i:04}")).collect();
    let names: Vec<&str> = patients.iter().map(String::as_str).collect();
    let store = Hooked { load_delay: Some(StdDuration::from_millis(20)), ..hooked(&names) };
    let clock = Arc::new(FakeClock::at(START));
    let d = Deps::new(Arc::new(store), MemoryQueue::new(), clock.clone(), MemoryDeadLetters::new(), StdDuration::from_secs(300), 3);
    let records: Vec<(String, String)> =
        patients.iter().map(|p| (format!("m-{p}"), body(p, readings_for(RiskLevel::Low, clock.now())))).collect();
    let batch: Vec<(&str, String)> = records.iter().map(|(id, b)| (id.as_str(), b.clone())).collect();
    // WHEN handled
    let r = handle(&d, sqs_event(&batch)).await.unwrap();
    // THEN exactly 3 writes were ever in flight together
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(d.store.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_trial_is_loaded_once_per_ttl_not_per_message() {
    let (d, clock) = deps(hooked(&["P0001", "P0002"]));
    for i in 0..3 {
        let batch = [
            (format!("a{i}"), body("P0001", readings_for(RiskLevel::Low, clock.now()))),
            (format!("b{i}"), body("P0002", readings_for(RiskLevel::Low, clock.now()))),
        ];
        let batch: Vec<(&str, String)> = batch.iter().map(|(id, b)| (id.as_str(), b.clone())).collect();
        handle(&d, sqs_event(&batch)).await.unwrap();
    }
    assert_eq!(d.store.trial_loads.load(Ordering::SeqCst), 1);
}

mod hostile_bodies {
    use proptest::prelude::*;

    use super::*;

    /// Bodies a device cloud or an attacker could write straight to the queue:
    /// arbitrary text, and a valid body cut short or with a stretch overwritten.
    fn hostile_body() -> impl Strategy<Value = String> {
        let valid = body("P0001", readings_for(RiskLevel::High, START.parse().unwrap()));
        let len = valid.len();
        let cut = valid.clone();
        prop_oneof![
            any::<String>(),
            "\\PC{0,300}",
            (0..len).prop_map(move |n| cut[..n].to_owned()),
            (0..len, 1..8usize, "\\PC{0,8}").prop_map(move |(at, span, with)| {
                let mut b = valid.clone().into_bytes();
                let end = (at + span).min(b.len());
                b.splice(at..end, with.into_bytes());
                String::from_utf8_lossy(&b).into_owned()
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn a_hostile_body_never_panics_and_never_holds_back_another_group(hostile in hostile_body(), first in any::<bool>()) {
            // GIVEN a hostile record in one group and a good record of another patient in another,
            // in either order
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (d, clock) = deps(seeded(&["P0001", "P0002"], 60));
            let good = ("good", "P0002", body("P0002", readings_for(RiskLevel::Medium, clock.now())));
            let empty = hostile.is_empty();
            let bad = ("hostile", "P0001", hostile);
            let batch = if first { [bad, good] } else { [good, bad] };
            // WHEN handled
            let response = rt.block_on(handle(&d, fifo_event(&batch)));
            // THEN the invocation succeeds, and the good record is never reported and was scored
            let response = response.expect("the invocation survives any body");
            prop_assert!(!failed_ids(&response).contains(&"good".to_owned()));
            prop_assert!(rt.block_on(state_of(&*d.store, "P0002")).and_then(|s| s.news2).is_some());
            // AND the hostile record is processed (it happened to be valid) or parked, never retried;
            // except an empty body, which SQS cannot carry (so no real record has one) and so
            // refuses to park: that one comes back itself, holding back only its own group
            let expected: &[&str] = if empty { &["hostile"] } else { &[] };
            prop_assert_eq!(failed_ids(&response), expected);
        }
    }
}

/// A direct integrator's record: the group and SQS's `SenderId` as given.
fn sent_by(id: &str, group: &str, sender: &str, body: String) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_owned());
    m.body = Some(body);
    m.attributes.insert("MessageGroupId".into(), group.to_owned());
    m.attributes.insert("SenderId".into(), sender.to_owned());
    m
}

fn event_of(records: Vec<SqsMessage>) -> LambdaEvent<SqsEvent> {
    let mut event = SqsEvent::default();
    event.records = records;
    LambdaEvent::new(event, Context::default())
}

#[tokio::test]
async fn a_record_whose_group_is_not_its_body_s_patient_is_parked_with_its_reason_and_nothing_is_written() {
    // GIVEN an integrator writing P0002's readings into P0001's message group, and a correct record
    let (d, clock) = deps(seeded(&["P0001", "P0002"], 60));
    let at = clock.now() - Duration::minutes(1);
    let wrong = body("P0002", readings_for(RiskLevel::High, at));
    let batch = vec![
        sent_by("m1", "tw-demo#P0001", "AROAACME:cloud", wrong.clone()),
        sent_by("m2", "tw-demo#P0001", "AROAACME:cloud", body("P0001", readings_for(RiskLevel::Low, at))),
    ];
    // WHEN handled
    let response = handle(&d, event_of(batch)).await.unwrap();
    // THEN the mismatched record is parked (permanent), unchanged, with the reason code
    assert!(response.batch_item_failures.is_empty(), "{:?}", failed_ids(&response));
    let parked = d.dead_letters.parked();
    assert_eq!(parked.iter().map(|p| (p.dedup_id.as_str(), p.reason)).collect::<Vec<_>>(), [("m1", "group-id-mismatch")]);
    assert_eq!(parked[0].body, wrong);
    // AND P0002 got nothing (no reading, no state, no alert), while P0001's own record was scored
    assert!(d.store.readings(&trial_id(), &pid("P0002")).is_empty());
    assert!(state_of(&*d.store, "P0002").await.is_none());
    assert!(d.alerts.sent_alerts().is_empty());
    assert_eq!(state_of(&*d.store, "P0001").await.unwrap().news2.unwrap().risk_level, RiskLevel::Low);
}

#[tokio::test]
async fn a_direct_integrator_may_send_only_for_its_own_trials() {
    // GIVEN integrator AROAACME allowed tw-heart-01 only, and a record of tw-demo from it
    let (d, clock) = deps(seeded(&["P0001"], 60));
    let d = d.with_integrators(crate::senders::Integrators::parse("AROAACME=tw-heart-01").unwrap());
    let at = clock.now() - Duration::minutes(1);
    let records = vec![
        sent_by("m1", "tw-demo#P0001", "AROAACME:cloud", body("P0001", readings_for(RiskLevel::High, at))),
        // AND the same readings from epro-api's role (not an integrator: any trial)
        sent_by("m2", "tw-demo#P0001", "AROAEPROAPI:epro-api", body("P0001", readings_for(RiskLevel::Low, at))),
    ];
    // WHEN handled
    let response = handle(&d, event_of(records)).await.unwrap();
    // THEN the integrator's record is parked with its reason, and epro-api's is scored
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        d.dead_letters.parked().iter().map(|p| (p.dedup_id.as_str(), p.reason)).collect::<Vec<_>>(),
        [("m1", "sender-not-allowed-for-trial")]
    );
    assert_eq!(state_of(&*d.store, "P0001").await.unwrap().news2.unwrap().risk_level, RiskLevel::Low);
    assert!(d.alerts.sent_alerts().is_empty());
}

#[tokio::test]
async fn an_alert_carries_the_correlation_id_of_the_record_that_raised_it_or_its_message_id() {
    // GIVEN two patients' high readings: one sent by epro-api with a correlation id, one direct without
    let (d, clock) = deps(seeded(&["P0001", "P0002"], 60));
    let at = clock.now() - Duration::minutes(1);
    let mut from_api = sent_by("m1", "tw-demo#P0001", "AROAEPROAPI:epro-api", body("P0001", readings_for(RiskLevel::High, at)));
    let mut attribute = aws_lambda_events::event::sqs::SqsMessageAttribute::default();
    attribute.string_value = Some("req-7f3a".into());
    attribute.data_type = Some("String".into());
    from_api.message_attributes.insert(trialwatch::correlation::MESSAGE_ATTRIBUTE.into(), attribute);
    let direct =
        sent_by("0b5e9c1e-1111-4aaa-8bbb-222233334444", "tw-demo#P0002", "AROAACME:c", body("P0002", readings_for(RiskLevel::High, at)));
    // WHEN handled
    handle(&d, event_of(vec![from_api, direct])).await.unwrap();
    // THEN each alert carries its own record's id: the attribute, else the SQS message id
    let mut ids: Vec<(String, Option<String>)> =
        d.alerts.sent_alerts().iter().map(|a| (a.patient_id.to_string(), a.correlation_id.as_ref().map(|c| c.to_string()))).collect();
    ids.sort();
    assert_eq!(ids, [("P0001".into(), Some("req-7f3a".into())), ("P0002".into(), Some("0b5e9c1e-1111-4aaa-8bbb-222233334444".into()))]);
}

mod audit_chain {
    use super::*;
    use trialwatch::audit::chain::{check_head, verify, ChainId};

    fn raised(store: &MemoryStore, patient: &str) -> Vec<trialwatch::audit::AuditEntry> {
        let chain = ChainId::Patient(pid(patient));
        let (entries, head) = store.audit_chain(&trial_id(), &chain);
        assert_eq!(check_head(&verify(&chain, &entries).unwrap(), &head), Ok(()), "the chain verifies to its recorded head");
        entries.into_iter().filter(|e| e.action == "alert.raised").collect()
    }

    #[tokio::test]
    async fn an_escalation_is_audited_as_raised_with_its_score_and_component_scores_only() {
        // GIVEN an enrolled patient WHEN a batch takes them to high
        let (d, clock) = deps(seeded(&["P0001"], 60));
        handle(&d, sqs_event(&[("m1", body("P0001", readings_for(RiskLevel::High, clock.now())))])).await.unwrap();
        // THEN one alert.raised entry, in the patient's chain, names the alert, its level, the score and each parameter's score
        let alert = &d.alerts.sent_alerts()[0];
        let AlertReason::News2 { score, components } = &alert.reason else { panic!("a NEWS2 alert") };
        let entries = raised(&d.store, "P0001");
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e.entity, format!("alert/{}", alert.alert_id));
        assert_eq!(e.actor, trialwatch::audit::Actor::system("vitals-analyzer"));
        assert_eq!((e.details["rule"].as_str(), e.details["level"].as_str()), (Some("news2"), Some("high")));
        assert_eq!(e.details["score"], serde_json::json!(score));
        let scores = e.details["components"].as_object().unwrap();
        assert_eq!(scores.len(), components.len());
        for c in components {
            assert_eq!(scores[c.parameter.as_str()], serde_json::json!(c.score), "a component's score, never its value");
        }
    }

    #[tokio::test]
    async fn a_redelivered_batch_writes_no_second_alert_raised_entry() {
        // GIVEN a high batch handled
        let (d, clock) = deps(seeded(&["P0001"], 60));
        let batch = [("m1", body("P0001", readings_for(RiskLevel::High, clock.now())))];
        handle(&d, sqs_event(&batch)).await.unwrap();
        // WHEN it is redelivered
        clock.advance(Duration::minutes(1));
        handle(&d, sqs_event(&batch)).await.unwrap();
        // THEN the trail still holds one alert.raised entry
        assert_eq!(raised(&d.store, "P0001").len(), 1);
    }

    #[tokio::test]
    async fn a_chain_head_moved_since_the_enrolment_was_read_is_re_read_and_the_escalation_recorded_once() {
        // GIVEN another writer of the patient's chain commits just before the analyzer's state write
        let (d, clock) = deps(seeded(&["P0001"], 60));
        d.store.race_appends(1);
        // WHEN a batch escalates the patient
        let r = handle(&d, sqs_event(&[("m1", body("P0001", readings_for(RiskLevel::High, clock.now())))])).await.unwrap();
        // THEN the write is retried from the re-read head: the record succeeds, the state holds the alert, audited once
        assert!(r.batch_item_failures.is_empty(), "{r:?}");
        assert_eq!(state_of(&*d.store, "P0001").await.unwrap().last_alert_level, Some(RiskLevel::High));
        assert_eq!(raised(&d.store, "P0001").len(), 1);
        // AND a head that keeps moving fails the patient's records for a redelivery, writing nothing
        let (d, clock) = deps(seeded(&["P0002"], 60));
        d.store.race_appends(trialwatch::audit::append::MAX_APPEND_ATTEMPTS as u32);
        let r = handle(&d, sqs_event(&[("m1", body("P0002", readings_for(RiskLevel::High, clock.now())))])).await.unwrap();
        assert_eq!(failed_ids(&r), ["m1"]);
        assert!(state_of(&*d.store, "P0002").await.is_none());
        assert!(raised(&d.store, "P0002").is_empty());
    }
}

#[async_trait]
impl trialwatch::ports::PendingEvents for Hooked {
    async fn due_events(
        &self,
        shard: u32,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<trialwatch::domain_event::DueEvent>, StorageError> {
        self.inner.due_events(shard, now, limit).await
    }
    async fn settle(&self, published: &[trialwatch::domain_event::EventId]) -> Result<(), StorageError> {
        self.inner.settle(published).await
    }
}
