//! `submit` on the in-memory ports, without HTTP: each outcome and each
//! [`SubmitError`] from the condition that produces it.

use serde_json::Value;
use trialwatch::audit::Actor;
use trialwatch::domain_event::Unpublished;
use trialwatch::enrolment::EnrolmentStatus;
use trialwatch::ports::StorageError;

use super::*;
use crate::handler_tests::{enrolment, pid, submission, tid, world, World};

fn command(body: Value, enrolment: Option<Enrolment>) -> SubmitCommand {
    SubmitCommand {
        trial_id: tid("tw-demo"),
        patient_id: pid("P0001"),
        request: serde_json::from_value(body).expect("a submission request"),
        enrolment,
        author: Actor { role: "patient".into(), subject: Some("u-patient".into()) },
        submitted_by: Actor { role: "patient".into(), subject: Some("P0001".into()) },
        on_behalf: false,
    }
}

fn enrolled() -> Option<Enrolment> {
    Some(enrolment("P0001", "site-leeds", EnrolmentStatus::Enrolled))
}

/// `submit` over the world's in-memory store (every store port), its queue
/// and its clock; the trial read straight from the store, no cache.
async fn run(w: &World, cmd: SubmitCommand) -> Result<Receipt, SubmitError> {
    let store = w.store.as_ref();
    let events = Announcer { bus: &Unpublished, pending: store };
    submit(store, store, store, w.queue.as_ref(), events, &w.clock, cmd).await
}

#[tokio::test]
async fn a_valid_submission_is_recorded_and_its_receipt_returned() {
    // GIVEN P0001 enrolled in tw-demo
    let w = world();
    // WHEN they submit answers that fit kccq v1
    let r = run(&w, command(submission("5b0c4a52-1111-4c1e-9d7e-000000000001", 3), enrolled())).await.expect("recorded");
    // THEN it is recorded once, with a receipt and the chain head it moved to
    assert_eq!(r.submitted, Submitted::Recorded);
    assert_eq!(r.receipt.submission_id.to_string(), "5b0c4a52-1111-4c1e-9d7e-000000000001");
    assert_eq!(r.alerts, 0);
    assert_eq!(r.chain_head.expect("a head").seq, 1);
    assert_eq!(w.store.submission_count(), 1);
    assert!(w.queue.sent_alerts().is_empty());
}

#[tokio::test]
async fn an_answer_at_a_pro_rule_threshold_queues_its_alert() {
    // GIVEN the PRO rule breathless >= 8
    let w = world();
    // WHEN P0001 answers 9
    let r = run(&w, command(submission("5b0c4a52-1111-4c1e-9d7e-000000000002", 9), enrolled())).await.expect("recorded");
    // THEN one alert is raised and queued on the fast path
    assert_eq!(r.alerts, 1);
    assert_eq!(w.queue.sent_alerts().len(), 1);
}

#[tokio::test]
async fn the_same_body_sent_again_is_a_replay_with_the_original_receipt() {
    let w = world();
    let body = submission("5b0c4a52-1111-4c1e-9d7e-000000000003", 3);
    let first = run(&w, command(body.clone(), enrolled())).await.unwrap();
    // WHEN the identical body is sent again, later
    w.clock.advance(chrono::Duration::minutes(5));
    let again = run(&w, command(body, enrolled())).await.unwrap();
    // THEN it is a replay: the first receipt, nothing stored twice, no head move
    assert_eq!(again.submitted, Submitted::Replayed);
    assert_eq!(again.receipt, first.receipt);
    assert_eq!(again.chain_head, None);
    assert_eq!(w.store.submission_count(), 1);
}

#[tokio::test]
async fn a_submission_id_reused_with_another_body_is_different_body() {
    let w = world();
    run(&w, command(submission("5b0c4a52-1111-4c1e-9d7e-000000000004", 3), enrolled())).await.unwrap();
    let e = run(&w, command(submission("5b0c4a52-1111-4c1e-9d7e-000000000004", 4), enrolled())).await.unwrap_err();
    assert_eq!(e, SubmitError::DifferentBody);
    assert_eq!(w.store.submission_count(), 1);
}

#[tokio::test]
async fn a_patient_whose_enrolment_is_not_enrolled_is_refused_before_any_write() {
    // GIVEN the enrolment in hand says withdrawn
    let w = world();
    let withdrawn = Some(enrolment("P0001", "site-leeds", EnrolmentStatus::Withdrawn));
    // WHEN they submit
    let e = run(&w, command(submission("5b0c4a52-1111-4c1e-9d7e-000000000005", 3), withdrawn)).await.unwrap_err();
    // THEN NotEnrolled says what the enrolment is, and nothing was written
    assert_eq!(e, SubmitError::NotEnrolled(NotEnrolled("the patient's enrolment is withdrawn".into())));
    let none = run(&w, command(submission("5b0c4a52-1111-4c1e-9d7e-000000000006", 3), None)).await.unwrap_err();
    assert_eq!(none, SubmitError::NotEnrolled(NotEnrolled("the patient is not enrolled in this trial".into())));
    assert_eq!(w.store.submission_count(), 0);
}

#[tokio::test]
async fn a_stale_enrolled_answer_meets_the_stores_condition_as_not_enrolled() {
    // GIVEN a cached "enrolled" for P0003, whom the store holds as withdrawn
    let w = world();
    let mut cmd = command(submission("5b0c4a52-1111-4c1e-9d7e-000000000007", 3), None);
    cmd.patient_id = pid("P0003");
    cmd.enrolment = Some(enrolment("P0003", "site-leeds", EnrolmentStatus::Enrolled));
    // WHEN it submits
    let e = run(&w, cmd).await.unwrap_err();
    // THEN the transaction's condition refuses it as NotEnrolled
    assert!(matches!(e, SubmitError::NotEnrolled(_)), "{e:?}");
    assert_eq!(w.store.submission_count(), 0);
}

#[tokio::test]
async fn an_unknown_trial_is_trial_not_found() {
    let w = world();
    let mut cmd = command(submission("5b0c4a52-1111-4c1e-9d7e-000000000008", 3), enrolled());
    cmd.trial_id = tid("tw-nowhere");
    assert_eq!(run(&w, cmd).await.unwrap_err(), SubmitError::TrialNotFound);
}

#[tokio::test]
async fn answers_that_do_not_fit_the_questionnaire_are_invalid_and_named() {
    let w = world();
    let mut body = submission("5b0c4a52-1111-4c1e-9d7e-000000000009", 3);
    body["answers"][0]["value"] = serde_json::json!(99);
    let e = run(&w, command(body, enrolled())).await.unwrap_err();
    let SubmitError::Invalid(fields) = e else { panic!("{e:?}") };
    assert_eq!(fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["answers[0].value"]);
    assert_eq!(w.store.submission_count(), 0);
}

#[tokio::test]
async fn an_unavailable_ledger_is_a_storage_error_and_stores_nothing() {
    let w = world();
    w.store.fail_next("record_submission", 1);
    let e = run(&w, command(submission("5b0c4a52-1111-4c1e-9d7e-000000000010", 3), enrolled())).await.unwrap_err();
    assert!(matches!(e, SubmitError::Storage(StorageError::Unavailable(_))), "{e:?}");
    assert_eq!(w.store.submission_count(), 0);
}

#[test]
fn a_submission_counts_on_its_day_in_the_trials_zone() {
    fn trial_in(zone: &str) -> Trial {
        let definition = serde_json::from_value(serde_json::json!({"name": "T", "sites": [{"id": "s1", "name": "S"}], "timezone": zone}))
            .expect("a definition");
        Trial { trial_id: TrialId::parse("tw-1").unwrap(), definition, updated_at: String::new() }
    }
    let late_evening_utc: DateTime<Utc> = "2026-11-26T23:30:00Z".parse().unwrap();
    assert_eq!(trial_day(&trial_in("Europe/London"), late_evening_utc), "2026-11-26");
    assert_eq!(trial_day(&trial_in("Asia/Shanghai"), late_evening_utc), "2026-11-27");
    assert_eq!(trial_day(&trial_in("America/New_York"), late_evening_utc), "2026-11-26");
    // British Summer Time moves the same UTC clock time past midnight.
    assert_eq!(trial_day(&trial_in("Europe/London"), "2026-07-01T23:30:00Z".parse().unwrap()), "2026-07-02");
}
