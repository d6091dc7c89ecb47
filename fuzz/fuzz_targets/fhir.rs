//! `application/fhir+json` bodies: a QuestionnaireResponse mapped onto a
//! submission, and an Observation or Bundle mapped onto readings. Properties:
//! nothing panics; a mapped submission names the path's patient's data only
//! (a wrong subject is refused), and every mapped reading validates or is
//! refused with a field error.
#![no_main]

use chrono::{DateTime, Utc};
use epro_api::fhir::{readings, QuestionnaireResponse};
use libfuzzer_sys::fuzz_target;
use trialwatch::edge::http::body::decode;
use trialwatch::trial::Questionnaire;
use trialwatch::validation::Validator;
use trialwatch::PatientId;

const QUESTIONNAIRE: &str = r#"{"id":"kccq-hf","version":"1","items":[
  {"linkId":"breathlessness","type":"integer","min":0,"max":10},
  {"linkId":"sleep-hours","type":"decimal","min":0,"max":24},
  {"linkId":"ankle-swelling","type":"choice","options":[0,1,2,3]},
  {"linkId":"appetite","type":"choice","options":["good","fair","poor"]},
  {"linkId":"chest-pain","type":"boolean"},
  {"linkId":"comment","type":"string"}]}"#;

fuzz_target!(|data: &[u8]| {
    let questionnaire: Questionnaire = serde_json::from_str(QUESTIONNAIRE).expect("the fixture is a questionnaire");
    let now: DateTime<Utc> = "2026-11-27T12:00:00Z".parse().expect("a fixed instant");
    let patient = PatientId::parse("P0001").expect("an id");

    if let Ok(qr) = decode::<QuestionnaireResponse>(data) {
        if let Ok(request) = qr.into_submission(&patient) {
            let _ = request.validate(Some(&questionnaire), now);
        }
    }
    if let Ok(resource) = decode::<serde_json::Value>(data) {
        if let Ok(sourced) = readings(resource, &patient) {
            let mut v = Validator::new();
            for r in &sourced {
                let _ = r.input.validate(&r.path, now, &mut v);
            }
        }
    }
});
