//! `score_batch` on its own: in-memory ports, no SQS envelope.

use std::time::Duration;

use chrono::{DateTime, Utc};
use trialwatch::config_cache::ConfigCache;
use trialwatch::correlation::CorrelationId;
use trialwatch::domain_event::Unpublished;
use trialwatch::memory::{MemoryQueue, MemoryStore};
use trialwatch::news2::RiskLevel;
use trialwatch::ports::{StorageError, VitalsStore};
use trialwatch::{PatientId, TrialId};

use super::{score_batch, BatchScored, ScoreBatch, ScoreBatchError};
use crate::handler_tests::{pid, readings_for, seeded, trial_id};
use crate::patient::PatientBatch;

const NOW: &str = "2026-11-26T20:00:00Z";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

fn store_with(patients: &[&str]) -> MemoryStore {
    seeded(patients, 60)
}

fn patient(trial: &str, id: &str, records: Vec<usize>) -> PatientBatch {
    PatientBatch {
        trial: TrialId::parse(trial).unwrap(),
        patient: PatientId::parse(id).unwrap(),
        records,
        readings: readings_for(RiskLevel::High, now()),
        correlation: CorrelationId::from_platform_id("m-test"),
    }
}

async fn score(store: &MemoryStore, queue: &MemoryQueue, patients: Vec<PatientBatch>) -> BatchScored {
    let trials = ConfigCache::new(Duration::from_secs(300));
    score_batch(store, queue, &Unpublished, &trials, 4, ScoreBatch { now: now(), patients }).await
}

#[tokio::test]
async fn a_high_patient_is_scored_its_alert_sent_and_the_escalation_recorded_in_state() {
    // GIVEN an enrolled patient with readings scoring high
    let (store, queue) = (store_with(&["P0001"]), MemoryQueue::new());
    // WHEN the batch is scored
    let scored = score(&store, &queue, vec![patient("tw-demo", "P0001", vec![0, 1])]).await;
    // THEN the patient's answer is the escalation, for both its records
    assert_eq!(scored.patients.len(), 1);
    assert_eq!(scored.patients[0].records, vec![0, 1]);
    let escalation = scored.patients[0].result.clone().expect("scored").expect("an escalation");
    assert_eq!(escalation.level, RiskLevel::High);
    assert_eq!(scored.alerts_recorded(), 1);
    // AND exactly that alert was sent, and the state records it
    let sent = queue.sent_alerts();
    assert_eq!(sent.iter().map(|a| (&a.alert_id, a.level)).collect::<Vec<_>>(), vec![(&escalation.alert_id, RiskLevel::High)]);
    let state = store.get_state(&trial_id(), &pid("P0001")).await.unwrap().expect("state written");
    assert_eq!(state.version, 1);
    assert_eq!(state.news2.map(|n| n.risk_level), Some(RiskLevel::High));
}

#[tokio::test]
async fn an_unknown_trial_and_a_patient_not_enrolled_are_their_own_errors_and_the_others_are_scored() {
    // GIVEN one enrolled patient, one not enrolled, one of a trial that does not exist
    let (store, queue) = (store_with(&["P0001"]), MemoryQueue::new());
    let patients = vec![patient("tw-demo", "P0001", vec![0]), patient("tw-demo", "P0404", vec![1]), patient("tw-none", "P0001", vec![2])];
    // WHEN scored
    let scored = score(&store, &queue, patients).await;
    // THEN each absence is named, and the enrolled patient is scored in the same batch
    let results: Vec<Result<bool, ScoreBatchError>> = scored.patients.iter().map(|p| p.result.clone().map(|e| e.is_some())).collect();
    assert_eq!(results, vec![Ok(true), Err(ScoreBatchError::NotEnrolled), Err(ScoreBatchError::UnknownTrial)]);
    assert_eq!(queue.sent_alerts().len(), 1);
}

#[tokio::test]
async fn a_failed_alert_send_leaves_the_state_unwritten_so_a_retry_alerts_again() {
    // GIVEN the alert queue fails once
    let (store, queue) = (store_with(&["P0001"]), MemoryQueue::new());
    queue.fail_next("enqueue", 1);
    // WHEN scored
    let scored = score(&store, &queue, vec![patient("tw-demo", "P0001", vec![0])]).await;
    // THEN the patient fails with the send's storage error, and no state records an alert never sent
    assert!(matches!(&scored.patients[0].result, Err(ScoreBatchError::AlertSend(StorageError::Unavailable(_)))), "{scored:?}");
    assert_eq!(scored.alerts_recorded(), 0);
    assert!(store.get_state(&trial_id(), &pid("P0001")).await.unwrap().is_none());
    // AND scoring again sends and records it
    let again = score(&store, &queue, vec![patient("tw-demo", "P0001", vec![0])]).await;
    assert_eq!(again.alerts_recorded(), 1);
}

#[tokio::test]
async fn a_failed_batch_read_fails_every_patient_of_the_batch_and_writes_nothing() {
    // GIVEN the batch read fails
    let (store, queue) = (store_with(&["P0001", "P0002"]), MemoryQueue::new());
    store.fail_next("read_batch", 1);
    // WHEN two patients are scored
    let scored = score(&store, &queue, vec![patient("tw-demo", "P0001", vec![0]), patient("tw-demo", "P0002", vec![1])]).await;
    // THEN both fail with the read's error, and nothing was sent
    assert!(scored.patients.iter().all(|p| matches!(p.result, Err(ScoreBatchError::Read(_)))), "{scored:?}");
    assert!(queue.sent_alerts().is_empty());
}
