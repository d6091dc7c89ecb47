//! Observation, or a Bundle of them, coded as the FHIR-NEWS2 guidance codes
//! the NEWS2 parameters -> [`ReadingInput`]s (see [`super::terminology::meaning`]
//! for every code read).

use serde::Deserialize;
use trialwatch::edge::http::HttpError;
use trialwatch::validation::Validator;
use trialwatch::vitals::{ReadingInput, VitalCode};
use trialwatch::{Error, PatientId};

use super::terminology::{acvpu, CodeableConcept, Meaning, SNOMED};
use super::{check_subject, element, prefixed, Reference};

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
struct Bundle {
    #[serde(default)]
    entry: Vec<BundleEntry>,
}
element!(Bundle, unread: ["resourceType", "type", "id", "meta", "identifier", "timestamp", "total", "link"]);

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
struct BundleEntry {
    resource: serde_json::Value,
}
element!(BundleEntry, unread: ["fullUrl", "request", "search", "link"]);

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
struct Observation {
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
    subject: Option<Reference>,
}
element!(Observation, unread: ["resourceType", "meta", "text", "identifier", "category", "device", "issued", "performer", "method", "interpretation", "note", "bodySite", "encounter", "extension", "language", "basedOn", "partOf", "referenceRange", "derivedFrom", "hasMember"]);

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
struct Component {
    code: CodeableConcept,
    #[serde(default)]
    value_quantity: Option<Quantity>,
}
element!(Component, unread: ["interpretation", "referenceRange", "extension", "id"]);

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
struct Quantity {
    #[serde(default)]
    value: Option<serde_json::Number>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    code: Option<String>,
}
element!(Quantity, unread: ["system", "comparator", "id", "extension"]);

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
pub fn readings(resource: serde_json::Value, patient: &PatientId) -> Result<Vec<SourcedReading>, HttpError> {
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
                    Err(HttpError::Refused(Error::Validation(errs))) => {
                        errs.into_iter().for_each(|fe| v.error(prefixed(&p, &fe.field), fe.message))
                    }
                    Err(_) => v.error(p, "is not an Observation"),
                }
            }
        }
        _ => v.error("resourceType", "must be Observation or Bundle"),
    }
    Ok(v.finish(out)?)
}

fn resource_type(v: &serde_json::Value) -> Option<&str> {
    v.get("resourceType").and_then(|t| t.as_str())
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

    fn readings(v: serde_json::Value) -> Result<Vec<SourcedReading>, HttpError> {
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
        let Err(HttpError::Refused(Error::Validation(errs))) = readings(o) else { panic!("expected 422") };
        assert_eq!(errs[0].field, "code");
        // AND a SNOMED code is not read without its system (a system-less coding is LOINC)
        let mut o = obs("", 70.0, "/min");
        o["code"] = json!({"coding": [{"code": "364075005"}]});
        assert!(readings(o).is_err());
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
        let Err(HttpError::Refused(Error::Validation(errs))) = readings(bundle) else { panic!("expected 422") };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["entry[1].resource.code", "entry[2].resource.resourceType"]);
    }

    #[test]
    fn fahrenheit_is_converted_and_a_wrong_unit_is_named() {
        let r = readings(obs("8310-5", 98.6, "[degF]")).unwrap();
        assert!((r[0].input.value.as_f64().unwrap() - 37.0).abs() < 1e-9);
        let Err(HttpError::Refused(Error::Validation(errs))) = readings(obs("8867-4", 70.0, "%")) else { panic!("expected 422") };
        assert_eq!(errs[0].field, "valueQuantity.code");
    }

    #[test]
    fn a_modifier_extension_is_refused() {
        let mut o = obs("8867-4", 70.0, "/min");
        o["modifierExtension"] = json!([{"url": "x"}]);
        assert!(matches!(readings(o), Err(HttpError::Refused(Error::Validation(_)))));
    }
}
