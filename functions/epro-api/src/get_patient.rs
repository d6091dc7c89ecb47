//! The `get_patient` use case: one patient's enrolment, latest NEWS2,
//! submission summary and open alerts. Transport-free: the HTTP edge
//! (`crate::patients::get`) shapes the [`PatientSummary`] and maps the
//! [`GetPatientError`].

use trialwatch::enrolment::Enrolment;
use trialwatch::news2::News2Result;
use trialwatch::page::{PageRequest, MAX_LIMIT};
use trialwatch::ports::{AlertInbox, EnrolmentStore, StorageError, VitalsStore};
use trialwatch::{PatientId, TrialId};

use crate::scope::SiteScope;

/// Open alerts are counted over at most this many pages of 200 (1,000
/// alerts); a patient past that is reported as 1,000 and flagged.
const OPEN_ALERT_PAGES: usize = 5;

/// Which patient, and the sites the caller reaches.
#[derive(Debug, Clone)]
pub struct GetPatientCommand {
    pub trial_id: TrialId,
    pub patient_id: PatientId,
    pub scope: SiteScope,
}

/// What is known of the patient now.
#[derive(Debug, Clone)]
pub struct PatientSummary {
    /// Read fresh (not from a cache), with the submission count and last time.
    pub enrolment: Enrolment,
    pub latest_news2: Option<News2Result>,
    pub open_alerts: u64,
    /// More than [`OPEN_ALERT_PAGES`] pages of alerts: `open_alerts` is a floor.
    pub open_alerts_truncated: bool,
}

/// What can stop the read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GetPatientError {
    /// The patient is at a site outside the caller's scope, or, for a
    /// site-limited caller, not enrolled at all (the same answer).
    #[error("not permitted")]
    Forbidden,
    #[error("patient not found")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The enrolment decides the site; the vitals state and the open alerts are
/// then read together.
pub async fn get_patient(
    enrolments: &impl EnrolmentStore,
    vitals: &impl VitalsStore,
    inbox: &impl AlertInbox,
    cmd: GetPatientCommand,
) -> Result<PatientSummary, GetPatientError> {
    let GetPatientCommand { trial_id, patient_id, scope } = cmd;
    let enrolment = enrolments.get_enrolment(&trial_id, &patient_id).await?;
    let enrolment = scope.reach(enrolment, |e| &e.site_id, GetPatientError::Forbidden, GetPatientError::NotFound)?;
    let (state, (open_alerts, open_alerts_truncated)) =
        futures::try_join!(vitals.get_state(&trial_id, &patient_id), open_alerts(inbox, &trial_id, &patient_id))?;
    Ok(PatientSummary { enrolment, latest_news2: state.and_then(|s| s.news2), open_alerts, open_alerts_truncated })
}

async fn open_alerts(inbox: &impl AlertInbox, trial: &TrialId, patient: &PatientId) -> Result<(u64, bool), StorageError> {
    let mut page = PageRequest::first(MAX_LIMIT);
    let mut open = 0;
    for _ in 0..OPEN_ALERT_PAGES {
        let p = inbox.list_alerts(trial, patient, &page).await?;
        open += p.items.iter().filter(|a| a.status.is_open()).count() as u64;
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return Ok((open, false)),
        }
    }
    Ok((open, true))
}

#[cfg(test)]
mod tests {
    use trialwatch::alert::AlertStatus;

    use super::*;
    use crate::handler_tests::{alert_record, pid, sid, tid, world, World};

    fn command(patient: &str, scope: SiteScope) -> GetPatientCommand {
        GetPatientCommand { trial_id: tid("tw-demo"), patient_id: pid(patient), scope }
    }

    async fn run(w: &World, cmd: GetPatientCommand) -> Result<PatientSummary, GetPatientError> {
        let store = w.store.as_ref();
        get_patient(store, store, store, cmd).await
    }

    fn leeds() -> SiteScope {
        SiteScope::Sites(vec![sid("site-leeds")])
    }

    #[tokio::test]
    async fn staff_of_the_patients_site_get_the_enrolment_and_the_open_alerts_count() {
        // GIVEN P0001 at Leeds with one delivered (open) and one acknowledged alert
        let w = world();
        w.store.seed_alert(alert_record("a-open", "P0001", "site-leeds", AlertStatus::Delivered));
        w.store.seed_alert(alert_record("a-done", "P0001", "site-leeds", AlertStatus::Acknowledged));
        // WHEN Leeds staff read P0001
        let s = run(&w, command("P0001", leeds())).await.expect("a summary");
        // THEN they get the enrolment, no NEWS2 yet, and one open alert
        assert_eq!(s.enrolment.patient_id, pid("P0001"));
        assert_eq!(s.latest_news2, None);
        assert_eq!((s.open_alerts, s.open_alerts_truncated), (1, false));
    }

    #[tokio::test]
    async fn staff_of_another_site_are_forbidden() {
        let w = world();
        assert_eq!(run(&w, command("P0002", leeds())).await.unwrap_err(), GetPatientError::Forbidden);
    }

    #[tokio::test]
    async fn an_unknown_patient_is_forbidden_to_staff_and_not_found_to_an_admin() {
        let w = world();
        assert_eq!(run(&w, command("P0404", leeds())).await.unwrap_err(), GetPatientError::Forbidden);
        assert_eq!(run(&w, command("P0404", SiteScope::All)).await.unwrap_err(), GetPatientError::NotFound);
    }

    #[tokio::test]
    async fn a_store_that_fails_is_a_storage_error() {
        let w = world();
        w.store.fail_next("get_state", 1);
        let r = run(&w, command("P0001", SiteScope::All)).await;
        assert!(matches!(r, Err(GetPatientError::Storage(StorageError::Unavailable(_)))), "{r:?}");
    }
}
