//! The HTTP edge of ePRO submissions: `POST` (native JSON or a FHIR
//! QuestionnaireResponse, decoded into a [`SubmitCommand`] for the
//! [`submit`](crate::submit::submit) use case) and the newest-first list.
//! Each [`SubmitError`] becomes its problem+json here, once.

use chrono::{DateTime, Utc};
use lambda_http::Request;
use serde::Serialize;
use trialwatch::page::{Page, PageRequest};
use trialwatch::ports::{AlertQueue, Clock, EnrolmentStore, PendingEvents, SubmissionLedger, TrialConfig};
use trialwatch::submission::{Answer, SubmissionRequest};
use trialwatch::{Error, PatientId, QuestionnaireId, SiteId, SubmissionId, TrialId};

use crate::auth::Principal;
use crate::body::MediaType;
use crate::deps::Deps;
use crate::patients::{authorize, Purpose};
use crate::submit::{submit, SubmitCommand, SubmitError, Submitted};
use trialwatch::edge::http::respond::{self, HttpResponse};

pub async fn post<S: TrialConfig + EnrolmentStore + SubmissionLedger + PendingEvents + 'static, V, A: AlertQueue, C: Clock>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial_id: TrialId,
    patient_id: PatientId,
) -> Result<HttpResponse, Error> {
    let enrolment = authorize(deps, p, &trial_id, &patient_id, Purpose::Record).await?;
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
impl From<SubmitError> for Error {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::NotEnrolled(e) => e.into(),
            SubmitError::TrialNotFound => Error::NotFound("trial"),
            SubmitError::Invalid(fields) => Error::Validation(fields),
            SubmitError::DifferentBody => {
                Error::conflict("submission-conflict", "this submissionId was already used with a different body")
            }
            SubmitError::Storage(e) => e.into(),
        }
    }
}

/// Native JSON, or a FHIR QuestionnaireResponse mapped onto the same request.
fn parse(req: &Request, patient: &PatientId) -> Result<SubmissionRequest, Error> {
    let bytes = crate::body::bytes(req)?;
    match crate::body::media_type(req)? {
        MediaType::Json => crate::body::decode(bytes),
        MediaType::FhirJson => crate::body::decode::<crate::fhir::QuestionnaireResponse>(bytes)?.into_submission(patient),
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

pub async fn list<S: EnrolmentStore + SubmissionLedger + 'static, V, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    p: &Principal,
    trial: TrialId,
    patient: PatientId,
    page: PageRequest,
) -> Result<HttpResponse, Error> {
    authorize(deps, p, &trial, &patient, Purpose::Read).await?.ok_or(Error::NotFound("patient"))?;
    let page: Page<SubmissionView> = deps.store.list_submissions(&trial, &patient, &page).await?.map(|s| SubmissionView {
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

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::edge::http::respond::problem;
    use trialwatch::ports::StorageError;
    use trialwatch::validation::FieldError;

    use crate::enrolled::NotEnrolled;

    fn problem_of(e: SubmitError) -> (u16, String) {
        let r = problem(&Error::from(e));
        let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        (r.status().as_u16(), body["type"].as_str().unwrap().trim_start_matches(trialwatch::error::PROBLEM_BASE).to_owned())
    }

    #[test]
    fn each_submit_error_has_its_status_and_problem_type() {
        let cases = [
            (SubmitError::NotEnrolled(NotEnrolled("the patient's enrolment is withdrawn".into())), 409, "patient-not-enrolled"),
            (SubmitError::TrialNotFound, 404, "not-found"),
            (SubmitError::Invalid(vec![FieldError::new("answers[0].value", "bad")]), 422, "validation"),
            (SubmitError::DifferentBody, 409, "submission-conflict"),
            (SubmitError::Storage(StorageError::Unavailable("throttled".into())), 503, "unavailable"),
            (SubmitError::Storage(StorageError::Corrupt("x".into())), 500, "internal"),
        ];
        for (e, status, problem_type) in cases {
            let name = format!("{e:?}");
            assert_eq!(problem_of(e), (status, problem_type.to_owned()), "{name}");
        }
    }
}
