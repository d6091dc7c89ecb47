//! ePRO submissions: receipts, idempotent replay, conflicts, validation, PRO
//! alerts, FHIR input, failure ordering and the request budget.

use serde_json::json;
use trialwatch::alert::{AlertReason, AlertStatus};
use trialwatch::news2::RiskLevel;
use trialwatch::page::PageRequest;
use trialwatch::ports::{AlertOutbox, Clock, ReportFigures, SubmissionLedger};

use trialwatch::enrolment::EnrolmentStatus;
use trialwatch::trial::Trial;

use super::*;

#[tokio::test]
async fn a_valid_submission_is_201_with_a_receipt_and_stored_once() {
    // GIVEN an enrolled patient
    let w = world();
    let id = new_id();
    // WHEN they submit
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 3))).await;
    // THEN the receipt names the submission, the receipt time and the score
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["submissionId"], json!(id));
    assert_eq!(r.body["receivedAt"], json!("2026-11-26T20:00:00Z"));
    assert_eq!(r.body["score"], json!(3.0 + 1.0 + 81.4));
    // AND it is stored with its audit entry, attributed to the token's sub and role
    assert_eq!(w.store.submission_count(), 1);
    let audit = w.store.audit_entries();
    let entry = audit.iter().find(|a| a.action == "submission.created").unwrap();
    assert_eq!(entry.actor.subject.as_deref(), Some("u-patient"));
    assert_eq!(entry.actor.role, "patient");
    assert_eq!(entry.details.get("patientId"), Some(&json!("P0001")));
    assert!(!entry.details.contains_key("onBehalf"));
    // AND no rule fired, so nothing was queued
    assert!(w.queue.sent_alerts().is_empty());
}

#[tokio::test]
async fn an_identical_replay_is_200_with_the_original_receipt() {
    let w = world();
    let id = new_id();
    let first = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 3))).await;
    // WHEN the same body is sent again later, with keys in another order
    w.clock.advance(chrono::Duration::minutes(3));
    let mut reordered = serde_json::Map::new();
    for (k, v) in submission(&id, 3).as_object().unwrap().iter().rev() {
        reordered.insert(k.clone(), v.clone());
    }
    let again = w.call("POST", SUBS, Some(patient("P0001")), Some(reordered.into())).await;
    // THEN it is 200 with the first receipt, and still one submission
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(w.store.submission_count(), 1);
}

#[tokio::test]
async fn the_same_id_with_a_different_body_is_409_submission_conflict() {
    let w = world();
    let id = new_id();
    w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 3))).await;
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 4))).await;
    assert_eq!(r.status, 409);
    assert!(r.body["type"].as_str().unwrap().ends_with("/submission-conflict"));
}

#[tokio::test]
async fn the_same_id_for_another_patient_is_their_own_new_submission_and_reveals_nothing() {
    // GIVEN P0001 recorded a submission with some id
    let w = world();
    let id = new_id();
    assert_eq!(w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 3))).await.status, 201);
    // WHEN P0002 sends that id (a 409 would tell them it exists elsewhere)
    let r = w.call("POST", "/v1/trials/tw-demo/patients/P0002/submissions", Some(patient("P0002")), Some(submission(&id, 5))).await;
    // THEN it is recorded as P0002's own, and P0001's is untouched
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(w.store.submission_count(), 2);
    let replay = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 3))).await;
    assert_eq!(replay.status, 200, "P0001's replay still finds their own receipt");
}

#[tokio::test]
async fn the_nil_uuid_is_422_naming_submission_id() {
    let w = world();
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission("00000000-0000-0000-0000-000000000000", 3))).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"][0]["field"], "submissionId");
    assert_eq!(w.store.submission_count(), 0);
}

#[tokio::test]
async fn a_withdrawn_patient_gets_409_patient_not_enrolled_and_nothing_is_written() {
    let w = world();
    let r = w.call("POST", "/v1/trials/tw-demo/patients/P0003/submissions", Some(patient("P0003")), Some(submission(&new_id(), 3))).await;
    assert_eq!(r.status, 409);
    assert!(r.body["type"].as_str().unwrap().ends_with("/patient-not-enrolled"));
    assert_eq!(w.store.submission_count(), 0);
    assert!(w.store.audit_entries().is_empty());
}

#[tokio::test]
async fn a_withdrawal_after_the_enrolment_was_cached_is_still_enforced_by_the_store() {
    // GIVEN P0001's enrolment is in the cache after one submission
    let w = world();
    assert_eq!(w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 1))).await.status, 201);
    // WHEN another execution environment withdraws the patient
    w.store.seed_enrolment(enrolment("P0001", "site-leeds", EnrolmentStatus::Withdrawn));
    // THEN the transaction's condition refuses the next submission
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 1))).await;
    assert_eq!(r.status, 409);
    assert!(r.body["type"].as_str().unwrap().ends_with("/patient-not-enrolled"));
    assert_eq!(w.store.submission_count(), 1);
}

#[tokio::test]
async fn every_item_type_is_validated_and_every_bad_field_reported_at_once() {
    let w = world();
    let body = json!({
        "submissionId": "not-a-uuid", "questionnaireId": "kccq", "questionnaireVersion": "1",
        "completedAt": "2026-11-27T20:00:00Z",
        "answers": [
            {"linkId": "breathless", "value": 11},
            {"linkId": "swelling", "value": 7},
            {"linkId": "weight", "value": "heavy"},
            {"linkId": "dizzy", "value": "yes"},
            {"linkId": "notes", "value": "n".repeat(501)},
            {"linkId": "ghost", "value": 1}
        ]
    });
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(body)).await;
    assert_eq!(r.status, 422);
    let mut fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "answers[0].value",
            "answers[1].value",
            "answers[2].value",
            "answers[3].value",
            "answers[4].value",
            "answers[5].linkId",
            "completedAt",
            "submissionId"
        ]
    );
}

#[tokio::test]
async fn an_unknown_questionnaire_version_is_422_naming_it() {
    let w = world();
    let mut body = submission(&new_id(), 1);
    body["questionnaireVersion"] = json!("9");
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(body)).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "questionnaireVersion");
}

#[tokio::test]
async fn an_answer_at_a_rule_threshold_enqueues_one_deterministic_pro_alert() {
    let w = world();
    let id = new_id();
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 8))).await;
    assert_eq!(r.status, 201);
    let alerts = w.queue.sent_alerts();
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.level, RiskLevel::Medium);
    assert_eq!(a.site_id, sid("site-leeds"));
    let sub = trialwatch::SubmissionId::parse(&id).unwrap();
    assert_eq!(a.alert_id, AlertId::for_pro_rule(&tid("tw-demo"), &pid("P0001"), &sub, "breathless"));
    let AlertReason::ProRule { value, at_least, .. } = &a.reason else { panic!("expected a PRO alert") };
    assert_eq!((*value, *at_least), (8.0, 8.0));
}

#[tokio::test]
async fn a_replay_re_drives_the_alert_with_the_same_id() {
    let w = world();
    let id = new_id();
    w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 9))).await;
    w.clock.advance(chrono::Duration::seconds(30));
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 9))).await;
    assert_eq!(r.status, 200);
    let alerts = w.queue.sent_alerts();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0], alerts[1], "the replayed alert is identical, so the dispatcher delivers it once");
}

#[tokio::test]
async fn a_failed_enqueue_is_still_201_because_the_alert_is_stored_with_the_submission() {
    // GIVEN the alert queue fails
    let w = world();
    w.queue.fail_next("enqueue", 1);
    let id = new_id();
    // WHEN a submission that fires a rule is sent
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 10))).await;
    // THEN it is recorded, and the client has nothing to retry
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(w.store.submission_count(), 1);
    assert!(w.queue.sent_alerts().is_empty());
    // AND its alert is a pending, unleased record, written by the same transaction
    let sub = trialwatch::SubmissionId::parse(&id).unwrap();
    let expected = AlertId::for_pro_rule(&tid("tw-demo"), &pid("P0001"), &sub, "breathless");
    let records = w.store.alert_records();
    assert_eq!(records.len(), 1);
    assert_eq!((&records[0].alert.alert_id, records[0].status, records[0].lease_until), (&expected, AlertStatus::Pending, None));
    // AND the outbox hands it to the sweeper once the inline send's grace has passed
    let later = w.clock.now() + trialwatch::outbox::grace();
    let shard = trialwatch::outbox::shard_of(&expected);
    let due = w.store.due_alerts(shard, later, 10).await.unwrap();
    assert_eq!(due.iter().map(|d| &d.alert.alert_id).collect::<Vec<_>>(), vec![&expected]);
}

#[tokio::test]
async fn a_replay_after_a_failed_enqueue_sends_the_stored_alert_again() {
    let w = world();
    w.queue.fail_next("enqueue", 1);
    let id = new_id();
    w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 10))).await;
    let retry = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 10))).await;
    assert_eq!(retry.status, 200);
    assert_eq!(w.queue.sent_alerts().len(), 1);
    assert_eq!(w.store.alert_records().len(), 1, "the replay writes no second alert");
}

#[tokio::test]
async fn a_throttled_transaction_is_503_and_writes_nothing() {
    let w = world();
    w.store.fail_next("record_submission", 1);
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 10))).await;
    assert_eq!(r.status, 503);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(w.store.submission_count(), 0);
    assert!(w.queue.sent_alerts().is_empty());
}

#[tokio::test]
async fn site_staff_submitting_on_behalf_is_recorded_as_such() {
    let w = world();
    let r = w.call("POST", SUBS, Some(staff("site-leeds")), Some(submission(&new_id(), 2))).await;
    assert_eq!(r.status, 201);
    let audit = w.store.audit_entries();
    let entry = audit.iter().find(|a| a.action == "submission.created").unwrap();
    assert_eq!(entry.actor.role, "site_staff");
    assert_eq!(entry.actor.subject.as_deref(), Some("u-staff"));
    assert_eq!(entry.details.get("onBehalf"), Some(&json!(true)));
}

#[tokio::test]
async fn a_fhir_questionnaire_response_is_accepted_like_native_json() {
    let w = world();
    let event: serde_json::Value = serde_json::from_str(include_str!("../../../../events/epro-post-submission-fhir.json")).unwrap();
    let qr: serde_json::Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    let r = w.call_fhir("POST", SUBS, Some(patient("P0001")), qr.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["submissionId"], json!("7c9e6679-7425-40de-944b-e07fc1f90ae7"));
    // breathless 9 fires the rule; swelling's coded "2" scores as 2
    assert_eq!(r.body["score"], json!(9.0 + 2.0 + 82.1));
    assert_eq!(w.queue.sent_alerts().len(), 1);
    // AND replaying the FHIR body is an idempotent 200
    assert_eq!(w.call_fhir("POST", SUBS, Some(patient("P0001")), qr).await.status, 200);
}

#[tokio::test]
async fn an_in_progress_fhir_response_is_422() {
    let w = world();
    let qr = json!({"resourceType": "QuestionnaireResponse", "status": "in-progress",
        "identifier": {"value": new_id()}, "questionnaire": "https://x/Questionnaire/kccq|1", "authored": "2026-11-26T19:00:00Z",
        "item": [{"linkId": "breathless", "answer": [{"valueInteger": 2}]}]});
    let r = w.call_fhir("POST", SUBS, Some(patient("P0001")), qr).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "status");
}

#[tokio::test]
async fn the_counter_day_is_the_completion_day_in_the_trials_zone() {
    // GIVEN a trial in Europe/London, a patient enrolled in June, and a
    // submission completed at 23:30 UTC in July (00:30 BST next day)
    let w = world();
    let mut june = enrolment("P0005", "site-leeds", EnrolmentStatus::Enrolled);
    june.enrolled_at = "2026-06-01T09:00:00.000Z".into();
    w.store.seed_enrolment(june);
    w.clock.set("2026-07-02T08:00:00Z".parse().unwrap());
    let mut body = submission(&new_id(), 1);
    body["completedAt"] = json!("2026-07-01T23:30:00Z");
    let path = "/v1/trials/tw-demo/patients/P0005/submissions";
    assert_eq!(w.call("POST", path, Some(patient("P0005")), Some(body)).await.status, 201);
    // THEN it counts on 2 July
    let day = chrono::NaiveDate::from_ymd_opt(2026, 7, 2).unwrap();
    let counts = w.store.daily_counts(&tid("tw-demo"), day, day).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].site_id.as_str(), counts[0].submissions), ("site-leeds", 1));
}

#[tokio::test]
async fn a_warm_submission_costs_one_dynamodb_request_and_at_most_one_sqs_request() {
    // GIVEN a warm execution environment (trial and enrolment cached)
    let w = world();
    w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 1))).await;
    w.store.requests.reset();
    w.queue.requests.reset();
    // WHEN a submission that fires a PRO rule arrives
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 9))).await;
    assert_eq!(r.status, 201);
    // THEN exactly one TransactWriteItems and one SendMessageBatch were made
    assert_eq!(w.store.requests.snapshot().into_iter().collect::<Vec<_>>(), vec![("dynamodb.TransactWriteItems", 1)]);
    assert_eq!(w.queue.requests.total(), 1);
}

#[tokio::test]
async fn submissions_list_newest_first_with_an_opaque_cursor() {
    let w = world();
    for (i, at) in ["2026-11-24T19:00:00Z", "2026-11-26T19:00:00Z", "2026-11-25T19:00:00Z"].iter().enumerate() {
        let mut body = submission(&new_id(), i as i64);
        body["completedAt"] = json!(at);
        assert_eq!(w.call("POST", SUBS, Some(patient("P0001")), Some(body)).await.status, 201);
    }
    let first = w.call("GET", &format!("{SUBS}?limit=2"), Some(patient("P0001")), None).await;
    assert_eq!(first.status, 200);
    let items = first.body["items"].as_array().unwrap();
    let days: Vec<&str> = items.iter().map(|i| i["completedAt"].as_str().unwrap()).collect();
    assert_eq!(days, ["2026-11-26T19:00:00Z", "2026-11-25T19:00:00Z"]);
    assert!(items[0].get("bodyHash").is_none());
    let cursor = first.body["nextCursor"].as_str().unwrap();
    let second = w.call("GET", &format!("{SUBS}?limit=2&cursor={cursor}"), Some(patient("P0001")), None).await;
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(second.body["nextCursor"], json!(null));
    // AND the stored list agrees
    let stored = w.store.list_submissions(&tid("tw-demo"), &pid("P0001"), &PageRequest::first(10)).await.unwrap();
    assert_eq!(stored.items.len(), 3);
}

#[tokio::test]
async fn a_bad_limit_or_cursor_is_422_naming_it() {
    let w = world();
    for q in ["limit=0", "limit=201", "limit=ten", "limit=-1"] {
        let r = w.call("GET", &format!("{SUBS}?{q}"), Some(patient("P0001")), None).await;
        assert_eq!(r.status, 422, "{q}");
        assert_eq!(r.body["errors"][0]["field"], "limit");
    }
    let r = w.call("GET", &format!("{SUBS}?cursor=garbage!"), Some(patient("P0001")), None).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "cursor");
}

/// The fixture trial with its `weight` (decimal) and `breathless` (integer)
/// items unbounded, as a trial may define them.
fn unbounded_trial(w: &World) {
    let mut def = trial_definition();
    for item in &mut def.questionnaires[0].items {
        item.min = None;
        item.max = None;
    }
    w.store.seed_trial(Trial { trial_id: tid("tw-demo"), definition: def, updated_at: "2026-11-01T09:00:00.000Z".into() });
}

#[tokio::test]
async fn a_decimal_answer_dynamodb_cannot_hold_is_422_naming_it() {
    // GIVEN a questionnaire whose decimal item has no bounds
    let w = world();
    unbounded_trial(&w);
    for value in [json!(1e130), json!(-1e126), json!(1e-131)] {
        // WHEN a patient answers beyond DynamoDB's number range
        let mut body = submission(&new_id(), 1);
        body["answers"][2]["value"] = value.clone();
        let r = w.call("POST", SUBS, Some(patient("P0001")), Some(body)).await;
        // THEN 422 naming the answer, and nothing stored
        assert_eq!(r.status, 422, "{value}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], "answers[2].value", "{value}");
    }
    assert_eq!(w.store.submission_count(), 0);
}

#[tokio::test]
async fn answers_summing_beyond_a_storable_score_are_422() {
    // GIVEN unbounded numeric items, each answer storable but their sum not
    let w = world();
    unbounded_trial(&w);
    let mut body = submission(&new_id(), 1);
    body["answers"][0]["value"] = json!(9e125);
    body["answers"][2]["value"] = json!(9e125);
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(body)).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"][0]["field"], "answers");
}

#[tokio::test]
async fn answers_completed_before_the_enrolment_are_422_naming_completed_at() {
    // GIVEN P0001 enrolled at 2026-11-01T09:00Z
    let w = world();
    for (at, want) in [
        // WHEN answers are dated 1970, or 6 minutes before the enrolment: refused
        ("1970-01-01T00:00:00Z", 422),
        ("2026-11-01T08:54:00Z", 422),
        // AND within the 5-minute clock skew, or after: accepted
        ("2026-11-01T08:55:00Z", 201),
        ("2026-11-01T09:00:01Z", 201),
    ] {
        let mut body = submission(&new_id(), 1);
        body["completedAt"] = json!(at);
        let r = w.call("POST", SUBS, Some(patient("P0001")), Some(body)).await;
        assert_eq!(r.status, want, "{at}: {}", r.text);
        if want == 422 {
            assert_eq!(r.body["errors"][0]["field"], "completedAt", "{at}");
        }
    }
    assert_eq!(w.store.submission_count(), 2);
}

#[tokio::test]
async fn the_enrolment_check_adds_no_request_to_a_warm_submission() {
    // GIVEN a warm environment, WHEN answers predating the enrolment arrive
    let w = world();
    w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 1))).await;
    w.store.requests.reset();
    let mut body = submission(&new_id(), 1);
    body["completedAt"] = json!("1970-01-01T00:00:00Z");
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(body)).await;
    // THEN they are refused from the cached enrolment, without a DynamoDB request
    assert_eq!(r.status, 422);
    assert_eq!(w.store.requests.total(), 0);
}

#[tokio::test]
async fn a_fhir_questionnaire_response_about_another_patient_is_422_naming_the_subject() {
    let w = world();
    let event: serde_json::Value = serde_json::from_str(include_str!("../../../../events/epro-post-submission-fhir.json")).unwrap();
    let mut qr: serde_json::Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    for other in ["Patient/P0002", "https://fhir.example.nhs.uk/Patient/P0002", "Patient/P00011", "Group/P0001"] {
        qr["subject"] = json!({"reference": other});
        let r = w.call_fhir("POST", SUBS, Some(patient("P0001")), qr.clone()).await;
        assert_eq!(r.status, 422, "{other}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], "subject.reference", "{other}");
    }
    assert_eq!(w.store.submission_count(), 0);
    // AND an absolute reference to the path's patient is accepted
    qr["subject"] = json!({"reference": "https://fhir.example.nhs.uk/Patient/P0001"});
    assert_eq!(w.call_fhir("POST", SUBS, Some(patient("P0001")), qr).await.status, 201);
}

mod chain {
    use super::*;
    use trialwatch::audit::chain::{check_head, verify, ChainId};
    use trialwatch::audit::{Actor, AuditEntry};

    fn p0001_chain(w: &World) -> (Vec<AuditEntry>, trialwatch::audit::chain::ChainHead) {
        w.store.audit_chain(&tid("tw-demo"), &ChainId::Patient(pid("P0001")))
    }

    /// Another writer of P0001's chain (an acknowledgement, the analyzer) commits.
    fn another_writer(w: &World) {
        let entry = AuditEntry::new(tid("tw-demo"), "alert/x", "alert.acknowledged", Actor::system("test"), w.clock.now())
            .with_detail("patientId", "P0001");
        w.store.append_elsewhere(&entry);
    }

    #[tokio::test]
    async fn a_pro_alert_is_audited_as_raised_with_its_rule_in_the_submissions_transaction() {
        // GIVEN an enrolled patient WHEN an answer reaches the breathless >= 8 rule
        let w = world();
        let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 9))).await;
        assert_eq!(r.status, 201, "{}", r.text);
        // THEN the patient's chain holds submission.created then alert.raised, linked, ending at the enrolment's head
        let (entries, head) = p0001_chain(&w);
        let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, vec!["submission.created", "alert.raised"]);
        assert_eq!(check_head(&verify(&ChainId::Patient(pid("P0001")), &entries).unwrap(), &head), Ok(()));
        // AND the raised entry names the rule by ids and codes, never the answer
        let raised = &entries[1];
        let alert = &w.queue.sent_alerts()[0];
        assert_eq!(raised.entity, format!("alert/{}", alert.alert_id));
        assert_eq!(raised.actor, Actor::system("epro-api"));
        assert_eq!(raised.details["rule"], json!("pro"));
        assert_eq!(raised.details["questionnaireId"], json!("kccq"));
        assert_eq!(raised.details["linkId"], json!("breathless"));
        assert_eq!(raised.details["level"], json!("medium"));
        assert!(raised.details.contains_key("atLeast"));
        let keys: Vec<&str> = raised.details.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["atLeast", "level", "linkId", "patientId", "questionnaireId", "rule", "submissionId"], "no answer value");
    }

    #[tokio::test]
    async fn a_stale_cached_head_is_re_read_and_the_submission_commits_linked_after_it() {
        // GIVEN P0001 submitted once (the enrolment, with its head, is cached)
        let w = world();
        assert_eq!(w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 3))).await.status, 201);
        // AND another writer extended the chain since
        another_writer(&w);
        w.store.requests.reset();
        // WHEN P0001 submits again
        let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 3))).await;
        // THEN it commits (201) after one consistent re-read and a second transaction
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(w.store.requests.get("dynamodb.TransactWriteItems"), 2);
        assert_eq!(w.store.requests.get("dynamodb.GetItem"), 1);
        // AND the chain is linear: three entries, no fork, no gap, ending at the recorded head
        let (entries, head) = p0001_chain(&w);
        assert_eq!(check_head(&verify(&ChainId::Patient(pid("P0001")), &entries).unwrap(), &head), Ok(()));
        assert_eq!(head.seq, 3);
        // AND the cache now holds the new head: the next submission costs one transaction and no read
        w.store.requests.reset();
        assert_eq!(w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 3))).await.status, 201);
        assert_eq!((w.store.requests.get("dynamodb.TransactWriteItems"), w.store.requests.get("dynamodb.GetItem")), (1, 0));
    }

    #[tokio::test]
    async fn a_head_that_keeps_moving_is_503_with_retry_after_and_writes_nothing() {
        // GIVEN a chain that another writer extends just before every one of our tries
        let w = world();
        let tries = trialwatch::audit::append::MAX_APPEND_ATTEMPTS as u32;
        w.store.race_appends(tries);
        // WHEN P0001 submits
        let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 9))).await;
        // THEN after the bounded tries it is 503 with Retry-After, and nothing of the submission is stored
        assert_eq!(r.status, 503, "{}", r.text);
        assert!(r.headers.contains_key("retry-after"));
        assert_eq!(w.store.submission_count(), 0);
        assert!(w.store.alert_records().is_empty());
        let (entries, head) = p0001_chain(&w);
        assert!(entries.iter().all(|e| e.action != "submission.created"));
        // AND the other writer's entries form a linear chain
        assert_eq!(check_head(&verify(&ChainId::Patient(pid("P0001")), &entries).unwrap(), &head), Ok(()));
        assert_eq!(head.seq, u64::from(tries));
        // AND with one race fewer the client's retry commits
        w.store.race_appends(tries - 1);
        assert_eq!(w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 9))).await.status, 201);
    }

    #[tokio::test]
    async fn a_duplicate_with_a_stale_head_is_still_a_replay_and_not_enrolled_is_still_409() {
        // GIVEN a stored submission and a head moved since
        let w = world();
        let id = new_id();
        let first = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 3))).await;
        another_writer(&w);
        // WHEN the same submission is replayed THEN it is the original receipt (the guard wins over the head)
        let again = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 3))).await;
        assert_eq!((again.status, &again.body), (200, &first.body));
        // AND a withdrawal under a cached enrolment is still 409 not-enrolled, not a head conflict
        let mut withdrawn = enrolment("P0001", "site-leeds", EnrolmentStatus::Withdrawn);
        withdrawn.withdrawn_at = Some("2026-11-26T19:30:00.000Z".into());
        w.store.seed_enrolment(withdrawn);
        let refused = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 3))).await;
        assert_eq!(
            (refused.status, refused.body["type"].as_str().unwrap_or("").ends_with("patient-not-enrolled")),
            (409, true),
            "{}",
            refused.text
        );
    }
}

#[tokio::test]
async fn submission_events_are_announced_only_for_a_trial_that_opted_in() {
    use trialwatch::domain_event::EventType;
    let received = |w: &World| w.store.pending_events().into_iter().filter(|e| e.detail_type == EventType::SubmissionReceived).count();
    // GIVEN the sample trial, which has not opted in (50k submissions/s would exceed the PutEvents quota)
    let w = world();
    // WHEN a patient submits
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 3))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // THEN no SubmissionReceived is written
    assert_eq!(received(&w), 0);

    // GIVEN a trial that opted in
    let w = world();
    let mut definition = trial_definition();
    definition.publish_submission_events = true;
    w.store.seed_trial(Trial { trial_id: tid("tw-demo"), definition, updated_at: "2026-11-02T09:00:00.000Z".into() });
    // WHEN a patient submits
    let id = new_id();
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&id, 3))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // THEN one SubmissionReceived is written with the submission, naming ids and times only
    let events: Vec<_> = w.store.pending_events().into_iter().filter(|e| e.detail_type == EventType::SubmissionReceived).collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].detail["submissionId"], json!(id));
    assert!(!events[0].detail.contains_key("answers"), "{:?}", events[0].detail);
}

#[tokio::test]
async fn a_fhir_questionnaire_response_with_an_array_in_place_of_an_object_is_422_naming_it() {
    // GIVEN a valid QuestionnaireResponse, then serde's positional (array) form of one of its
    // elements, which a derived reader took field by field
    let qr = || {
        json!({"resourceType": "QuestionnaireResponse", "status": "completed",
        "identifier": {"value": new_id()}, "questionnaire": "https://x/Questionnaire/kccq|1", "authored": "2026-11-26T19:00:00Z",
        "subject": {"reference": "Patient/P0001"}, "item": [{"linkId": "breathless", "answer": [{"valueInteger": 2}]}]})
    };
    assert_eq!(world().call_fhir("POST", SUBS, Some(patient("P0001")), qr()).await.status, 201);
    // The field the error names, and the edit that puts an array where its object belongs.
    type Case = (&'static str, fn(&mut serde_json::Value));
    let cases: [Case; 5] = [
        ("identifier", |q| q["identifier"] = json!([new_id()])),
        ("subject", |q| q["subject"] = json!(["Patient/P0001"])),
        ("item[0]", |q| q["item"] = json!([["breathless", [{"valueInteger": 2}]]])),
        ("item[0].answer[0]", |q| q["item"][0]["answer"] = json!([[2]])),
        ("item[0].answer[0].valueCoding", |q| q["item"][0]["answer"] = json!([{"valueCoding": [null, "2"]}])),
    ];
    for (field, positional) in cases {
        let mut body = qr();
        positional(&mut body);
        // WHEN it is posted
        let w = world();
        let r = w.call_fhir("POST", SUBS, Some(patient("P0001")), body).await;
        // THEN 422 naming the element
        assert_eq!(r.status, 422, "{field}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], field, "{}", r.text);
    }
}
