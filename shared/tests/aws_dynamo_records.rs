//! DynamoStore against the emulator: trials, enrolments, submissions, readings
//! and vitals state, through the real SDK client.

mod aws_support;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_support::{at, audit, linked_to, patient, site, trial, Emulator};
use chrono::NaiveDate;
use trialwatch::audit::chain::{self, ChainId};
use trialwatch::audit::Actor;
use trialwatch::edge::http::HttpError;
use trialwatch::enrolment::{Enrolment, EnrolmentCount, EnrolmentStatus};
use trialwatch::news2::{News2Result, RiskLevel};
use trialwatch::page::PageRequest;
use trialwatch::ports::*;
use trialwatch::submission::{Answer, AnswerValue, StoredSubmission};
use trialwatch::trial::Trial;
use trialwatch::vitals::{VitalCode, VitalReading, VitalValue};
use trialwatch::vitals_state::VitalsState;
use trialwatch::{Error, PatientId, QuestionnaireId, ReadingId, SubmissionId};

fn a_trial() -> Trial {
    serde_json::from_value(serde_json::json!({
        "trialId": trial().as_str(), "updatedAt": "2026-11-26T20:00:00.000Z",
        "name": "Heart failure at home",
        "sites": [{"id": "s1", "name": "Leeds"}, {"id": "s2", "name": "北京协和医院"}],
        "questionnaires": [{"id": "kccq", "version": "1", "items": [
            {"linkId": "q1", "type": "decimal", "min": 0.5, "max": 10, "required": true},
            {"linkId": "q2", "type": "choice", "options": [0, 1, "none"]}
        ]}],
        "schedule": [{"questionnaireId": "kccq", "frequency": "daily"}],
        "timezone": "Europe/London",
        "alerting": {"webhook": {"url": "https://site.example/hook", "secret": "0123456789abcdef"},
                     "proRules": [{"questionnaireId": "kccq", "linkId": "q1", "atLeast": 8.5, "level": "medium"}]}
    }))
    .unwrap()
}

fn enrolment(p: &PatientId, site_id: &str, status: EnrolmentStatus) -> Enrolment {
    Enrolment {
        trial_id: trial(),
        patient_id: p.clone(),
        site_id: site(site_id),
        status,
        hypercapnic: false,
        enrolled_at: "2026-11-01T09:00:00.000Z".into(),
        updated_at: "2026-11-26T09:00:00.000Z".into(),
        submission_count: 0,
        last_submission_at: None,
        withdrawn_at: None,
        audit_head: Default::default(),
    }
}

fn submission(p: &PatientId, completed_at: &str) -> StoredSubmission {
    StoredSubmission {
        trial_id: trial(),
        patient_id: p.clone(),
        site_id: site("s1"),
        submission_id: SubmissionId::new_random(),
        questionnaire_id: QuestionnaireId::parse("kccq").unwrap(),
        questionnaire_version: "1".into(),
        completed_at: at(completed_at),
        received_at: at("2026-11-26T21:00:00.123Z"),
        answers: vec![
            Answer { link_id: "q1".into(), value: AnswerValue::Number(7.5) },
            Answer { link_id: "q2".into(), value: AnswerValue::Text("none".into()) },
            Answer { link_id: "q3".into(), value: AnswerValue::Bool(true) },
        ],
        score: Some(7.5),
        body_hash: "9f86d081884c7d659a2feaa0c55ad015".into(),
        submitted_by: Actor { role: "patient".into(), subject: Some(p.to_string()) },
    }
}

async fn enrol(store: &impl EnrolmentStore, p: &PatientId, site_id: &str, status: EnrolmentStatus) {
    store
        .put_enrolment(&enrolment(p, site_id, status), &audit(&format!("patient/{p}"), "enrolment.updated", "2026-11-26T09:00:00Z"), &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn an_enrolment_written_after_a_read_skips_its_own_read_and_a_stale_read_still_converges() {
    // GIVEN P-1 enrolled at s1
    let env = Emulator::provision("enrol-after-read").await;
    let (store, counter) = env.counted_store();
    let p1 = patient("P-1");
    enrol(&store, &p1, "s1", EnrolmentStatus::Enrolled).await;
    // WHEN it moves to s2, written after a fresh read of the enrolment
    let read = store.get_enrolment(&trial(), &p1).await.unwrap();
    counter.reset();
    let moved = store
        .put_enrolment_after_read(
            &enrolment(&p1, "s2", EnrolmentStatus::Enrolled),
            &audit("patient/P-1", "enrolment.updated", "2026-11-26T10:00:00Z"),
            read.as_ref(),
            &[],
        )
        .await
        .unwrap();
    // THEN it is one transaction and no second read
    assert_eq!(moved, Upsert::Updated);
    assert_eq!((counter.get("GetItem"), counter.get("TransactWriteItems")), (0, 1));
    // WHEN it moves to s3 after a stale read (one that says P-1 is not enrolled at all)
    counter.reset();
    let again = store
        .put_enrolment_after_read(
            &enrolment(&p1, "s3", EnrolmentStatus::Enrolled),
            &audit("patient/P-1", "enrolment.updated", "2026-11-26T11:00:00Z"),
            None,
            &[],
        )
        .await
        .unwrap();
    // THEN the condition refuses the stale state, the store re-reads once and commits an update
    assert_eq!(again, Upsert::Updated);
    assert_eq!((counter.get("GetItem"), counter.get("TransactWriteItems")), (1, 2));
    // AND the counters moved from what was really stored: one patient, enrolled at s3
    let counts = store.enrolment_counts(&trial()).await.unwrap();
    assert_eq!(counts, vec![EnrolmentCount { site_id: site("s3"), status: EnrolmentStatus::Enrolled, count: 1 }]);
    // AND the chain is intact: three linked entries
    let e = store.get_enrolment(&trial(), &p1).await.unwrap().unwrap();
    assert_eq!(e.audit_head.seq, 3);
}

#[tokio::test]
async fn a_trial_is_created_then_updated_and_listed_by_id() {
    // GIVEN an empty table
    let env = Emulator::provision("trial").await;
    let store = env.store();
    let mut t = a_trial();
    // WHEN the trial is put twice
    let first = store.put_trial(&t, &audit("trial", "trial.created", "2026-11-26T20:00:00Z")).await.unwrap();
    t.definition.name = "Heart failure at home, v2".into();
    let second = store.put_trial(&t, &audit("trial", "trial.updated", "2026-11-26T20:01:00Z")).await.unwrap();
    // THEN the first created, the second updated, and the stored copy is the last, field for field
    assert_eq!((first, second), (Upsert::Created, Upsert::Updated));
    assert_eq!(store.get_trial(&trial()).await.unwrap(), Some(t));
    assert_eq!(store.list_trial_ids().await.unwrap(), vec![trial()]);
    // AND both writes left an audit entry
    let entries = env.chain(&ChainId::Trial).await;
    assert_eq!(entries.len(), 2);
    // AND they form the trial's chain, ending at the head on the trial item
    let found = chain::verify(&ChainId::Trial, &entries).unwrap();
    assert_eq!(found, entries[1].as_head().unwrap());
}

#[tokio::test]
async fn an_enrolment_change_moves_the_counters_and_keeps_the_submission_summary() {
    // GIVEN two patients enrolled at s1, one of whom has submitted
    let env = Emulator::provision("enrol").await;
    let store = env.store();
    let (p1, p2) = (patient("P-1"), patient("P-2"));
    let first = audit("patient/P-1", "enrolment.created", "2026-11-26T09:00:00Z");
    let created = store.put_enrolment(&enrolment(&p1, "s1", EnrolmentStatus::Enrolled), &first, &[]).await.unwrap();
    assert_eq!(created, Upsert::Created);
    enrol(&store, &p2, "s1", EnrolmentStatus::Enrolled).await;
    let sub = submission(&p1, "2026-11-26T20:00:00Z");
    store
        .record_submission(
            &sub,
            "2026-11-26",
            &linked_to(&store, &sub, audit("submission/x", "submission.created", "2026-11-26T20:00:01Z")).await,
            &[],
            &[],
        )
        .await
        .unwrap();
    // WHEN P-1 moves to s2 and P-2 withdraws
    let moved = store
        .put_enrolment(
            &enrolment(&p1, "s2", EnrolmentStatus::Enrolled),
            &audit("patient/P-1", "enrolment.updated", "2026-11-26T22:00:00Z"),
            &[],
        )
        .await
        .unwrap();
    enrol(&store, &p2, "s1", EnrolmentStatus::Withdrawn).await;
    // THEN the counters say one enrolled at s2 and one withdrawn at s1, nobody else
    let mut counts = store.enrolment_counts(&trial()).await.unwrap();
    counts.sort_by(|a, b| (a.site_id.as_str(), a.status).cmp(&(b.site_id.as_str(), b.status)));
    assert_eq!(moved, Upsert::Updated);
    assert_eq!(
        counts,
        vec![
            EnrolmentCount { site_id: site("s1"), status: EnrolmentStatus::Withdrawn, count: 1 },
            EnrolmentCount { site_id: site("s2"), status: EnrolmentStatus::Enrolled, count: 1 },
        ]
    );
    // AND P-1's submission summary survived the site change
    let e = store.get_enrolment(&trial(), &p1).await.unwrap().unwrap();
    assert_eq!((e.site_id.as_str(), e.submission_count), ("s2", 1));
    assert_eq!(e.last_submission_at.as_deref(), Some("2026-11-26T20:00:00.000Z"));
    assert_eq!(e.enrolled_at, "2026-11-01T09:00:00.000Z");
    // AND a repeated identical put moves no counter
    enrol(&store, &p2, "s1", EnrolmentStatus::Withdrawn).await;
    assert_eq!(store.enrolment_counts(&trial()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_submission_id_is_guarded_per_trial_and_patient() {
    // GIVEN two enrolled patients
    let env = Emulator::provision("guard").await;
    let store = env.store();
    let (p1, p2) = (patient("P-1"), patient("P-2"));
    enrol(&store, &p1, "s1", EnrolmentStatus::Enrolled).await;
    enrol(&store, &p2, "s1", EnrolmentStatus::Enrolled).await;
    let first = submission(&p1, "2026-11-26T20:15:00Z");
    let second = StoredSubmission { submission_id: first.submission_id, ..submission(&p2, "2026-11-26T20:16:00Z") };
    // WHEN P-2 reuses P-1's submission id
    let a = store
        .record_submission(
            &first,
            "2026-11-26",
            &linked_to(&store, &first, audit("submission/a", "submission.created", "2026-11-26T21:00:00Z")).await,
            &[],
            &[],
        )
        .await;
    let b = store
        .record_submission(
            &second,
            "2026-11-26",
            &linked_to(&store, &second, audit("submission/b", "submission.created", "2026-11-26T21:00:01Z")).await,
            &[],
            &[],
        )
        .await;
    // THEN both are recorded: the guard does not reveal that P-1 used the id
    assert_eq!((a.unwrap(), b.unwrap()), (RecordOutcome::Recorded, RecordOutcome::Recorded));
    assert_eq!(store.get_submission(&trial(), &p1, &first.submission_id).await.unwrap(), Some(first.clone()));
    assert_eq!(store.get_submission(&trial(), &p2, &first.submission_id).await.unwrap(), Some(second));
    // AND the guard item is keyed by trial, patient and id
    let guard = env.partition(&format!("SUBID#{}#{p1}#{}", trial(), first.submission_id)).await;
    assert_eq!(guard.len(), 1);
    assert!(env.partition(&format!("SUBID#{}", first.submission_id)).await.is_empty(), "no guard keyed by the bare id");
}

#[tokio::test]
async fn a_replay_of_a_submission_recorded_under_the_old_bare_id_guard_is_still_a_duplicate() {
    // GIVEN a submission recorded before guards were per patient: its item
    // exists, its guard is `SUBID#{id}` (simulated: the new guard deleted, an old one written)
    let env = Emulator::provision("legacy").await;
    let store = env.store();
    let p = patient("P-1");
    enrol(&store, &p, "s1", EnrolmentStatus::Enrolled).await;
    let sub = submission(&p, "2026-11-26T20:15:00Z");
    store
        .record_submission(
            &sub,
            "2026-11-26",
            &linked_to(&store, &sub, audit("submission/a", "submission.created", "2026-11-26T21:00:00Z")).await,
            &[],
            &[],
        )
        .await
        .unwrap();
    let raw = env.raw_dynamo();
    let guard_pk = format!("SUBID#{}#{p}#{}", trial(), sub.submission_id);
    let mut legacy = env.partition(&guard_pk).await.remove(0);
    raw.delete_item()
        .table_name(env.table())
        .key("pk", AttributeValue::S(guard_pk))
        .key("sk", AttributeValue::S("SUBID".into()))
        .send()
        .await
        .unwrap();
    legacy.insert("pk".into(), AttributeValue::S(format!("SUBID#{}", sub.submission_id)));
    raw.put_item().table_name(env.table()).set_item(Some(legacy)).send().await.unwrap();
    // WHEN the client replays it after the change
    let again = store
        .record_submission(
            &sub,
            "2026-11-26",
            &linked_to(&store, &sub, audit("submission/a", "submission.created", "2026-11-26T21:00:05Z")).await,
            &[],
            &[],
        )
        .await;
    // THEN it is the duplicate of what is stored, not a 500, and nothing is counted twice
    assert_eq!(again.unwrap(), RecordOutcome::Duplicate(sub.clone()));
    assert_eq!(store.get_enrolment(&trial(), &p).await.unwrap().unwrap().submission_count, 1);
}

#[tokio::test]
async fn a_submission_stores_its_answers_as_json_text_and_one_stored_as_a_list_of_maps_still_reads() {
    // GIVEN an enrolled patient
    let env = Emulator::provision("answers-text").await;
    let store = env.store();
    let p = patient("P-1");
    enrol(&store, &p, "s1", EnrolmentStatus::Enrolled).await;
    // WHEN a submission is recorded
    let sub = submission(&p, "2026-11-26T20:15:00Z");
    let entries = linked_to(&store, &sub, audit("submission/a", "submission.created", "2026-11-26T21:00:00Z")).await;
    store.record_submission(&sub, "2026-11-26", &entries, &[], &[]).await.unwrap();
    // THEN its item and its guard hold the answers as one text attribute, and the guard is
    // the item under its own key
    let mut item = env.partition(&format!("PATIENT#{}#{p}", trial())).await.remove(0);
    let mut guard = env.partition(&format!("SUBID#{}#{p}#{}", trial(), sub.submission_id)).await.remove(0);
    assert!(matches!(item.get("answers"), Some(AttributeValue::S(_))), "{:?}", item.get("answers"));
    for key in ["pk", "sk"] {
        item.remove(key);
        guard.remove(key);
    }
    assert_eq!(guard, item);
    // AND it reads back identical, listed and by its guard
    assert_eq!(store.list_submissions(&trial(), &p, &PageRequest::default()).await.unwrap().items, std::slice::from_ref(&sub));
    assert_eq!(store.get_submission(&trial(), &p, &sub.submission_id).await.unwrap(), Some(sub.clone()));

    // GIVEN a submission as earlier releases stored it: the answers a list of maps
    let old = submission(&p, "2026-11-25T08:00:00Z");
    let list = AttributeValue::L(
        old.answers
            .iter()
            .map(|a| {
                let value = match &a.value {
                    AnswerValue::Number(n) => AttributeValue::N(n.to_string()),
                    AnswerValue::Text(t) => AttributeValue::S(t.clone()),
                    AnswerValue::Bool(b) => AttributeValue::Bool(*b),
                };
                AttributeValue::M([("linkId".to_owned(), AttributeValue::S(a.link_id.clone())), ("value".to_owned(), value)].into())
            })
            .collect(),
    );
    let raw = env.raw_dynamo();
    for (pk, sk) in [
        (format!("PATIENT#{}#{p}", trial()), format!("SUB#2026-11-25T08:00:00.000Z#{}", old.submission_id)),
        (format!("SUBID#{}#{p}#{}", trial(), old.submission_id), "SUBID".to_owned()),
    ] {
        let mut legacy = item.clone();
        legacy.insert("pk".into(), AttributeValue::S(pk));
        legacy.insert("sk".into(), AttributeValue::S(sk));
        legacy.insert("submissionId".into(), AttributeValue::S(old.submission_id.to_string()));
        legacy.insert("completedAt".into(), AttributeValue::S("2026-11-25T08:00:00.000Z".into()));
        legacy.insert("answers".into(), list.clone());
        raw.put_item().table_name(env.table()).set_item(Some(legacy)).send().await.unwrap();
    }
    // WHEN it is listed and read by its guard THEN its answers are the ones it was stored with
    assert_eq!(store.list_submissions(&trial(), &p, &PageRequest::default()).await.unwrap().items, [sub, old.clone()]);
    assert_eq!(store.get_submission(&trial(), &p, &old.submission_id).await.unwrap(), Some(old.clone()));
    // AND a replay of it is the duplicate of what is stored
    let again = store
        .record_submission(
            &old,
            "2026-11-25",
            &linked_to(&store, &old, audit("submission/b", "submission.created", "2026-11-26T21:00:05Z")).await,
            &[],
            &[],
        )
        .await;
    assert_eq!(again.unwrap(), RecordOutcome::Duplicate(old));
}

#[tokio::test]
async fn recording_the_same_submission_twice_is_a_duplicate_holding_the_first() {
    // GIVEN an enrolled patient and a store that counts its requests
    let env = Emulator::provision("dup").await;
    let (store, requests) = env.counted_store();
    let p = patient("P-1");
    enrol(&store, &p, "s1", EnrolmentStatus::Enrolled).await;
    let sub = submission(&p, "2026-11-26T20:15:00Z");
    requests.reset();
    // WHEN the submission is recorded, then recorded again (a client retry)
    let first = store
        .record_submission(
            &sub,
            "2026-11-26",
            &linked_to(&store, &sub, audit("submission/a", "submission.created", "2026-11-26T21:00:00Z")).await,
            &[],
            &[],
        )
        .await
        .unwrap();
    let writes_for_one = requests.get("TransactWriteItems");
    let second = store
        .record_submission(
            &sub,
            "2026-11-26",
            &linked_to(&store, &sub, audit("submission/a", "submission.created", "2026-11-26T21:00:05Z")).await,
            &[],
            &[],
        )
        .await
        .unwrap();
    // THEN the first is one write request, the second is refused by the guard and returns what is stored
    assert_eq!(first, RecordOutcome::Recorded);
    assert_eq!(writes_for_one, 1);
    assert_eq!(second, RecordOutcome::Duplicate(sub.clone()));
    assert_eq!(store.get_submission(&trial(), &p, &sub.submission_id).await.unwrap(), Some(sub));
    // AND nothing was counted twice
    let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let counts = store.daily_counts(&trial(), day, day).await.unwrap();
    assert_eq!(counts.iter().map(|c| c.submissions).sum::<u64>(), 1);
    assert_eq!(store.get_enrolment(&trial(), &p).await.unwrap().unwrap().submission_count, 1);
    assert_eq!(env.partition(&format!("PATIENT#{}#{p}", trial())).await.len(), 1);
}

#[tokio::test]
async fn a_submission_for_a_withdrawn_patient_writes_nothing_at_all() {
    // GIVEN a withdrawn patient who submitted once while enrolled
    let env = Emulator::provision("atomic").await;
    let store = env.store();
    let p = patient("P-9");
    enrol(&store, &p, "s1", EnrolmentStatus::Enrolled).await;
    store
        .record_submission(
            &submission(&p, "2026-11-25T20:00:00Z"),
            "2026-11-25",
            &linked_to(
                &store,
                &submission(&p, "2026-11-25T20:00:00Z"),
                audit("submission/a", "submission.created", "2026-11-25T20:00:00Z"),
            )
            .await,
            &[],
            &[],
        )
        .await
        .unwrap();
    enrol(&store, &p, "s1", EnrolmentStatus::Withdrawn).await;
    let day_counts_before = store.daily_counts(&trial(), NaiveDate::MIN, NaiveDate::MAX).await.unwrap();
    // WHEN another submission arrives
    let late = submission(&p, "2026-11-26T20:00:00Z");
    let err = store
        .record_submission(
            &late,
            "2026-11-26",
            &linked_to(&store, &late, audit("submission/b", "submission.created", "2026-11-26T20:00:00Z")).await,
            &[],
            &[],
        )
        .await
        .unwrap_err();
    let err = HttpError::from(err);
    // THEN it is refused as not enrolled
    assert_eq!((err.status(), err.code()), (409, "patient-not-enrolled"));
    // AND none of the transaction's five writes happened: no submission, no guard, no audit, no counter, no summary change
    assert_eq!(env.partition(&format!("PATIENT#{}#{p}", trial())).await.len(), 1);
    assert!(env.partition(&format!("SUBID#{}", late.submission_id)).await.is_empty());
    assert!(!env.chain(&ChainId::Patient(p.clone())).await.iter().any(|e| e.entity == "submission/b"));
    assert_eq!(store.daily_counts(&trial(), NaiveDate::MIN, NaiveDate::MAX).await.unwrap(), day_counts_before);
    assert_eq!(store.get_enrolment(&trial(), &p).await.unwrap().unwrap().submission_count, 1);
    // AND a patient never enrolled is refused the same way
    let stranger = submission(&patient("P-404"), "2026-11-26T20:00:00Z");
    let err = store
        .record_submission(
            &stranger,
            "2026-11-26",
            &linked_to(&store, &stranger, audit("submission/c", "submission.created", "2026-11-26T20:00:00Z")).await,
            &[],
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "patient-not-enrolled");
}

#[tokio::test]
async fn an_out_of_order_submission_is_counted_but_keeps_the_latest_time() {
    // GIVEN an enrolled patient whose phone syncs a newer submission before an older one
    let env = Emulator::provision("order").await;
    let store = env.store();
    let p = patient("P-3");
    enrol(&store, &p, "s1", EnrolmentStatus::Enrolled).await;
    // WHEN both are recorded
    for (i, when) in ["2026-11-26T20:00:00Z", "2026-11-24T20:00:00Z"].into_iter().enumerate() {
        let outcome = store
            .record_submission(
                &submission(&p, when),
                &when[..10],
                &linked_to(&store, &submission(&p, when), audit(&format!("submission/{i}"), "submission.created", when)).await,
                &[],
                &[],
            )
            .await;
        assert_eq!(outcome.unwrap(), RecordOutcome::Recorded);
    }
    // THEN both count and the summary keeps the newest completion time
    let e = store.get_enrolment(&trial(), &p).await.unwrap().unwrap();
    assert_eq!(e.submission_count, 2);
    assert_eq!(e.last_submission_at.as_deref(), Some("2026-11-26T20:00:00.000Z"));
}

#[tokio::test]
async fn submissions_list_newest_first_across_pages_and_refuse_a_foreign_cursor() {
    // GIVEN five submissions of P-1 and one of P-2
    let env = Emulator::provision("list").await;
    let store = env.store();
    let (p1, p2) = (patient("P-1"), patient("P-2"));
    enrol(&store, &p1, "s1", EnrolmentStatus::Enrolled).await;
    enrol(&store, &p2, "s1", EnrolmentStatus::Enrolled).await;
    let mut expected = Vec::new();
    for day in 20..25 {
        let s = submission(&p1, &format!("2026-11-{day}T20:00:00Z"));
        store
            .record_submission(
                &s,
                &format!("2026-11-{day}"),
                &linked_to(&store, &s, audit(&format!("submission/{day}"), "submission.created", "2026-11-26T20:00:00Z")).await,
                &[],
                &[],
            )
            .await
            .unwrap();
        expected.insert(0, s.submission_id);
    }
    let other = submission(&p2, "2026-11-26T20:00:00Z");
    store
        .record_submission(
            &other,
            "2026-11-26",
            &linked_to(&store, &other, audit("submission/o", "submission.created", "2026-11-26T20:00:00Z")).await,
            &[],
            &[],
        )
        .await
        .unwrap();
    // WHEN P-1's list is read two at a time, following the cursors
    let mut seen = Vec::new();
    let mut page = PageRequest::first(2);
    let mut p2_cursor = None;
    loop {
        let got = store.list_submissions(&trial(), &p1, &page).await.unwrap();
        assert!(got.items.len() <= 2);
        seen.extend(got.items.iter().map(|s| s.submission_id));
        p2_cursor = p2_cursor.or(got.next_cursor.clone());
        match got.next_cursor {
            Some(c) => page = PageRequest { limit: 2, cursor: Some(c) },
            None => break,
        }
    }
    // THEN every submission comes once, newest first, and none of P-2's
    assert_eq!(seen, expected);
    // AND a cursor of P-1's list cannot continue P-2's (a tampered cursor must not cross patients)
    let err = Error::from(store.list_submissions(&trial(), &p2, &PageRequest { limit: 2, cursor: p2_cursor }).await.unwrap_err());
    assert!(matches!(&err, Error::Validation(e) if e[0].field == "cursor"), "{err:?}");
    let err = HttpError::from(
        store.list_submissions(&trial(), &p1, &PageRequest { limit: 2, cursor: Some("bm90LWEtY3Vyc29y".into()) }).await.unwrap_err(),
    );
    assert_eq!(err.status(), 422);
}

#[tokio::test]
async fn daily_counts_sum_every_shard_within_the_day_range() {
    // GIVEN 40 patients (so many shards) submitting on three days at two sites
    let env = Emulator::provision("days").await;
    let store = env.store();
    for i in 0..40 {
        let p = patient(&format!("P-{i:03}"));
        let site_id = if i % 4 == 0 { "s2" } else { "s1" };
        enrol(&store, &p, site_id, EnrolmentStatus::Enrolled).await;
        let day = 24 + i % 3;
        let mut s = submission(&p, &format!("2026-11-{day}T20:00:00Z"));
        s.site_id = site(site_id);
        store
            .record_submission(
                &s,
                &format!("2026-11-{day}"),
                &linked_to(&store, &s, audit(&format!("submission/{i}"), "submission.created", "2026-11-26T20:00:00Z")).await,
                &[],
                &[],
            )
            .await
            .unwrap();
    }
    // WHEN the counts of the 25th and 26th are read
    let d = |day| NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
    let counts = store.daily_counts(&trial(), d(25), d(26)).await.unwrap();
    // THEN they equal what was submitted on those days, per site, and nothing from the 24th
    let expected = |day: u32, site_id: &str| {
        (0..40u32).filter(|i| 24 + i % 3 == day && (if i % 4 == 0 { "s2" } else { "s1" }) == site_id).count() as u64
    };
    for c in &counts {
        assert!(c.day == "2026-11-25" || c.day == "2026-11-26", "{c:?}");
        let day: u32 = c.day[8..].parse().unwrap();
        assert_eq!(c.submissions, expected(day, c.site_id.as_str()), "{c:?}");
    }
    assert_eq!(counts.iter().map(|c| c.submissions).sum::<u64>(), (0..40).filter(|i| i % 3 != 0).count() as u64);
}

fn reading(i: usize) -> VitalReading {
    VitalReading {
        reading_id: ReadingId::parse(&format!("r-{i:03}")).unwrap(),
        code: if i % 2 == 0 { VitalCode::HeartRate } else { VitalCode::Spo2 },
        value: VitalValue::Number(60.0 + (i % 30) as f64),
        observed_at: at("2026-11-26T20:00:00Z") + chrono::Duration::seconds(i as i64),
    }
}

#[tokio::test]
async fn sixty_readings_take_three_batch_calls_of_at_most_twenty_five_and_read_back() {
    // GIVEN a store whose client counts the requests it sends
    let env = Emulator::provision("readings").await;
    let (store, requests) = env.counted_store();
    let p = patient("P-1");
    let readings: Vec<VitalReading> = (0..60).map(reading).collect();
    // WHEN 60 readings are written
    store.put_readings(&trial(), &p, &readings).await.unwrap();
    // THEN ceil(60/25) = 3 BatchWriteItem calls went out (the emulator would accept one call of 60; AWS would not)
    assert_eq!(requests.get("BatchWriteItem"), 3);
    // AND every reading is stored under the patient, with its value
    let items = env.partition(&format!("PATIENT#{}#{p}", trial())).await;
    let stored: Vec<&AttributeValue> = items.iter().filter_map(|i| i.get("value")).collect();
    assert_eq!(stored.len(), 60);
    assert!(
        items
            .iter()
            .any(|i| i.get("readingId") == Some(&AttributeValue::S("r-059".into()))
                && i.get("value") == Some(&AttributeValue::N("89".into())))
    );
    // AND writing the same readings again (an SQS redelivery) overwrites, never duplicates
    store.put_readings(&trial(), &p, &readings).await.unwrap();
    assert_eq!(env.partition(&format!("PATIENT#{}#{p}", trial())).await.len(), 60);
}

#[tokio::test]
async fn readings_of_several_patients_share_batch_calls() {
    // GIVEN 3 patients with 20 readings each
    let env = Emulator::provision("packing").await;
    let (store, requests) = env.counted_store();
    let (t, patients) = (trial(), [patient("P-1"), patient("P-2"), patient("P-3")]);
    let readings: Vec<VitalReading> = (0..20).map(reading).collect();
    let batch: Vec<PatientReadings<'_>> = patients.iter().map(|p| PatientReadings { trial: &t, patient: p, readings: &readings }).collect();
    // WHEN written as one batch
    store.put_readings_batch(&batch).await.unwrap();
    // THEN 60 items took ceil(60/25) = 3 calls, not 3 per patient, and each patient has all 20
    assert_eq!(requests.get("BatchWriteItem"), 3);
    for p in &patients {
        assert_eq!(env.partition(&format!("PATIENT#{t}#{p}")).await.len(), 20);
    }
}

fn state(p: &PatientId, version: u64, level: Option<RiskLevel>) -> VitalsState {
    let mut s = VitalsState::new(trial(), p.clone());
    s.version = version;
    trialwatch::vitals::merge_latest(&mut s.latest, &[reading(version as usize)]);
    s.news2 = level.map(|risk_level| News2Result { score: 3, risk_level, components: vec![], missing: vec![], observed_at: None });
    s
}

#[tokio::test]
async fn a_stale_state_writer_loses_and_risk_counters_follow_level_changes() {
    // GIVEN two patients' first states, one low and one medium, each written over nothing
    let env = Emulator::provision("state").await;
    let (store, requests) = env.counted_store();
    let (p1, p2) = (patient("P-1"), patient("P-2"));
    let (p1_v1, p2_v1) = (state(&p1, 1, Some(RiskLevel::Low)), state(&p2, 1, Some(RiskLevel::Medium)));
    assert_eq!(store.put_state(None, &p1_v1, &[], &[]).await.unwrap(), StateWrite::Written);
    assert_eq!(store.put_state(None, &p2_v1, &[], &[]).await.unwrap(), StateWrite::Written);
    // WHEN a second writer also writes version 1 over nothing, and then two writers who read version 1 race to version 2
    let racing_first = store.put_state(None, &state(&p1, 1, Some(RiskLevel::High)), &[], &[]).await.unwrap();
    let winner = store.put_state(Some(&p1_v1), &state(&p1, 2, Some(RiskLevel::High)), &[], &[]).await.unwrap();
    let loser = store.put_state(Some(&p1_v1), &state(&p1, 2, Some(RiskLevel::Low)), &[], &[]).await.unwrap();
    // THEN only one write per version wins
    assert_eq!((racing_first, winner, loser), (StateWrite::Stale, StateWrite::Written, StateWrite::Stale));
    // AND each write was one request, and none of them read the stored state
    assert_eq!((requests.get("GetItem"), requests.get("PutItem") + requests.get("TransactWriteItems")), (0, 5));
    // AND the stored state is the winner's
    let p1_v2 = store.get_state(&trial(), &p1).await.unwrap().unwrap();
    assert_eq!(p1_v2, state(&p1, 2, Some(RiskLevel::High)));
    // AND the counters hold each patient's current level only (the cancelled transaction moved none)
    assert_eq!(store.risk_level_counts(&trial()).await.unwrap(), vec![(RiskLevel::Medium, 1), (RiskLevel::High, 1)]);
    // AND a write that keeps the level, or drops the score, moves counters accordingly
    let p2_v2 = state(&p2, 2, Some(RiskLevel::Medium));
    store.put_state(Some(&p2_v1), &p2_v2, &[], &[]).await.unwrap();
    store.put_state(Some(&p1_v2), &state(&p1, 3, None), &[], &[]).await.unwrap();
    assert_eq!(store.risk_level_counts(&trial()).await.unwrap(), vec![(RiskLevel::Medium, 1)]);
    // AND a state that skips a version is refused before any request
    requests.reset();
    let skipping = store.put_state(Some(&p2_v2), &state(&p2, 5, None), &[], &[]).await;
    assert!(matches!(skipping, Err(StorageError::Corrupt(_))), "{skipping:?}");
    assert_eq!(requests.total(), 0);
}

#[tokio::test]
async fn a_state_with_escalation_fields_round_trips_and_an_item_from_before_them_is_still_read() {
    // GIVEN a state carrying every escalation field
    let env = Emulator::provision("statefields").await;
    let store = env.store();
    let p = patient("P-1");
    let mut s = state(&p, 1, Some(RiskLevel::Medium));
    s.last_alert_level = Some(RiskLevel::High);
    s.last_alert_at = Some(at("2026-11-26T19:00:00Z"));
    s.escalation_seq = 7;
    s.last_alert_id = Some(trialwatch::AlertId::for_escalation(&trial(), &p, RiskLevel::High, 7));
    s.last_alert_acked_at = Some(at("2026-11-26T19:05:00.123Z"));
    s.alerting_parameters = vec![trialwatch::news2::Parameter::RespirationRate, trialwatch::news2::Parameter::Spo2];
    s.below_since = Some(at("2026-11-26T19:30:00Z"));
    // WHEN written and read back THEN it is identical
    store.put_state(None, &s, &[], &[]).await.unwrap();
    assert_eq!(store.get_state(&trial(), &p).await.unwrap().unwrap(), s);
    // GIVEN an item as the previous release wrote it (no escalation fields)
    let old = patient("P-old");
    let item = std::collections::HashMap::from([
        ("pk".to_owned(), AttributeValue::S(format!("PATIENT#{}#{old}", trial()))),
        ("sk".to_owned(), AttributeValue::S("STATE#VITALS".into())),
        ("trialId".to_owned(), AttributeValue::S(trial().to_string())),
        ("patientId".to_owned(), AttributeValue::S(old.to_string())),
        ("version".to_owned(), AttributeValue::N("3".into())),
        ("latest".to_owned(), AttributeValue::M(Default::default())),
        ("lastAlertLevel".to_owned(), AttributeValue::S("high".into())),
        ("lastAlertAt".to_owned(), AttributeValue::S("2026-11-26T19:00:00.000Z".into())),
    ]);
    env.raw_dynamo().put_item().table_name(env.table()).set_item(Some(item)).send().await.unwrap();
    // WHEN read THEN the new fields take their defaults
    let read = store.get_state(&trial(), &old).await.unwrap().unwrap();
    assert_eq!((read.version, read.last_alert_level, read.escalation_seq), (3, Some(RiskLevel::High), 0));
    assert_eq!((read.last_alert_id, read.alerting_parameters.len(), read.below_since), (None, 0, None));
}

#[tokio::test]
async fn a_withdrawal_time_is_stored_kept_while_withdrawn_and_removed_on_re_enrolment() {
    let env = Emulator::provision("withdrawal").await;
    let store = env.store();
    let p = patient("P-1");
    enrol(&store, &p, "s1", EnrolmentStatus::Enrolled).await;
    let write = |withdrawn_at: Option<&str>, status: EnrolmentStatus, updated_at: &str| {
        let mut e = enrolment(&p, "s1", status);
        e.withdrawn_at = withdrawn_at.map(str::to_owned);
        e.updated_at = updated_at.into();
        e
    };
    // WHEN withdrawn at 10:00 THEN the time is stored
    let first = write(Some("2026-11-26T10:00:00.000Z"), EnrolmentStatus::Withdrawn, "2026-11-26T10:00:00.000Z");
    store.put_enrolment(&first, &audit("patient/P-1", "enrolment.updated", "2026-11-26T10:00:00Z"), &[]).await.unwrap();
    let stored = store.get_enrolment(&trial(), &p).await.unwrap().unwrap();
    assert_eq!(stored.withdrawn_at.as_deref(), Some("2026-11-26T10:00:00.000Z"));
    // WHEN written withdrawn again with a later time (a writer that raced the first) THEN the first stands
    let again = write(Some("2026-11-26T11:00:00.000Z"), EnrolmentStatus::Withdrawn, "2026-11-26T11:00:00.000Z");
    store.put_enrolment(&again, &audit("patient/P-1", "enrolment.updated", "2026-11-26T11:00:00Z"), &[]).await.unwrap();
    let stored = store.get_enrolment(&trial(), &p).await.unwrap().unwrap();
    assert_eq!(stored.withdrawal_time(), Some(at("2026-11-26T10:00:00Z")));
    // WHEN re-enrolled THEN the attribute is gone
    store
        .put_enrolment(
            &write(None, EnrolmentStatus::Enrolled, "2026-11-26T12:00:00.000Z"),
            &audit("patient/P-1", "enrolment.updated", "2026-11-26T12:00:00Z"),
            &[],
        )
        .await
        .unwrap();
    let stored = store.get_enrolment(&trial(), &p).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.withdrawn_at), (EnrolmentStatus::Enrolled, None));
}

#[tokio::test]
async fn two_submissions_linked_from_one_head_both_commit_the_loser_after_a_re_read_and_the_chain_stays_linear() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use trialwatch::audit::append::append_with_retry;
    use trialwatch::audit::chain::link_all;
    // GIVEN an enrolled patient whose enrolment (and so chain head) two API instances hold
    let env = Emulator::provision("chainrace").await;
    let store = env.store();
    let p = patient("P-7");
    enrol(&store, &p, "s1", EnrolmentStatus::Enrolled).await;
    let held = store.get_enrolment(&trial(), &p).await.unwrap().unwrap().audit_head;
    let chain_id = ChainId::Patient(p.clone());
    let writes = AtomicUsize::new(0);
    let submit = |when: &'static str| {
        let (store, chain_id, held, writes, p) = (&store, &chain_id, held.clone(), &writes, p.clone());
        async move {
            let sub = submission(&p, when);
            let entry = audit(&format!("submission/{}", sub.submission_id), "submission.created", when);
            let reread = || async { Ok(store.get_enrolment_consistent(&trial(), &p).await?.unwrap().audit_head) };
            let write = |head| {
                let mut entries = vec![entry.clone()];
                link_all(entries.iter_mut(), chain_id, &head);
                writes.fetch_add(1, Ordering::SeqCst);
                let sub = sub.clone();
                async move { store.record_submission(&sub, "2026-11-26", &entries, &[], &[]).await }
            };
            append_with_retry(Some(held), reread, write).await
        }
    };
    // WHEN both submit at once, each linking from the head it holds
    let (a, b) = tokio::join!(submit("2026-11-26T20:00:00Z"), submit("2026-11-26T20:00:01Z"));
    // THEN both commit, one of them after re-reading the head (three transactions in all)
    assert_eq!((a.unwrap(), b.unwrap()), (RecordOutcome::Recorded, RecordOutcome::Recorded));
    assert_eq!(writes.load(Ordering::SeqCst), 3);
    // AND the chain is linear: enrolment, then both submissions, seq 1..3, no fork, no gap,
    // ending at the head recorded on the enrolment
    let entries = env.chain(&chain_id).await;
    assert_eq!(entries.iter().map(|e| e.seq.unwrap()).collect::<Vec<_>>(), vec![1, 2, 3]);
    let found = chain::verify(&chain_id, &entries).unwrap();
    let recorded = store.get_enrolment_consistent(&trial(), &p).await.unwrap().unwrap().audit_head;
    assert_eq!(chain::check_head(&found, &recorded), Ok(()));
    assert_eq!(store.get_enrolment(&trial(), &p).await.unwrap().unwrap().submission_count, 2);
}
