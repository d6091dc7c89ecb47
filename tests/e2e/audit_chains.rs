//! The audit trail's hash chains, written by every function of the running
//! stack and read back as an inspector would: one Query per chain, verified
//! entry by entry and against the head recorded on the enrolment or trial item.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use trialwatch::audit::chain::{check_head, verify, ChainHead, ChainId};
use trialwatch::audit::AuditEntry;
use trialwatch::{PatientId, TrialId};
use trialwatch_e2e::{World, TRIAL};
use trialwatch_local::scenario;

fn dynamo(w: &World) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&w.stack.sdk)
}

/// A chain's entries in seq order: one Query on its partition, ascending.
async fn chain_entries(w: &World, chain: &ChainId) -> Vec<AuditEntry> {
    let trial = TrialId::parse(TRIAL).expect("trial id");
    let mut pages = dynamo(w)
        .query()
        .table_name(&w.stack.provisioned.resources.audit_table_name)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(trialwatch::aws::chain_pk(&trial, chain)))
        .consistent_read(true)
        .into_paginator()
        .items()
        .send();
    let mut entries = Vec::new();
    while let Some(item) = pages.next().await {
        let mut item = item.expect("Query chain");
        for key in ["pk", "sk", "gsi1pk", "gsi1sk"] {
            item.remove(key);
        }
        entries.push(serde_dynamo::from_item(item).expect("an audit entry"));
    }
    entries
}

/// The head recorded on the chain's head item (the enrolment or the trial item).
async fn recorded_head(w: &World, sk: &str) -> ChainHead {
    let item = dynamo(w)
        .get_item()
        .table_name(&w.stack.provisioned.resources.table_name)
        .key("pk", AttributeValue::S(format!("TRIAL#{TRIAL}")))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem head")
        .item
        .expect("head item");
    let seq = item.get("auditSeq").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).expect("auditSeq");
    let hash = item.get("auditHash").and_then(|v| v.as_s().ok()).cloned().expect("auditHash");
    ChainHead { seq, hash }
}

fn count(entries: &[AuditEntry], action: &str) -> usize {
    entries.iter().filter(|e| e.action == action).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_writer_extends_the_patients_chain_which_verifies_to_the_head_on_the_enrolment() {
    // GIVEN a trial (created by the World) and an enrolled patient
    let w = World::start("e2e-chain").await;
    let p = w.enrol(0).await;
    let staff = w.staff(&[scenario::site_of(0)]);
    let subs = format!("/v1/trials/{TRIAL}/patients/{p}/submissions");
    // WHEN they submit twice, the second answer firing the PRO rule
    let completed_at = chrono::Utc::now() - chrono::Duration::minutes(5);
    for breathlessness in [1, scenario::PRO_THRESHOLD] {
        let r =
            w.post(&subs, &w.patient(&p), &scenario::submission(&uuid::Uuid::new_v4().to_string(), completed_at, 1, breathlessness)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    // AND their vitals deteriorate to a NEWS2 alert
    crate::alerts::stream_vitals(&w, &p, &scenario::DETERIORATION).await;
    // AND every alert is delivered, and staff acknowledge the high one
    let alerts = w.api.patient_alerts(TRIAL, &p, &staff).await.expect("alerts");
    let ids: Vec<String> = alerts.iter().filter_map(|a| a["alert"]["alertId"].as_str().map(str::to_owned)).collect();
    assert!(alerts.iter().any(|a| a["alert"]["reason"]["kind"] == "news2"), "{alerts:?}");
    assert!(alerts.iter().any(|a| a["alert"]["reason"]["kind"] == "pro-rule"), "{alerts:?}");
    let all_in = w.receiver.wait_until(Duration::from_secs(60), |got| ids.iter().all(|id| got.contains_key(id))).await;
    assert!(all_in, "alerts {ids:?} not all delivered");
    // (The dispatcher records a delivery after the webhook answers: wait for every settle,
    // so the acknowledgement does not overtake one.)
    let chain = ChainId::Patient(PatientId::parse(&p).expect("patient id"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count(&chain_entries(&w, &chain).await, "alert.delivered") < ids.len() {
        assert!(tokio::time::Instant::now() < deadline, "not every delivery was audited");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let high = alerts.iter().find(|a| a["alert"]["level"] == "high").expect("a high alert");
    let ack = format!("/v1/trials/{TRIAL}/alerts/{}/ack", high["alert"]["alertId"].as_str().expect("id"));
    assert_eq!(w.post(&ack, &staff, &json!({"note": "called"})).await.status, 200);

    // THEN the patient's chain, read back with one Query, holds every writer's entries in order
    let entries = chain_entries(&w, &chain).await;
    assert_eq!(entries[0].action, "enrolment.created");
    assert_eq!(count(&entries, "submission.created"), 2);
    assert_eq!(count(&entries, "alert.raised"), ids.len(), "one raised entry per alert, NEWS2 and PRO");
    assert_eq!(count(&entries, "alert.delivered"), ids.len());
    assert_eq!(count(&entries, "alert.acknowledged"), 1);
    let pro = entries.iter().find(|e| e.action == "alert.raised" && e.details["rule"] == "pro").expect("PRO raised");
    assert_eq!(pro.details["linkId"], scenario::PRO_ITEM);
    let news2 = entries.iter().find(|e| e.action == "alert.raised" && e.details["rule"] == "news2").expect("NEWS2 raised");
    assert!(news2.details["score"].as_u64().is_some() && news2.details["components"].is_object(), "{:?}", news2.details);
    // AND it verifies, and ends at the head recorded on the enrolment
    let found = verify(&chain, &entries).unwrap_or_else(|b| panic!("the patient's chain is broken: {b}"));
    assert_eq!(check_head(&found, &recorded_head(&w, &format!("PATIENT#{p}")).await), Ok(()));
    assert_eq!(found.seq, entries.len() as u64);

    // AND the trial's chain holds its configuration and verifies to the head on the trial item
    let trial_entries = chain_entries(&w, &ChainId::Trial).await;
    assert_eq!(trial_entries[0].action, "trial.created");
    assert!(trial_entries.iter().all(|e| e.details.get("patientId").is_none()), "no patient entry in the trial's chain");
    let found = verify(&ChainId::Trial, &trial_entries).unwrap_or_else(|b| panic!("the trial's chain is broken: {b}"));
    assert_eq!(check_head(&found, &recorded_head(&w, "META").await), Ok(()));
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_of_one_patient_all_commit_and_their_chain_stays_linear() {
    // GIVEN an enrolled patient who has submitted once (the API caches the enrolment and its head)
    let w = World::start("e2e-chainrace").await;
    let p = w.enrol(1).await;
    let subs = format!("/v1/trials/{TRIAL}/patients/{p}/submissions");
    let token = w.patient(&p);
    let at = chrono::Utc::now() - chrono::Duration::minutes(5);
    let body = |seed| scenario::submission(&uuid::Uuid::new_v4().to_string(), at, seed, 1);
    assert_eq!(w.post(&subs, &token, &body(0)).await.status, 201);
    let retries_before = trialwatch::audit::append::head_retries();
    // WHEN four more arrive at once, all linked from the one cached head
    let bodies: Vec<serde_json::Value> = (1..=4).map(body).collect();
    let (a, b, c, d) = tokio::join!(
        w.post(&subs, &token, &bodies[0]),
        w.post(&subs, &token, &bodies[1]),
        w.post(&subs, &token, &bodies[2]),
        w.post(&subs, &token, &bodies[3])
    );
    // THEN all commit (the losers of the head re-read it and retried)
    for r in [&a, &b, &c, &d] {
        assert_eq!(r.status, 201, "{}", r.body);
    }
    assert!(trialwatch::audit::append::head_retries() > retries_before, "at least one submission retried on a moved head");
    // AND the chain is linear: seq 1..=6, no fork, no gap, ending at the head on the enrolment
    let chain = ChainId::Patient(PatientId::parse(&p).expect("patient id"));
    let entries = chain_entries(&w, &chain).await;
    assert_eq!(entries.iter().map(|e| e.seq.unwrap_or(0)).collect::<Vec<_>>(), (1..=6).collect::<Vec<_>>());
    assert_eq!(count(&entries, "submission.created"), 5);
    let found = verify(&chain, &entries).unwrap_or_else(|b| panic!("the chain forked or broke: {b}"));
    assert_eq!(check_head(&found, &recorded_head(&w, &format!("PATIENT#{p}")).await), Ok(()));
    w.shutdown().await;
}
