//! `GET /v1/trials/{trialId}/audit`: who may read the trail, what it returns,
//! and how bad parameters are named.

use serde_json::json;

use super::*;

const AUDIT: &str = "/v1/trials/tw-demo/audit";

fn auditor(trials: &str) -> Value {
    json!({"sub": "qa-1", "role": "auditor", "trial_ids": trials})
}

/// GIVEN the world, plus three audited writes at three instants: P0001's
/// enrolment changed by an admin, then two submissions by P0001.
async fn with_history() -> World {
    let w = world();
    let put = json!({"siteId": "site-leeds", "status": "enrolled", "hypercapnic": true, "reason": "CO2 retainer per chart"});
    assert_eq!(w.call("PUT", "/v1/trials/tw-demo/patients/P0001", Some(admin()), Some(put)).await.status, 200);
    for _ in 0..2 {
        w.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 1))).await.status, 201);
    }
    w
}

fn actions(r: &Reply) -> Vec<String> {
    r.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn admins_and_the_trials_auditors_read_the_trail_newest_first() {
    let w = with_history().await;
    for who in [admin(), auditor("tw-demo"), auditor("[tw-other tw-demo]")] {
        // WHEN the trail is read
        let r = w.call("GET", AUDIT, Some(who.clone()), None).await;
        // THEN it is every entry, newest first, as a page
        assert_eq!(r.status, 200, "{who}: {}", r.text);
        assert_eq!(actions(&r), ["submission.created", "submission.created", "enrolment.updated"], "{who}");
        assert_eq!(r.body["nextCursor"], Value::Null);
        let first = &r.body["items"][2];
        assert_eq!(first["entity"], "patient/P0001");
        assert_eq!(first["actor"], json!({"role": "admin", "subject": "u-admin"}));
        assert_eq!(first["reason"], "CO2 retainer per chart");
        assert_eq!(first["changes"]["hypercapnic"], json!({"old": false, "new": true}));
    }
}

#[tokio::test]
async fn patients_staff_sponsors_and_auditors_of_other_trials_get_403_before_any_read() {
    let w = with_history().await;
    w.store.requests.reset();
    for who in [patient("P0001"), staff("site-leeds"), sponsor(), auditor("tw-other"), auditor("")] {
        let r = w.call("GET", AUDIT, Some(who.clone()), None).await;
        assert_eq!(r.status, 403, "{who}: {}", r.text);
    }
    assert_eq!(w.store.requests.total(), 0, "refused from the token alone");
}

#[tokio::test]
async fn an_auditor_may_write_nothing_on_any_route_and_nothing_is_written() {
    // GIVEN an auditor of the trial, and an alert to acknowledge
    let w = world();
    w.store.seed_alert(alert_record("al-1", "P0001", "site-leeds", AlertStatus::Delivered));
    let who = auditor("tw-demo");
    let def = serde_json::to_value(trial_definition()).unwrap();
    let readings = json!({"readings": [{"code": "heart_rate", "value": 80, "observedAt": "2026-11-26T19:00:00Z"}]});
    // WHEN it calls every write route
    let writes = [
        ("PUT", "/v1/trials/tw-demo".to_owned(), Some(def)),
        (
            "PUT",
            "/v1/trials/tw-demo/patients/P0001".to_owned(),
            Some(json!({"siteId": "site-leeds", "status": "withdrawn", "reason": "x"})),
        ),
        ("POST", SUBS.to_owned(), Some(submission(&new_id(), 1))),
        ("POST", "/v1/trials/tw-demo/patients/P0001/vitals".to_owned(), Some(readings)),
        ("POST", "/v1/trials/tw-demo/alerts/al-1/ack".to_owned(), None),
    ];
    for (method, path, body) in writes {
        let r = w.call(method, &path, Some(who.clone()), body).await;
        // THEN each is 403
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text);
    }
    // AND nothing was read or written, and no entry was left
    assert_eq!(w.store.requests.total(), 0);
    assert!(w.store.audit_entries().is_empty());
    assert!(w.queue.sent_alerts().is_empty() && w.queue.sent_vitals().is_empty());
    // AND it reads no patient data either: its role is the trail
    let r = w.call("GET", "/v1/trials/tw-demo/patients/P0001", Some(who.clone()), None).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn pages_follow_the_cursor_and_filters_narrow_the_trail() {
    let w = with_history().await;
    // WHEN read one entry at a time
    let mut seen = Vec::new();
    let mut path = format!("{AUDIT}?limit=1");
    loop {
        let r = w.call("GET", &path, Some(auditor("tw-demo")), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        seen.extend(actions(&r));
        match r.body["nextCursor"].as_str() {
            Some(c) => path = format!("{AUDIT}?limit=1&cursor={c}"),
            None => break,
        }
    }
    // THEN the pages together are the trail
    assert_eq!(seen, ["submission.created", "submission.created", "enrolment.updated"]);
    // AND an entity filter keeps exactly that entity's entries
    let r = w.call("GET", &format!("{AUDIT}?entity=patient%2FP0001"), Some(admin()), None).await;
    assert_eq!(actions(&r), ["enrolment.updated"]);
    // AND from is inclusive, to exclusive: the first submission's second only
    let r = w.call("GET", &format!("{AUDIT}?from=2026-11-26T20:00:01Z&to=2026-11-26T20:00:02Z"), Some(admin()), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(actions(&r), ["submission.created"]);
    assert_eq!(r.body["items"][0]["at"], "2026-11-26T20:00:01.000Z");
}

#[tokio::test]
async fn bad_parameters_are_a_422_naming_each_one() {
    let w = with_history().await;
    let fields = |r: &Reply| -> Vec<String> {
        r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
    };
    for (query, named) in [
        ("limit=abc", vec!["limit"]),
        ("limit=0", vec!["limit"]),
        ("limit=201", vec!["limit"]),
        ("cursor=garbage", vec!["cursor"]),
        // a well-formed cursor of another list (a DynamoDB key, base64url JSON)
        ("cursor=eyJwayI6IkFVRElUI3R3LWRlbW8jMyJ9", vec!["cursor"]),
        ("from=yesterday", vec!["from"]),
        ("to=2026-11-26", vec!["to"]),
        ("from=2026-11-26T20:00:00Z&to=2026-11-26T19:00:00Z", vec!["to"]),
        ("entity=patient%23P1", vec!["entity"]),
        ("limit=abc&cursor=garbage&entity=&from=x&to=y", vec!["limit", "cursor", "entity", "from", "to"]),
    ] {
        let r = w.call("GET", &format!("{AUDIT}?{query}"), Some(admin()), None).await;
        assert_eq!(r.status, 422, "{query}: {}", r.text);
        assert_eq!(fields(&r), named, "{query}");
    }
}

#[tokio::test]
async fn an_unknown_trial_is_404_for_an_admin_and_403_for_an_auditor_without_it() {
    let w = world();
    assert_eq!(w.call("GET", "/v1/trials/tw-none/audit", Some(admin()), None).await.status, 404);
    assert_eq!(w.call("GET", "/v1/trials/tw-none/audit", Some(auditor("tw-demo")), None).await.status, 403);
}

#[tokio::test]
async fn the_sample_event_is_an_auditors_filtered_read() {
    let w = with_history().await;
    let lambda: lambda_http::request::LambdaRequest = serde_json::from_str(include_str!("../../../../events/epro-get-audit.json")).unwrap();
    let r = w.send(lambda_http::Request::from(lambda)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(actions(&r), ["enrolment.updated"]);
}
