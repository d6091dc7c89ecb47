//! Reads: a patient's summary, their alerts, a trial's definition.

use serde_json::json;
use trialwatch::news2::{News2Result, Parameter};
use trialwatch::ports::VitalsStore;
use trialwatch::vitals_state::VitalsState;

use super::*;

const P1: &str = "/v1/trials/tw-demo/patients/P0001";

#[tokio::test]
async fn a_new_patient_has_no_news2_no_submissions_and_no_open_alerts() {
    let w = world();
    let r = w.call("GET", P1, Some(patient("P0001")), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"trialId": "tw-demo", "patientId": "P0001", "siteId": "site-leeds", "status": "enrolled", "hypercapnic": false,
               "enrolledAt": "2026-11-01T09:00:00.000Z", "updatedAt": "2026-11-01T09:00:00.000Z",
               "latestNews2": null, "submissions": {"count": 0, "lastAt": null}, "openAlerts": 0})
    );
}

#[tokio::test]
async fn the_summary_shows_latest_news2_submission_counts_and_open_alerts() {
    // GIVEN a NEWS2 state, two submissions and three alerts of which one is acknowledged
    let w = world();
    let mut state = VitalsState::new(tid("tw-demo"), pid("P0001"));
    state.version = 1;
    state.news2 = Some(News2Result {
        score: 5,
        risk_level: RiskLevel::Medium,
        components: vec![],
        missing: vec![Parameter::Consciousness],
        observed_at: Some("2026-11-26T19:58:00Z".parse().unwrap()),
    });
    w.store.put_state(None, &state, &[], &[]).await.unwrap();
    for _ in 0..2 {
        assert_eq!(w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 1))).await.status, 201);
    }
    w.store.seed_alert(alert_record("al-1", "P0001", "site-leeds", AlertStatus::Pending));
    w.store.seed_alert(alert_record("al-2", "P0001", "site-leeds", AlertStatus::Delivered));
    w.store.seed_alert(alert_record("al-3", "P0001", "site-leeds", AlertStatus::Acknowledged));
    w.store.seed_alert(alert_record("al-4", "P0002", "site-york", AlertStatus::Pending));
    // WHEN site staff read the patient
    let r = w.call("GET", P1, Some(staff("site-leeds")), None).await;
    // THEN
    assert_eq!(r.status, 200);
    assert_eq!(r.body["latestNews2"]["score"], 5);
    assert_eq!(r.body["latestNews2"]["riskLevel"], "medium");
    assert_eq!(r.body["latestNews2"]["missing"], json!(["consciousness"]));
    assert_eq!(r.body["submissions"], json!({"count": 2, "lastAt": "2026-11-26T19:00:00.000Z"}));
    assert_eq!(r.body["openAlerts"], 2);
}

#[tokio::test]
async fn an_admin_reading_a_missing_patient_gets_404() {
    let w = world();
    assert_eq!(w.call("GET", "/v1/trials/tw-demo/patients/P9999", Some(admin()), None).await.status, 404);
}

#[tokio::test]
async fn staff_list_a_patients_alerts_newest_first() {
    let w = world();
    let mut older = alert_record("al-old", "P0001", "site-leeds", AlertStatus::Delivered);
    older.alert.created_at = "2026-11-20T10:00:00Z".parse().unwrap();
    w.store.seed_alert(older);
    w.store.seed_alert(alert_record("al-new", "P0001", "site-leeds", AlertStatus::Pending));
    let r = w.call("GET", &format!("{P1}/alerts?limit=50"), Some(staff("site-leeds")), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<&str> = r.body["items"].as_array().unwrap().iter().map(|a| a["alert"]["alertId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["al-new", "al-old"]);
    assert_eq!(r.body["nextCursor"], json!(null));
}

#[tokio::test]
async fn a_trial_is_readable_by_its_admin_sponsor_and_staff_without_its_secret() {
    let w = world();
    for claims in [admin(), sponsor(), staff("site-york")] {
        let r = w.call("GET", "/v1/trials/tw-demo", Some(claims.clone()), None).await;
        assert_eq!(r.status, 200, "{claims}");
        assert_eq!(r.body["alerting"]["webhook"]["secretSet"], true);
        assert!(r.body["alerting"]["webhook"].get("secret").is_none());
    }
    let other_sponsor = json!({"role": "sponsor", "trial_ids": "tw-other"});
    assert_eq!(w.call("GET", "/v1/trials/tw-demo", Some(other_sponsor), None).await.status, 403);
    assert_eq!(w.call("GET", "/v1/trials/tw-none", Some(admin()), None).await.status, 404);
}

#[tokio::test]
async fn a_patient_reads_the_questionnaires_of_their_trial_but_not_its_sites_or_alerting() {
    let w = world();
    let r = w.call("GET", "/v1/trials/tw-demo", Some(patient("P0001")), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["trialId"], "tw-demo");
    assert!(!r.body["questionnaires"].as_array().unwrap().is_empty());
    assert!(r.body["timezone"].is_string());
    for hidden in ["sites", "alerting"] {
        assert!(r.body.get(hidden).is_none(), "{hidden} leaked to a patient: {}", r.text);
    }
    let other_trial = json!({"role": "patient", "patient_id": "P0001", "trial_ids": "tw-other"});
    assert_eq!(w.call("GET", "/v1/trials/tw-demo", Some(other_trial), None).await.status, 403);
}

#[tokio::test]
async fn the_webhook_secret_never_leaves_through_any_route() {
    // GIVEN a trial written with a secret (the fixture's), and traffic on every route.
    // `World::send` asserts on every response that the secret is absent.
    let w = world();
    let def = serde_json::to_value(trial_definition()).unwrap();
    w.call("PUT", "/v1/trials/tw-demo", Some(admin()), Some(def.clone())).await;
    w.call("PUT", "/v1/trials/tw-2", Some(admin()), Some(def)).await;
    w.call("GET", "/v1/trials/tw-demo", Some(admin()), None).await;
    w.call("PUT", P1, Some(admin()), Some(json!({"siteId": "site-leeds", "status": "enrolled"}))).await;
    w.call("GET", P1, Some(admin()), None).await;
    // (staff: admins may not record answers; a breathlessness of 9 queues a PRO alert)
    assert_eq!(w.call("POST", SUBS, Some(staff("site-leeds")), Some(submission(&new_id(), 9))).await.status, 201);
    w.call("GET", SUBS, Some(admin()), None).await;
    w.call("GET", &format!("{P1}/alerts"), Some(admin()), None).await;
    w.call("GET", "/health", None, None).await;
    // AND neither the audit trail nor the queued alerts carry it
    assert!(!serde_json::to_string(&w.store.audit_entries()).unwrap().contains(WEBHOOK_SECRET));
    assert!(!serde_json::to_string(&w.queue.sent_alerts()).unwrap().contains(WEBHOOK_SECRET));
}
