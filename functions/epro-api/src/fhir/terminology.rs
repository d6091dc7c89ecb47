//! The codes read: LOINC and SNOMED CT as NHS England's FHIR-NEWS2 guidance
//! codes the NEWS2 parameters, and the coded elements that carry them.

use serde::Deserialize;
use trialwatch::vitals::VitalCode;

use super::element;

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Coding {
    #[serde(default)]
    pub(super) system: Option<String>,
    #[serde(default)]
    pub(super) code: Option<String>,
}
element!(Coding, unread: ["display", "version", "userSelected", "id", "extension"]);

#[derive(Debug, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CodeableConcept {
    #[serde(default)]
    pub(super) coding: Vec<Coding>,
}
element!(CodeableConcept, unread: ["text", "id", "extension"]);

pub(super) const LOINC: &str = "http://loinc.org";
pub(super) const SNOMED: &str = "http://snomed.info/sct";

/// What an Observation's (or a component's) code means here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Meaning {
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
pub(super) fn meaning(system: Option<&str>, code: &str) -> Option<Meaning> {
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
pub(super) fn acvpu(code: &str) -> Option<&'static str> {
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
    pub(super) fn meaning(&self) -> Result<Option<Meaning>, ()> {
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
