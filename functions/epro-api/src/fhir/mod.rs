//! FHIR R4 inputs (`application/fhir+json`), mapped onto the native requests
//! so validation, hashing and storage have one path.
//!
//! - [`questionnaire_response`]: QuestionnaireResponse -> `SubmissionRequest`.
//! - [`observation`]: Observation, or a Bundle of them, coded by LOINC or
//!   SNOMED CT as NHS England's FHIR-NEWS2 guidance codes them -> `ReadingInput`s,
//!   through [`terminology`], which holds every code read.
//!
//! `subject`, where given, must name the patient of the path (see
//! [`check_subject`]). Elements that carry no meaning here (`meta`, `text`,
//! `performer`, ...) are accepted and ignored, by name ([`element`]); anything
//! else, including `modifierExtension`, which a receiver must understand or
//! refuse, is 422, as is an array where an element's object belongs.

mod element;
mod observation;
mod questionnaire_response;
mod terminology;

use serde::Deserialize;
use trialwatch::validation::Validator;
use trialwatch::PatientId;

use element::element;
pub use observation::{readings, SourcedReading};
pub use questionnaire_response::QuestionnaireResponse;

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
struct Reference {
    #[serde(default)]
    reference: Option<String>,
}
element!(Reference, unread: ["type", "identifier", "display", "id", "extension"]);

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

fn prefixed(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) => format!("{prefix}.{field}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_the_paths_patient_relative_absolute_or_versioned() {
        let p = PatientId::parse("P0001").unwrap();
        for ok in ["Patient/P0001", "https://fhir.example.nhs.uk/R4/Patient/P0001", "Patient/P0001/_history/3"] {
            assert!(names_patient(ok, &p), "{ok}");
        }
        for other in ["Patient/P0002", "Patient/P00012", "XPatient/P0001", "urn:x/Patient/P0001", "#P0001", "Patient/p0001", ""] {
            assert!(!names_patient(other, &p), "{other}");
        }
    }
}
