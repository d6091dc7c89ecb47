//! `POST …/vitals` in native JSON: arbitrary bytes through the API's decoder
//! and reading validation. Properties: nothing panics, and whatever the API
//! accepts and queues, the analyzer accepts when it reads the message back
//! (a message the API sends is never parked as implausible).
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use trialwatch::edge::http::body::decode;
use trialwatch::validation::Validator;
use trialwatch::vitals::{ReadingInput, VitalsMessage, MAX_READINGS_PER_REQUEST};
use trialwatch::{PatientId, TrialId};

/// The route's body (epro-api keeps its own copy private).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VitalsRequest {
    readings: Vec<ReadingInput>,
}

fuzz_target!(|data: &[u8]| {
    let now: DateTime<Utc> = "2026-11-27T12:00:00Z".parse().expect("a fixed instant");
    let Ok(body) = decode::<VitalsRequest>(data) else { return };
    if body.readings.is_empty() || body.readings.len() > MAX_READINGS_PER_REQUEST {
        return; // refused by the route before validation
    }
    let mut v = Validator::new();
    let readings: Vec<_> =
        body.readings.iter().enumerate().filter_map(|(i, r)| r.validate(&format!("readings[{i}]"), now, &mut v)).collect();
    if !v.is_empty() {
        return;
    }
    assert_eq!(readings.len(), body.readings.len(), "every reading of an accepted request is kept");
    let message = VitalsMessage {
        trial_id: TrialId::parse("tw-demo").expect("an id"),
        patient_id: PatientId::parse("P0001").expect("an id"),
        readings,
    };
    let queued = serde_json::to_string(&message).expect("a vitals message serialises");
    match vitals_analyzer::record::parse_body(Some(&queued), now) {
        Ok(read) => assert_eq!(read, message, "the analyzer reads back what the API queued"),
        Err(e) => panic!("the analyzer refuses a message the API accepted: {}", e.code()),
    }
});
