//! The demo trial and its traffic, shared by `trialwatch-local demo` and the
//! end-to-end tests: a heart-failure trial at three sites, a ten-item daily
//! questionnaire with a PRO alert rule, and vital-sign sets whose NEWS2
//! scores follow the RCP 2017 chart.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

pub const QUESTIONNAIRE: &str = "kccq-hf";
pub const QUESTIONNAIRE_VERSION: &str = "1";
/// The item the PRO rule watches, and its threshold.
pub const PRO_ITEM: &str = "breathlessness";
pub const PRO_THRESHOLD: u32 = 9;

/// Three sites; one name is not Latin script, to keep the PDF and the API honest.
pub const SITES: [(&str, &str); 3] =
    [("leeds", "Leeds General Infirmary"), ("beijing", "北京协和医院"), ("lyon", "Hôpital Édouard-Herriot")];

pub fn site_ids() -> Vec<&'static str> {
    SITES.iter().map(|(id, _)| *id).collect()
}

/// The sites as a staff token's `site_ids` names them: `trialId/siteId`.
pub fn site_pairs(trial: &str) -> Vec<String> {
    SITES.iter().map(|(id, _)| format!("{trial}/{id}")).collect()
}

/// `PUT /v1/trials/{t}` body.
pub fn trial_definition(webhook_url: &str, webhook_secret: &str) -> Value {
    json!({
        "name": "TrialWatch demo: heart failure at home",
        "sites": SITES.iter().map(|(id, name)| json!({"id": id, "name": name})).collect::<Vec<_>>(),
        "questionnaires": [{
            "id": QUESTIONNAIRE,
            "version": QUESTIONNAIRE_VERSION,
            "items": [
                {"linkId": PRO_ITEM, "type": "integer", "min": 0, "max": 10, "required": true},
                {"linkId": "fatigue", "type": "integer", "min": 0, "max": 10, "required": true},
                {"linkId": "ankle-swelling", "type": "choice", "options": [0, 1, 2, 3], "required": true},
                {"linkId": "sleep-hours", "type": "decimal", "min": 0, "max": 24},
                {"linkId": "chest-pain", "type": "boolean", "required": true},
                {"linkId": "dizziness", "type": "integer", "min": 0, "max": 10},
                {"linkId": "appetite", "type": "choice", "options": ["good", "fair", "poor"]},
                {"linkId": "weight-kg", "type": "decimal", "min": 30, "max": 250},
                {"linkId": "medication-taken", "type": "boolean", "required": true},
                {"linkId": "comment", "type": "string", "maxLength": 500}
            ]
        }],
        "schedule": [{"questionnaireId": QUESTIONNAIRE, "frequency": "daily"}],
        "timezone": "Europe/London",
        "alerting": {
            "webhook": {"url": webhook_url, "secret": webhook_secret},
            "news2": {"freshnessMinutes": 60, "cooldownMinutes": 60},
            "proRules": [{"questionnaireId": QUESTIONNAIRE, "linkId": PRO_ITEM, "atLeast": PRO_THRESHOLD, "level": "medium"}]
        }
    })
}

/// Patient ids `P00001`…, pseudonymous as the API requires.
pub fn patient_id(n: usize) -> String {
    format!("P{:05}", n + 1)
}

/// Patients are spread over the sites round-robin.
pub fn site_of(n: usize) -> &'static str {
    SITES[n % SITES.len()].0
}

pub fn enrolment(n: usize) -> Value {
    json!({"siteId": site_of(n), "status": "enrolled"})
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One ePRO submission. `seed` varies the answers; `breathlessness` is set by
/// the caller so that which submissions trip the PRO rule is known up front.
pub fn submission(submission_id: &str, completed_at: DateTime<Utc>, seed: usize, breathlessness: u32) -> Value {
    json!({
        "submissionId": submission_id,
        "questionnaireId": QUESTIONNAIRE,
        "questionnaireVersion": QUESTIONNAIRE_VERSION,
        "completedAt": rfc3339(completed_at),
        "answers": [
            {"linkId": PRO_ITEM, "value": breathlessness},
            {"linkId": "fatigue", "value": (seed * 3) % 11},
            {"linkId": "ankle-swelling", "value": seed % 4},
            {"linkId": "sleep-hours", "value": 5.5 + (seed % 7) as f64 * 0.5},
            {"linkId": "chest-pain", "value": seed % 13 == 0},
            {"linkId": "dizziness", "value": (seed * 7) % 11},
            {"linkId": "appetite", "value": APPETITE[seed % APPETITE.len()]},
            {"linkId": "weight-kg", "value": 60.0 + (seed % 40) as f64 + 0.25},
            {"linkId": "medication-taken", "value": seed % 10 != 0},
            {"linkId": "comment", "value": "feeling much the same as yesterday"}
        ]
    })
}

const APPETITE: [&str; 3] = ["good", "fair", "poor"];

/// A below-threshold breathlessness score for ordinary submissions.
pub fn ordinary_breathlessness(seed: usize) -> u32 {
    u32::try_from(seed % PRO_THRESHOLD as usize).unwrap_or(0)
}

/// Where a patient's vital signs sit on the NEWS2 chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Aggregate 0: low risk.
    Well,
    /// Respiration 25/min scores 3 on its own: low-medium.
    Unsettled,
    /// Respiration 22 (2), SpO2 93 % (2), pulse 95 (1): aggregate 5, medium.
    Worse,
    /// Respiration 26 (3), SpO2 91 % (3), on oxygen (2), systolic 105 (1),
    /// pulse 118 (2), 38.6 °C (1): aggregate 12, high.
    Critical,
}

impl Condition {
    /// The risk level NEWS2 assigns to this set (RCP 2017).
    pub fn risk_level(self) -> &'static str {
        match self {
            Condition::Well => "low",
            Condition::Unsettled => "low-medium",
            Condition::Worse => "medium",
            Condition::Critical => "high",
        }
    }
}

/// A deteriorating patient's course, one condition per step.
pub const DETERIORATION: [Condition; 5] = [Condition::Well, Condition::Well, Condition::Unsettled, Condition::Worse, Condition::Critical];

/// `POST …/vitals` body: all seven NEWS2 parameters (and diastolic BP) observed at `at`.
pub fn vitals(condition: Condition, at: DateTime<Utc>) -> Value {
    let (rr, spo2, oxygen, sbp, hr, temp) = match condition {
        Condition::Well => (16, 97, false, 122, 72, 36.8),
        Condition::Unsettled => (25, 97, false, 122, 76, 36.9),
        Condition::Worse => (22, 93, false, 118, 95, 37.2),
        Condition::Critical => (26, 91, true, 105, 118, 38.6),
    };
    let t = rfc3339(at);
    json!({"readings": [
        {"code": "respiratory_rate", "value": rr, "unit": "/min", "observedAt": t},
        {"code": "spo2", "value": spo2, "unit": "%", "observedAt": t},
        {"code": "supplemental_oxygen", "value": oxygen, "observedAt": t},
        {"code": "systolic_bp", "value": sbp, "unit": "mm[Hg]", "observedAt": t},
        {"code": "diastolic_bp", "value": 78, "unit": "mm[Hg]", "observedAt": t},
        {"code": "heart_rate", "value": hr, "unit": "/min", "observedAt": t},
        {"code": "consciousness", "value": "A", "observedAt": t},
        {"code": "temperature", "value": temp, "unit": "Cel", "observedAt": t}
    ]})
}

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::vitals::{LatestVitals, ReadingInput};

    /// The demo's claims about each condition's risk level hold under the real NEWS2 engine.
    #[test]
    fn each_condition_scores_the_risk_level_it_claims() {
        let now = Utc::now();
        for c in [Condition::Well, Condition::Unsettled, Condition::Worse, Condition::Critical] {
            let body = vitals(c, now);
            let inputs: Vec<ReadingInput> = serde_json::from_value(body["readings"].clone()).unwrap();
            let mut v = trialwatch::validation::Validator::new();
            let readings: Vec<_> =
                inputs.iter().enumerate().filter_map(|(i, r)| r.validate(&format!("readings[{i}]"), now, &mut v)).collect();
            assert!(v.is_empty(), "{c:?} readings are valid");
            let mut latest = LatestVitals::new();
            trialwatch::vitals::merge_latest(&mut latest, &readings);
            let r = trialwatch::news2::score(&latest, trialwatch::news2::Spo2Scale::Scale1, now, chrono::Duration::minutes(60));
            assert_eq!(r.risk_level.as_str(), c.risk_level(), "{c:?} scored {}", r.score);
            assert!(r.missing.is_empty(), "{c:?} covers every parameter");
        }
    }

    #[test]
    fn the_trial_definition_is_valid() {
        let d: trialwatch::trial::TrialDefinition =
            serde_json::from_value(trial_definition("http://127.0.0.1:9/hook", "whsec-0123456789abcdef")).unwrap();
        // The demo's receiver is on loopback: valid under the local stack's egress rules only.
        d.validate_for(trialwatch::egress::EgressPolicy::LOCAL).unwrap();
        assert!(d.validate().is_err(), "a deployed function refuses an http:// loopback webhook");
    }

    #[test]
    fn submissions_are_valid_answers_and_only_chosen_ones_trip_the_rule() {
        let def: trialwatch::trial::TrialDefinition =
            serde_json::from_value(trial_definition("http://127.0.0.1:9/hook", "whsec-0123456789abcdef")).unwrap();
        let q = &def.questionnaires[0];
        for seed in 0..50 {
            let b = ordinary_breathlessness(seed);
            assert!(b < PRO_THRESHOLD);
            let body = submission(&uuid::Uuid::new_v4().to_string(), Utc::now(), seed, b);
            let req: trialwatch::submission::SubmissionRequest = serde_json::from_value(body).unwrap();
            req.validate(Some(q), Utc::now()).unwrap();
        }
    }
}
