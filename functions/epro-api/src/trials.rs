//! The HTTP edge of `PUT /v1/trials/{trialId}` (admin) and
//! `GET /v1/trials/{trialId}`, over the [`put_trial`] and [`get_trial`] use
//! cases. The webhook secret is write-only: responses carry `Trial::view()`,
//! which has only `secretSet`, or for a patient `Trial::patient_view()`,
//! which has no sites and no alerting at all.

use lambda_http::Request;
use trialwatch::edge::http::respond::{self, HttpResponse};
use trialwatch::edge::http::HttpError;
use trialwatch::ports::{Clock, TrialConfig, TrialRegistry, Upsert};
use trialwatch::trial::TrialDefinition;
use trialwatch::{Error, TrialId};

use crate::auth::{self, Principal};
use crate::deps::Deps;
use crate::get_trial::{get_trial, GetTrialCommand, GetTrialError};
use crate::put_trial::{put_trial, PutTrialCommand, PutTrialError};

pub async fn put<S: TrialConfig + TrialRegistry + 'static, V, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial_id: TrialId,
) -> Result<HttpResponse, HttpError> {
    auth::configure_trial(p, &trial_id)?;
    let definition: TrialDefinition = crate::body::json(req)?;
    let cmd = PutTrialCommand { trial_id: trial_id.clone(), definition, author: p.author()? };
    let store = deps.store.as_ref();
    let written = put_trial(store, store, &deps.clock, deps.egress, cmd).await?;
    deps.forget_trial(&trial_id);
    Ok(respond::json(if written.outcome == Upsert::Created { 201 } else { 200 }, &written.trial.view()))
}

pub async fn get<S: TrialConfig, V, A, C>(deps: &Deps<S, V, A, C>, p: &Principal, trial_id: TrialId) -> Result<HttpResponse, HttpError> {
    let scope = auth::read_trial(p, &trial_id)?;
    let trial = get_trial(deps.store.as_ref(), GetTrialCommand { trial_id }).await?;
    match scope {
        auth::TrialReadScope::Full => Ok(respond::json(200, &trial.view())),
        auth::TrialReadScope::Patient => Ok(respond::json(200, &trial.patient_view())),
    }
}

/// The HTTP edge's one mapping of a refused trial write.
impl From<PutTrialError> for HttpError {
    fn from(e: PutTrialError) -> Self {
        HttpError::Refused(match e {
            PutTrialError::Invalid(fields) => fields.into(),
            PutTrialError::Storage(e) => e.into(),
        })
    }
}

/// The HTTP edge's one mapping of a failed trial read.
impl From<GetTrialError> for HttpError {
    fn from(e: GetTrialError) -> Self {
        HttpError::Refused(match e {
            GetTrialError::NotFound => Error::NotFound("trial"),
            GetTrialError::Storage(e) => e.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler_tests::problem_of;
    use trialwatch::ports::StorageError;
    use trialwatch::validation::FieldErrors;

    #[test]
    fn each_put_trial_error_has_its_status_and_problem_type() {
        assert_eq!(problem_of(PutTrialError::Invalid(FieldErrors::one("sites", "must hold 1-500 sites"))), (422, "validation".into()));
        assert_eq!(problem_of(PutTrialError::Storage(StorageError::Unavailable("throttled".into()))), (503, "unavailable".into()));
        assert_eq!(problem_of(PutTrialError::Storage(StorageError::Corrupt("x".into()))), (500, "internal".into()));
    }

    #[test]
    fn each_get_trial_error_has_its_status_and_problem_type() {
        assert_eq!(problem_of(GetTrialError::NotFound), (404, "not-found".into()));
        assert_eq!(problem_of(GetTrialError::Storage(StorageError::Unavailable("throttled".into()))), (503, "unavailable".into()));
    }
}
