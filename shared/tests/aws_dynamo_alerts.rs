//! DynamoStore's alert records and audit log against the emulator: claim and
//! lease, completion, acknowledgement, both listing indexes.

mod aws_support;

use aws_support::{alert_audit, at, audit, enrol_patient, patient, site, trial, Emulator};
use chrono::{DateTime, Duration, Utc};
use trialwatch::alert::{Alert, AlertReason, AlertStatus, AttemptOutcome, Channel, Claim, DeliveryAttempt};
use trialwatch::audit::chain::{self, ChainId};
use trialwatch::audit::Actor;
use trialwatch::edge::http::HttpError;
use trialwatch::news2::RiskLevel;
use trialwatch::page::PageRequest;
use trialwatch::ports::{AlertDelivery, AlertInbox, AuditLog, ReportFigures, StorageError};
use trialwatch::{AlertId, Error, PatientId};

fn alert(p: &PatientId, n: i64) -> Alert {
    Alert {
        alert_id: AlertId::for_escalation(&trial(), p, RiskLevel::High, n.unsigned_abs()),
        trial_id: trial(),
        patient_id: p.clone(),
        site_id: site("s1"),
        level: RiskLevel::High,
        reason: AlertReason::News2 { score: 7, components: vec![] },
        created_at: at("2026-11-26T20:00:00Z") + Duration::minutes(n),
        correlation_id: None,
    }
}

fn now() -> DateTime<Utc> {
    at("2026-11-26T20:30:00Z")
}

#[tokio::test]
async fn a_claim_is_exclusive_until_its_lease_lapses_and_final_once_finished() {
    // GIVEN a new alert
    let env = Emulator::provision("claim").await;
    let store = env.store();
    enrol_patient(&store, &patient("P-1")).await;
    let a = alert(&patient("P-1"), 0);
    let lease = now() + Duration::seconds(30);
    // WHEN a dispatcher claims it, and a second (a redelivery) tries while the lease is live
    let first = store.claim(&a, now(), lease).await.unwrap();
    let second = store.claim(&a, now() + Duration::seconds(10), now() + Duration::seconds(40)).await.unwrap();
    // THEN the first owns it, pending, and the second is told who holds it until when
    let Claim::Acquired(record) = first else { panic!("expected Acquired, got {first:?}") };
    assert_eq!((record.alert, record.status, record.lease_until), (a.clone(), AlertStatus::Pending, Some(lease)));
    assert_eq!(second, Claim::InProgress { lease_until: lease });
    // WHEN the lease lapses (the first owner crashed) THEN a later claim takes over
    let takeover = store.claim(&a, lease + Duration::seconds(1), lease + Duration::seconds(31)).await.unwrap();
    assert!(matches!(takeover, Claim::Acquired(ref r) if r.lease_until == Some(lease + Duration::seconds(31))), "{takeover:?}");
    // WHEN delivered THEN every later claim, even after the lease, is AlreadyDone and notifies nobody
    store
        .finish(
            &trial(),
            &a.alert_id,
            AlertStatus::Delivered,
            now(),
            &alert_audit("alert/x", "alert.delivered", "2026-11-26T20:30:00Z"),
            &[],
        )
        .await
        .unwrap();
    let late = store.claim(&a, now() + Duration::hours(1), now() + Duration::hours(2)).await.unwrap();
    assert_eq!(late, Claim::AlreadyDone(AlertStatus::Delivered));
    let stored = store.get_alert(&trial(), &a.alert_id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.lease_until, stored.delivered_at), (AlertStatus::Delivered, None, Some(now())));
    // AND finishing again (a redelivered message) is harmless
    store
        .finish(
            &trial(),
            &a.alert_id,
            AlertStatus::Delivered,
            now(),
            &alert_audit("alert/x", "alert.delivered", "2026-11-26T20:31:00Z"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(entries_of(&env, "alert/x").await, 1);
}

#[tokio::test]
async fn a_released_lease_can_be_claimed_at_once_and_attempts_accumulate() {
    // GIVEN a claimed alert whose delivery failed retryably
    let env = Emulator::provision("release").await;
    let store = env.store();
    let a = alert(&patient("P-1"), 1);
    store.claim(&a, now(), now() + Duration::minutes(5)).await.unwrap();
    let attempt = |outcome, status| DeliveryAttempt {
        at: now(),
        channel: Channel::Webhook,
        outcome,
        http_status: status,
        detail: Some("http-503".into()),
    };
    store.record_attempt(&trial(), &a.alert_id, &attempt(AttemptOutcome::Retryable, Some(503))).await.unwrap();
    // WHEN the lease is released
    store.release(&trial(), &a.alert_id).await.unwrap();
    // THEN the redelivery claims at once, long before the old lease would have lapsed
    let again = store.claim(&a, now() + Duration::seconds(1), now() + Duration::minutes(5)).await.unwrap();
    let Claim::Acquired(record) = again else { panic!("expected Acquired, got {again:?}") };
    store.record_attempt(&trial(), &a.alert_id, &attempt(AttemptOutcome::Delivered, Some(200))).await.unwrap();
    // AND the attempts are kept in order across both claims
    assert_eq!(record.attempts.len(), 1);
    let stored = store.get_alert(&trial(), &a.alert_id).await.unwrap().unwrap();
    let outcomes: Vec<_> = stored.attempts.iter().map(|x| (x.outcome, x.http_status)).collect();
    assert_eq!(outcomes, vec![(AttemptOutcome::Retryable, Some(503)), (AttemptOutcome::Delivered, Some(200))]);
    // AND attempts on an unknown alert are NotFound, releasing one is a no-op
    let unknown = AlertId::parse("al-unknown").unwrap();
    assert_eq!(
        HttpError::from(store.record_attempt(&trial(), &unknown, &attempt(AttemptOutcome::Delivered, None)).await.unwrap_err()).status(),
        404
    );
    store.release(&trial(), &unknown).await.unwrap();
}

#[tokio::test]
async fn acknowledging_twice_is_a_conflict_and_an_unknown_alert_is_not_found() {
    // GIVEN a delivered alert
    let env = Emulator::provision("ack").await;
    let store = env.store();
    enrol_patient(&store, &patient("P-1")).await;
    let a = alert(&patient("P-1"), 2);
    store.claim(&a, now(), now() + Duration::seconds(30)).await.unwrap();
    store
        .finish(
            &trial(),
            &a.alert_id,
            AlertStatus::Delivered,
            now(),
            &alert_audit("alert/a", "alert.delivered", "2026-11-26T20:30:00Z"),
            &[],
        )
        .await
        .unwrap();
    let nurse = Actor { role: "site_staff".into(), subject: Some("nurse-7".into()) };
    let ack_at = now() + Duration::minutes(12);
    // WHEN a nurse acknowledges it, then acknowledges again
    let record = store
        .acknowledge(
            &trial(),
            &a.alert_id,
            &nurse,
            Some("called patient"),
            ack_at,
            &alert_audit("alert/a", "alert.acknowledged", "2026-11-26T20:42:00Z"),
            // No state item for the patient: the acknowledgement is recorded without the mark.
            Some(&a.patient_id),
            &[],
        )
        .await
        .unwrap();
    let again = store
        .acknowledge(
            &trial(),
            &a.alert_id,
            &nurse,
            None,
            ack_at,
            &alert_audit("alert/a", "alert.acknowledged", "2026-11-26T20:43:00Z"),
            None,
            &[],
        )
        .await;
    // THEN the first is recorded with who, when and the note, the second is a conflict that changed nothing
    assert_eq!(
        (record.status, record.acknowledged_at, record.acknowledged_by.as_ref()),
        (AlertStatus::Acknowledged, Some(ack_at), Some(&nurse))
    );
    assert_eq!(record.ack_note.as_deref(), Some("called patient"));
    assert_eq!(again.unwrap_err().code(), "alert-already-acknowledged");
    assert_eq!(entries_of(&env, "alert/a").await, 2, "delivery + one acknowledgement");
    // AND an acknowledged alert is done for the dispatcher
    assert_eq!(store.claim(&a, now(), now()).await.unwrap(), Claim::AlreadyDone(AlertStatus::Acknowledged));
    // AND acknowledging an alert that does not exist is NotFound
    let missing = store
        .acknowledge(
            &trial(),
            &AlertId::parse("al-none").unwrap(),
            &nurse,
            None,
            ack_at,
            &alert_audit("alert/none", "alert.acknowledged", "2026-11-26T20:44:00Z"),
            None,
            &[],
        )
        .await;
    assert!(matches!(missing, Err(StorageError::NotFound(_))), "{missing:?}");
}

#[tokio::test]
async fn a_patients_alerts_page_newest_first_through_the_index_without_gaps_or_repeats() {
    // GIVEN 7 alerts of P-1 and 2 of P-2
    let env = Emulator::provision("alertpages").await;
    let store = env.store();
    let (p1, p2) = (patient("P-1"), patient("P-2"));
    for n in 0..7 {
        store.claim(&alert(&p1, n), now(), now()).await.unwrap();
    }
    for n in 0..2 {
        store.claim(&alert(&p2, n), now(), now()).await.unwrap();
    }
    // WHEN P-1's alerts are read three at a time, following cursors
    let (mut seen, mut page, mut cursors) = (Vec::new(), PageRequest::first(3), Vec::new());
    loop {
        let got = store.list_alerts(&trial(), &p1, &page).await.unwrap();
        assert!(got.items.len() <= 3);
        seen.extend(got.items.into_iter().map(|r| r.alert.alert_id));
        let Some(c) = got.next_cursor else { break };
        cursors.push(c.clone());
        page = PageRequest { limit: 3, cursor: Some(c) };
    }
    // THEN all seven, newest first, each once
    let expected: Vec<AlertId> = (0..7).rev().map(|n| alert(&p1, n).alert_id).collect();
    assert_eq!(seen, expected);
    // AND P-1's cursor cannot open P-2's list
    let err = Error::from(store.list_alerts(&trial(), &p2, &PageRequest { limit: 3, cursor: cursors.first().cloned() }).await.unwrap_err());
    assert!(matches!(&err, Error::Validation(e) if e[0].field == "cursor"), "{err:?}");
}

#[tokio::test]
async fn alerts_between_returns_the_half_open_interval_of_the_whole_trial() {
    // GIVEN alerts of two patients created at minutes 0..6
    let env = Emulator::provision("between").await;
    let store = env.store();
    for n in 0..6 {
        let p = patient(if n % 2 == 0 { "P-1" } else { "P-2" });
        store.claim(&alert(&p, n), now(), now()).await.unwrap();
    }
    // WHEN asked for [minute 1, minute 4)
    let from = at("2026-11-26T20:01:00Z");
    let records = store.alerts_between(&trial(), from, from + Duration::minutes(3)).await.unwrap();
    // THEN minutes 1, 2 and 3 come back, from both patients, and not minute 4
    let mut minutes: Vec<i64> = records.iter().map(|r| (r.alert.created_at - at("2026-11-26T20:00:00Z")).num_minutes()).collect();
    minutes.sort();
    assert_eq!(minutes, vec![1, 2, 3]);
    assert!(store.alerts_between(&trial(), from, from).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_audit_append_links_after_the_chain_head_and_never_overwrites() {
    // GIVEN an enrolled patient (its chain holds the enrolment's entry) and an audit entry
    let env = Emulator::provision("audit").await;
    let store = env.store();
    enrol_patient(&store, &patient("P-1")).await;
    let entry = audit("patient/P-1", "enrolment.created", "2026-11-26T09:00:00Z").with_detail("siteId", "s1");
    // WHEN appended, and appended again (a retry), and a different entry is appended at the same instant
    store.append(&entry).await.unwrap();
    store.append(&entry).await.unwrap();
    store.append(&audit("patient/P-1", "enrolment.updated", "2026-11-26T09:00:00Z")).await.unwrap();
    // THEN each append took the next seq of the patient's chain: none overwrote another
    let chain_id = ChainId::Patient(patient("P-1"));
    let entries = env.chain(&chain_id).await;
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["enrolment.created", "enrolment.created", "enrolment.created", "enrolment.updated"]);
    // AND the chain verifies and ends at the head recorded on the enrolment
    let found = chain::verify(&chain_id, &entries).unwrap();
    let recorded = trialwatch::ports::EnrolmentStore::get_enrolment_consistent(&store, &trial(), &patient("P-1")).await.unwrap().unwrap();
    assert_eq!(chain::check_head(&found, &recorded.audit_head), Ok(()));
    assert_eq!(found.seq, 4);
    // AND they live in the audit table, none in the data table that every role may write
    assert!(env.partition(&trialwatch::aws::chain_pk(&trial(), &chain_id)).await.is_empty());
}

#[tokio::test]
async fn an_audit_append_in_a_transaction_never_overwrites_and_cancels_the_change_it_records() {
    // GIVEN an entry forged into the trail at the next seq of the patient's chain (its head not moved)
    let env = Emulator::provision("audit-tx").await;
    let store = env.store();
    enrol_patient(&store, &patient("P-1")).await;
    let a = alert(&patient("P-1"), 3);
    store.claim(&a, now(), now() + Duration::seconds(60)).await.unwrap();
    let chain_id = ChainId::Patient(patient("P-1"));
    let mut forged = alert_audit("alert/a", "alert.acknowledged", "2026-11-26T20:42:00Z");
    forged.link(&chain_id, &env.chain(&chain_id).await[0].as_head().unwrap());
    let mut item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = serde_dynamo::to_item(&forged).unwrap();
    item.insert("pk".into(), aws_sdk_dynamodb::types::AttributeValue::S(trialwatch::aws::chain_pk(&trial(), &chain_id)));
    item.insert("sk".into(), aws_sdk_dynamodb::types::AttributeValue::S(trialwatch::aws::chain_sk(2)));
    env.raw_dynamo().put_item().table_name(env.audit_table()).set_item(Some(item)).send().await.unwrap();
    let before = env.chain(&chain_id).await;
    // WHEN the acknowledgement is recorded (its entry takes seq 2, linked from the recorded head)
    let nurse = Actor { role: "site_staff".into(), subject: Some("nurse-7".into()) };
    let entry = alert_audit("alert/a", "alert.acknowledged", "2026-11-26T20:43:00Z");
    let result = store.acknowledge(&trial(), &a.alert_id, &nurse, Some("seen"), now(), &entry, None, &[]).await;
    // THEN the transaction is refused as a whole: the stored entry is unchanged, the alert not acknowledged
    assert!(result.is_err(), "{result:?}");
    assert_eq!(env.chain(&chain_id).await, before);
    let stored = store.get_alert(&trial(), &a.alert_id).await.unwrap().unwrap();
    assert!(stored.acknowledged_at.is_none(), "{stored:?}");
}

/// Entries about `entity` in patient P-1's chain.
async fn entries_of(env: &Emulator, entity: &str) -> usize {
    env.chain(&ChainId::Patient(patient("P-1"))).await.iter().filter(|e| e.entity == entity).count()
}

/// A stored vitals state whose last alert is `last`.
fn escalated_state(p: &PatientId, last: &AlertId) -> trialwatch::vitals_state::VitalsState {
    let mut s = trialwatch::vitals_state::VitalsState::new(trial(), p.clone());
    s.version = 1;
    s.last_alert_level = Some(RiskLevel::High);
    s.last_alert_at = Some(now());
    s.escalation_seq = 1;
    s.last_alert_id = Some(last.clone());
    s.alerting_parameters = vec![trialwatch::news2::Parameter::Spo2, trialwatch::news2::Parameter::Pulse];
    s
}

#[tokio::test]
async fn acknowledging_a_patients_last_news2_alert_marks_its_state_in_the_same_transaction() {
    use trialwatch::ports::{StateWrite, VitalsStore};
    // GIVEN a delivered alert that the patient's stored vitals state records as its last
    let env = Emulator::provision("ackmark").await;
    let (store, requests) = env.counted_store();
    enrol_patient(&store, &patient("P-1")).await;
    let p = patient("P-1");
    let a = alert(&p, 1);
    store.claim(&a, now(), now() + Duration::seconds(30)).await.unwrap();
    let read_by_analyzer = escalated_state(&p, &a.alert_id);
    store.put_state(None, &read_by_analyzer, &[], &[]).await.unwrap();
    requests.reset();
    // WHEN staff acknowledge it
    let nurse = Actor { role: "site_staff".into(), subject: Some("nurse-7".into()) };
    let ack_at = now() + Duration::minutes(12);
    store
        .acknowledge(
            &trial(),
            &a.alert_id,
            &nurse,
            None,
            ack_at,
            &alert_audit("alert/a", "alert.acknowledged", "2026-11-26T20:42:00Z"),
            Some(&p),
            &[],
        )
        .await
        .unwrap();
    // THEN one transaction recorded the acknowledgement and marked the state under the next version
    assert_eq!(requests.get("TransactWriteItems"), 1);
    let marked = store.get_state(&trial(), &p).await.unwrap().unwrap();
    assert_eq!((marked.last_alert_acked_at, marked.version), (Some(ack_at), 2));
    assert_eq!(marked.alerting_parameters, read_by_analyzer.alerting_parameters, "the rest of the item is untouched");
    // AND an analyzer write based on the unmarked item is stale, so it reloads instead of erasing the mark
    let mut next = read_by_analyzer.clone();
    next.version = 2;
    assert_eq!(store.put_state(Some(&read_by_analyzer), &next, &[], &[]).await.unwrap(), StateWrite::Stale);
}

#[tokio::test]
async fn acknowledging_an_alert_that_is_not_the_patients_last_is_recorded_without_marking_the_state() {
    use trialwatch::ports::VitalsStore;
    // GIVEN the patient's state records a newer alert (sequence 2) than the one acknowledged
    let env = Emulator::provision("acknomark").await;
    let (store, requests) = env.counted_store();
    enrol_patient(&store, &patient("P-1")).await;
    let p = patient("P-1");
    let (older, newer) = (alert(&p, 1), alert(&p, 2));
    store.claim(&older, now(), now() + Duration::seconds(30)).await.unwrap();
    store.put_state(None, &escalated_state(&p, &newer.alert_id), &[], &[]).await.unwrap();
    requests.reset();
    // WHEN the older alert is acknowledged
    let nurse = Actor { role: "site_staff".into(), subject: Some("nurse-7".into()) };
    let record = store
        .acknowledge(
            &trial(),
            &older.alert_id,
            &nurse,
            None,
            now(),
            &alert_audit("alert/o", "alert.acknowledged", "2026-11-26T20:42:00Z"),
            Some(&p),
            &[],
        )
        .await
        .unwrap();
    // THEN it is acknowledged (the cancelled attempt with the mark is retried without it) and audited once
    assert_eq!(record.status, AlertStatus::Acknowledged);
    assert_eq!(requests.get("TransactWriteItems"), 2);
    assert_eq!(entries_of(&env, "alert/o").await, 1);
    // AND the state is unchanged
    let state = store.get_state(&trial(), &p).await.unwrap().unwrap();
    assert_eq!((state.last_alert_acked_at, state.version), (None, 1));
}

#[tokio::test]
async fn a_replayed_alert_keeps_the_correlation_id_of_its_first_claim() {
    // GIVEN an alert first claimed for request "req-first", whose lease then lapses
    let env = Emulator::provision("correlation").await;
    let store = env.store();
    let with_id = |id: &str| Alert { correlation_id: trialwatch::correlation::CorrelationId::parse(id), ..alert(&patient("P-1"), 2) };
    store.claim(&with_id("req-first"), now(), now() + Duration::seconds(30)).await.unwrap();
    // WHEN the same alert is claimed again from another request's message
    let again = store.claim(&with_id("req-second"), now() + Duration::minutes(1), now() + Duration::minutes(2)).await.unwrap();
    // THEN the claim hands back, and the item keeps, the first request's id
    let Claim::Acquired(record) = again else { panic!("expected Acquired, got {again:?}") };
    assert_eq!(record.alert.correlation_id.as_ref().map(|c| c.as_str()), Some("req-first"));
    let stored = store.get_alert(&trial(), &record.alert.alert_id).await.unwrap().unwrap();
    assert_eq!(stored.alert.correlation_id.map(|c| c.to_string()).as_deref(), Some("req-first"));
}
