//! FHIR R4 inputs (`application/fhir+json`), mapped onto the native requests
//! so validation, hashing and storage have one path.
//!
//! - QuestionnaireResponse -> [`SubmissionRequest`]: `identifier.value` (or
//!   `id`) is the submission id, `questionnaire` is the canonical
//!   `…/{id}|{version}`, `authored` is completedAt, items (nested groups
//!   flattened) give `linkId` and one `answer.value[x]` each.
//! - Observation, or a Bundle of them, coded by LOINC or SNOMED CT as NHS
//!   England's FHIR-NEWS2 guidance codes them -> [`ReadingInput`]s (see
//!   [`meaning`] for every code read).
//!
//! `subject`, where given, must name the patient of the path (see
//! [`check_subject`]). Elements that carry no meaning here (`meta`, `text`,
//! `performer`, ...) are accepted and ignored; anything else, including
//! `modifierExtension`, which a receiver must understand or refuse, is 422.

use serde::de::IgnoredAny;
use serde::Deserialize;
use trialwatch::submission::{AnswerInput, SubmissionRequest};
use trialwatch::validation::Validator;
use trialwatch::vitals::{ReadingInput, VitalCode};
use trialwatch::{Error, PatientId};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
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
    meta: Option<IgnoredAny>,
    #[serde(default)]
    implicit_rules: Option<IgnoredAny>,
    #[serde(default)]
    language: Option<IgnoredAny>,
    #[serde(default)]
    text: Option<IgnoredAny>,
    #[serde(default)]
    contained: Option<IgnoredAny>,
    #[serde(default)]
    extension: Option<IgnoredAny>,
    #[serde(default)]
    based_on: Option<IgnoredAny>,
    #[serde(default)]
    part_of: Option<IgnoredAny>,
    #[serde(default)]
    subject: Option<Reference>,
    #[serde(default)]
    encounter: Option<IgnoredAny>,
    #[serde(default)]
    author: Option<IgnoredAny>,
    #[serde(default)]
    source: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
struct Identifier {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    system: Option<IgnoredAny>,
    #[serde(default)]
    r#use: Option<IgnoredAny>,
    #[serde(default, rename = "type")]
    kind: Option<IgnoredAny>,
    #[serde(default)]
    period: Option<IgnoredAny>,
    #[serde(default)]
    assigner: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
struct QrItem {
    link_id: String,
    #[serde(default)]
    answer: Vec<QrAnswer>,
    #[serde(default)]
    item: Vec<QrItem>,
    #[serde(default)]
    id: Option<IgnoredAny>,
    #[serde(default)]
    definition: Option<IgnoredAny>,
    #[serde(default)]
    text: Option<IgnoredAny>,
    #[serde(default)]
    extension: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
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
    #[serde(default)]
    item: Option<IgnoredAny>,
    #[serde(default)]
    id: Option<IgnoredAny>,
    #[serde(default)]
    extension: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
struct Coding {
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    display: Option<IgnoredAny>,
    #[serde(default)]
    version: Option<IgnoredAny>,
    #[serde(default)]
    user_selected: Option<IgnoredAny>,
    #[serde(default)]
    id: Option<IgnoredAny>,
    #[serde(default)]
    extension: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
struct Reference {
    #[serde(default)]
    reference: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<IgnoredAny>,
    #[serde(default)]
    identifier: Option<IgnoredAny>,
    #[serde(default)]
    display: Option<IgnoredAny>,
    #[serde(default)]
    id: Option<IgnoredAny>,
    #[serde(default)]
    extension: Option<IgnoredAny>,
}

/// A resource about another patient must never be filed under the patient of
/// the path. `subject`, when present, is `Patient/{patientId}` or an absolute
/// URL ending in it (optionally versioned, `…/_history/{v}`).
///
/// An absent subject is accepted: the path names the patient and the caller
/// was authorised for exactly that patient, so the resource cannot be filed
/// elsewhere, and many devices send none. A subject given only as an
/// identifier or display is refused: it cannot be checked against the path.
fn check_subject(subject: Option<&Reference>, patient: &PatientId, p: &str, v: &mut Validator) {
    let Some(subject) = subject else { return };
    let field = prefixed(p, "subject.reference");
    match subject.reference.as_deref() {
        Some(r) if names_patient(r, patient) => {}
        Some(_) => v.error(field, format!("names another patient: must be Patient/{patient}, the patient of the path")),
        None => v.error(field, format!("is required when subject is given: Patient/{patient}")),
    }
}

fn names_patient(reference: &str, patient: &PatientId) -> bool {
    let unversioned = reference.split_once("/_history/").map_or(reference, |(r, _)| r);
    let relative = format!("Patient/{patient}");
    unversioned == relative
        || (unversioned.strip_suffix(relative.as_str()).is_some_and(|base| base.ends_with('/'))
            && (unversioned.starts_with("https://") || unversioned.starts_with("http://")))
}

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
        v.finish(SubmissionRequest { submission_id, questionnaire_id, questionnaire_version, completed_at, answers })
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
struct Bundle {
    #[serde(default)]
    resource_type: Option<IgnoredAny>,
    #[serde(default)]
    entry: Vec<BundleEntry>,
    #[serde(default, rename = "type")]
    kind: Option<IgnoredAny>,
    #[serde(default)]
    id: Option<IgnoredAny>,
    #[serde(default)]
    meta: Option<IgnoredAny>,
    #[serde(default)]
    identifier: Option<IgnoredAny>,
    #[serde(default)]
    timestamp: Option<IgnoredAny>,
    #[serde(default)]
    total: Option<IgnoredAny>,
    #[serde(default)]
    link: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
struct BundleEntry {
    resource: serde_json::Value,
    #[serde(default)]
    full_url: Option<IgnoredAny>,
    #[serde(default)]
    request: Option<IgnoredAny>,
    #[serde(default)]
    search: Option<IgnoredAny>,
    #[serde(default)]
    link: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
struct Observation {
    #[serde(default)]
    resource_type: Option<IgnoredAny>,
    #[serde(default)]
    id: Option<String>,
    status: String,
    code: CodeableConcept,
    #[serde(default)]
    effective_date_time: Option<String>,
    #[serde(default)]
    effective_instant: Option<String>,
    #[serde(default)]
    value_quantity: Option<Quantity>,
    #[serde(default)]
    value_boolean: Option<bool>,
    #[serde(default)]
    value_codeable_concept: Option<CodeableConcept>,
    #[serde(default)]
    component: Vec<Component>,
    #[serde(default)]
    meta: Option<IgnoredAny>,
    #[serde(default)]
    text: Option<IgnoredAny>,
    #[serde(default)]
    identifier: Option<IgnoredAny>,
    #[serde(default)]
    category: Option<IgnoredAny>,
    #[serde(default)]
    subject: Option<Reference>,
    #[serde(default)]
    device: Option<IgnoredAny>,
    #[serde(default)]
    issued: Option<IgnoredAny>,
    #[serde(default)]
    performer: Option<IgnoredAny>,
    #[serde(default)]
    method: Option<IgnoredAny>,
    #[serde(default)]
    interpretation: Option<IgnoredAny>,
    #[serde(default)]
    note: Option<IgnoredAny>,
    #[serde(default)]
    body_site: Option<IgnoredAny>,
    #[serde(default)]
    encounter: Option<IgnoredAny>,
    #[serde(default)]
    extension: Option<IgnoredAny>,
    #[serde(default)]
    language: Option<IgnoredAny>,
    #[serde(default)]
    based_on: Option<IgnoredAny>,
    #[serde(default)]
    part_of: Option<IgnoredAny>,
    #[serde(default)]
    reference_range: Option<IgnoredAny>,
    #[serde(default)]
    derived_from: Option<IgnoredAny>,
    #[serde(default)]
    has_member: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
struct Component {
    code: CodeableConcept,
    #[serde(default)]
    value_quantity: Option<Quantity>,
    #[serde(default)]
    interpretation: Option<IgnoredAny>,
    #[serde(default)]
    reference_range: Option<IgnoredAny>,
    #[serde(default)]
    extension: Option<IgnoredAny>,
    #[serde(default)]
    id: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
struct CodeableConcept {
    #[serde(default)]
    coding: Vec<Coding>,
    #[serde(default)]
    text: Option<IgnoredAny>,
    #[serde(default)]
    id: Option<IgnoredAny>,
    #[serde(default)]
    extension: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // elements read only to be accepted: deny_unknown_fields then refuses just the rest
struct Quantity {
    #[serde(default)]
    value: Option<serde_json::Number>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    system: Option<IgnoredAny>,
    #[serde(default)]
    comparator: Option<IgnoredAny>,
    #[serde(default)]
    id: Option<IgnoredAny>,
    #[serde(default)]
    extension: Option<IgnoredAny>,
}

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";

/// What an Observation's (or a component's) code means here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    /// A numeric vital in `valueQuantity`.
    Quantity(VitalCode),
    /// The blood pressure panel: systolic and diastolic as components.
    BloodPressurePanel,
    /// "Air or oxygen", a code-only observation: the code is the value.
    AirOrOxygen { on_oxygen: bool },
    /// ACVPU, its level in `valueCodeableConcept`.
    Acvpu,
}

/// The codes read, as NHS England's FHIR-NEWS2 guidance gives them
/// (https://nhsconnect.github.io/FHIR-NEWS2/, "Explore"): each parameter's
/// LOINC "magic code" from the HL7 vital-signs profile and its SNOMED CT
/// equivalent, which the guidance requires side by side.
/// - respiratory rate: LOINC 9279-1, SNOMED 86290005 (news2_respiratoryrate_guidance)
/// - SpO2: LOINC 59408-5 (and the plain 2708-6), SNOMED 103228002 (news2_oxygensaturation_guidance)
/// - air or oxygen: SNOMED 722742002 "Breathing room air", 371825009 "Patient on oxygen",
///   code-only (news2_inspiredoxygen_guidance, ValueSet CareConnect-InspiredOxygen-1)
/// - blood pressure panel: LOINC 85354-9, SNOMED 75367002; systolic 8480-6 / 72313002,
///   diastolic 8462-4 / 1091811000000102 (news2_bloodpressure_guidance)
/// - pulse: LOINC 8867-4, SNOMED 364075005 heart rate, or 78564009 pulse rate (news2_pulserate_guidance)
/// - ACVPU: SNOMED 1104441000000107 (news2_acvpu_guidance), level in valueCodeableConcept ([`acvpu`])
/// - temperature: LOINC 8310-5, SNOMED 276885007 (news2_bodytemperature_guidance)
///
/// A coding without a system is read as LOINC, as before SNOMED was read.
fn meaning(system: Option<&str>, code: &str) -> Option<Meaning> {
    use Meaning::*;
    match (system.unwrap_or(LOINC), code) {
        (LOINC, "9279-1") | (SNOMED, "86290005") => Some(Quantity(VitalCode::RespiratoryRate)),
        (LOINC, "2708-6" | "59408-5") | (SNOMED, "103228002") => Some(Quantity(VitalCode::Spo2)),
        (LOINC, "8867-4") | (SNOMED, "364075005" | "78564009") => Some(Quantity(VitalCode::HeartRate)),
        (LOINC, "8310-5") | (SNOMED, "276885007") => Some(Quantity(VitalCode::Temperature)),
        (LOINC, "8480-6") | (SNOMED, "72313002") => Some(Quantity(VitalCode::SystolicBp)),
        (LOINC, "8462-4") | (SNOMED, "1091811000000102") => Some(Quantity(VitalCode::DiastolicBp)),
        (LOINC, "85354-9") | (SNOMED, "75367002") => Some(BloodPressurePanel),
        (SNOMED, "722742002") => Some(AirOrOxygen { on_oxygen: false }),
        (SNOMED, "371825009") => Some(AirOrOxygen { on_oxygen: true }),
        (SNOMED, "1104441000000107") => Some(Acvpu),
        _ => None,
    }
}

/// ACVPU levels (ValueSet CareConnect-ACVPU-1, referenced by news2_acvpu_guidance).
fn acvpu(code: &str) -> Option<&'static str> {
    match code {
        "248234008" => Some("A"), // Mentally alert
        "130987000" => Some("C"), // Acute confusion
        "300202002" => Some("V"), // Responds to voice
        "450847001" => Some("P"), // Responds to pain
        "422768004" => Some("U"), // Unresponsive
        _ => None,
    }
}

impl CodeableConcept {
    /// The one meaning of the codings read (others, such as a refined SNOMED
    /// code sent beside the magic code, are ignored). `Err` when recognised
    /// codings contradict each other.
    fn meaning(&self) -> Result<Option<Meaning>, ()> {
        let mut found = None;
        for m in self.coding.iter().filter_map(|c| meaning(c.system.as_deref(), c.code.as_deref()?)) {
            match found {
                Some(f) if f != m => return Err(()),
                _ => found = Some(m),
            }
        }
        Ok(found)
    }
}

/// A reading taken from FHIR, with the JSON path of its value (`valueQuantity`,
/// `valueCodeableConcept`, or `code` for a code-only observation), so an error
/// names e.g. `…valueQuantity.value`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedReading {
    pub path: String,
    pub input: ReadingInput,
}

/// Readings from an Observation, or a Bundle whose entries are Observations,
/// about `patient` (the path's).
pub fn readings(resource: serde_json::Value, patient: &PatientId) -> Result<Vec<SourcedReading>, Error> {
    let mut v = Validator::new();
    let mut out = Vec::new();
    match resource_type(&resource) {
        Some("Observation") => crate::body::decode_value::<Observation>(resource)?.readings("", patient, &mut out, &mut v),
        Some("Bundle") => {
            for (i, e) in crate::body::decode_value::<Bundle>(resource)?.entry.into_iter().enumerate() {
                let p = format!("entry[{i}].resource");
                if resource_type(&e.resource) != Some("Observation") {
                    v.error(format!("{p}.resourceType"), "must be Observation");
                    continue;
                }
                match crate::body::decode_value::<Observation>(e.resource) {
                    Ok(o) => o.readings(&p, patient, &mut out, &mut v),
                    Err(Error::Validation(errs)) => errs.into_iter().for_each(|fe| v.error(prefixed(&p, &fe.field), fe.message)),
                    Err(_) => v.error(p, "is not an Observation"),
                }
            }
        }
        _ => v.error("resourceType", "must be Observation or Bundle"),
    }
    v.finish(out)
}

fn resource_type(v: &serde_json::Value) -> Option<&str> {
    v.get("resourceType").and_then(|t| t.as_str())
}

fn prefixed(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{field}"),
    }
}

impl Observation {
    fn readings(self, p: &str, patient: &PatientId, out: &mut Vec<SourcedReading>, v: &mut Validator) {
        check_subject(self.subject.as_ref(), patient, p, v);
        if !matches!(self.status.as_str(), "final" | "amended" | "corrected" | "preliminary") {
            v.error(prefixed(p, "status"), "must be final, amended, corrected or preliminary");
            return;
        }
        let Some(observed_at) = self.effective_date_time.clone().or(self.effective_instant.clone()) else {
            v.error(prefixed(p, "effectiveDateTime"), "is required");
            return;
        };
        let reading_id =
            |suffix: &str| self.id.as_ref().map(|id| format!("{id}{suffix}")).filter(|id| trialwatch::ids::check_safe_id(id).is_ok());
        let reading = |code: VitalCode, value: serde_json::Value, suffix: &str| ReadingInput {
            reading_id: reading_id(suffix),
            code,
            value,
            unit: None,
            observed_at: observed_at.clone(),
        };
        let meaning = match self.code.meaning() {
            Ok(Some(m)) => m,
            Ok(None) => {
                v.error(prefixed(p, "code"), "unsupported code; see the API documentation for the LOINC and SNOMED CT codes read");
                return;
            }
            Err(()) => {
                v.error(prefixed(p, "code"), "its codings name different parameters");
                return;
            }
        };
        match meaning {
            Meaning::BloodPressurePanel => {
                let mut found = false;
                for (ci, c) in self.component.iter().enumerate() {
                    let cp = prefixed(p, &format!("component[{ci}]"));
                    let vital = match c.code.meaning() {
                        Ok(Some(Meaning::Quantity(vital @ (VitalCode::SystolicBp | VitalCode::DiastolicBp)))) => vital,
                        _ => continue,
                    };
                    found = true;
                    let suffix = if vital == VitalCode::SystolicBp { ".sys" } else { ".dia" };
                    if let Some(input) = quantity_reading(vital, c.value_quantity.as_ref(), reading_id(suffix), &observed_at, &cp, v) {
                        out.push(SourcedReading { path: prefixed(&cp, "valueQuantity"), input });
                    }
                }
                if !found {
                    v.error(
                        prefixed(p, "component"),
                        "a blood pressure panel needs systolic (8480-6 / 72313002) and/or diastolic (8462-4 / 1091811000000102) components",
                    );
                }
            }
            Meaning::Quantity(vital) => {
                if let Some(input) = quantity_reading(vital, self.value_quantity.as_ref(), reading_id(""), &observed_at, p, v) {
                    out.push(SourcedReading { path: prefixed(p, "valueQuantity"), input });
                }
            }
            Meaning::AirOrOxygen { on_oxygen } => {
                // The guidance's profile has no value: a value here could only
                // contradict the code.
                let values = [
                    ("valueQuantity", self.value_quantity.is_some()),
                    ("valueBoolean", self.value_boolean.is_some()),
                    ("valueCodeableConcept", self.value_codeable_concept.is_some()),
                ];
                if let Some((field, _)) = values.iter().find(|(_, present)| *present) {
                    v.error(prefixed(p, field), "air or oxygen is a code-only observation: 722742002 room air, 371825009 on oxygen");
                    return;
                }
                let input = reading(VitalCode::SupplementalOxygen, serde_json::Value::Bool(on_oxygen), "");
                out.push(SourcedReading { path: prefixed(p, "code"), input });
            }
            Meaning::Acvpu => {
                let field = prefixed(p, "valueCodeableConcept");
                let level = self.value_codeable_concept.as_ref().and_then(|c| {
                    c.coding.iter().filter(|c| c.system.as_deref().is_none_or(|s| s == SNOMED)).find_map(|c| acvpu(c.code.as_deref()?))
                });
                match level {
                    Some(level) => out.push(SourcedReading {
                        path: field,
                        input: reading(VitalCode::Consciousness, serde_json::Value::String(level.to_owned()), ""),
                    }),
                    None => v.error(
                        field,
                        "must be a SNOMED CT ACVPU level: 248234008 (A), 130987000 (C), 300202002 (V), 450847001 (P), 422768004 (U)",
                    ),
                }
            }
        }
    }
}

fn quantity_reading(
    code: VitalCode,
    q: Option<&Quantity>,
    reading_id: Option<String>,
    observed_at: &str,
    p: &str,
    v: &mut Validator,
) -> Option<ReadingInput> {
    let Some(value) = q.and_then(|q| q.value.as_ref()).and_then(|n| n.as_f64()) else {
        v.error(prefixed(p, "valueQuantity.value"), "is required");
        return None;
    };
    let unit = q.and_then(|q| q.code.as_deref().or(q.unit.as_deref())).unwrap_or(code.unit());
    let value = match (code, unit) {
        // Devices report Fahrenheit often enough to convert rather than refuse.
        (VitalCode::Temperature, "[degF]" | "degF" | "°F") => (value - 32.0) * 5.0 / 9.0,
        _ => value,
    };
    let canonical = match unit {
        "/min" | "{beats}/min" | "{breaths}/min" | "beats/min" | "breaths/min" | "bpm" => "/min",
        "mm[Hg]" | "mmHg" => "mm[Hg]",
        "Cel" | "°C" | "[degF]" | "degF" | "°F" => "Cel",
        other => other,
    };
    if canonical != code.unit() {
        v.error(prefixed(p, "valueQuantity.code"), format!("must be '{}' for {}", code.unit(), code.as_str()));
        return None;
    }
    Some(ReadingInput {
        reading_id,
        code,
        value: serde_json::Number::from_f64(value).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null),
        unit: Some(canonical.to_owned()),
        observed_at: observed_at.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p0001() -> PatientId {
        PatientId::parse("P0001").unwrap()
    }

    fn readings(v: serde_json::Value) -> Result<Vec<SourcedReading>, Error> {
        super::readings(v, &p0001())
    }

    fn obs(code: &str, value: f64, unit: &str) -> serde_json::Value {
        json!({"resourceType": "Observation", "id": "obs-1", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
               "subject": {"reference": "Patient/P0001"},
               "effectiveDateTime": "2026-11-26T19:59:00Z",
               "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
    }

    #[test]
    fn each_loinc_code_maps_to_its_vital() {
        for (loinc, vital, unit) in [
            ("9279-1", VitalCode::RespiratoryRate, "/min"),
            ("2708-6", VitalCode::Spo2, "%"),
            ("59408-5", VitalCode::Spo2, "%"),
            ("8867-4", VitalCode::HeartRate, "/min"),
            ("8310-5", VitalCode::Temperature, "Cel"),
            ("8480-6", VitalCode::SystolicBp, "mm[Hg]"),
        ] {
            let r = readings(obs(loinc, 42.0, unit)).unwrap();
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].input.code, vital, "{loinc}");
            assert_eq!(r[0].input.value, json!(42.0));
            assert_eq!(r[0].input.reading_id.as_deref(), Some("obs-1"));
        }
    }

    #[test]
    fn each_snomed_code_of_the_news2_guidance_maps_to_its_vital() {
        for (snomed, vital, unit) in [
            ("86290005", VitalCode::RespiratoryRate, "/min"),
            ("103228002", VitalCode::Spo2, "%"),
            ("364075005", VitalCode::HeartRate, "/min"),
            ("78564009", VitalCode::HeartRate, "/min"),
            ("276885007", VitalCode::Temperature, "Cel"),
            ("72313002", VitalCode::SystolicBp, "mm[Hg]"),
        ] {
            let mut o = obs("", 42.0, unit);
            o["code"] = json!({"coding": [{"system": "http://snomed.info/sct", "code": snomed}]});
            let r = readings(o).unwrap();
            assert_eq!(r[0].input.code, vital, "{snomed}");
        }
    }

    #[test]
    fn a_snomed_blood_pressure_panel_and_its_components_are_read() {
        let sct = |code: &str| json!({"coding": [{"system": "http://snomed.info/sct", "code": code}]});
        let panel = json!({"resourceType": "Observation", "id": "bp-2", "status": "final", "code": sct("75367002"),
            "effectiveDateTime": "2026-11-26T19:59:00Z", "component": [
                {"code": sct("72313002"), "valueQuantity": {"value": 128, "code": "mm[Hg]"}},
                {"code": sct("1091811000000102"), "valueQuantity": {"value": 82, "code": "mm[Hg]"}}]});
        let codes: Vec<_> = readings(panel).unwrap().iter().map(|r| r.input.code).collect();
        assert_eq!(codes, [VitalCode::SystolicBp, VitalCode::DiastolicBp]);
    }

    #[test]
    fn codings_naming_different_parameters_are_refused() {
        let mut o = obs("8867-4", 70.0, "/min");
        o["code"]["coding"].as_array_mut().unwrap().push(json!({"system": "http://snomed.info/sct", "code": "276885007"}));
        let Err(Error::Validation(errs)) = readings(o) else { panic!("expected 422") };
        assert_eq!(errs[0].field, "code");
        // AND a SNOMED code is not read without its system (a system-less coding is LOINC)
        let mut o = obs("", 70.0, "/min");
        o["code"] = json!({"coding": [{"code": "364075005"}]});
        assert!(readings(o).is_err());
    }

    #[test]
    fn a_subject_is_the_paths_patient_relative_absolute_or_versioned() {
        let p = p0001();
        for ok in ["Patient/P0001", "https://fhir.example.nhs.uk/R4/Patient/P0001", "Patient/P0001/_history/3"] {
            assert!(names_patient(ok, &p), "{ok}");
        }
        for other in ["Patient/P0002", "Patient/P00012", "XPatient/P0001", "urn:x/Patient/P0001", "#P0001", "Patient/p0001", ""] {
            assert!(!names_patient(other, &p), "{other}");
        }
    }

    #[test]
    fn a_blood_pressure_panel_gives_systolic_and_diastolic() {
        let panel = json!({"resourceType": "Observation", "id": "bp-1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "effectiveDateTime": "2026-11-26T19:59:00Z",
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 128, "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": 82, "unit": "mmHg"}}
        ]});
        let r = readings(panel).unwrap();
        let got: Vec<_> = r.iter().map(|r| (r.input.code, r.input.value.clone(), r.input.reading_id.clone().unwrap())).collect();
        assert_eq!(
            got,
            vec![
                (VitalCode::SystolicBp, json!(128.0), "bp-1.sys".to_owned()),
                (VitalCode::DiastolicBp, json!(82.0), "bp-1.dia".to_owned())
            ]
        );
    }

    #[test]
    fn a_bundle_names_the_entry_at_fault() {
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": obs("8867-4", 70.0, "/min")},
            {"resource": obs("1234-5", 1.0, "/min")},
            {"resource": {"resourceType": "Patient"}}
        ]});
        let Err(Error::Validation(errs)) = readings(bundle) else { panic!("expected 422") };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["entry[1].resource.code", "entry[2].resource.resourceType"]);
    }

    #[test]
    fn fahrenheit_is_converted_and_a_wrong_unit_is_named() {
        let r = readings(obs("8310-5", 98.6, "[degF]")).unwrap();
        assert!((r[0].input.value.as_f64().unwrap() - 37.0).abs() < 1e-9);
        let Err(Error::Validation(errs)) = readings(obs("8867-4", 70.0, "%")) else { panic!("expected 422") };
        assert_eq!(errs[0].field, "valueQuantity.code");
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

    #[test]
    fn a_modifier_extension_is_refused() {
        let mut o = obs("8867-4", 70.0, "/min");
        o["modifierExtension"] = json!([{"url": "x"}]);
        assert!(matches!(readings(o), Err(Error::Validation(_))));
    }
}
