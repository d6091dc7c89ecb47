//! `acknowledge_alert` on the in-memory ports, without HTTP: the
//! acknowledgement and each [`AcknowledgeAlertError`] from the condition that
//! produces it.

use trialwatch::alert::AlertStatus;
use trialwatch::audit::Actor;
use trialwatch::domain_event::Unpublished;

use super::*;
use crate::handler_tests::{alert_record, sid, tid, world, World};

fn command(alert: &str, note: Option<&str>, scope: SiteScope) -> AcknowledgeAlertCommand {
    AcknowledgeAlertCommand {
        trial_id: tid("tw-demo"),
        alert_id: AlertId::parse(alert).unwrap(),
        note: note.map(str::to_owned),
        scope,
        author: Actor { role: "site_staff".into(), subject: Some("u-staff".into()) },
    }
}

fn leeds() -> SiteScope {
    SiteScope::Sites(vec![sid("site-leeds")])
}

async fn run(w: &World, cmd: AcknowledgeAlertCommand) -> Result<AlertRecord, AcknowledgeAlertError> {
    let store = w.store.as_ref();
    acknowledge_alert(store, Announcer { bus: &Unpublished, pending: store }, &w.clock, cmd).await
}

/// GIVEN the world, with a delivered alert of P0001 (site-leeds) and one of P0002 (site-york).
fn with_alerts() -> World {
    let w = world();
    w.store.seed_alert(alert_record("a-leeds", "P0001", "site-leeds", AlertStatus::Delivered));
    w.store.seed_alert(alert_record("a-york", "P0002", "site-york", AlertStatus::Delivered));
    w
}

#[tokio::test]
async fn staff_of_the_alerts_site_acknowledge_it_with_an_audit_entry_and_an_event() {
    let w = with_alerts();
    // WHEN Leeds staff acknowledge the Leeds alert with a note
    let r = run(&w, command("a-leeds", Some("called the patient"), leeds())).await.expect("acknowledged");
    // THEN it is acknowledged by them, audited with the note as reason, and announced
    assert_eq!(r.status, AlertStatus::Acknowledged);
    assert_eq!(r.ack_note.as_deref(), Some("called the patient"));
    let audit = w.store.audit_entries();
    let entry = audit.iter().find(|e| e.action == "alert.acknowledged").expect("an audit entry");
    assert_eq!(entry.reason.as_deref(), Some("called the patient"));
    assert_eq!(w.store.pending_events().len(), 1, "the event waits for the sweep (no bus)");
}

#[tokio::test]
async fn an_alert_of_another_site_is_forbidden_not_hidden_as_not_found() {
    let w = with_alerts();
    let r = run(&w, command("a-york", None, leeds())).await;
    assert_eq!(r.unwrap_err(), AcknowledgeAlertError::Forbidden);
    assert_eq!(w.store.alert_records().iter().filter(|a| a.status == AlertStatus::Acknowledged).count(), 0);
}

#[tokio::test]
async fn an_unknown_alert_is_forbidden_to_staff_and_not_found_to_an_admin() {
    let w = with_alerts();
    assert_eq!(run(&w, command("a-none", None, leeds())).await.unwrap_err(), AcknowledgeAlertError::Forbidden);
    assert_eq!(run(&w, command("a-none", None, SiteScope::All)).await.unwrap_err(), AcknowledgeAlertError::NotFound);
}

#[tokio::test]
async fn a_second_acknowledgement_is_already_acknowledged() {
    let w = with_alerts();
    run(&w, command("a-leeds", None, leeds())).await.expect("first");
    let again = run(&w, command("a-leeds", None, leeds())).await;
    assert_eq!(again.unwrap_err(), AcknowledgeAlertError::AlreadyAcknowledged);
}

#[tokio::test]
async fn a_note_over_the_limit_is_invalid_and_names_the_note() {
    let w = with_alerts();
    let long = "x".repeat(MAX_NOTE_CHARS + 1);
    let Err(AcknowledgeAlertError::Invalid(fields)) = run(&w, command("a-leeds", Some(&long), leeds())).await else {
        panic!("a note of {} characters must be invalid", MAX_NOTE_CHARS + 1)
    };
    assert_eq!(fields[0].field, "note");
}

#[tokio::test]
async fn a_store_that_fails_is_a_storage_error() {
    let w = with_alerts();
    w.store.fail_next("acknowledge", 1);
    let r = run(&w, command("a-leeds", None, leeds())).await;
    assert!(matches!(r, Err(AcknowledgeAlertError::Storage(StorageError::Unavailable(_)))), "{r:?}");
}
