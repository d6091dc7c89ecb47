//! The HTTP edge of `GET /v1/trials/{trialId}/patients/{patientId}` over the
//! [`get_patient`] use case; and the access check of the recording routes
//! (submissions, vitals), whose enrolment may come from a cache.

use serde::Serialize;
use trialwatch::edge::http::respond::{self, HttpResponse};
use trialwatch::edge::http::HttpError;
use trialwatch::enrolment::Enrolment;
use trialwatch::news2::News2Result;
use trialwatch::ports::{AlertInbox, Clock, EnrolmentStore, VitalsStore};
use trialwatch::{Error, PatientId, TrialId};

use crate::auth::{self, PatientAccess, Principal};
use crate::deps::Deps;
use crate::enrolment::EnrolmentView;
use crate::get_patient::{get_patient, GetPatientCommand, GetPatientError};

/// Decides whether the caller may record answers or vitals for a patient
/// ([`auth::record_access`]): the token's scope first (403 before any read),
/// then, for site staff, the patient's site, where an absent patient is the
/// same 403 as one at another site. Returns the enrolment, for the patient
/// themself from the short-lived cache (their own hot path).
pub async fn authorize_record<S: EnrolmentStore + 'static, V, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    p: &Principal,
    trial: &TrialId,
    patient: &PatientId,
) -> Result<Option<Enrolment>, HttpError> {
    let access = auth::record_access(p, trial, patient)?;
    let enrolment = match access {
        PatientAccess::Own => deps.enrolment_cached(trial, patient).await?,
        _ => deps.store.get_enrolment(trial, patient).await?,
    };
    if access == PatientAccess::IfSiteMatches {
        auth::staff_site_check(p, trial, enrolment.as_ref().map(|e| &e.site_id))?;
    }
    Ok(enrolment)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PatientView<'a> {
    #[serde(flatten)]
    enrolment: EnrolmentView<'a>,
    latest_news2: Option<&'a News2Result>,
    submissions: SubmissionSummary<'a>,
    open_alerts: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    open_alerts_truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubmissionSummary<'a> {
    count: u64,
    last_at: Option<&'a str>,
}

pub async fn get<S: EnrolmentStore + VitalsStore + AlertInbox + 'static, V, A, C>(
    deps: &Deps<S, V, A, C>,
    p: &Principal,
    trial: TrialId,
    patient: PatientId,
) -> Result<HttpResponse, HttpError> {
    let access = auth::patient_access(p, &trial, &patient)?;
    let scope = auth::site_scope(p, &trial, access);
    let store = deps.store.as_ref();
    let summary = get_patient(store, store, store, GetPatientCommand { trial_id: trial, patient_id: patient, scope }).await?;
    let enrolment = &summary.enrolment;
    let view = PatientView {
        enrolment: EnrolmentView::of(enrolment),
        latest_news2: summary.latest_news2.as_ref(),
        submissions: SubmissionSummary { count: enrolment.submission_count, last_at: enrolment.last_submission_at.as_deref() },
        open_alerts: summary.open_alerts,
        open_alerts_truncated: summary.open_alerts_truncated,
    };
    Ok(respond::json(200, &view))
}

/// The HTTP edge's one mapping of a failed patient read.
impl From<GetPatientError> for HttpError {
    fn from(e: GetPatientError) -> Self {
        HttpError::Refused(match e {
            GetPatientError::Forbidden => Error::Forbidden,
            GetPatientError::NotFound => Error::NotFound("patient"),
            GetPatientError::Storage(e) => e.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler_tests::problem_of;
    use trialwatch::ports::StorageError;

    #[test]
    fn each_get_patient_error_has_its_status_and_problem_type() {
        assert_eq!(problem_of(GetPatientError::Forbidden), (403, "forbidden".into()));
        assert_eq!(problem_of(GetPatientError::NotFound), (404, "not-found".into()));
        assert_eq!(problem_of(GetPatientError::Storage(StorageError::Unavailable("throttled".into()))), (503, "unavailable".into()));
    }
}
