//! The HTTP edge of `POST /v1/trials/{trialId}/patients/{patientId}/vitals`:
//! native `{readings: [...]}` or FHIR Observation / Bundle, decoded for the
//! [`ingest_vitals`](crate::ingest_vitals::ingest_vitals) use case; 202.

use lambda_http::Request;
use serde::{Deserialize, Serialize};
use trialwatch::edge::http::HttpError;
use trialwatch::ports::{Clock, EnrolmentStore, VitalsQueue};
use trialwatch::vitals::ReadingInput;
use trialwatch::{PatientId, TrialId};

use crate::auth::Principal;
use crate::body::MediaType;
use crate::deps::Deps;
use crate::ingest_vitals::{ingest_vitals, IngestVitalsCommand, IngestVitalsError};
use crate::patients::authorize_record;
use trialwatch::edge::http::respond::{self, HttpResponse};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VitalsRequest {
    #[serde(deserialize_with = "trialwatch::json_object::each")]
    readings: Vec<ReadingInput>,
}

#[derive(Serialize)]
struct Accepted {
    accepted: usize,
}

pub async fn post<S: EnrolmentStore + 'static, V: VitalsQueue, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial_id: TrialId,
    patient_id: PatientId,
) -> Result<HttpResponse, HttpError> {
    let enrolment = authorize_record(deps, p, &trial_id, &patient_id).await?;
    let readings = parse(req, &patient_id)?;
    let cmd = IngestVitalsCommand { trial_id, patient_id, readings, enrolment };
    let accepted = ingest_vitals(deps.vitals_queue.as_ref(), &deps.clock, cmd).await?;
    Ok(respond::json(202, &Accepted { accepted: accepted.readings }))
}

/// The HTTP edge's one mapping of refused vitals.
impl From<IngestVitalsError> for HttpError {
    fn from(e: IngestVitalsError) -> Self {
        HttpError::Refused(match e {
            IngestVitalsError::NotEnrolled(e) => e.into(),
            IngestVitalsError::Invalid(fields) => fields.into(),
            IngestVitalsError::Storage(e) => e.into(),
        })
    }
}

/// Readings, each with the name its errors carry (`readings[3]`, or the FHIR path).
fn parse(req: &Request, patient: &PatientId) -> Result<Vec<(String, ReadingInput)>, HttpError> {
    let bytes = crate::body::bytes(req)?;
    match crate::body::media_type(req)? {
        MediaType::Json => {
            let body: VitalsRequest = crate::body::decode(bytes)?;
            Ok(body.readings.into_iter().enumerate().map(|(i, r)| (format!("readings[{i}]"), r)).collect())
        }
        MediaType::FhirJson => {
            let resource: serde_json::Value = crate::body::decode(bytes)?;
            Ok(crate::fhir::readings(resource, patient)?.into_iter().map(|r| (r.path, r.input)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::edge::http::respond::problem;
    use trialwatch::ports::StorageError;
    use trialwatch::validation::FieldErrors;

    use crate::enrolled::NotEnrolled;

    #[test]
    fn each_ingest_error_has_its_status_and_problem_type() {
        let cases = [
            (IngestVitalsError::NotEnrolled(NotEnrolled("the patient is not enrolled in this trial".into())), 409, "patient-not-enrolled"),
            (IngestVitalsError::Invalid(FieldErrors::one("readings[0].value", "bad")), 422, "validation"),
            (IngestVitalsError::Storage(StorageError::Unavailable("throttled".into())), 503, "unavailable"),
        ];
        for (e, status, problem_type) in cases {
            let name = format!("{e:?}");
            let r = problem(&HttpError::from(e));
            let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
            assert_eq!(r.status().as_u16(), status, "{name}");
            assert_eq!(body["type"], format!("{}{problem_type}", trialwatch::edge::http::PROBLEM_BASE), "{name}");
        }
    }
}
