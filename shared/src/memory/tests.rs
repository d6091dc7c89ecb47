//! The in-memory store keeps the AWS adapters' semantics and request counts.

use chrono::{NaiveDate, Utc};

use super::MemoryStore;
use crate::audit::append::is_head_moved;
use crate::audit::chain::{check_head, link_all, verify, ChainId};
use crate::audit::{Actor, AuditEntry};
use crate::enrolment::{Enrolment, EnrolmentStatus};
use crate::ids::{PatientId, SiteId, SubmissionId, TrialId};
use crate::news2::News2Result;
use crate::news2::RiskLevel;
use crate::page::PageRequest;
use crate::ports::StorageError;
use crate::ports::*;
use crate::submission::Answer;
use crate::submission::StoredSubmission;
use crate::vitals::VitalReading;
use crate::vitals_state::VitalsState;

fn ids() -> (TrialId, PatientId, SiteId) {
    (TrialId::parse("t1").unwrap(), PatientId::parse("p1").unwrap(), SiteId::parse("s1").unwrap())
}

fn enrolment(status: EnrolmentStatus) -> Enrolment {
    let (t, p, s) = ids();
    Enrolment {
        trial_id: t,
        patient_id: p,
        site_id: s,
        status,
        hypercapnic: false,
        enrolled_at: "2026-11-01T00:00:00.000Z".into(),
        updated_at: "2026-11-01T00:00:00.000Z".into(),
        submission_count: 0,
        last_submission_at: None,
        withdrawn_at: None,
        audit_head: Default::default(),
    }
}

fn submission() -> StoredSubmission {
    let (t, p, s) = ids();
    StoredSubmission {
        trial_id: t,
        patient_id: p,
        site_id: s,
        submission_id: SubmissionId::parse("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap(),
        questionnaire_id: "q".parse().unwrap(),
        questionnaire_version: "1".into(),
        completed_at: "2026-11-26T19:00:00Z".parse().unwrap(),
        received_at: "2026-11-26T19:00:01Z".parse().unwrap(),
        answers: vec![Answer { link_id: "a".into(), value: crate::submission::AnswerValue::Number(1.0) }],
        score: Some(1.0),
        body_hash: "h".into(),
        submitted_by: Actor { role: "patient".into(), subject: Some("p1".into()) },
    }
}

fn audit() -> AuditEntry {
    AuditEntry::new(ids().0, "submission/x", "submission.created", Actor::system("test"), Utc::now()).with_detail("patientId", "p1")
}

/// A submission's entry linked after the head the enrolment holds now, as the API links it.
async fn linked(m: &MemoryStore) -> Vec<AuditEntry> {
    let (t, p, _) = ids();
    let head = m.get_enrolment(&t, &p).await.unwrap().map(|e| e.audit_head).unwrap_or_default();
    let mut entries = vec![audit()];
    link_all(entries.iter_mut(), &ChainId::Patient(p), &head);
    entries
}

#[tokio::test]
async fn a_submission_linked_from_a_head_that_moved_on_is_refused_and_writes_nothing() {
    // GIVEN an enrolled patient, and the entries of a submission linked from the enrolment's head
    let m = MemoryStore::new();
    m.seed_enrolment(enrolment(EnrolmentStatus::Enrolled));
    let stale = linked(&m).await;
    // WHEN another writer extends the chain first (an acknowledgement)
    m.append_elsewhere(&audit());
    // THEN the submission is refused as head-moved, and nothing of it is stored
    let err = m.record_submission(&submission(), "2026-11-26", &stale, &[], &[]).await.unwrap_err();
    assert!(is_head_moved(&err), "{err:?}");
    assert_eq!(m.submission_count(), 0);
    // AND linked from the head read again, it commits and the chain verifies to the recorded head
    assert_eq!(m.record_submission(&submission(), "2026-11-26", &linked(&m).await, &[], &[]).await.unwrap(), RecordOutcome::Recorded);
    let (t, p, _) = ids();
    let (entries, head) = m.audit_chain(&t, &ChainId::Patient(p));
    assert_eq!(check_head(&verify(&ChainId::Patient(ids().1), &entries).unwrap(), &head), Ok(()));
    assert_eq!(head.seq, 2);
}

#[tokio::test]
async fn a_second_record_of_the_same_id_is_a_duplicate_and_counts_once() {
    let m = MemoryStore::new();
    m.seed_enrolment(enrolment(EnrolmentStatus::Enrolled));
    assert_eq!(m.record_submission(&submission(), "2026-11-26", &linked(&m).await, &[], &[]).await.unwrap(), RecordOutcome::Recorded);
    assert!(matches!(
        m.record_submission(&submission(), "2026-11-26", &linked(&m).await, &[], &[]).await.unwrap(),
        RecordOutcome::Duplicate(_)
    ));
    let (t, p, _) = ids();
    assert_eq!(m.get_enrolment(&t, &p).await.unwrap().unwrap().submission_count, 1);
    let day: NaiveDate = "2026-11-26".parse().unwrap();
    assert_eq!(m.daily_counts(&t, day, day).await.unwrap()[0].submissions, 1);
}

#[tokio::test]
async fn a_withdrawn_patient_records_nothing() {
    let m = MemoryStore::new();
    m.seed_enrolment(enrolment(EnrolmentStatus::Withdrawn));
    let err = m.record_submission(&submission(), "2026-11-26", &linked(&m).await, &[], &[]).await.unwrap_err();
    assert_eq!(err.code(), "patient-not-enrolled");
    assert_eq!(m.submission_count(), 0);
    assert!(m.audit_entries().is_empty());
}

#[tokio::test]
async fn pages_follow_cursors_and_reject_foreign_ones() {
    let m = MemoryStore::new();
    m.seed_enrolment(enrolment(EnrolmentStatus::Enrolled));
    for _ in 0..5 {
        let mut s = submission();
        s.submission_id = SubmissionId::new_random();
        m.record_submission(&s, "2026-11-26", &linked(&m).await, &[], &[]).await.unwrap();
    }
    let (t, p, _) = ids();
    let first = m.list_submissions(&t, &p, &PageRequest::first(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let mut seen = first.items.len();
    let mut cursor = first.next_cursor;
    while let Some(c) = cursor {
        let next = m.list_submissions(&t, &p, &PageRequest { limit: 2, cursor: Some(c) }).await.unwrap();
        seen += next.items.len();
        cursor = next.next_cursor;
    }
    assert_eq!(seen, 5);
    let other = PatientId::parse("p2").unwrap();
    let c = m.list_submissions(&t, &p, &PageRequest::first(2)).await.unwrap().next_cursor;
    assert!(m.list_submissions(&t, &other, &PageRequest { limit: 2, cursor: c }).await.is_err());
}

#[tokio::test]
async fn readings_count_one_batch_write_per_25() {
    let m = MemoryStore::new();
    let (t, p, _) = ids();
    let rs: Vec<VitalReading> = (0..60)
        .map(|i| VitalReading {
            reading_id: crate::ids::ReadingId::parse(&format!("r{i}")).unwrap(),
            code: crate::vitals::VitalCode::HeartRate,
            value: crate::vitals::VitalValue::Number(70.0),
            observed_at: "2026-11-26T19:00:00Z".parse().unwrap(),
        })
        .collect();
    m.put_readings(&t, &p, &rs).await.unwrap();
    assert_eq!(m.requests.get("dynamodb.BatchWriteItem"), 3);
    assert_eq!(m.readings(&t, &p).len(), 60);
}

#[tokio::test]
async fn readings_of_several_patients_pack_25_per_batch_write_across_patients() {
    // GIVEN 10 patients with 3 readings each (30 readings)
    let m = MemoryStore::new();
    let t = TrialId::parse("t1").unwrap();
    let patients: Vec<PatientId> = (0..10).map(|i| PatientId::parse(&format!("p{i}")).unwrap()).collect();
    let rs: Vec<VitalReading> = (0..3)
        .map(|i| VitalReading {
            reading_id: crate::ids::ReadingId::parse(&format!("r{i}")).unwrap(),
            code: crate::vitals::VitalCode::HeartRate,
            value: crate::vitals::VitalValue::Number(70.0),
            observed_at: "2026-11-26T19:00:00Z".parse().unwrap(),
        })
        .collect();
    let batch: Vec<PatientReadings<'_>> = patients.iter().map(|p| PatientReadings { trial: &t, patient: p, readings: &rs }).collect();
    // WHEN written as one batch
    m.put_readings_batch(&batch).await.unwrap();
    // THEN ceil(30/25) = 2 calls, not one per patient, and every reading is stored
    assert_eq!(m.requests.get("dynamodb.BatchWriteItem"), 2);
    assert!(patients.iter().all(|p| m.readings(&t, p).len() == 3));
}

fn state(version: u64, level: Option<RiskLevel>) -> VitalsState {
    let (t, p, _) = ids();
    let mut s = VitalsState::new(t, p);
    s.version = version;
    s.news2 = level.map(|risk_level| News2Result { score: 3, risk_level, components: vec![], missing: vec![], observed_at: None });
    s
}

#[tokio::test]
async fn a_state_written_over_the_callers_read_costs_one_write_and_a_stale_read_loses() {
    // GIVEN a patient at low, version 1
    let m = MemoryStore::new();
    let v1 = state(1, Some(RiskLevel::Low));
    assert_eq!(m.put_state(None, &v1, &[], &[]).await.unwrap(), StateWrite::Written);
    // WHEN one writer moves it to high over version 1, then another who also read version 1 tries medium
    let v2 = state(2, Some(RiskLevel::High));
    let winner = m.put_state(Some(&v1), &v2, &[], &[]).await.unwrap();
    let loser = m.put_state(Some(&v1), &state(2, Some(RiskLevel::Medium)), &[], &[]).await.unwrap();
    // THEN the first wins and the second is stale; each was one write and nothing was read
    assert_eq!((winner, loser), (StateWrite::Written, StateWrite::Stale));
    assert_eq!(m.requests.get("dynamodb.GetItem"), 0);
    assert_eq!((m.requests.get("dynamodb.PutItem"), m.requests.get("dynamodb.TransactWriteItems")), (0, 3));
    // AND the counters moved from the level the winner read
    assert_eq!(m.risk_level_counts(&ids().0).await.unwrap(), vec![(RiskLevel::High, 1)]);
    // AND a state that does not follow the previous one is refused
    assert!(matches!(m.put_state(Some(&v2), &state(4, None), &[], &[]).await, Err(StorageError::Corrupt(_))));
}
