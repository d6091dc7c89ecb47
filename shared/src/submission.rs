//! ePRO submissions: validation against the trial's questionnaire, the stored
//! record, and the receipt returned (and replayed) to the client.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::Actor;
use crate::ids::{PatientId, QuestionnaireId, SiteId, SubmissionId, TrialId};
use crate::trial::{ChoiceOption, ItemType, Questionnaire};
use crate::validation::{storable_number, FieldErrors, Validator};

/// How far before the enrolment's server time a `completedAt` may fall: the
/// phone's clock and the server's differ by a few minutes at most (the same
/// allowance as for timestamps in the future, [`crate::timestamp::MAX_FUTURE_SKEW_SECONDS`]),
/// and a questionnaire finished while the nurse was still enrolling the
/// patient is genuine.
pub const ENROLMENT_CLOCK_SKEW_SECONDS: i64 = 300;

/// Body of `POST …/submissions` in native JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmissionRequest {
    pub submission_id: String,
    pub questionnaire_id: String,
    pub questionnaire_version: String,
    pub completed_at: String,
    #[serde(deserialize_with = "crate::json_object::each")]
    pub answers: Vec<AnswerInput>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnswerInput {
    pub link_id: String,
    pub value: serde_json::Value,
}

/// A validated answer, typed by its item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnswerValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl AnswerValue {
    pub fn as_number(&self) -> Option<f64> {
        match self {
            AnswerValue::Number(n) => Some(*n),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub link_id: String,
    pub value: AnswerValue,
}

/// A submission as stored: one item per submission, never overwritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSubmission {
    pub trial_id: TrialId,
    pub patient_id: PatientId,
    pub site_id: SiteId,
    pub submission_id: SubmissionId,
    pub questionnaire_id: QuestionnaireId,
    pub questionnaire_version: String,
    pub completed_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Stored as one JSON text (see [`answers_text`]).
    #[serde(with = "answers_text")]
    pub answers: Vec<Answer>,
    pub score: Option<f64>,
    /// SHA-256 of the canonical request; decides replay (same) versus conflict.
    pub body_hash: String,
    /// Who submitted: the patient, or site staff on their behalf.
    pub submitted_by: Actor,
}

/// The serde form of a stored submission's answers: one JSON text (an `S` attribute), not a
/// list of maps. As maps, 20 answers were 40 attributes of the item, each a `String` key hashed
/// into the SDK's map, built twice per submission (the item and its idempotency guard) and freed
/// again: the largest CPU item of a submission (issue 16). No condition, update expression,
/// index or projection reads inside the answers, so nothing else changes. Reading accepts both
/// forms: the text, and the list itself, as items written before the text form hold it and as
/// JSON carries it.
mod answers_text {
    use std::fmt;

    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use serde::ser::Error as _;
    use serde::Serializer;

    use super::{Answer, AnswerValue};

    pub fn serialize<S: Serializer>(answers: &[Answer], s: S) -> Result<S::Ok, S::Error> {
        // Sized for a typical answer (`{"linkId":"q10","value":72.5},`), so 20 answers
        // serialise without regrowing the buffer.
        let mut text = Vec::with_capacity(2 + 40 * answers.len());
        super::write_answers(
            &mut text,
            answers,
            |a| &a.link_id,
            |out, a| match &a.value {
                AnswerValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
                // Into a vector neither can fail (a NaN or an infinity would be written `null`, as
                // serde_json writes it; validation lets none through).
                AnswerValue::Number(n) => drop(serde_json::to_writer(out, n)),
                AnswerValue::Text(t) => super::json_string(out, t),
            },
        );
        s.serialize_str(std::str::from_utf8(&text).map_err(S::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Answer>, D::Error> {
        d.deserialize_any(TextOrList)
    }

    struct TextOrList;

    impl<'de> Visitor<'de> for TextOrList {
        type Value = Vec<Answer>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON text or a list of answers")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<Answer>, E> {
            serde_json::from_str(text).map_err(E::custom)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Answer>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(answer) = seq.next_element()? {
                out.push(answer);
            }
            Ok(out)
        }
    }
}

impl StoredSubmission {
    pub fn receipt(&self) -> SubmissionReceipt {
        SubmissionReceipt { submission_id: self.submission_id, received_at: self.received_at, score: self.score }
    }
}

/// 201 (and replayed 200) body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionReceipt {
    pub submission_id: SubmissionId,
    pub received_at: DateTime<Utc>,
    pub score: Option<f64>,
}

/// The validated content of a request, before it gets a receipt time.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSubmission {
    pub submission_id: SubmissionId,
    pub questionnaire_id: QuestionnaireId,
    pub questionnaire_version: String,
    pub completed_at: DateTime<Utc>,
    pub answers: Vec<Answer>,
    pub body_hash: String,
}

impl ValidSubmission {
    /// Sum of numeric answers (integer, decimal, numeric choice); `None` when
    /// the questionnaire has none.
    pub fn score(&self) -> Option<f64> {
        let nums: Vec<f64> = self.answers.iter().filter_map(|a| a.value.as_number()).collect();
        (!nums.is_empty()).then(|| nums.iter().sum())
    }
}

/// Validates the identity fields (id, questionnaire reference, time) without
/// the questionnaire, so a request naming an unknown questionnaire still gets
/// every other error reported.
impl SubmissionRequest {
    /// Consumes the request: the answers' link ids move into the result
    /// rather than being copied (this is the submission hot path).
    pub fn validate(self, questionnaire: Option<&Questionnaire>, now: DateTime<Utc>) -> Result<ValidSubmission, FieldErrors> {
        self.validate_since(questionnaire, None, now)
    }

    /// As [`validate`](Self::validate), and `completedAt` may not precede the
    /// patient's enrolment (less [`ENROLMENT_CLOCK_SKEW_SECONDS`]): answers
    /// from before consent are not trial data.
    pub fn validate_since(
        self,
        questionnaire: Option<&Questionnaire>,
        enrolled_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<ValidSubmission, FieldErrors> {
        let body_hash = self.body_hash();
        let mut v = Validator::new();
        let submission_id = v.take("submissionId", SubmissionId::parse(&self.submission_id));
        let questionnaire_id = v.take("questionnaireId", QuestionnaireId::parse(&self.questionnaire_id));
        let completed_at = v.take("completedAt", crate::timestamp::parse_utc(&self.completed_at, now));
        if let (Some(completed), Some(enrolled)) = (completed_at, enrolled_at) {
            if (enrolled - completed).num_seconds() > ENROLMENT_CLOCK_SKEW_SECONDS {
                v.error("completedAt", format!("must not be before the patient's enrolment ({})", crate::timestamp::format(enrolled)));
            }
        }
        let answers = match questionnaire {
            Some(q) => validate_answers(q, self.answers, &mut v),
            None => {
                v.error("questionnaireVersion", "names no questionnaire version of this trial");
                vec![]
            }
        };
        // The score is stored as a DynamoDB number too; answers each in range
        // can still sum out of it.
        let score: f64 = answers.iter().filter_map(|a| a.value.as_number()).sum();
        v.check(storable_number(score), "answers", "the numeric answers sum to more than a stored score can hold (magnitude below 1e126)");
        match (submission_id, questionnaire_id, completed_at) {
            (Some(submission_id), Some(questionnaire_id), Some(completed_at)) if v.is_empty() => Ok(ValidSubmission {
                submission_id,
                questionnaire_id,
                questionnaire_version: self.questionnaire_version,
                completed_at,
                answers,
                body_hash,
            }),
            _ => Err(FieldErrors(v.into_errors())),
        }
    }

    /// Hash of the canonical JSON (struct field order, so key order and
    /// whitespace in the client's bytes do not matter).
    pub fn body_hash(&self) -> String {
        // Serialised whole, then hashed once: feeding the hasher serde's many
        // small writes costs more than the buffer. Written field by field, the
        // bytes serde_json's derive writes (test `the_canonical_body_is_what_serde_json_writes`)
        // without escaping the same two keys of every answer again (issue 16).
        let mut c = Vec::with_capacity(160 + 40 * self.answers.len());
        c.extend_from_slice(b"{\"submissionId\":");
        json_string(&mut c, &self.submission_id);
        c.extend_from_slice(b",\"questionnaireId\":");
        json_string(&mut c, &self.questionnaire_id);
        c.extend_from_slice(b",\"questionnaireVersion\":");
        json_string(&mut c, &self.questionnaire_version);
        c.extend_from_slice(b",\"completedAt\":");
        json_string(&mut c, &self.completed_at);
        c.extend_from_slice(b",\"answers\":");
        // A JSON value serialises infallibly into a vector.
        write_answers(&mut c, &self.answers, |a| &a.link_id, |c, a| drop(serde_json::to_writer(c, &a.value)));
        c.push(b'}');
        crate::ids::lower_hex(&Sha256::digest(&c))
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it.
fn json_string(out: &mut Vec<u8>, s: &str) {
    // A string serialises infallibly into a vector.
    let _ = serde_json::to_writer(out, s);
}

/// `[{"linkId":…,"value":…},…]`: answers as serde_json's derive writes them (their two
/// keys written as bytes, not escaped again for every answer), each value written by `value`.
fn write_answers<A>(out: &mut Vec<u8>, answers: &[A], link_id: impl Fn(&A) -> &str, value: impl Fn(&mut Vec<u8>, &A)) {
    out.push(b'[');
    for (i, a) in answers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"linkId\":");
        json_string(out, link_id(a));
        out.extend_from_slice(b",\"value\":");
        value(out, a);
        out.push(b'}');
    }
    out.push(b']');
}

/// Checks answers against the questionnaire: known linkIds, no duplicates, the
/// item's type and range, and every required item present.
pub fn validate_answers(q: &Questionnaire, answers: Vec<AnswerInput>, v: &mut Validator) -> Vec<Answer> {
    let mut out = Vec::with_capacity(answers.len());
    // Answered items by position in the questionnaire: duplicates and
    // required items without hashing.
    let mut answered = vec![false; q.items.len()];
    for (i, a) in answers.into_iter().enumerate() {
        // Built only for an error: the happy path allocates no field names.
        let field = || format!("answers[{i}].value");
        // Clients answer in the questionnaire's order, so the item at the answer's own
        // position is tried first (linkIds are unique in a questionnaire: the same item).
        let index = match q.items.get(i) {
            Some(it) if it.link_id == a.link_id => Some(i),
            _ => q.items.iter().position(|it| it.link_id == a.link_id),
        };
        let Some(index) = index else {
            v.error(format!("answers[{i}].linkId"), "names no item of this questionnaire");
            continue;
        };
        if std::mem::replace(&mut answered[index], true) {
            v.error(format!("answers[{i}].linkId"), "answered more than once");
            continue;
        }
        let item = &q.items[index];
        let value = match item.item_type {
            ItemType::Integer | ItemType::Decimal if a.value.as_f64().is_some_and(|n| !storable_number(n)) => {
                v.error(field(), "magnitude must be below 1e126 and, unless 0, at least 1e-130");
                None
            }
            ItemType::Integer => match a.value.as_f64() {
                Some(n) if n.fract() == 0.0 && in_range(n, item.min, item.max) => Some(AnswerValue::Number(n)),
                Some(n) if n.fract() == 0.0 => {
                    v.error(field(), range_message(item.min, item.max));
                    None
                }
                _ => {
                    v.error(field(), "must be an integer");
                    None
                }
            },
            ItemType::Decimal => match a.value.as_f64() {
                Some(n) if in_range(n, item.min, item.max) => Some(AnswerValue::Number(n)),
                Some(_) => {
                    v.error(field(), range_message(item.min, item.max));
                    None
                }
                None => {
                    v.error(field(), "must be a number");
                    None
                }
            },
            ItemType::Boolean => match a.value.as_bool() {
                Some(b) => Some(AnswerValue::Bool(b)),
                None => {
                    v.error(field(), "must be true or false");
                    None
                }
            },
            ItemType::String => match a.value {
                serde_json::Value::String(s) if item.max_length.is_none_or(|m| s.chars().count() <= m) => Some(AnswerValue::Text(s)),
                serde_json::Value::String(_) => {
                    v.error(field(), format!("must be at most {} characters", item.max_length.unwrap_or_default()));
                    None
                }
                _ => {
                    v.error(field(), "must be a string");
                    None
                }
            },
            ItemType::Choice => {
                let options = item.options.as_deref().unwrap_or_default();
                let hit = options.iter().find(|o| match (o, &a.value) {
                    (ChoiceOption::Number(n), serde_json::Value::Number(x)) => x.as_f64() == Some(*n as f64),
                    (ChoiceOption::Code(c), serde_json::Value::String(s)) => c == s,
                    _ => false,
                });
                match hit {
                    Some(ChoiceOption::Number(n)) => Some(AnswerValue::Number(*n as f64)),
                    Some(ChoiceOption::Code(c)) => Some(AnswerValue::Text(c.clone())),
                    None => {
                        v.error(field(), "must be one of the item's options");
                        None
                    }
                }
            }
        };
        if let Some(value) = value {
            out.push(Answer { link_id: a.link_id, value });
        }
    }
    for (item, _) in q.items.iter().zip(&answered).filter(|(it, done)| it.required && !**done) {
        v.error("answers", format!("required item '{}' is missing", item.link_id));
    }
    out
}

fn in_range(n: f64, min: Option<f64>, max: Option<f64>) -> bool {
    n.is_finite() && min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m)
}

fn range_message(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!("must be between {lo} and {hi}"),
        (Some(lo), None) => format!("must be at least {lo}"),
        (None, Some(hi)) => format!("must be at most {hi}"),
        (None, None) => "must be a finite number".into(),
    }
}

/// Per-day, per-site counter maintained by the submission transaction; the
/// source of report compliance figures. `day` is `YYYY-MM-DD` in the trial's zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DailySiteCount {
    pub day: String,
    pub site_id: SiteId,
    pub questionnaire_id: QuestionnaireId,
    pub submissions: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trial::Item;

    fn q() -> Questionnaire {
        serde_json::from_value(serde_json::json!({"id": "kccq", "version": "1", "items": [
            {"linkId": "pain", "type": "integer", "min": 0, "max": 10, "required": true},
            {"linkId": "weight", "type": "decimal", "min": 20, "max": 300},
            {"linkId": "mood", "type": "choice", "options": [0, 1, 2, "n/a"]},
            {"linkId": "breathless", "type": "boolean"},
            {"linkId": "notes", "type": "string", "maxLength": 5}
        ]}))
        .unwrap()
    }

    fn req(answers: serde_json::Value) -> SubmissionRequest {
        serde_json::from_value(serde_json::json!({
            "submissionId": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "questionnaireId": "kccq", "questionnaireVersion": "1",
            "completedAt": "2026-11-26T19:00:00Z", "answers": answers
        }))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-11-26T20:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_valid_submission_scores_its_numeric_answers() {
        let s = req(serde_json::json!([
            {"linkId": "pain", "value": 7}, {"linkId": "weight", "value": 80.5},
            {"linkId": "mood", "value": 2}, {"linkId": "breathless", "value": true}, {"linkId": "notes", "value": "ok"}
        ]))
        .validate(Some(&q()), now())
        .unwrap();
        assert_eq!(s.score(), Some(89.5));
    }

    #[test]
    fn answers_in_any_order_find_their_items_and_a_repeat_is_refused_naming_it() {
        // GIVEN answers in reverse order of the questionnaire
        let s = req(serde_json::json!([
            {"linkId": "notes", "value": "ok"}, {"linkId": "breathless", "value": false},
            {"linkId": "mood", "value": "n/a"}, {"linkId": "weight", "value": 80.5}, {"linkId": "pain", "value": 7}
        ]))
        .validate(Some(&q()), now())
        // THEN each is checked against its own item and kept in the order sent
        .unwrap();
        let links: Vec<_> = s.answers.iter().map(|a| a.link_id.as_str()).collect();
        assert_eq!(links, ["notes", "breathless", "mood", "weight", "pain"]);
        assert_eq!(s.score(), Some(87.5));
        // GIVEN the first item answered again at the position of another
        let err = req(serde_json::json!([{"linkId": "pain", "value": 1}, {"linkId": "pain", "value": 2}]))
            .validate(Some(&q()), now())
            .unwrap_err();
        // THEN the repeat is refused, naming its linkId
        let errs = err.into_vec();
        assert_eq!((errs[0].field.as_str(), errs[0].message.as_str()), ("answers[1].linkId", "answered more than once"));
    }

    #[test]
    fn every_item_type_reports_its_own_error_at_once() {
        let err = req(serde_json::json!([
            {"linkId": "pain", "value": 7.5}, {"linkId": "weight", "value": 10},
            {"linkId": "mood", "value": 9}, {"linkId": "breathless", "value": "yes"},
            {"linkId": "notes", "value": "too long"}, {"linkId": "ghost", "value": 1}
        ]))
        .validate(Some(&q()), now())
        .unwrap_err();
        let errs = err.into_vec();
        let fields: Vec<_> = errs.iter().map(|e| e.field.clone()).collect();
        assert_eq!(
            fields,
            ["answers[0].value", "answers[1].value", "answers[2].value", "answers[3].value", "answers[4].value", "answers[5].linkId"]
        );
    }

    fn unbounded() -> Questionnaire {
        serde_json::from_value(serde_json::json!({"id": "open", "version": "1", "items": [
            {"linkId": "a", "type": "decimal"}, {"linkId": "b", "type": "decimal"}, {"linkId": "n", "type": "integer"}
        ]}))
        .unwrap()
    }

    #[test]
    fn an_answer_dynamodb_cannot_store_is_refused_naming_it() {
        // GIVEN items without bounds, WHEN answers beyond DynamoDB's number range arrive
        let err = req(serde_json::json!([
            {"linkId": "a", "value": 1e130}, {"linkId": "b", "value": 1e-131}, {"linkId": "n", "value": 1e200}
        ]))
        .validate(Some(&unbounded()), now())
        .unwrap_err();
        // THEN each is a field error, not a write that fails later
        let errs = err.into_vec();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["answers[0].value", "answers[1].value", "answers[2].value"]);
    }

    #[test]
    fn answers_that_sum_beyond_a_storable_score_are_refused() {
        let err = req(serde_json::json!([{"linkId": "a", "value": 9e125}, {"linkId": "b", "value": 9e125}]))
            .validate(Some(&unbounded()), now())
            .unwrap_err();
        let errs = err.into_vec();
        assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["answers"]);
    }

    #[test]
    fn completed_before_enrolment_less_the_clock_skew_is_refused() {
        let enrolled: DateTime<Utc> = "2026-11-26T18:00:00Z".parse().unwrap();
        let at = |t: &str| {
            let mut r = req(serde_json::json!([{"linkId": "pain", "value": 1}]));
            r.completed_at = t.into();
            r.validate_since(Some(&q()), Some(enrolled), now())
        };
        // GIVEN a patient enrolled at 18:00, WHEN answers are dated 1970, or 6 minutes early
        for early in ["1970-01-01T00:00:00Z", "2026-11-26T17:54:00Z"] {
            let Err(FieldErrors(errs)) = at(early) else { panic!("{early} accepted") };
            // THEN 422 naming completedAt
            assert_eq!(errs[0].field, "completedAt", "{early}");
        }
        // AND within the skew, or after enrolment, is accepted
        assert!(at("2026-11-26T17:55:00Z").is_ok());
        assert!(at("2026-11-26T19:00:00Z").is_ok());
    }

    #[test]
    fn a_missing_required_item_is_reported() {
        let err = req(serde_json::json!([])).validate(Some(&q()), now()).unwrap_err();
        let errs = err.into_vec();
        assert!(errs.iter().any(|e| e.field == "answers" && e.message.contains("pain")));
    }

    fn stored(answers: Vec<Answer>) -> StoredSubmission {
        StoredSubmission {
            trial_id: TrialId::parse("t1").unwrap(),
            patient_id: PatientId::parse("P-1").unwrap(),
            site_id: SiteId::parse("s1").unwrap(),
            submission_id: SubmissionId::parse("0f8fad5b-d9cb-469f-a165-70867728950e").unwrap(),
            questionnaire_id: QuestionnaireId::parse("kccq").unwrap(),
            questionnaire_version: "1".into(),
            completed_at: "2026-11-26T19:00:00Z".parse().unwrap(),
            received_at: "2026-11-26T19:00:01.234Z".parse().unwrap(),
            score: answers.iter().filter_map(|a| a.value.as_number()).reduce(|a, b| a + b),
            answers,
            body_hash: "3ea833a3".into(),
            submitted_by: Actor { role: "patient".into(), subject: Some("P-1".into()) },
        }
    }

    proptest::proptest! {
        #[test]
        fn stored_answers_are_one_json_text_and_both_forms_read_back_exactly(
            numbers in proptest::collection::vec(proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO, 0..8),
            text in "\\PC{0,12}",
        ) {
            // GIVEN a stored submission with number (any finite f64), text and boolean answers
            let mut answers: Vec<Answer> = numbers.iter().enumerate()
                .map(|(i, n)| Answer { link_id: format!("n{i}"), value: AnswerValue::Number(*n) })
                .collect();
            answers.push(Answer { link_id: "notes".into(), value: AnswerValue::Text(text) });
            answers.push(Answer { link_id: "ok".into(), value: AnswerValue::Bool(true) });
            let s = stored(answers);
            // WHEN serialised THEN the answers are one JSON text
            let tree = serde_json::to_value(&s).unwrap();
            proptest::prop_assert!(tree["answers"].is_string(), "{}", tree["answers"]);
            // AND the text is what serde_json writes for the answers
            proptest::prop_assert_eq!(tree["answers"].as_str().unwrap(), serde_json::to_string(&s.answers).unwrap());
            // AND it reads back exactly, every f64 too
            proptest::prop_assert_eq!(&serde_json::from_value::<StoredSubmission>(tree.clone()).unwrap(), &s);
            // AND the form written before the text (the answers a list of objects) reads the same
            let mut old = tree;
            old["answers"] = serde_json::to_value(s.answers.iter().map(|a| serde_json::json!({"linkId": a.link_id, "value": a.value})).collect::<Vec<_>>()).unwrap();
            proptest::prop_assert_eq!(&serde_json::from_value::<StoredSubmission>(old).unwrap(), &s);
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            "\\PC{0,8}|[\"\\\\\\x00-\\x1f\\u{7f}]{0,4}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z\"]{0,3}", inner, 0..3)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn the_canonical_body_is_what_serde_json_writes(
            fields in proptest::collection::vec("\\PC{0,12}|[\"\\\\\\x00-\\x1f]{0,4}", 4),
            answers in proptest::collection::vec(("\\PC{0,6}|[\"\\\\]{0,2}", json_value()), 0..6),
        ) {
            // GIVEN any request, escapes and every kind of JSON value included
            let r = SubmissionRequest {
                submission_id: fields[0].clone(),
                questionnaire_id: fields[1].clone(),
                questionnaire_version: fields[2].clone(),
                completed_at: fields[3].clone(),
                answers: answers.into_iter().map(|(link_id, value)| AnswerInput { link_id, value }).collect(),
            };
            // WHEN hashed THEN the hash is that of the bytes serde_json's derive writes
            // (the form every stored submission's hash was made from)
            let derived = crate::ids::lower_hex(&Sha256::digest(serde_json::to_vec(&r).unwrap()));
            proptest::prop_assert_eq!(r.body_hash(), derived);
        }
    }

    #[test]
    fn body_hash_ignores_key_order() {
        let a: SubmissionRequest = serde_json::from_str(r#"{"submissionId":"0f8fad5b-d9cb-469f-a165-70867728950e","questionnaireId":"kccq","questionnaireVersion":"1","completedAt":"2026-11-26T19:00:00Z","answers":[]}"#).unwrap();
        let b: SubmissionRequest = serde_json::from_str(r#"{"answers":[],"completedAt":"2026-11-26T19:00:00Z","questionnaireVersion":"1","questionnaireId":"kccq","submissionId":"0f8fad5b-d9cb-469f-a165-70867728950e"}"#).unwrap();
        assert_eq!(a.body_hash(), b.body_hash());
        // Pinned: stored submissions keep their hash across releases, and a
        // changed canonical form would turn every later replay into a 409.
        assert_eq!(a.body_hash(), "3ea833a314657214a2164123cf86306ef3ae3b19b9380dba6bcb335ff860f31c");
        let _ = Item {
            link_id: String::new(),
            item_type: ItemType::Boolean,
            min: None,
            max: None,
            options: None,
            required: false,
            max_length: None,
        };
    }
}
