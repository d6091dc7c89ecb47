//! The `list_submissions` use case: a patient's submissions, newest first
//! (by completedAt). Transport-free: the HTTP edge
//! (`crate::submissions::list`) shapes each one and maps the
//! [`ListSubmissionsError`].

use trialwatch::page::{Page, PageRequest};
use trialwatch::ports::{EnrolmentStore, StorageError, SubmissionLedger};
use trialwatch::submission::StoredSubmission;
use trialwatch::{PatientId, TrialId};

use crate::scope::SiteScope;

/// Whose submissions, which page, and the sites the caller reaches.
#[derive(Debug, Clone)]
pub struct ListSubmissionsCommand {
    pub trial_id: TrialId,
    pub patient_id: PatientId,
    pub page: PageRequest,
    pub scope: SiteScope,
}

/// What can stop the list.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ListSubmissionsError {
    /// The patient is at a site outside the caller's scope, or, for a
    /// site-limited caller, not enrolled at all (the same answer).
    #[error("not permitted")]
    Forbidden,
    #[error("patient not found")]
    PatientNotFound,
    /// The store failed, or the cursor is not one it issued.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The patient's enrolment (read fresh) decides the site; then one page.
pub async fn list_submissions(
    enrolments: &impl EnrolmentStore,
    ledger: &impl SubmissionLedger,
    cmd: ListSubmissionsCommand,
) -> Result<Page<StoredSubmission>, ListSubmissionsError> {
    let ListSubmissionsCommand { trial_id, patient_id, page, scope } = cmd;
    let enrolment = enrolments.get_enrolment(&trial_id, &patient_id).await?;
    scope.reach(enrolment, |e| &e.site_id, ListSubmissionsError::Forbidden, ListSubmissionsError::PatientNotFound)?;
    Ok(ledger.list_submissions(&trial_id, &patient_id, &page).await?)
}

#[cfg(test)]
mod tests {
    use trialwatch::domain_event::{Announcer, Unpublished};
    use trialwatch::page::DEFAULT_LIMIT;

    use super::*;
    use crate::handler_tests::{pid, sid, submission, tid, world, World};

    fn command(patient: &str, scope: SiteScope) -> ListSubmissionsCommand {
        ListSubmissionsCommand { trial_id: tid("tw-demo"), patient_id: pid(patient), page: PageRequest::first(DEFAULT_LIMIT), scope }
    }

    fn leeds() -> SiteScope {
        SiteScope::Sites(vec![sid("site-leeds")])
    }

    /// P0001 submits once, through the `submit` use case.
    async fn one_submission(w: &World) {
        let store = w.store.as_ref();
        let cmd = crate::submit::SubmitCommand {
            trial_id: tid("tw-demo"),
            patient_id: pid("P0001"),
            request: serde_json::from_value(submission("5b0c4a52-1111-4c1e-9d7e-0000000000a1", 3)).unwrap(),
            enrolment: store.get_enrolment(&tid("tw-demo"), &pid("P0001")).await.unwrap(),
            author: trialwatch::audit::Actor { role: "patient".into(), subject: Some("u-patient".into()) },
            submitted_by: trialwatch::audit::Actor { role: "patient".into(), subject: Some("P0001".into()) },
            on_behalf: false,
        };
        let events = Announcer { bus: &Unpublished, pending: store };
        crate::submit::submit(store, store, store, w.queue.as_ref(), events, &w.clock, cmd).await.expect("recorded");
    }

    #[tokio::test]
    async fn staff_of_the_patients_site_get_the_patients_submissions() {
        // GIVEN P0001 (Leeds) submitted once
        let w = world();
        one_submission(&w).await;
        // WHEN Leeds staff list P0001's submissions
        let page = list_submissions(w.store.as_ref(), w.store.as_ref(), command("P0001", leeds())).await.expect("a page");
        // THEN they get that submission
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].submission_id.to_string(), "5b0c4a52-1111-4c1e-9d7e-0000000000a1");
    }

    #[tokio::test]
    async fn staff_of_another_site_are_forbidden() {
        let w = world();
        let r = list_submissions(w.store.as_ref(), w.store.as_ref(), command("P0002", leeds())).await;
        assert_eq!(r.unwrap_err(), ListSubmissionsError::Forbidden);
    }

    #[tokio::test]
    async fn an_unknown_patient_is_forbidden_to_staff_and_not_found_to_an_admin() {
        let w = world();
        let staff = list_submissions(w.store.as_ref(), w.store.as_ref(), command("P0404", leeds())).await;
        assert_eq!(staff.unwrap_err(), ListSubmissionsError::Forbidden);
        let admin = list_submissions(w.store.as_ref(), w.store.as_ref(), command("P0404", SiteScope::All)).await;
        assert_eq!(admin.unwrap_err(), ListSubmissionsError::PatientNotFound);
    }

    #[tokio::test]
    async fn a_store_that_fails_is_a_storage_error() {
        let w = world();
        w.store.fail_next("list_submissions", 1);
        let r = list_submissions(w.store.as_ref(), w.store.as_ref(), command("P0001", SiteScope::All)).await;
        assert!(matches!(r, Err(ListSubmissionsError::Storage(StorageError::Unavailable(_)))), "{r:?}");
    }
}
