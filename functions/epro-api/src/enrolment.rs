//! The HTTP edge of `PUT /v1/trials/{trialId}/patients/{patientId}`: the
//! token decides who may enrol and at which sites, the [`enrol_patient`] use
//! case the rest; each [`EnrolPatientError`] becomes its problem+json here.

use lambda_http::Request;
use serde::Serialize;
use trialwatch::edge::http::respond::{self, HttpResponse};
use trialwatch::edge::http::HttpError;
use trialwatch::enrolment::{Enrolment, EnrolmentRequest, EnrolmentStatus};
use trialwatch::ports::{Clock, EnrolmentStore, PendingEvents, TrialConfig, Upsert};
use trialwatch::{Error, PatientId, SiteId, TrialId};

use crate::auth::{self, Principal};
use crate::deps::Deps;
use crate::enrol_patient::{enrol_patient, EnrolPatientCommand, EnrolPatientError};

pub async fn put<S: TrialConfig + EnrolmentStore + PendingEvents + 'static, V, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial_id: TrialId,
    patient_id: PatientId,
) -> Result<HttpResponse, HttpError> {
    let access = auth::enrol(p, &trial_id)?;
    let request: EnrolmentRequest = crate::body::json(req)?;
    let scope = auth::site_scope(p, &trial_id, access);
    let cmd = EnrolPatientCommand { trial_id: trial_id.clone(), patient_id: patient_id.clone(), request, scope, author: p.author()? };
    let enrolled = enrol_patient(&deps.trials, deps.store.as_ref(), deps.announcer(), &deps.clock, cmd).await?;
    deps.forget_enrolment(&trial_id, &patient_id);
    let status = if enrolled.outcome == Upsert::Created { 201 } else { 200 };
    Ok(respond::json(status, &EnrolmentView::of(&enrolled.enrolment)))
}

/// The HTTP edge's one mapping of a refused enrolment.
impl From<EnrolPatientError> for HttpError {
    fn from(e: EnrolPatientError) -> Self {
        HttpError::Refused(match e {
            EnrolPatientError::Forbidden => Error::Forbidden,
            EnrolPatientError::TrialNotFound => Error::NotFound("trial"),
            EnrolPatientError::Invalid(fields) => fields.into(),
            EnrolPatientError::Storage(e) => e.into(),
        })
    }
}

/// The enrolment as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolmentView<'a> {
    pub trial_id: &'a TrialId,
    pub patient_id: &'a PatientId,
    pub site_id: &'a SiteId,
    pub status: EnrolmentStatus,
    pub hypercapnic: bool,
    pub enrolled_at: &'a str,
    pub updated_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<&'a str>,
}

impl<'a> EnrolmentView<'a> {
    pub fn of(e: &'a Enrolment) -> Self {
        Self {
            trial_id: &e.trial_id,
            patient_id: &e.patient_id,
            site_id: &e.site_id,
            status: e.status,
            hypercapnic: e.hypercapnic,
            enrolled_at: &e.enrolled_at,
            updated_at: &e.updated_at,
            withdrawn_at: e.withdrawn_at.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler_tests::problem_of;
    use trialwatch::ports::StorageError;
    use trialwatch::validation::FieldErrors;

    #[test]
    fn each_enrol_patient_error_has_its_status_and_problem_type() {
        let cases = [
            (EnrolPatientError::Forbidden, 403, "forbidden"),
            (EnrolPatientError::TrialNotFound, 404, "not-found"),
            (EnrolPatientError::Invalid(FieldErrors::one("siteId", "names no site of this trial")), 422, "validation"),
            (EnrolPatientError::Storage(StorageError::Unavailable("throttled".into())), 503, "unavailable"),
            (EnrolPatientError::Storage(StorageError::Corrupt("x".into())), 500, "internal"),
        ];
        for (e, status, problem_type) in cases {
            let name = format!("{e:?}");
            assert_eq!(problem_of(e), (status, problem_type.to_owned()), "{name}");
        }
    }
}
