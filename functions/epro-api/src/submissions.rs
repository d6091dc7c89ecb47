//! The HTTP edge of ePRO submissions: `POST` (native JSON or a FHIR
//! QuestionnaireResponse, decoded into a [`SubmitCommand`] for the
//! [`submit`](crate::submit::submit) use case) and the newest-first list.
//! Each [`SubmitError`] becomes its problem+json here, once.

use chrono::{DateTime, Utc};
use lambda_http::Request;
use serde::Serialize;
use trialwatch::edge::http::HttpError;
use trialwatch::page::{Page, PageRequest};
use trialwatch::ports::{AlertQueue, Clock, EnrolmentStore, PendingEvents, SubmissionLedger, TrialConfig};
use trialwatch::submission::{Answer, SubmissionRequest};
use trialwatch::{Error, PatientId, QuestionnaireId, SiteId, SubmissionId, TrialId};

use crate::auth::Principal;
use crate::body::MediaType;
use crate::deps::Deps;
use crate::list_submissions::{list_submissions, ListSubmissionsCommand, ListSubmissionsError};
use crate::patients::authorize_record;
use crate::submit::{submit, SubmitCommand, SubmitError, Submitted};
use trialwatch::edge::http::respond::{self, HttpResponse};

pub async fn post<S: TrialConfig + EnrolmentStore + SubmissionLedger + PendingEvents + 'static, V, A: AlertQueue, C: Clock>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial_id: TrialId,
    patient_id: PatientId,
) -> Result<HttpResponse, HttpError> {
    let enrolment = authorize_record(deps, p, &trial_id, &patient_id).await?;
    let request = parse(req, &patient_id)?;
    let cmd = SubmitCommand {
        trial_id,
        patient_id,
        request,
        enrolment,
        author: p.author()?,
        submitted_by: p.actor(),
        on_behalf: !matches!(p, Principal::Patient { .. }),
    };
    let (trial_id, patient_id) = (cmd.trial_id.clone(), cmd.patient_id.clone());
    let store = deps.store.as_ref();
    match submit(store, store, &deps.trials, deps.alert_queue.as_ref(), deps.announcer(), &deps.clock, cmd).await {
        Ok(receipt) => {
            // The enrolment cache carries the new head, so this process's
            // next submission links from it without a read.
            if let Some(head) = &receipt.chain_head {
                deps.remember_head(&trial_id, &patient_id, head);
            }
            let status = if receipt.submitted == Submitted::Recorded { 201 } else { 200 };
            Ok(respond::json(status, &receipt.receipt))
        }
        Err(e) => {
            if matches!(e, SubmitError::NotEnrolled(_)) {
                deps.forget_enrolment(&trial_id, &patient_id);
            }
            Err(e.into())
        }
    }
}

/// The HTTP edge's one mapping of a refused submission.
impl From<SubmitError> for HttpError {
    fn from(e: SubmitError) -> Self {
        HttpError::Refused(match e {
            SubmitError::NotEnrolled(e) => e.into(),
            SubmitError::TrialNotFound => Error::NotFound("trial"),
            SubmitError::Invalid(fields) => fields.into(),
            SubmitError::DifferentBody => {
                Error::conflict("submission-conflict", "this submissionId was already used with a different body")
            }
            SubmitError::Storage(e) => e.into(),
        })
    }
}

/// Native JSON, or a FHIR QuestionnaireResponse mapped onto the same request.
fn parse(req: &Request, patient: &PatientId) -> Result<SubmissionRequest, HttpError> {
    let bytes = crate::body::bytes(req)?;
    match crate::body::media_type(req)? {
        MediaType::Json => crate::body::decode(bytes),
        MediaType::FhirJson => Ok(crate::body::decode::<crate::fhir::QuestionnaireResponse>(bytes)?.into_submission(patient)?),
    }
}

/// A submission as listed: what was answered, when, and by whom (role only).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SubmissionView {
    submission_id: SubmissionId,
    questionnaire_id: QuestionnaireId,
    questionnaire_version: String,
    site_id: SiteId,
    completed_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    answers: Vec<Answer>,
    score: Option<f64>,
    submitted_by_role: String,
}

pub async fn list<S: EnrolmentStore + SubmissionLedger, V, A, C>(
    deps: &Deps<S, V, A, C>,
    p: &Principal,
    trial: TrialId,
    patient: PatientId,
    page: PageRequest,
) -> Result<HttpResponse, HttpError> {
    let access = crate::auth::patient_access(p, &trial, &patient)?;
    let scope = crate::auth::site_scope(p, &trial, access);
    let cmd = ListSubmissionsCommand { trial_id: trial, patient_id: patient, page, scope };
    let page: Page<SubmissionView> = list_submissions(deps.store.as_ref(), deps.store.as_ref(), cmd).await?.map(|s| SubmissionView {
        submission_id: s.submission_id,
        questionnaire_id: s.questionnaire_id,
        questionnaire_version: s.questionnaire_version,
        site_id: s.site_id,
        completed_at: s.completed_at,
        received_at: s.received_at,
        answers: s.answers,
        score: s.score,
        submitted_by_role: s.submitted_by.role,
    });
    Ok(respond::json(200, &page))
}

/// The HTTP edge's one mapping of a refused list.
impl From<ListSubmissionsError> for HttpError {
    fn from(e: ListSubmissionsError) -> Self {
        HttpError::Refused(match e {
            ListSubmissionsError::Forbidden => Error::Forbidden,
            ListSubmissionsError::PatientNotFound => Error::NotFound("patient"),
            ListSubmissionsError::Storage(e) => e.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::edge::http::respond::problem;
    use trialwatch::ports::StorageError;
    use trialwatch::validation::FieldErrors;

    use crate::enrolled::NotEnrolled;

    fn problem_of(e: SubmitError) -> (u16, String) {
        let r = problem(&HttpError::from(e));
        let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        (r.status().as_u16(), body["type"].as_str().unwrap().trim_start_matches(trialwatch::edge::http::PROBLEM_BASE).to_owned())
    }

    #[test]
    fn each_submit_error_has_its_status_and_problem_type() {
        let cases = [
            (SubmitError::NotEnrolled(NotEnrolled("the patient's enrolment is withdrawn".into())), 409, "patient-not-enrolled"),
            (SubmitError::TrialNotFound, 404, "not-found"),
            (SubmitError::Invalid(FieldErrors::one("answers[0].value", "bad")), 422, "validation"),
            (SubmitError::DifferentBody, 409, "submission-conflict"),
            (SubmitError::Storage(StorageError::Unavailable("throttled".into())), 503, "unavailable"),
            (SubmitError::Storage(StorageError::Corrupt("x".into())), 500, "internal"),
        ];
        for (e, status, problem_type) in cases {
            let name = format!("{e:?}");
            assert_eq!(problem_of(e), (status, problem_type.to_owned()), "{name}");
        }
    }

    #[test]
    fn each_list_submissions_error_has_its_status_and_problem_type() {
        let cases = [
            (ListSubmissionsError::Forbidden, 403, "forbidden"),
            (ListSubmissionsError::PatientNotFound, 404, "not-found"),
            (ListSubmissionsError::Storage(StorageError::ForeignCursor("not ours")), 422, "validation"),
            (ListSubmissionsError::Storage(StorageError::Unavailable("throttled".into())), 503, "unavailable"),
        ];
        for (e, status, problem_type) in cases {
            let name = format!("{e:?}");
            assert_eq!(crate::handler_tests::problem_of(e), (status, problem_type.to_owned()), "{name}");
        }
    }
}
