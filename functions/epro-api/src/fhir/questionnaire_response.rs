//! QuestionnaireResponse -> [`SubmissionRequest`]: `identifier.value` (or `id`)
//! is the submission id, `questionnaire` the canonical `…/{id}|{version}`,
//! `authored` completedAt, and items (nested groups flattened) give `linkId` and
//! one `answer.value[x]` each.

use serde::Deserialize;
use trialwatch::submission::{AnswerInput, SubmissionRequest};
use trialwatch::validation::Validator;
use trialwatch::{Error, PatientId};

use super::terminology::Coding;
use super::{check_subject, element, Reference};

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
pub struct QuestionnaireResponse {
    resource_type: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    identifier: Option<Identifier>,
    #[serde(default)]
    questionnaire: Option<String>,
    status: String,
    #[serde(default)]
    authored: Option<String>,
    #[serde(default)]
    item: Vec<QrItem>,
    #[serde(default)]
    subject: Option<Reference>,
}
element!(QuestionnaireResponse, unread: ["meta", "implicitRules", "language", "text", "contained", "extension", "basedOn", "partOf", "encounter", "author", "source"]);

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
struct Identifier {
    #[serde(default)]
    value: Option<String>,
}
element!(Identifier, unread: ["system", "use", "type", "period", "assigner"]);

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
struct QrItem {
    link_id: String,
    #[serde(default)]
    answer: Vec<QrAnswer>,
    #[serde(default)]
    item: Vec<QrItem>,
}
element!(QrItem, unread: ["id", "definition", "text", "extension"]);

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
struct QrAnswer {
    #[serde(default)]
    value_integer: Option<serde_json::Number>,
    #[serde(default)]
    value_decimal: Option<serde_json::Number>,
    #[serde(default)]
    value_boolean: Option<bool>,
    #[serde(default)]
    value_string: Option<String>,
    #[serde(default)]
    value_date: Option<String>,
    #[serde(default)]
    value_date_time: Option<String>,
    #[serde(default)]
    value_time: Option<String>,
    #[serde(default)]
    value_coding: Option<Coding>,
}
element!(QrAnswer, unread: ["item", "id", "extension"]);

impl QuestionnaireResponse {
    /// Maps onto the native request for `patient` (the path's); every
    /// structural problem is reported at once.
    pub fn into_submission(self, patient: &PatientId) -> Result<SubmissionRequest, Error> {
        let mut v = Validator::new();
        v.check(self.resource_type == "QuestionnaireResponse", "resourceType", "must be QuestionnaireResponse");
        check_subject(self.subject.as_ref(), patient, "", &mut v);
        v.check(self.status == "completed", "status", "only a completed QuestionnaireResponse is accepted");
        let submission_id = self.identifier.and_then(|i| i.value).or(self.id);
        v.check(submission_id.is_some(), "identifier.value", "the submission UUID is required (identifier.value or id)");
        v.check(self.authored.is_some(), "authored", "is required");
        // Canonical: `http://…/Questionnaire/{id}|{version}`.
        let reference = self.questionnaire.as_deref().and_then(|c| {
            let (url, version) = c.split_once('|')?;
            let id = url.rsplit('/').next()?;
            (!id.is_empty() && !version.is_empty()).then(|| (id.to_owned(), version.to_owned()))
        });
        v.check(reference.is_some(), "questionnaire", "must be a canonical `…/{id}|{version}`");
        let mut answers = Vec::new();
        flatten(&self.item, "item", &mut answers, &mut v);
        let (Some(submission_id), Some(completed_at), Some((questionnaire_id, questionnaire_version))) =
            (submission_id, self.authored, reference)
        else {
            return Err(Error::Validation(v.into_errors()));
        };
        Ok(v.finish(SubmissionRequest { submission_id, questionnaire_id, questionnaire_version, completed_at, answers })?)
    }
}

fn flatten(items: &[QrItem], path: &str, out: &mut Vec<AnswerInput>, v: &mut Validator) {
    for (i, it) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match it.answer.as_slice() {
            [] => {}
            [a] => match a.value() {
                Some(value) => out.push(AnswerInput { link_id: it.link_id.clone(), value }),
                None => v.error(format!("{p}.answer[0]"), "needs exactly one supported value[x]"),
            },
            _ => v.error(format!("{p}.answer"), "only one answer per item is supported"),
        }
        flatten(&it.item, &format!("{p}.item"), out, v);
    }
}

impl QrAnswer {
    fn value(&self) -> Option<serde_json::Value> {
        use serde_json::Value;
        let mut values = [
            self.value_integer.clone().map(Value::Number),
            self.value_decimal.clone().map(Value::Number),
            self.value_boolean.map(Value::Bool),
            self.value_string.clone().map(Value::String),
            self.value_date.clone().map(Value::String),
            self.value_date_time.clone().map(Value::String),
            self.value_time.clone().map(Value::String),
            // A coded choice: numeric codes score as numbers, as in native JSON.
            self.value_coding.as_ref().and_then(|c| c.code.clone()).map(|code| match code.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(code),
            }),
        ]
        .into_iter()
        .flatten();
        let first = values.next();
        match values.next() {
            None => first,
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p0001() -> PatientId {
        PatientId::parse("P0001").unwrap()
    }

    #[test]
    fn a_questionnaire_response_maps_to_a_submission() {
        let qr = json!({"resourceType": "QuestionnaireResponse", "status": "completed",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        "questionnaire": "https://trialwatch.dev/fhir/Questionnaire/kccq|1",
        "subject": {"reference": "Patient/P0001"}, "authored": "2026-11-26T19:00:00Z",
        "item": [
            {"linkId": "pain", "answer": [{"valueInteger": 7}]},
            {"linkId": "group", "item": [
                {"linkId": "breathless", "answer": [{"valueBoolean": true}]},
                {"linkId": "mood", "answer": [{"valueCoding": {"system": "urn:x", "code": "2"}}]},
                {"linkId": "notes", "answer": [{"valueString": "ok"}]},
                {"linkId": "weight", "answer": [{"valueDecimal": 80.5}]}
            ]}
        ]});
        let s = crate::body::decode::<QuestionnaireResponse>(&serde_json::to_vec(&qr).unwrap()).unwrap().into_submission(&p0001()).unwrap();
        assert_eq!(s.submission_id, "0f8fad5b-d9cb-469f-a165-70867728950e");
        assert_eq!((s.questionnaire_id.as_str(), s.questionnaire_version.as_str()), ("kccq", "1"));
        let answers: Vec<_> = s.answers.iter().map(|a| (a.link_id.as_str(), a.value.clone())).collect();
        assert_eq!(
            answers,
            vec![("pain", json!(7)), ("breathless", json!(true)), ("mood", json!(2)), ("notes", json!("ok")), ("weight", json!(80.5))]
        );
    }

    #[test]
    fn an_unfinished_questionnaire_response_is_refused_with_every_reason() {
        let qr = json!({"resourceType": "QuestionnaireResponse", "status": "in-progress", "questionnaire": "kccq",
            "item": [{"linkId": "pain", "answer": [{"valueInteger": 1}, {"valueInteger": 2}]}]});
        let e =
            crate::body::decode::<QuestionnaireResponse>(&serde_json::to_vec(&qr).unwrap()).unwrap().into_submission(&p0001()).unwrap_err();
        let Error::Validation(errs) = e else { panic!() };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["status", "identifier.value", "authored", "questionnaire", "item[0].answer"]);
    }
}
