//! The local stack on the in-memory adapters (`make up STORE=memory`): the
//! same gateway, handlers and pollers as on the emulator, with no emulator.
//! A submission is stored and read back; vitals go through the in-memory
//! FIFO queue to the analyzer, whose alert goes through the alert queue to the
//! dispatcher and reaches a signed webhook.

use std::time::Duration;

use trialwatch_local::auth::DevIdentity;
use trialwatch_local::client::Api;
use trialwatch_local::receiver::WebhookReceiver;
use trialwatch_local::scenario::{self, Condition};
use trialwatch_local::{Stack, StackConfig};

const TRIAL: &str = "tw-mem";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_stack_stores_reads_back_and_alerts_through_its_pollers_without_an_emulator() {
    // GIVEN no emulator at all (AWS_ENDPOINT_URL points nowhere) and the stack on the in-memory adapters
    std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    let stack = Stack::start(StackConfig::in_memory()).await.expect("the in-memory stack starts without an emulator");
    let secret = "whsec-memory-0123456789abcdef";
    let receiver = WebhookReceiver::start(secret).await.unwrap();
    let api = Api::new(&stack.base_url, &trialwatch_local::auth::dev_secret(), 8);
    let admin = api.token(&DevIdentity::new("admin").subject("t-admin")).unwrap();
    let patient = api.token(&DevIdentity::new("patient").trial(TRIAL).patient(&scenario::patient_id(0))).unwrap();
    let staff = api
        .token(&DevIdentity::new("site_staff").trial(TRIAL).sites(&[&format!("{TRIAL}/{}", scenario::site_of(0))]).subject("t-nurse"))
        .unwrap();
    assert!(api
        .put(&format!("/v1/trials/{TRIAL}"), &admin, &scenario::trial_definition(&receiver.url, secret))
        .await
        .unwrap()
        .is_success());
    let p = scenario::patient_id(0);
    assert_eq!(api.put(&format!("/v1/trials/{TRIAL}/patients/{p}"), &admin, &scenario::enrolment(0)).await.unwrap().status, 201);

    // WHEN the patient submits, THEN it is stored (201) and reads back with its id
    let id = uuid::Uuid::new_v4().to_string();
    let body = scenario::submission(&id, chrono::Utc::now() - chrono::Duration::seconds(1), 1, 2);
    let r = api.post(&format!("/v1/trials/{TRIAL}/patients/{p}/submissions"), &patient, &body).await.unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let listed = api.list_all(&format!("/v1/trials/{TRIAL}/patients/{p}/submissions?limit=10"), &patient).await.unwrap();
    assert_eq!(listed.iter().filter(|s| s["submissionId"] == id.as_str()).count(), 1);

    // WHEN critical vitals arrive
    let r = api
        .post(&format!("/v1/trials/{TRIAL}/patients/{p}/vitals"), &patient, &scenario::vitals(Condition::Critical, chrono::Utc::now()))
        .await
        .unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    // THEN the analyzer (polled from the in-memory FIFO queue) raises a high alert the API lists
    let mut alert_id = None;
    for _ in 0..100 {
        let alerts = api.patient_alerts(TRIAL, &p, &staff).await.unwrap();
        alert_id = alerts.iter().find(|a| a["alert"]["level"] == "high").and_then(|a| a["alert"]["alertId"].as_str().map(str::to_owned));
        if alert_id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alert_id = alert_id.expect("a high alert within 10 s");
    // AND the dispatcher (polled from the in-memory alert queue) delivers it, signed, once
    assert!(receiver.wait_until(Duration::from_secs(10), |got| got.contains_key(&alert_id)).await, "the alert reached the webhook");
    assert_eq!((receiver.rejected(), receiver.duplicates()), (0, 0));
    // AND nothing was dead-lettered
    let backend = stack.memory.clone().expect("the in-memory backend");
    assert!(backend.queues.values().all(|q| q.dead_lettered.load(std::sync::atomic::Ordering::Relaxed) == 0));

    receiver.shutdown().await;
    stack.shutdown().await;
}
