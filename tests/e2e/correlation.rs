use std::time::Duration;

use trialwatch_e2e::{World, TRIAL};
use trialwatch_local::scenario::{self, Condition};

/// POSTs `body` with an `X-Correlation-Id` header (or none) and returns the
/// status and the echoed header.
async fn post_with_id(w: &World, path: &str, token: &str, body: &serde_json::Value, id: Option<&str>) -> (u16, Option<String>) {
    let mut req = w.api.http().post(format!("{}{path}", w.api.base_url)).bearer_auth(token).json(body);
    if let Some(id) = id {
        req = req.header("X-Correlation-Id", id);
    }
    let resp = req.send().await.expect("POST");
    let echoed = resp.headers().get("x-correlation-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (resp.status().as_u16(), echoed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_correlation_id_follows_a_vitals_request_through_both_queues_to_the_webhook() {
    // GIVEN an enrolled patient and a correlation id chosen by the app
    let w = World::start("e2e-correlation").await;
    let p = w.enrol(0).await;
    let token = w.patient(&p);
    let path = format!("/v1/trials/{TRIAL}/patients/{p}/vitals");
    let id = format!("app-{}", uuid::Uuid::new_v4().simple());

    // WHEN the app posts critical vitals with that X-Correlation-Id
    let (status, echoed) = post_with_id(&w, &path, &token, &scenario::vitals(Condition::Critical, chrono::Utc::now()), Some(&id)).await;

    // THEN the response echoes it
    assert_eq!(status, 202);
    assert_eq!(echoed.as_deref(), Some(id.as_str()));
    // AND the high alert reaches the site's webhook (vitals queue -> analyzer -> alert queue ->
    // dispatcher) carrying the same id in X-TrialWatch-Correlation-Id and in its body
    let delivered = w.receiver.wait_until(Duration::from_secs(60), |got| got.values().any(|r| r.alert["patientId"] == p.as_str())).await;
    assert!(delivered, "no alert for {p} reached the webhook");
    let got = w.receiver.received();
    let alert = got.values().find(|r| r.alert["patientId"] == p.as_str()).expect("the patient's alert");
    assert_eq!(alert.alert["level"], "high");
    assert_eq!(alert.correlation_id.as_deref(), Some(id.as_str()), "webhook header");
    assert_eq!(alert.alert["correlationId"], id.as_str(), "signed body");
    // AND the stored alert item keeps it, as the API lists it
    let staff = w.staff(&[scenario::site_of(0)]);
    let listed = w.api.patient_alerts(TRIAL, &p, &staff).await.expect("alerts");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["alert"]["correlationId"], id.as_str());

    // WHEN another request sends an invalid id THEN it is ignored (not an error) and the
    // request id of the gateway is used and echoed instead
    let (status, echoed) =
        post_with_id(&w, &path, &token, &scenario::vitals(Condition::Critical, chrono::Utc::now()), Some("not valid; 65 chars?")).await;
    assert_eq!(status, 202);
    let echoed = echoed.expect("an id is always echoed");
    assert_ne!(echoed, "not valid; 65 chars?");
    assert!(echoed.len() <= 64 && echoed.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{echoed}");
    w.shutdown().await;
}
