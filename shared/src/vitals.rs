//! Vital-sign readings as devices send them, their plausibility limits, and the
//! latest-per-parameter state NEWS2 is computed from.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{PatientId, ReadingId, TrialId};
use crate::validation::Validator;

/// At most this many readings per `POST …/vitals`.
pub const MAX_READINGS_PER_REQUEST: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VitalCode {
    RespiratoryRate,
    Spo2,
    SupplementalOxygen,
    SystolicBp,
    DiastolicBp,
    HeartRate,
    Consciousness,
    Temperature,
}

impl VitalCode {
    pub const ALL: [VitalCode; 8] = [
        VitalCode::RespiratoryRate,
        VitalCode::Spo2,
        VitalCode::SupplementalOxygen,
        VitalCode::SystolicBp,
        VitalCode::DiastolicBp,
        VitalCode::HeartRate,
        VitalCode::Consciousness,
        VitalCode::Temperature,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VitalCode::RespiratoryRate => "respiratory_rate",
            VitalCode::Spo2 => "spo2",
            VitalCode::SupplementalOxygen => "supplemental_oxygen",
            VitalCode::SystolicBp => "systolic_bp",
            VitalCode::DiastolicBp => "diastolic_bp",
            VitalCode::HeartRate => "heart_rate",
            VitalCode::Consciousness => "consciousness",
            VitalCode::Temperature => "temperature",
        }
    }

    /// The UCUM unit the value is in; a reading may omit it but not contradict it.
    pub fn unit(self) -> &'static str {
        match self {
            VitalCode::RespiratoryRate | VitalCode::HeartRate => "/min",
            VitalCode::Spo2 => "%",
            VitalCode::SupplementalOxygen | VitalCode::Consciousness => "",
            VitalCode::SystolicBp | VitalCode::DiastolicBp => "mm[Hg]",
            VitalCode::Temperature => "Cel",
        }
    }

    /// Physiologically plausible range of numeric codes; outside it is a device
    /// or entry error, not a patient state, and is refused with 422.
    pub fn plausible_range(self) -> Option<(f64, f64)> {
        match self {
            VitalCode::RespiratoryRate => Some((0.0, 80.0)),
            VitalCode::Spo2 => Some((40.0, 100.0)),
            VitalCode::SystolicBp => Some((40.0, 300.0)),
            VitalCode::DiastolicBp => Some((20.0, 200.0)),
            VitalCode::HeartRate => Some((0.0, 300.0)),
            VitalCode::Temperature => Some((25.0, 45.0)),
            VitalCode::SupplementalOxygen | VitalCode::Consciousness => None,
        }
    }
}

/// ACVPU: alert, new confusion, voice, pain, unresponsive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Avpu {
    A,
    C,
    V,
    P,
    U,
}

impl Avpu {
    /// Its serde name (the variant's), as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Avpu::A => "A",
            Avpu::C => "C",
            Avpu::V => "V",
            Avpu::P => "P",
            Avpu::U => "U",
        }
    }
}

/// Deserialized as `#[serde(untagged)]` would, by hand (see the impl below).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum VitalValue {
    Number(f64),
    Flag(bool),
    Avpu(Avpu),
}

/// What the derived `#[serde(untagged)]` accepts, read in one pass: the
/// derive buffers each value and tries the variants in turn, building an
/// error for each miss, on every reading of every batch. A number is
/// `Number`, a boolean `Flag`, an ACVPU letter (or the externally tagged
/// `{"A": null}` the derive also takes) `Avpu`; anything else is the
/// derive's error. A test holds the two equal over arbitrary JSON.
impl<'de> Deserialize<'de> for VitalValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, Visitor};
        struct Value;
        const NO_MATCH: &str = "data did not match any variant of untagged enum VitalValue";
        fn avpu<E: Error>(s: &str) -> Result<VitalValue, E> {
            Ok(VitalValue::Avpu(match s {
                "A" => Avpu::A,
                "C" => Avpu::C,
                "V" => Avpu::V,
                "P" => Avpu::P,
                "U" => Avpu::U,
                _ => return Err(E::custom(NO_MATCH)),
            }))
        }
        impl<'de> Visitor<'de> for Value {
            type Value = VitalValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, a boolean or an ACVPU letter")
            }
            fn visit_f64<E: Error>(self, x: f64) -> Result<VitalValue, E> {
                Ok(VitalValue::Number(x))
            }
            fn visit_u64<E: Error>(self, x: u64) -> Result<VitalValue, E> {
                Ok(VitalValue::Number(x as f64))
            }
            fn visit_i64<E: Error>(self, x: i64) -> Result<VitalValue, E> {
                Ok(VitalValue::Number(x as f64))
            }
            fn visit_bool<E: Error>(self, b: bool) -> Result<VitalValue, E> {
                Ok(VitalValue::Flag(b))
            }
            fn visit_str<E: Error>(self, s: &str) -> Result<VitalValue, E> {
                avpu(s)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VitalValue, A::Error> {
                // The derive's enum form: exactly one member, a variant name, and a unit value.
                let value = match map.next_key::<std::borrow::Cow<'_, str>>()? {
                    Some(variant) => match map.next_value::<Option<()>>() {
                        Ok(None) => avpu(&variant),
                        _ => Err(A::Error::custom(NO_MATCH)),
                    },
                    None => Err(A::Error::custom(NO_MATCH)),
                };
                let value = value?;
                match map.next_key::<serde::de::IgnoredAny>() {
                    Ok(None) => Ok(value),
                    _ => Err(A::Error::custom(NO_MATCH)),
                }
            }
            fn visit_unit<E: Error>(self) -> Result<VitalValue, E> {
                Err(E::custom(NO_MATCH))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<VitalValue, A::Error> {
                Err(A::Error::custom(NO_MATCH))
            }
        }
        d.deserialize_any(Value)
    }
}

/// A reading as a client sends it (`POST …/vitals`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadingInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading_id: Option<String>,
    pub code: VitalCode,
    pub value: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub observed_at: String,
}

/// A validated reading with a stable id (client's, or derived from content so
/// that a retried reading overwrites itself rather than duplicating).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VitalReading {
    pub reading_id: ReadingId,
    pub code: VitalCode,
    pub value: VitalValue,
    #[serde(serialize_with = "crate::timestamp::serialize", deserialize_with = "crate::timestamp::deserialize")]
    pub observed_at: DateTime<Utc>,
}

impl VitalReading {
    /// Appends the reading's store key within its patient,
    /// `observedAt#code#readingId` (the time as [`crate::timestamp::format`]
    /// writes it, so keys sort by time): both stores key readings by it.
    pub fn push_key(&self, out: &mut String) {
        out.reserve(26 + self.code.as_str().len() + self.reading_id.as_str().len());
        crate::timestamp::push(out, self.observed_at);
        out.push('#');
        out.push_str(self.code.as_str());
        out.push('#');
        out.push_str(self.reading_id.as_str());
    }
}

/// One SQS message on the FIFO vitals queue: readings of one patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VitalsMessage {
    pub trial_id: TrialId,
    pub patient_id: PatientId,
    pub readings: Vec<VitalReading>,
}

impl VitalsMessage {
    /// FIFO MessageGroupId: order is per patient.
    pub fn group_id(&self) -> String {
        format!("{}#{}", self.trial_id, self.patient_id)
    }

    /// FIFO MessageDeduplicationId from content, so a client's retry within
    /// SQS's five-minute window is dropped by SQS itself.
    pub fn dedup_id(&self) -> String {
        let body = serde_json::to_vec(self).unwrap_or_default();
        crate::ids::lower_hex(&Sha256::digest(&body))
    }
}

impl ReadingInput {
    /// Validates one reading; errors are named `{prefix}.field`.
    pub fn validate(&self, prefix: &str, now: DateTime<Utc>, v: &mut Validator) -> Option<VitalReading> {
        let observed_at = v.take(&format!("{prefix}.observedAt"), crate::timestamp::parse_utc(&self.observed_at, now));
        if let Some(u) = &self.unit {
            v.check(u == self.code.unit(), format!("{prefix}.unit"), format!("must be '{}' for {}", self.code.unit(), self.code.as_str()));
        }
        let value = match self.code {
            VitalCode::SupplementalOxygen => match self.value {
                serde_json::Value::Bool(b) => Some(VitalValue::Flag(b)),
                _ => {
                    v.error(format!("{prefix}.value"), "must be true or false");
                    None
                }
            },
            VitalCode::Consciousness => match self.value.as_str() {
                Some("A") => Some(VitalValue::Avpu(Avpu::A)),
                Some("C") => Some(VitalValue::Avpu(Avpu::C)),
                Some("V") => Some(VitalValue::Avpu(Avpu::V)),
                Some("P") => Some(VitalValue::Avpu(Avpu::P)),
                Some("U") => Some(VitalValue::Avpu(Avpu::U)),
                _ => {
                    v.error(format!("{prefix}.value"), "must be one of A, C, V, P, U");
                    None
                }
            },
            code => match self.value.as_f64() {
                // Inside the plausible range yet unstorable: 1e-200 breaths a
                // minute would pass (0..=80) and then fail the analyzer's
                // write of the latest-vitals state, record after record.
                Some(x) if x.is_finite() && !crate::validation::storable_number(x) => {
                    v.error(format!("{prefix}.value"), "magnitude must be below 1e126 and, unless 0, at least 1e-130");
                    None
                }
                Some(x) if x.is_finite() => {
                    let (lo, hi) = code.plausible_range().unwrap_or((f64::MIN, f64::MAX));
                    if (lo..=hi).contains(&x) {
                        Some(VitalValue::Number(x))
                    } else {
                        v.error(format!("{prefix}.value"), format!("implausible {}: must be {lo}-{hi} {}", code.as_str(), code.unit()));
                        None
                    }
                }
                _ => {
                    v.error(format!("{prefix}.value"), "must be a number");
                    None
                }
            },
        };
        let reading_id = match &self.reading_id {
            Some(id) => v.take(&format!("{prefix}.readingId"), ReadingId::parse(id)),
            None => None,
        };
        let (value, observed_at) = (value?, observed_at?);
        let reading_id = match (&self.reading_id, reading_id) {
            (Some(_), Some(id)) => id,
            (Some(_), None) => return None,
            (None, _) => derived_reading_id(self.code, &value, observed_at),
        };
        Some(VitalReading { reading_id, code: self.code, value, observed_at })
    }
}

fn derived_reading_id(code: VitalCode, value: &VitalValue, at: DateTime<Utc>) -> ReadingId {
    let mut h = Sha256::new();
    h.update(code.as_str());
    h.update(serde_json::to_vec(value).unwrap_or_default());
    h.update(at.timestamp_micros().to_le_bytes());
    ReadingId::parse(&format!("r-{}", &crate::ids::lower_hex(&h.finalize())[..32])).expect("hex is a safe id")
}

/// A reading's value and when it was observed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub value: VitalValue,
    #[serde(serialize_with = "crate::timestamp::serialize", deserialize_with = "crate::timestamp::deserialize")]
    pub observed_at: DateTime<Utc>,
}

/// The newest observation of each code.
pub type LatestVitals = BTreeMap<VitalCode, Observation>;

/// Folds readings into the latest-per-code map; an older reading never
/// replaces a newer one, whatever order they arrive in.
pub fn merge_latest(latest: &mut LatestVitals, readings: &[VitalReading]) {
    for r in readings {
        let newer = latest.get(&r.code).is_none_or(|o| r.observed_at >= o.observed_at);
        if newer {
            latest.insert(r.code, Observation { value: r.value, observed_at: r.observed_at });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-26T20:00:00Z".parse().unwrap()
    }

    fn input(code: VitalCode, value: serde_json::Value) -> ReadingInput {
        ReadingInput { reading_id: None, code, value, unit: None, observed_at: "2026-11-26T19:59:00Z".into() }
    }

    #[test]
    fn implausible_values_are_named() {
        let mut v = Validator::new();
        assert!(input(VitalCode::HeartRate, serde_json::json!(301)).validate("readings[3]", now(), &mut v).is_none());
        let errs = v.into_errors();
        assert_eq!(errs[0].field, "readings[3].value");
    }

    #[test]
    fn a_plausible_value_too_small_for_dynamodb_is_refused() {
        // GIVEN a respiratory rate inside the plausible 0-80 but below DynamoDB's 1e-130
        let mut v = Validator::new();
        // WHEN it is validated
        let r = input(VitalCode::RespiratoryRate, serde_json::json!(1e-200)).validate("readings[0]", now(), &mut v);
        // THEN it is refused, naming the value, rather than failing the analyzer's write
        assert!(r.is_none());
        assert_eq!(v.into_errors()[0].field, "readings[0].value");
        let mut v = Validator::new();
        assert!(input(VitalCode::RespiratoryRate, serde_json::json!(0)).validate("r", now(), &mut v).is_some(), "zero is storable");
    }

    #[test]
    fn derived_ids_are_stable_for_the_same_content() {
        let mut v = Validator::new();
        let a = input(VitalCode::Spo2, serde_json::json!(95)).validate("r", now(), &mut v).unwrap();
        let b = input(VitalCode::Spo2, serde_json::json!(95)).validate("r", now(), &mut v).unwrap();
        let c = input(VitalCode::Spo2, serde_json::json!(94)).validate("r", now(), &mut v).unwrap();
        assert_eq!(a.reading_id, b.reading_id);
        assert_ne!(a.reading_id, c.reading_id);
    }

    /// The derive `VitalValue`'s hand-written `Deserialize` replaced.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(untagged)]
    enum Derived {
        Number(f64),
        Flag(bool),
        Avpu(Avpu),
    }

    fn same(json: &str) -> Result<(), String> {
        let ours = serde_json::from_str::<VitalValue>(json).ok();
        let derived = serde_json::from_str::<Derived>(json).ok().map(|d| match d {
            Derived::Number(x) => VitalValue::Number(x),
            Derived::Flag(b) => VitalValue::Flag(b),
            Derived::Avpu(a) => VitalValue::Avpu(a),
        });
        // NaN never comes out of JSON, so equality is exact.
        if ours == derived {
            Ok(())
        } else {
            Err(format!("{json}: ours {ours:?}, derived {derived:?}"))
        }
    }

    #[test]
    fn a_vital_value_reads_as_the_untagged_derive_read_it() {
        for json in [
            "72",
            "-0",
            "98.6",
            "1e400",
            "18446744073709551615",
            "-9223372036854775808",
            "true",
            "false",
            "\"A\"",
            "\"U\"",
            "\"a\"",
            "\"X\"",
            "\"\"",
            "null",
            "[]",
            "[1]",
            "{}",
            "{\"A\":null}",
            "{\"V\":null}",
            "{\"A\":1}",
            "{\"A\":[]}",
            "{\"A\":{}}",
            "{\"A\":null,\"C\":null}",
            "{\"X\":null}",
            "{\"A\":null,\"A\":null}",
            "\"\\u0041\"",
        ] {
            same(json).unwrap();
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(serde_json::Value::from),
            "[ACVPUXa]{0,2}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[ACVPUX]{1}", inner, 0..3)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_json_reads_as_the_untagged_derive_read_it(v in json_value()) {
            same(&v.to_string()).map_err(proptest::test_runner::TestCaseError::fail)?;
        }
    }

    #[test]
    fn an_older_reading_never_replaces_a_newer_one() {
        let mut v = Validator::new();
        let mut newer = input(VitalCode::HeartRate, serde_json::json!(120));
        newer.observed_at = "2026-11-26T19:59:00Z".into();
        let mut older = input(VitalCode::HeartRate, serde_json::json!(70));
        older.observed_at = "2026-11-26T19:00:00Z".into();
        let (n, o) = (newer.validate("a", now(), &mut v).unwrap(), older.validate("b", now(), &mut v).unwrap());
        let mut latest = LatestVitals::new();
        merge_latest(&mut latest, &[n, o]);
        assert_eq!(latest[&VitalCode::HeartRate].value, VitalValue::Number(120.0));
    }
}
