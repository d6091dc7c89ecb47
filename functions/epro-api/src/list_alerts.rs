//! The `list_alerts` use case: a patient's alerts, newest first, for the
//! staff of the patient's site and admins. Transport-free: the HTTP edge
//! (`crate::alerts::list`) maps the [`ListAlertsError`].

use trialwatch::alert::AlertRecord;
use trialwatch::page::{Page, PageRequest};
use trialwatch::ports::{AlertInbox, EnrolmentStore, StorageError};
use trialwatch::{PatientId, TrialId};

use crate::scope::SiteScope;

/// Whose alerts, which page, and the sites the caller reaches.
#[derive(Debug, Clone)]
pub struct ListAlertsCommand {
    pub trial_id: TrialId,
    pub patient_id: PatientId,
    pub page: PageRequest,
    pub scope: SiteScope,
}

/// What can stop the list.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ListAlertsError {
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

/// The patient's enrolment decides the site; then one page of alerts.
pub async fn list_alerts(
    enrolments: &impl EnrolmentStore,
    inbox: &impl AlertInbox,
    cmd: ListAlertsCommand,
) -> Result<Page<AlertRecord>, ListAlertsError> {
    let ListAlertsCommand { trial_id, patient_id, page, scope } = cmd;
    let enrolment = enrolments.get_enrolment(&trial_id, &patient_id).await?;
    scope.reach(enrolment, |e| &e.site_id, ListAlertsError::Forbidden, ListAlertsError::PatientNotFound)?;
    Ok(inbox.list_alerts(&trial_id, &patient_id, &page).await?)
}

#[cfg(test)]
mod tests {
    use trialwatch::alert::AlertStatus;
    use trialwatch::page::DEFAULT_LIMIT;

    use super::*;
    use crate::handler_tests::{alert_record, pid, sid, tid, world};

    fn command(patient: &str, scope: SiteScope) -> ListAlertsCommand {
        ListAlertsCommand { trial_id: tid("tw-demo"), patient_id: pid(patient), page: PageRequest::first(DEFAULT_LIMIT), scope }
    }

    fn leeds() -> SiteScope {
        SiteScope::Sites(vec![sid("site-leeds")])
    }

    #[tokio::test]
    async fn staff_of_the_patients_site_get_the_patients_alerts() {
        // GIVEN an alert of P0001 (site-leeds) and one of P0002 (site-york)
        let w = world();
        w.store.seed_alert(alert_record("a-1", "P0001", "site-leeds", AlertStatus::Delivered));
        w.store.seed_alert(alert_record("a-2", "P0002", "site-york", AlertStatus::Delivered));
        // WHEN Leeds staff list P0001's alerts
        let page = list_alerts(w.store.as_ref(), w.store.as_ref(), command("P0001", leeds())).await.expect("a page");
        // THEN they get P0001's alert only
        let ids: Vec<String> = page.items.iter().map(|a| a.alert.alert_id.to_string()).collect();
        assert_eq!(ids, ["a-1"]);
    }

    #[tokio::test]
    async fn staff_of_another_site_are_forbidden() {
        let w = world();
        let r = list_alerts(w.store.as_ref(), w.store.as_ref(), command("P0002", leeds())).await;
        assert_eq!(r.unwrap_err(), ListAlertsError::Forbidden);
    }

    #[tokio::test]
    async fn an_unknown_patient_is_forbidden_to_staff_and_not_found_to_an_admin() {
        let w = world();
        let staff = list_alerts(w.store.as_ref(), w.store.as_ref(), command("P0404", leeds())).await;
        assert_eq!(staff.unwrap_err(), ListAlertsError::Forbidden);
        let admin = list_alerts(w.store.as_ref(), w.store.as_ref(), command("P0404", SiteScope::All)).await;
        assert_eq!(admin.unwrap_err(), ListAlertsError::PatientNotFound);
    }

    #[tokio::test]
    async fn a_store_that_fails_is_a_storage_error() {
        let w = world();
        w.store.fail_next("list_alerts", 1);
        let r = list_alerts(w.store.as_ref(), w.store.as_ref(), command("P0001", SiteScope::All)).await;
        assert!(matches!(r, Err(ListAlertsError::Storage(StorageError::Unavailable(_)))), "{r:?}");
    }
}
