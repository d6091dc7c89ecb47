//! `POST …/submissions` in native JSON, and `PUT /v1/trials/{t}`: arbitrary
//! bytes through the API's decoder and validators. Properties: nothing panics,
//! and a submission that validates can be stored (its score and every numeric
//! answer fit a DynamoDB number).
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use trialwatch::edge::http::body::decode;
use trialwatch::submission::SubmissionRequest;
use trialwatch::trial::{Questionnaire, TrialDefinition};
use trialwatch::validation::storable_number;

/// One item of every type, so every branch of answer validation is reachable.
const QUESTIONNAIRE: &str = r#"{"id":"kccq-hf","version":"1","items":[
  {"linkId":"breathlessness","type":"integer","min":0,"max":10,"required":true},
  {"linkId":"sleep-hours","type":"decimal","min":0,"max":24},
  {"linkId":"weight-kg","type":"decimal"},
  {"linkId":"ankle-swelling","type":"choice","options":[0,1,2,3]},
  {"linkId":"appetite","type":"choice","options":["good","fair","poor"]},
  {"linkId":"chest-pain","type":"boolean"},
  {"linkId":"comment","type":"string","maxLength":20}]}"#;

fuzz_target!(|data: &[u8]| {
    let questionnaire: Questionnaire = serde_json::from_str(QUESTIONNAIRE).expect("the fixture is a questionnaire");
    let now: DateTime<Utc> = "2026-11-27T12:00:00Z".parse().expect("a fixed instant");
    let enrolled: DateTime<Utc> = "2026-11-01T09:00:00Z".parse().expect("a fixed instant");

    if let Ok(request) = decode::<SubmissionRequest>(data) {
        if let Ok(valid) = request.validate_since(Some(&questionnaire), Some(enrolled), now) {
            assert!(valid.answers.len() <= questionnaire.items.len());
            assert!(valid.score().is_none_or(storable_number), "an accepted score must be storable");
            for a in &valid.answers {
                assert!(a.value.as_number().is_none_or(storable_number), "an accepted answer must be storable");
            }
            assert!(valid.completed_at <= now + chrono::Duration::minutes(5));
        }
    }
    if let Ok(definition) = decode::<TrialDefinition>(data) {
        let _ = definition.validate();
    }
});
