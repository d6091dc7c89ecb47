//! No PRO alert is lost after a 2xx: the alert is stored with its submission,
//! and when the inline send fails the outbox sweeper delivers it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use trialwatch_e2e::{World, TRIAL};
use trialwatch_local::client::Api;
use trialwatch_local::functions::TrialWatchFunctions;
use trialwatch_local::scenario::{self, PRO_THRESHOLD};
use trialwatch_local::stack::{fire, ScheduleTarget};
use trialwatch_local::{Stack, StackConfig};
use trialwatch_provision::{template_path, Template};

/// A second gateway serving only epro-api, whose alert queue URL names a queue
/// that does not exist: every inline send fails with a real SQS error, after
/// the transaction committed.
async fn api_with_a_dead_alert_queue(w: &World) -> (Stack, Api) {
    let mut broken = w.stack.provisioned.clone();
    let queue = broken.physical.get_mut("AlertQueue").expect("AlertQueue provisioned");
    queue.reference = format!("{}-gone", queue.reference);
    let specs: Vec<_> =
        Template::load(&template_path()).expect("template").functions().into_iter().filter(|f| f.binary == "epro-api").collect();
    let functions = TrialWatchFunctions::build(&w.stack.sdk, &broken, &specs).expect("epro-api");
    let mut config = StackConfig::for_test("e2e-outbox-api");
    config.pollers = false;
    let stack = Stack::start_with(config, w.stack.sdk.clone(), broken, specs, Arc::new(functions)).await.expect("api stack");
    let api = Api::new(&stack.base_url, &trialwatch_local::auth::dev_secret(), 4);
    (stack, api)
}

/// Runs the outbox sweep as EventBridge would at `at` (the sweeper takes the
/// event's time), through the real alert-dispatcher on the emulator.
async fn sweep_at(w: &World, at: chrono::DateTime<chrono::Utc>) -> Value {
    let specs: Vec<_> =
        Template::load(&template_path()).expect("template").functions().into_iter().filter(|f| f.binary == "alert-dispatcher").collect();
    let functions = TrialWatchFunctions::build(&w.stack.sdk, &w.stack.provisioned, &specs).expect("alert-dispatcher");
    let base = w.stack.plan.schedules.iter().find(|s| s.name == "OutboxSweep").expect("the OutboxSweep schedule");
    let event = json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/OutboxSweep"], "detail": {}
    });
    let target = ScheduleTarget { input: Some(event.to_string()), ..base.clone() };
    fire(&functions, &target).await.expect("the sweep ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pro_alert_whose_inline_send_failed_is_delivered_once_by_the_outbox_without_a_client_retry() {
    // GIVEN an enrolled patient, and an API whose send to the alert queue always fails
    let w = World::start("e2e-outbox").await;
    let patient = w.enrol(0).await;
    let (api_stack, api) = api_with_a_dead_alert_queue(&w).await;
    let token = w.patient(&patient);

    // WHEN the patient submits an answer that trips the PRO rule, and never retries
    let id = uuid::Uuid::new_v4().to_string();
    let sent_at = chrono::Utc::now();
    let body = scenario::submission(&id, sent_at, 1, PRO_THRESHOLD);
    let r = api.post(&format!("/v1/trials/{TRIAL}/patients/{patient}/submissions"), &token, &body).await.expect("POST");

    // THEN the submission is acknowledged (before the outbox, this was a 503 and the alert waited on the client)
    assert_eq!(r.status, 201, "{}", r.body);
    // The stored alert's grace runs from the server's receipt, which under load can be
    // seconds after `sent_at`: only the response bounds it.
    let acknowledged_at = chrono::Utc::now();
    // AND nothing reached the site, because nothing was queued
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(w.receiver.received().is_empty(), "the inline send was meant to fail");

    // WHEN the sweeper runs after the inline send's grace (the schedule runs every minute)
    let outcome = sweep_at(&w, acknowledged_at + trialwatch::outbox::grace() + chrono::Duration::seconds(1)).await;
    assert_eq!(outcome["alerts"]["sent"], 1, "{outcome}");

    // THEN the dispatcher delivers the alert to the site, exactly once
    let delivered = w.receiver.wait_until(Duration::from_secs(30), |got| got.len() == 1).await;
    assert!(delivered, "the stored alert was not delivered");
    let received = w.receiver.received();
    let (alert_id, got) = received.iter().next().expect("one alert");
    assert_eq!(got.deliveries, 1);
    assert_eq!(got.alert["patientId"], patient.as_str());
    assert_eq!(got.alert["reason"]["kind"], "pro-rule");
    assert_eq!(got.alert["reason"]["submissionId"], id.as_str());

    // AND the claim took it out of the outbox: a later sweep sends nothing, and nothing is delivered twice
    let again = sweep_at(&w, sent_at + chrono::Duration::minutes(30)).await;
    assert_eq!(again["alerts"]["due"], 0, "{again}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(w.receiver.received()[alert_id].deliveries, 1);
    assert_eq!(w.receiver.rejected(), 0);

    // AND the site's staff see it delivered
    let staff = w.staff(&[scenario::site_of(0)]);
    let alerts = w.api.patient_alerts(TRIAL, &patient, &staff).await.expect("alerts");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["status"], "delivered", "{}", alerts[0]);

    api_stack.shutdown().await;
    w.shutdown().await;
}
