//! `enrol_patient` on the in-memory ports, without HTTP: each outcome and
//! each [`EnrolPatientError`] from the condition that produces it.

use trialwatch::domain_event::Unpublished;

use super::*;
use crate::handler_tests::{pid, sid, tid, world, World};

fn request(site: &str, status: EnrolmentStatus, reason: Option<&str>) -> EnrolmentRequest {
    EnrolmentRequest { site_id: sid(site), status, hypercapnic: false, reason: reason.map(str::to_owned) }
}

fn command(patient: &str, request: EnrolmentRequest, scope: SiteScope) -> EnrolPatientCommand {
    EnrolPatientCommand {
        trial_id: tid("tw-demo"),
        patient_id: pid(patient),
        request,
        scope,
        author: Actor { role: "site_staff".into(), subject: Some("u-staff".into()) },
    }
}

fn leeds() -> SiteScope {
    SiteScope::Sites(vec![sid("site-leeds")])
}

async fn run(w: &World, cmd: EnrolPatientCommand) -> Result<Enrolled, EnrolPatientError> {
    let store = w.store.as_ref();
    enrol_patient(store, store, Announcer { bus: &Unpublished, pending: store }, &w.clock, cmd).await
}

#[tokio::test]
async fn a_new_patient_is_enrolled_audited_and_announced() {
    // GIVEN no P0009 in tw-demo
    let w = world();
    // WHEN Leeds staff enrol P0009 at Leeds
    let r = run(&w, command("P0009", request("site-leeds", EnrolmentStatus::Enrolled, None), leeds())).await.expect("enrolled");
    // THEN it is created, audited as created, and its event is pending
    assert_eq!(r.outcome, Upsert::Created);
    assert_eq!(r.enrolment.status, EnrolmentStatus::Enrolled);
    assert!(w.store.audit_entries().iter().any(|e| e.action == "enrolment.created"));
    assert_eq!(w.store.pending_events().len(), 1);
}

#[tokio::test]
async fn withdrawing_with_a_reason_records_when_and_why() {
    // GIVEN P0001 enrolled at Leeds
    let w = world();
    // WHEN it is withdrawn with a reason
    let cmd = command("P0001", request("site-leeds", EnrolmentStatus::Withdrawn, Some("consent withdrawn")), leeds());
    let r = run(&w, cmd).await.expect("withdrawn");
    // THEN it is an update with withdrawnAt set and the reason in the entry
    assert_eq!(r.outcome, Upsert::Updated);
    assert!(r.enrolment.withdrawn_at.is_some());
    let entry = w.store.audit_entries().into_iter().find(|e| e.action == "enrolment.updated").expect("enrolment.updated");
    assert_eq!(entry.reason.as_deref(), Some("consent withdrawn"));
}

#[tokio::test]
async fn enrolling_at_a_site_outside_the_scope_is_forbidden() {
    let w = world();
    let r = run(&w, command("P0009", request("site-york", EnrolmentStatus::Enrolled, None), leeds())).await;
    assert_eq!(r.unwrap_err(), EnrolPatientError::Forbidden);
}

#[tokio::test]
async fn moving_a_patient_from_a_site_outside_the_scope_is_forbidden() {
    // GIVEN P0002 at York; WHEN Leeds-only staff move them to Leeds
    let w = world();
    let r = run(&w, command("P0002", request("site-leeds", EnrolmentStatus::Enrolled, Some("moved")), leeds())).await;
    // THEN it is refused: a transfer needs staff of both sites
    assert_eq!(r.unwrap_err(), EnrolPatientError::Forbidden);
}

#[tokio::test]
async fn an_unknown_trial_is_trial_not_found() {
    let w = world();
    let mut cmd = command("P0009", request("site-leeds", EnrolmentStatus::Enrolled, None), SiteScope::All);
    cmd.trial_id = tid("tw-none");
    assert_eq!(run(&w, cmd).await.unwrap_err(), EnrolPatientError::TrialNotFound);
}

#[tokio::test]
async fn a_site_the_trial_does_not_have_is_invalid_and_names_site_id() {
    let w = world();
    let r = run(&w, command("P0009", request("site-mars", EnrolmentStatus::Enrolled, None), SiteScope::All)).await;
    assert_eq!(r.unwrap_err(), EnrolPatientError::Invalid(FieldErrors::one("siteId", "names no site of this trial")));
}

#[tokio::test]
async fn a_withdrawal_without_a_reason_is_invalid_and_names_reason() {
    let w = world();
    let Err(EnrolPatientError::Invalid(errors)) =
        run(&w, command("P0001", request("site-leeds", EnrolmentStatus::Withdrawn, None), leeds())).await
    else {
        panic!("a withdrawal without a reason must be invalid")
    };
    assert_eq!(errors[0].field, "reason");
}

#[tokio::test]
async fn a_store_that_fails_is_a_storage_error() {
    let w = world();
    w.store.fail_next("put_enrolment", 1);
    let r = run(&w, command("P0009", request("site-leeds", EnrolmentStatus::Enrolled, None), leeds())).await;
    assert!(matches!(r, Err(EnrolPatientError::Storage(StorageError::Unavailable(_)))), "{r:?}");
}
