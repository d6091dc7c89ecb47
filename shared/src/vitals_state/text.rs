//! The JSON text of a state item's `latest` and `news2` ([`super::json_text`]), written by
//! hand: the bytes `serde_json::to_string` writes (property tests hold them equal), without
//! serde_json's escaping scan of every name and string and chrono's formatter. They were
//! about a third of a state write's instructions (issue 16). Every name and enum value
//! written is a fixed ASCII identifier and a time's text is digits and punctuation, so
//! nothing needs escaping; numbers go through serde_json's own formatter.

use chrono::{DateTime, Utc};

use crate::news2::News2Result;
use crate::vitals::{LatestVitals, VitalValue};

/// `serde_json::to_string(latest)`.
pub(super) fn latest(latest: &LatestVitals) -> String {
    let mut out = Vec::with_capacity(16 + 72 * latest.len());
    out.push(b'{');
    for (i, (code, o)) in latest.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        name(&mut out, code.as_str());
        out.push(b':');
        out.extend_from_slice(b"{\"value\":");
        value(&mut out, &o.value);
        out.extend_from_slice(b",\"observedAt\":");
        time(&mut out, o.observed_at);
        out.push(b'}');
    }
    out.push(b'}');
    text(out)
}

/// `serde_json::to_string(result)`.
pub(super) fn news2(result: &News2Result) -> String {
    let mut out = Vec::with_capacity(128 + 96 * result.components.len() + 24 * result.missing.len());
    out.extend_from_slice(b"{\"score\":");
    number(&mut out, result.score);
    out.extend_from_slice(b",\"riskLevel\":");
    name(&mut out, result.risk_level.as_str());
    out.extend_from_slice(b",\"components\":[");
    for (i, c) in result.components.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"parameter\":");
        name(&mut out, c.parameter.as_str());
        out.extend_from_slice(b",\"value\":");
        value(&mut out, &c.value);
        out.extend_from_slice(b",\"score\":");
        number(&mut out, c.score);
        out.extend_from_slice(b",\"observedAt\":");
        time(&mut out, c.observed_at);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"missing\":[");
    for (i, p) in result.missing.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        name(&mut out, p.as_str());
    }
    out.extend_from_slice(b"],\"observedAt\":");
    match result.observed_at {
        Some(t) => time(&mut out, t),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    text(out)
}

/// A fixed identifier (a code, a level, a parameter): ASCII letters, digits, `_` and `-`.
fn name(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'), "{s} needs no escaping");
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

fn time(out: &mut Vec<u8>, t: DateTime<Utc>) {
    out.push(b'"');
    crate::timestamp::extend_serde(out, t);
    out.push(b'"');
}

/// A score (0-255) in decimal.
fn number(out: &mut Vec<u8>, n: u8) {
    if n >= 100 {
        out.push(b'0' + n / 100);
    }
    if n >= 10 {
        out.push(b'0' + n / 10 % 10);
    }
    out.push(b'0' + n % 10);
}

/// An untagged `VitalValue` as serde_json writes it: a float (`16.0`; `null` when not
/// finite), a bool, or an ACVPU letter.
fn value(out: &mut Vec<u8>, v: &VitalValue) {
    match v {
        // A whole number (most vital values: 72 beats, 16 breaths) is its digits and `.0`, as
        // serde_json writes it; -0 and large or fractional values take serde_json's formatter.
        VitalValue::Number(x) if x.fract() == 0.0 && x.abs() < 1e9 && !(*x == 0.0 && x.is_sign_negative()) => {
            if *x < 0.0 {
                out.push(b'-');
            }
            let mut n = x.abs() as u32;
            let mut digits = [0u8; 10];
            let mut at = digits.len();
            loop {
                at -= 1;
                digits[at] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            out.extend_from_slice(&digits[at..]);
            out.extend_from_slice(b".0");
        }
        VitalValue::Number(x) => serde_json::to_writer(&mut *out, x).expect("writing into memory does not fail"),
        VitalValue::Flag(true) => out.extend_from_slice(b"true"),
        VitalValue::Flag(false) => out.extend_from_slice(b"false"),
        VitalValue::Avpu(a) => name(out, a.as_str()),
    }
}

fn text(out: Vec<u8>) -> String {
    String::from_utf8(out).expect("identifiers, digits and serde_json's number text are UTF-8")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::news2::{Component, Parameter, RiskLevel};
    use crate::vitals::{Avpu, Observation, VitalCode};

    fn value() -> impl Strategy<Value = VitalValue> {
        prop_oneof![
            any::<f64>().prop_map(VitalValue::Number),
            (0u32..400).prop_map(|n| VitalValue::Number(f64::from(n))),
            (-1_100_000_000i64..1_100_000_000).prop_map(|n| VitalValue::Number(n as f64)),
            (-1e10f64..1e10).prop_map(|x| VitalValue::Number(x.trunc())),
            Just(VitalValue::Number(999_999_999.0)),
            Just(VitalValue::Number(-1_000_000_000.0)),
            (0.0f64..400.0).prop_map(VitalValue::Number),
            Just(VitalValue::Number(-0.0)),
            Just(VitalValue::Number(f64::NAN)),
            any::<bool>().prop_map(VitalValue::Flag),
            (0usize..5).prop_map(|i| VitalValue::Avpu([Avpu::A, Avpu::C, Avpu::V, Avpu::P, Avpu::U][i])),
        ]
    }

    /// Years from about -10,700 to 14,600 (outside 0-9999 chrono writes them itself), every precision.
    fn time() -> impl Strategy<Value = DateTime<Utc>> {
        (
            prop_oneof![-400_000_000_000i64..400_000_000_000, 1_700_000_000i64..1_900_000_000],
            prop_oneof![
                Just(0u32),
                (0u32..1000).prop_map(|m| m * 1_000_000),
                (0u32..1_000_000).prop_map(|u| u * 1000),
                0u32..1_000_000_000
            ],
        )
            .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).unwrap())
    }

    fn parameter() -> impl Strategy<Value = Parameter> {
        (0usize..Parameter::ALL.len()).prop_map(|i| Parameter::ALL[i])
    }

    fn latest() -> impl Strategy<Value = LatestVitals> {
        proptest::collection::btree_map(
            (0usize..VitalCode::ALL.len()).prop_map(|i| VitalCode::ALL[i]),
            (value(), time()).prop_map(|(value, observed_at)| Observation { value, observed_at }),
            0..9,
        )
    }

    fn result() -> impl Strategy<Value = News2Result> {
        let component = (parameter(), value(), any::<u8>(), time()).prop_map(|(parameter, value, score, observed_at)| Component {
            parameter,
            value,
            score,
            observed_at,
        });
        (
            any::<u8>(),
            (0usize..RiskLevel::ALL.len()).prop_map(|i| RiskLevel::ALL[i]),
            proptest::collection::vec(component, 0..8),
            proptest::collection::vec(parameter(), 0..8),
            proptest::option::of(time()),
        )
            .prop_map(|(score, risk_level, components, missing, observed_at)| News2Result {
                score,
                risk_level,
                components,
                missing,
                observed_at,
            })
    }

    proptest! {
        #[test]
        fn the_latest_vitals_text_is_serde_json_s(latest in latest()) {
            prop_assert_eq!(super::latest(&latest), serde_json::to_string(&latest).unwrap());
        }

        #[test]
        fn a_news2_result_text_is_serde_json_s(result in result()) {
            prop_assert_eq!(news2(&result), serde_json::to_string(&result).unwrap());
        }
    }
}
