//! Trial definitions and enrolment: who may write, what is validated, what is audited.

use serde_json::json;
use trialwatch::ports::EnrolmentStore;

use super::*;

fn definition_json() -> Value {
    serde_json::to_value(trial_definition()).unwrap()
}

#[tokio::test]
async fn an_admin_creates_then_updates_a_trial_and_both_are_audited() {
    let w = world();
    let r = w.call("PUT", "/v1/trials/tw-new", Some(admin()), Some(definition_json())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["trialId"], "tw-new");
    assert_eq!(r.body["alerting"]["webhook"], json!({"url": "https://alerts.site-leeds.example/trialwatch", "secretSet": true}));
    let mut changed = definition_json();
    changed["name"] = json!("Renamed");
    let r = w.call("PUT", "/v1/trials/tw-new", Some(admin()), Some(changed)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "Renamed");
    let actions: Vec<String> = w.store.audit_entries().into_iter().map(|a| a.action).collect();
    assert_eq!(actions, ["trial.created", "trial.updated"]);
}

#[tokio::test]
async fn an_update_is_seen_at_once_by_the_writing_environment() {
    // GIVEN the trial is in this environment's config cache
    let w = world();
    assert_eq!(w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 1))).await.status, 201);
    // WHEN an admin removes the questionnaire's version 1 through this environment
    let mut def = definition_json();
    def["questionnaires"][0]["version"] = json!("2");
    def["alerting"]["proRules"] = json!([]);
    assert_eq!(w.call("PUT", "/v1/trials/tw-demo", Some(admin()), Some(def)).await.status, 200);
    // THEN the next submission is validated against the new definition
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(submission(&new_id(), 1))).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "questionnaireVersion");
}

#[tokio::test]
async fn only_admins_write_trials() {
    let w = world();
    for claims in [patient("P0001"), staff("site-leeds"), sponsor()] {
        assert_eq!(w.call("PUT", "/v1/trials/tw-demo", Some(claims), Some(definition_json())).await.status, 403);
    }
}

#[tokio::test]
async fn an_invalid_trial_is_422_with_every_field_and_unknown_fields_are_named() {
    let w = world();
    let mut def = definition_json();
    def["name"] = json!("");
    def["timezone"] = json!("Mars/Olympus");
    let r = w.call("PUT", "/v1/trials/tw-x", Some(admin()), Some(def)).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 2);
    let mut def = definition_json();
    def["alerting"]["webhook"]["headers"] = json!({});
    let r = w.call("PUT", "/v1/trials/tw-x", Some(admin()), Some(def)).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "alerting.webhook.headers");
}

#[tokio::test]
async fn a_webhook_in_clear_text_or_to_an_internal_host_is_422_naming_the_field_and_nothing_is_written() {
    for url in [
        "http://169.254.169.254/",
        "http://alerts.site-leeds.example/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://localhost/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://10.0.0.7/hook",
        "https://100.64.1.1/hook",
        "https://0.0.0.0/hook",
        "https://intranet/hook",
    ] {
        // GIVEN an admin and a trial whose webhook points at `url`
        let w = world();
        let mut def = definition_json();
        def["alerting"]["webhook"]["url"] = json!(url);
        // WHEN it is written
        let r = w.call("PUT", "/v1/trials/tw-x", Some(admin()), Some(def)).await;
        // THEN 422 names the field, before any read or write
        assert_eq!(r.status, 422, "{url}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], "alerting.webhook.url", "{url}");
        assert_eq!(w.store.requests.total(), 0, "{url}");
    }
}

#[tokio::test]
async fn only_the_local_stack_accepts_an_http_loopback_webhook() {
    let mut def = definition_json();
    def["alerting"]["webhook"]["url"] = json!("http://127.0.0.1:8123/hook");
    // GIVEN the deployed rules: refused
    let r = world().call("PUT", "/v1/trials/tw-x", Some(admin()), Some(def.clone())).await;
    assert_eq!((r.status, &r.body["errors"][0]["field"]), (422, &json!("alerting.webhook.url")));
    // GIVEN the local stack's rules: accepted
    let mut w = world();
    w.deps = w.deps.with_egress(trialwatch::egress::EgressPolicy::LOCAL);
    assert_eq!(w.call("PUT", "/v1/trials/tw-x", Some(admin()), Some(def)).await.status, 201);
}

#[tokio::test]
async fn a_trial_bound_dynamodb_cannot_store_is_422_naming_it() {
    // GIVEN an item range up to 1e130: DynamoDB refuses the number, so the PUT would be a 500
    let w = world();
    let mut def = definition_json();
    def["questionnaires"][0]["items"][2]["max"] = json!(1e130);
    let r = w.call("PUT", "/v1/trials/tw-x", Some(admin()), Some(def)).await;
    // THEN 422 naming the bound
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["errors"][0]["field"], "questionnaires[0].items[2].max");
}

#[tokio::test]
async fn an_array_in_place_of_an_object_is_422_naming_it_and_nothing_is_written() {
    // Found by `make schemathesis`: serde reads a struct from an array, field by
    // field, so `"alerting": [null, null]` was stored (201) as the default alerting.
    let w = world();
    for (field, value, named) in [
        ("alerting", json!([null, null]), "alerting"),
        ("sites", json!([["site-leeds", "Leeds"]]), "sites[0]"),
        ("questionnaires", json!([["kccq", "1", []]]), "questionnaires[0]"),
    ] {
        // GIVEN a valid definition with one object written as an array
        let mut def = definition_json();
        def[field] = value;
        // WHEN an admin PUTs it
        let r = w.call("PUT", "/v1/trials/tw-x", Some(admin()), Some(def)).await;
        // THEN it is 422 naming the field, and no trial exists
        assert_eq!(r.status, 422, "{field}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], named);
        assert_eq!(w.call("GET", "/v1/trials/tw-x", Some(admin()), None).await.status, 404);
    }
    // AND a whole body in serde's positional form is 422 too
    let r = w.call("PUT", "/v1/trials/tw-x", Some(admin()), Some(json!(["t", [{"id": "s", "name": "S"}]]))).await;
    assert_eq!((r.status, r.body["errors"][0]["field"].as_str()), (422, Some("body")));
}

#[tokio::test]
async fn a_fhir_content_type_is_415_on_a_trial() {
    let w = world();
    assert_eq!(w.call_fhir("PUT", "/v1/trials/tw-x", Some(admin()), definition_json()).await.status, 415);
}

#[tokio::test]
async fn a_withdrawal_records_its_time_which_later_writes_keep_until_re_enrolment() {
    // GIVEN P0001 enrolled; WHEN staff withdraw it
    let w = world();
    let path = "/v1/trials/tw-demo/patients/P0001";
    let withdraw = json!({"siteId": "site-leeds", "status": "withdrawn", "reason": "consent withdrawn"});
    let r = w.call("PUT", path, Some(staff("site-leeds")), Some(withdraw.clone())).await;
    // THEN the response, the stored enrolment and the audit entry carry the withdrawal time
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["withdrawnAt"], "2026-11-26T20:00:00.000Z");
    let stored = w.store.get_enrolment(&tid("tw-demo"), &pid("P0001")).await.unwrap().unwrap();
    assert_eq!(stored.withdrawn_at.as_deref(), Some("2026-11-26T20:00:00.000Z"));
    assert_eq!(w.store.audit_entries()[0].details.get("withdrawnAt"), Some(&json!("2026-11-26T20:00:00.000Z")));
    // WHEN it is written withdrawn again an hour later THEN the first time stands
    w.clock.advance(chrono::Duration::hours(1));
    let r = w.call("PUT", path, Some(staff("site-leeds")), Some(withdraw)).await;
    assert_eq!(r.body["withdrawnAt"], "2026-11-26T20:00:00.000Z");
    let stored = w.store.get_enrolment(&tid("tw-demo"), &pid("P0001")).await.unwrap().unwrap();
    assert_eq!(stored.withdrawn_at.as_deref(), Some("2026-11-26T20:00:00.000Z"));
    // WHEN the patient is re-enrolled THEN no withdrawal time remains
    let re_enrol = json!({"siteId": "site-leeds", "status": "enrolled", "reason": "consent given again"});
    let r = w.call("PUT", path, Some(staff("site-leeds")), Some(re_enrol)).await;
    assert!(r.body.get("withdrawnAt").is_none(), "{}", r.text);
    assert_eq!(w.store.get_enrolment(&tid("tw-demo"), &pid("P0001")).await.unwrap().unwrap().withdrawn_at, None);
}

#[tokio::test]
async fn staff_enrol_at_their_site_201_then_200_and_it_is_audited() {
    let w = world();
    let path = "/v1/trials/tw-demo/patients/P0100";
    let body = json!({"siteId": "site-leeds", "status": "enrolled", "hypercapnic": true});
    let r = w.call("PUT", path, Some(staff("site-leeds")), Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["hypercapnic"], true);
    assert_eq!(r.body["enrolledAt"], "2026-11-26T20:00:00.000Z");
    let withdraw = json!({"siteId": "site-leeds", "status": "withdrawn", "reason": "lost to follow-up"});
    let r = w.call("PUT", path, Some(staff("site-leeds")), Some(withdraw)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "withdrawn");
    let audit = w.store.audit_entries();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["enrolment.created", "enrolment.updated"]);
    assert_eq!(audit[1].details.get("previousStatus"), Some(&json!("enrolled")));
    assert_eq!(audit[1].entity, "patient/P0100");
}

#[tokio::test]
async fn a_site_outside_the_trial_is_422_and_outside_the_token_is_403() {
    let w = world();
    let path = "/v1/trials/tw-demo/patients/P0100";
    let r = w.call("PUT", path, Some(admin()), Some(json!({"siteId": "site-hull", "status": "enrolled"}))).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "siteId");
    let r = w.call("PUT", path, Some(staff("site-leeds")), Some(json!({"siteId": "site-york", "status": "enrolled"}))).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn moving_a_patient_between_sites_needs_staff_of_both() {
    let w = world();
    let path = "/v1/trials/tw-demo/patients/P0002"; // at site-york
    let body = json!({"siteId": "site-leeds", "status": "enrolled", "reason": "patient moved"});
    assert_eq!(w.call("PUT", path, Some(staff("site-leeds")), Some(body.clone())).await.status, 403);
    let r = w.call("PUT", path, Some(staff("site-leeds,site-york")), Some(body)).await;
    assert_eq!(r.status, 200);
    let e = w.store.get_enrolment(&tid("tw-demo"), &pid("P0002")).await.unwrap().unwrap();
    assert_eq!(e.site_id, sid("site-leeds"));
}

#[tokio::test]
async fn an_enrolment_body_carrying_a_name_is_refused() {
    let w = world();
    let r = w
        .call(
            "PUT",
            "/v1/trials/tw-demo/patients/P0100",
            Some(admin()),
            Some(json!({"siteId": "site-leeds", "status": "enrolled", "name": "Jane"})),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "name");
}

#[tokio::test]
async fn a_patient_enrolled_elsewhere_moments_ago_can_submit_at_once() {
    // GIVEN this environment cached "no enrolment" for P0100
    let w = world();
    let path = "/v1/trials/tw-demo/patients/P0100/submissions";
    assert_eq!(w.call("POST", path, Some(patient("P0100")), Some(submission(&new_id(), 1))).await.status, 409);
    // WHEN another environment enrols them (straight into the store)
    w.store.seed_enrolment(enrolment("P0100", "site-york", EnrolmentStatus::Enrolled));
    // THEN their next submission succeeds: a negative cached answer is never trusted
    assert_eq!(w.call("POST", path, Some(patient("P0100")), Some(submission(&new_id(), 1))).await.status, 201);
}

#[tokio::test]
async fn acknowledging_an_alert_is_200_once_then_409_and_audited() {
    let w = world();
    w.store.seed_alert(alert_record("al-1", "P0001", "site-leeds", AlertStatus::Delivered));
    let path = "/v1/trials/tw-demo/alerts/al-1/ack";
    let r = w.call("POST", path, Some(staff("site-leeds")), Some(json!({"note": "Called the patient"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["status"], "acknowledged");
    assert_eq!(r.body["ackNote"], "Called the patient");
    let r = w.call("POST", path, Some(staff("site-leeds")), None).await;
    assert_eq!(r.status, 409);
    let audit = w.store.audit_entries();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "alert.acknowledged");
    assert_eq!(audit[0].actor.subject.as_deref(), Some("u-staff"));
}

fn vitals_state(patient: &str, last_alert: Option<&str>) -> trialwatch::vitals_state::VitalsState {
    let mut s = trialwatch::vitals_state::VitalsState::new(tid("tw-demo"), pid(patient));
    s.version = 1;
    s.last_alert_level = Some(RiskLevel::Medium);
    s.escalation_seq = 1;
    s.last_alert_id = last_alert.map(|a| AlertId::parse(a).unwrap());
    s
}

#[tokio::test]
async fn acknowledging_a_patients_last_news2_alert_marks_its_vitals_state_in_the_same_write() {
    use trialwatch::ports::VitalsStore;
    // GIVEN al-1 is P0001's last NEWS2 alert, recorded in its vitals state
    let w = world();
    w.store.seed_alert(alert_record("al-1", "P0001", "site-leeds", AlertStatus::Delivered));
    w.store.put_state(None, &vitals_state("P0001", Some("al-1")), &[], &[]).await.unwrap();
    w.store.requests.reset();
    // WHEN staff acknowledge it
    let r = w.call("POST", "/v1/trials/tw-demo/alerts/al-1/ack", Some(staff("site-leeds")), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // THEN the state carries the acknowledgement time under a new version, for the analyzer to clear on
    let state = w.store.get_state(&tid("tw-demo"), &pid("P0001")).await.unwrap().unwrap();
    assert_eq!((state.last_alert_acked_at, state.version), (Some(NOW.parse().unwrap()), 2));
    // AND the mark rode in the acknowledgement's one transaction
    assert_eq!(w.store.requests.get("dynamodb.TransactWriteItems"), 1);
}

#[tokio::test]
async fn acknowledging_an_alert_a_newer_one_replaced_leaves_the_vitals_state_alone() {
    use trialwatch::ports::VitalsStore;
    // GIVEN P0001's state records a newer alert than al-1
    let w = world();
    w.store.seed_alert(alert_record("al-1", "P0001", "site-leeds", AlertStatus::Delivered));
    w.store.put_state(None, &vitals_state("P0001", Some("al-2")), &[], &[]).await.unwrap();
    // WHEN al-1 is acknowledged THEN it is recorded, and the state is unchanged
    assert_eq!(w.call("POST", "/v1/trials/tw-demo/alerts/al-1/ack", Some(staff("site-leeds")), None).await.status, 200);
    let state = w.store.get_state(&tid("tw-demo"), &pid("P0001")).await.unwrap().unwrap();
    assert_eq!((state.last_alert_acked_at, state.version), (None, 1));
}

#[tokio::test]
async fn an_alert_of_another_site_and_a_missing_alert_are_the_same_403_for_staff() {
    let w = world();
    w.store.seed_alert(alert_record("al-york", "P0002", "site-york", AlertStatus::Delivered));
    let other = w.call("POST", "/v1/trials/tw-demo/alerts/al-york/ack", Some(staff("site-leeds")), None).await;
    let missing = w.call("POST", "/v1/trials/tw-demo/alerts/al-none/ack", Some(staff("site-leeds")), None).await;
    assert_eq!((other.status, missing.status), (403, 403));
    assert_eq!(other.body, missing.body);
    // AND an admin is told the truth
    assert_eq!(w.call("POST", "/v1/trials/tw-demo/alerts/al-none/ack", Some(admin()), None).await.status, 404);
    assert_eq!(w.call("POST", "/v1/trials/tw-demo/alerts/al-york/ack", Some(admin()), None).await.status, 200);
}

#[tokio::test]
async fn patients_and_sponsors_cannot_acknowledge() {
    let w = world();
    w.store.seed_alert(alert_record("al-1", "P0001", "site-leeds", AlertStatus::Delivered));
    for claims in [patient("P0001"), sponsor()] {
        assert_eq!(w.call("POST", "/v1/trials/tw-demo/alerts/al-1/ack", Some(claims), None).await.status, 403);
    }
}

#[tokio::test]
async fn an_over_long_note_is_422() {
    let w = world();
    w.store.seed_alert(alert_record("al-1", "P0001", "site-leeds", AlertStatus::Delivered));
    let r = w.call("POST", "/v1/trials/tw-demo/alerts/al-1/ack", Some(admin()), Some(json!({"note": "n".repeat(1001)}))).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "note");
}

#[tokio::test]
async fn a_trial_update_is_audited_old_to_new_with_the_webhook_secret_only_as_changed() {
    // GIVEN trial tw-demo with its webhook secret
    let w = world();
    // WHEN an admin renames it and rotates the secret
    let mut def = definition_json();
    def["name"] = json!("Renamed");
    def["alerting"]["webhook"]["secret"] = json!("whsec_rotated_9876543210fedcba");
    assert_eq!(w.call("PUT", "/v1/trials/tw-demo", Some(admin()), Some(def)).await.status, 200);
    // THEN the entry names the admin's sub and role, and each changed field old -> new
    let entry = w.store.audit_entries().pop().expect("an entry");
    assert_eq!(entry.actor, trialwatch::audit::Actor { role: "admin".into(), subject: Some("u-admin".into()) });
    let old_name = trial_definition().name;
    assert_eq!(entry.changes["name"], trialwatch::audit::Change::Values { old: json!(old_name), new: json!("Renamed") });
    // AND the secret only as "changed": neither value is anywhere in the entry
    assert_eq!(entry.changes["alerting.webhook.secret"], trialwatch::audit::Change::Redacted("changed".into()));
    let text = serde_json::to_string(&entry).unwrap();
    assert!(!text.contains(WEBHOOK_SECRET) && !text.contains("whsec_rotated"), "{text}");
    // AND nothing else is listed as changed
    assert_eq!(entry.changes.len(), 2, "{:?}", entry.changes);
}

#[tokio::test]
async fn a_withdrawal_or_a_change_to_an_enrolment_without_a_reason_is_422_and_changes_nothing() {
    let w = world();
    let path = "/v1/trials/tw-demo/patients/P0001"; // enrolled at site-leeds
    for body in [
        json!({"siteId": "site-leeds", "status": "withdrawn"}),
        json!({"siteId": "site-leeds", "status": "withdrawn", "reason": "  "}),
        json!({"siteId": "site-leeds", "status": "enrolled", "hypercapnic": true}),
    ] {
        // WHEN staff send it without a reason
        let r = w.call("PUT", path, Some(staff("site-leeds")), Some(body.clone())).await;
        // THEN 422 naming `reason`, and nothing was written or audited
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], "reason");
    }
    assert!(w.store.audit_entries().is_empty());
    // WHEN the withdrawal says why THEN it is recorded, old -> new, with the reason
    let body = json!({"siteId": "site-leeds", "status": "withdrawn", "reason": "consent withdrawn"});
    assert_eq!(w.call("PUT", path, Some(staff("site-leeds")), Some(body)).await.status, 200);
    let entry = w.store.audit_entries().pop().expect("an entry");
    assert_eq!(entry.reason.as_deref(), Some("consent withdrawn"));
    assert_eq!(entry.changes["status"], trialwatch::audit::Change::Values { old: json!("enrolled"), new: json!("withdrawn") });
    assert_eq!(entry.actor.subject.as_deref(), Some("u-staff"));
    // AND a write that changes nothing needs no reason
    let same = json!({"siteId": "site-leeds", "status": "withdrawn"});
    assert_eq!(w.call("PUT", path, Some(staff("site-leeds")), Some(same)).await.status, 200);
    // AND a first enrolment needs none either
    let new = json!({"siteId": "site-leeds", "status": "enrolled"});
    assert_eq!(w.call("PUT", "/v1/trials/tw-demo/patients/P0200", Some(staff("site-leeds")), Some(new)).await.status, 201);
}

#[tokio::test]
async fn every_audited_write_without_a_sub_is_401_and_reads_still_work() {
    let w = world();
    let no_sub = |claims: Value| {
        let mut c = claims;
        c.as_object_mut().unwrap().remove("sub");
        c
    };
    let cases = [
        ("PUT", "/v1/trials/tw-demo", no_sub(admin()), Some(definition_json())),
        (
            "PUT",
            "/v1/trials/tw-demo/patients/P0001",
            no_sub(staff("site-leeds")),
            Some(json!({"siteId": "site-leeds", "status": "enrolled"})),
        ),
        ("POST", SUBS, no_sub(patient("P0001")), Some(submission(&new_id(), 1))),
        ("POST", "/v1/trials/tw-demo/alerts/tw-demo.P0001.x/ack", no_sub(staff("site-leeds")), None),
    ];
    for (method, path, claims, body) in cases {
        // WHEN a token without `sub` writes THEN 401, and nothing is recorded
        let r = w.call(method, path, Some(claims), body).await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text);
    }
    assert!(w.store.audit_entries().is_empty());
    // AND the same token may still read
    assert_eq!(w.call("GET", "/v1/trials/tw-demo", Some(no_sub(admin())), None).await.status, 200);
}

#[tokio::test]
async fn an_enrolment_costs_one_read_and_one_transaction() {
    // GIVEN the trial is cached (a first enrolment read it)
    let w = world();
    let path = "/v1/trials/tw-demo/patients/P0100";
    assert_eq!(w.call("PUT", path, Some(admin()), Some(json!({"siteId": "site-leeds", "status": "enrolled"}))).await.status, 201);
    w.store.requests.reset();
    // WHEN another patient is enrolled
    let r = w
        .call("PUT", "/v1/trials/tw-demo/patients/P0101", Some(admin()), Some(json!({"siteId": "site-leeds", "status": "enrolled"})))
        .await;
    // THEN it is one GetItem (the handler's) and one TransactWriteItems: the write
    // starts from the handler's read instead of reading the item a second time
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!((w.store.requests.get("dynamodb.GetItem"), w.store.requests.get("dynamodb.TransactWriteItems")), (1, 1));
}
