//! The authorization matrix: role x own/other patient x own/other site x
//! trial in/out of the token (sites as (trial, site) pairs, admins platform-wide
//! or scoped by `trial_ids`), over every patient route. A 403 is identical
//! whether or not the patient exists.

use serde_json::json;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    ReadPatient,
    ListSubmissions,
    Submit,
    PostVitals,
    ListAlerts,
}

impl Op {
    const ALL: [Op; 5] = [Op::ReadPatient, Op::ListSubmissions, Op::Submit, Op::PostVitals, Op::ListAlerts];

    fn success(self) -> u16 {
        match self {
            Op::Submit => 201,
            Op::PostVitals => 202,
            _ => 200,
        }
    }

    async fn run(self, w: &World, claims: &Value, patient: &str) -> Reply {
        let base = format!("/v1/trials/tw-demo/patients/{patient}");
        let c = Some(claims.clone());
        match self {
            Op::ReadPatient => w.call("GET", &base, c, None).await,
            Op::ListSubmissions => w.call("GET", &format!("{base}/submissions"), c, None).await,
            Op::Submit => w.call("POST", &format!("{base}/submissions"), c, Some(submission(&new_id(), 1))).await,
            Op::PostVitals => {
                let body = json!({"readings": [{"code": "heart_rate", "value": 80, "observedAt": "2026-11-26T19:00:00Z"}]});
                w.call("POST", &format!("{base}/vitals"), c, Some(body)).await
            }
            Op::ListAlerts => w.call("GET", &format!("{base}/alerts"), c, None).await,
        }
    }
}

/// Expected outcome: allowed (the op's success status) or forbidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed,
    Forbidden,
}

struct Case {
    who: &'static str,
    claims: Value,
    patient: &'static str,
    /// Outcome for reading patient data; alerts are staff/admin only, see `alerts`.
    data: Expect,
    /// Outcome for recording answers or vitals: the patient or site staff, never an admin.
    record: Expect,
    alerts: Expect,
}

fn cases() -> Vec<Case> {
    use Expect::*;
    let in_trial_patient = |p: &str| json!({"sub": "u-1", "role": "patient", "patient_id": p, "trial_ids": "tw-demo"});
    let out_of_trial_patient = json!({"sub": "u-1", "role": "patient", "patient_id": "P0001", "trial_ids": "tw-other"});
    let leeds = json!({"role": "site_staff", "site_ids": "site-leeds", "trial_ids": "tw-demo", "sub": "s1"});
    let leeds_other_trial = json!({"sub": "u-1", "role": "site_staff", "site_ids": "site-leeds", "trial_ids": "tw-other"});
    let both_sites = json!({"sub": "u-1", "role": "site_staff", "site_ids": "[tw-demo/site-leeds tw-demo/site-york]", "trial_ids": "[tw-demo tw-other]"});
    // Leeds in tw-demo and York in tw-other: never York in tw-demo (scope is pairs, not a cross product)
    let crossed =
        json!({"sub": "u-1", "role": "site_staff", "site_ids": "tw-demo/site-leeds,tw-other/site-york", "trial_ids": "tw-demo,tw-other"});
    // bare site ids with two trials: which trial they meant is unknown, so they grant nothing
    let bare_two_trials = json!({"sub": "u-1", "role": "site_staff", "site_ids": "site-leeds,site-york", "trial_ids": "tw-demo,tw-other"});
    let sponsor_in = json!({"sub": "u-1", "role": "sponsor", "trial_ids": "tw-demo"});
    let admin = json!({"sub": "u-1", "role": "admin"});
    let auditor_in = json!({"sub": "u-1", "role": "auditor", "trial_ids": "tw-demo"});
    let admin_of_this = json!({"sub": "u-1", "role": "admin", "trial_ids": "tw-other,tw-demo"});
    let admin_of_other = json!({"sub": "u-1", "role": "admin", "trial_ids": "tw-other"});
    let c = |who, claims: &Value, patient, data, alerts| Case { who, claims: claims.clone(), patient, data, record: data, alerts };
    vec![
        // patient: own record, in trial
        c("patient own, trial in", &in_trial_patient("P0001"), "P0001", Allowed, Forbidden),
        // patient: other patient (existing, other site; existing, same site; absent)
        c("patient other (other site)", &in_trial_patient("P0001"), "P0002", Forbidden, Forbidden),
        c("patient other (same site)", &in_trial_patient("P0001"), "P0004", Forbidden, Forbidden),
        c("patient other (absent)", &in_trial_patient("P0001"), "P9999", Forbidden, Forbidden),
        // patient: own record but the trial is not in the token
        c("patient own, trial out", &out_of_trial_patient, "P0001", Forbidden, Forbidden),
        // site staff: own site, other site, absent patient, trial out
        c("staff own site", &leeds, "P0001", Allowed, Allowed),
        c("staff own site, other patient", &leeds, "P0004", Allowed, Allowed),
        c("staff other site", &leeds, "P0002", Forbidden, Forbidden),
        c("staff absent patient", &leeds, "P9999", Forbidden, Forbidden),
        c("staff own site, trial out", &leeds_other_trial, "P0001", Forbidden, Forbidden),
        c("staff of both sites", &both_sites, "P0002", Allowed, Allowed),
        c("staff of (demo, leeds) and (other, york): leeds", &crossed, "P0001", Allowed, Allowed),
        c("staff of (demo, leeds) and (other, york): york of demo", &crossed, "P0002", Forbidden, Forbidden),
        c("staff with bare sites and two trials", &bare_two_trials, "P0001", Forbidden, Forbidden),
        // sponsors never read rows
        c("sponsor in trial", &sponsor_in, "P0001", Forbidden, Forbidden),
        // auditors read the audit trail only (handler_tests::audit), and write nothing
        c("auditor in trial", &auditor_in, "P0001", Forbidden, Forbidden),
        // admin: reads everything (an absent patient: see the next test), records nothing
        Case { record: Forbidden, ..c("admin", &admin, "P0002", Allowed, Allowed) },
        // scoped admins: as an admin inside their trial_ids, nothing outside
        Case { record: Forbidden, ..c("admin scoped to this trial", &admin_of_this, "P0002", Allowed, Allowed) },
        c("admin scoped to another trial", &admin_of_other, "P0002", Forbidden, Forbidden),
    ]
}

#[tokio::test]
async fn the_authorization_matrix_holds_on_every_patient_route() {
    for case in cases() {
        for op in Op::ALL {
            // GIVEN a fresh world with P0004 also enrolled at site-leeds
            let w = world();
            w.store.seed_enrolment(enrolment("P0004", "site-leeds", EnrolmentStatus::Enrolled));
            // WHEN the caller runs the op
            let r = op.run(&w, &case.claims, case.patient).await;
            // THEN the outcome is the matrix's
            let expect = match op {
                Op::ListAlerts => case.alerts,
                Op::Submit | Op::PostVitals => case.record,
                Op::ReadPatient | Op::ListSubmissions => case.data,
            };
            let want = match expect {
                Expect::Allowed => op.success(),
                Expect::Forbidden => 403,
            };
            assert_eq!(r.status, want, "{} / {op:?}: {}", case.who, r.text);
        }
    }
}

#[tokio::test]
async fn a_403_is_identical_for_an_absent_patient_and_one_at_another_site() {
    let w = world();
    for op in Op::ALL {
        let claims = json!({"sub": "u-1", "role": "site_staff", "site_ids": "site-leeds", "trial_ids": "tw-demo"});
        let elsewhere = op.run(&w, &claims, "P0002").await;
        let absent = op.run(&w, &claims, "P9999").await;
        assert_eq!((elsewhere.status, absent.status), (403, 403), "{op:?}");
        assert_eq!(elsewhere.text, absent.text, "{op:?}");
    }
}

#[tokio::test]
async fn an_admin_asking_for_an_absent_patient_gets_404_and_may_not_record_for_it() {
    let w = world();
    let admin = json!({"sub": "u-1", "role": "admin"});
    for op in Op::ALL {
        let r = op.run(&w, &admin, "P9999").await;
        let want = match op {
            Op::Submit | Op::PostVitals => 403,
            _ => 404,
        };
        assert_eq!(r.status, want, "{op:?}: {}", r.text);
    }
}

#[tokio::test]
async fn an_admin_may_not_record_answers_or_vitals_and_nothing_is_stored() {
    // GIVEN an admin token and an enrolled patient
    let w = world();
    let r = w.call("POST", SUBS, Some(admin()), Some(submission(&new_id(), 9))).await;
    // THEN posting answers is 403, before any read or write
    assert_eq!(r.status, 403, "{}", r.text);
    let body = json!({"readings": [{"code": "heart_rate", "value": 80, "observedAt": "2026-11-26T19:00:00Z"}]});
    let v = w.call("POST", "/v1/trials/tw-demo/patients/P0001/vitals", Some(admin()), Some(body)).await;
    assert_eq!(v.status, 403, "{}", v.text);
    assert_eq!(w.store.requests.total(), 0, "refused from the token alone");
    assert!(w.queue.sent_alerts().is_empty() && w.queue.sent_vitals().is_empty());
}

#[tokio::test]
async fn scope_is_checked_before_any_read() {
    // GIVEN a store that would fail any read
    let w = world();
    w.store.fail_next("get_enrolment", 100);
    // WHEN a patient asks for another patient's record
    let r = w.call("GET", "/v1/trials/tw-demo/patients/P0002", Some(patient("P0001")), None).await;
    // THEN the answer is 403 without touching the store (no 503)
    assert_eq!(r.status, 403);
    assert_eq!(w.store.requests.total(), 0);
}

#[tokio::test]
async fn a_scoped_admin_configures_and_reads_only_the_trials_it_names() {
    let w = world();
    let scoped = json!({"sub": "u-admin", "role": "admin", "trial_ids": "tw-demo"});
    let body = serde_json::to_value(trial_definition()).unwrap();
    // GIVEN an admin whose token names tw-demo only
    // WHEN it updates tw-demo: allowed
    assert_eq!(w.call("PUT", "/v1/trials/tw-demo", Some(scoped.clone()), Some(body.clone())).await.status, 200);
    assert_eq!(w.call("GET", "/v1/trials/tw-demo", Some(scoped.clone()), None).await.status, 200);
    // WHEN it creates a trial outside its list: 403, and nothing is written
    let r = w.call("PUT", "/v1/trials/tw-new", Some(scoped.clone()), Some(body.clone())).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(w.call("GET", "/v1/trials/tw-new", Some(admin()), None).await.status, 404);
    // AND it may not enrol, or acknowledge alerts, in another trial
    let enrol = json!({"siteId": "site-leeds", "status": "enrolled"});
    assert_eq!(w.call("PUT", "/v1/trials/tw-other/patients/P0001", Some(scoped.clone()), Some(enrol)).await.status, 403);
    assert_eq!(w.call("POST", "/v1/trials/tw-other/alerts/al-1/ack", Some(scoped), None).await.status, 403);
    // WHILE a platform admin (no trial_ids) may create it
    assert_eq!(w.call("PUT", "/v1/trials/tw-new", Some(admin()), Some(body)).await.status, 201);
}
