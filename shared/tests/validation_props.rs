//! Property tests of validation: hostile input never panics, and every valid
//! value survives a serde round trip unchanged.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};
use trialwatch::enrolment::EnrolmentRequest;
use trialwatch::submission::SubmissionRequest;
use trialwatch::trial::{Questionnaire, TrialDefinition};
use trialwatch::vitals::{ReadingInput, VitalsMessage};
use trialwatch::{PatientId, SubmissionId, TrialId};

fn now() -> DateTime<Utc> {
    "2026-11-26T20:00:00Z".parse().unwrap()
}

/// Arbitrary JSON, nested a few levels, with hostile strings.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("json has no NaN", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![Just("A"), Just("2026-11-26T19:00:00Z"), Just("kccq"), Just("0f8fad5b-d9cb-469f-a165-70867728950e")]
            .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("submissionId".to_string()),
                    Just("questionnaireId".to_string()),
                    Just("questionnaireVersion".to_string()),
                    Just("completedAt".to_string()),
                    Just("answers".to_string()),
                    Just("linkId".to_string()),
                    Just("value".to_string()),
                    Just("code".to_string()),
                    Just("observedAt".to_string()),
                    Just("name".to_string()),
                    Just("sites".to_string()),
                    "[a-zA-Z]{1,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn questionnaire() -> Questionnaire {
    serde_json::from_value(json!({"id": "kccq", "version": "1", "items": [
        {"linkId": "pain", "type": "integer", "min": 0, "max": 10, "required": true},
        {"linkId": "weight", "type": "decimal", "min": 20, "max": 300},
        {"linkId": "mood", "type": "choice", "options": [0, 1, 2, "n/a"]},
        {"linkId": "breathless", "type": "boolean"},
        {"linkId": "notes", "type": "string", "maxLength": 50}
    ]}))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics_any_validator(v in any_json()) {
        if let Ok(req) = serde_json::from_value::<SubmissionRequest>(v.clone()) {
            let _ = req.clone().validate(Some(&questionnaire()), now());
            let _ = req.validate(None, now());
        }
        if let Ok(def) = serde_json::from_value::<TrialDefinition>(v.clone()) {
            let _ = def.validate();
        }
        if let Ok(r) = serde_json::from_value::<ReadingInput>(v.clone()) {
            let mut val = trialwatch::validation::Validator::new();
            let _ = r.validate("readings[0]", now(), &mut val);
        }
        let _ = serde_json::from_value::<EnrolmentRequest>(v.clone());
        let _ = serde_json::from_value::<VitalsMessage>(v);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = serde_json::from_slice::<SubmissionRequest>(&bytes);
        let _ = serde_json::from_slice::<TrialDefinition>(&bytes);
        let _ = serde_json::from_slice::<VitalsMessage>(&bytes);
    }

    #[test]
    fn ids_accept_exactly_the_safe_charset(s in ".{0,80}") {
        let ok = !s.is_empty() && s.len() <= 64 && !s.starts_with('.')
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        prop_assert_eq!(TrialId::parse(&s).is_ok(), ok);
        prop_assert_eq!(PatientId::parse(&s).is_ok(), ok);
    }

    #[test]
    fn a_valid_submission_round_trips_serde(
        pain in 0i64..=10,
        weight in 20.0f64..300.0,
        mood in prop_oneof![Just(json!(0)), Just(json!(2)), Just(json!("n/a"))],
        breathless in any::<bool>(),
        notes in "[a-zA-Z0-9 ]{0,50}",
        minutes_ago in 0i64..100_000,
    ) {
        let completed = now() - chrono::Duration::minutes(minutes_ago);
        let body = json!({
            "submissionId": SubmissionId::new_random().to_string(),
            "questionnaireId": "kccq", "questionnaireVersion": "1",
            "completedAt": trialwatch::timestamp::format(completed),
            "answers": [
                {"linkId": "pain", "value": pain}, {"linkId": "weight", "value": weight},
                {"linkId": "mood", "value": mood}, {"linkId": "breathless", "value": breathless},
                {"linkId": "notes", "value": notes}
            ]
        });
        let req: SubmissionRequest = serde_json::from_value(body.clone()).unwrap();
        let valid = req.clone().validate(Some(&questionnaire()), now());
        prop_assert!(valid.is_ok(), "{:?}", valid);
        let again: SubmissionRequest = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        prop_assert_eq!(&again, &req);
        prop_assert_eq!(again.body_hash(), req.body_hash());
    }

    #[test]
    fn a_valid_trial_round_trips_serde(name in "[A-Za-z][A-Za-z ]{0,39}", n_sites in 1usize..20, freshness in 1u32..=1440) {
        let sites: Vec<Value> = (0..n_sites).map(|i| json!({"id": format!("s{i}"), "name": format!("Site {i}")})).collect();
        let def: TrialDefinition = serde_json::from_value(json!({
            "name": name, "sites": sites,
            "alerting": {"news2": {"freshnessMinutes": freshness, "cooldownMinutes": 30}}
        })).unwrap();
        prop_assert!(def.validate().is_ok());
        let again: TrialDefinition = serde_json::from_str(&serde_json::to_string(&def).unwrap()).unwrap();
        prop_assert_eq!(again, def);
    }
}
