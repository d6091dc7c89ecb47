//! NEWS2 (Royal College of Physicians, *National Early Warning Score 2*, 2017):
//! pure scoring of a patient's latest vital signs, no I/O.
//!
//! # Rules this module fixes (each has a test)
//! - **Chart.** Every parameter is scored by its row of the RCP chart; the bands
//!   are in [`score_parameter`]'s helpers, one `match` per row, edges inclusive.
//! - **Rounding.** Devices send real numbers that fall between the chart's bands
//!   (35.05 °C, a pulse of 90.5). The value is first rounded *half away from
//!   zero* to the chart's precision — temperature to 0.1 °C, every other numeric
//!   to an integer — and the rounded value is scored: 35.05 -> 35.1 -> 1,
//!   35.04 -> 35.0 -> 3, pulse 90.5 -> 91 -> 1, 90.49 -> 90 -> 0. Because a
//!   decimal such as 35.05 has no exact binary form (it is stored as
//!   35.04999…), a value within 1e-9 of a chart unit of the half is treated as
//!   the half: the rule follows the decimal the device wrote.
//! - **Freshness.** Wearables send parameters one at a time, so the aggregate
//!   uses each parameter's latest reading observed at or after
//!   `now - freshness` (the trial's window, 60 min by default). An older
//!   reading is *missing*: it scores nothing and is listed in `missing`.
//! - **SpO2 scale 2** applies only to patients enrolled as hypercapnic. "On
//!   oxygen" is read from a fresh `supplemental_oxygen` reading; when that
//!   reading is absent or stale the patient is treated as *on air* (scale 2
//!   then scores ≥93 % as 0), and `AirOrOxygen` is listed as missing so the
//!   reader can see the assumption.
//! - **Not scorable.** A numeric value that is NaN or infinite, or a value of
//!   the wrong kind for its code, cannot come through validation; if one ever
//!   does, the parameter is treated as missing rather than guessed, and the
//!   function never panics.
//! - **Risk level** ([`risk_level`]): high at an aggregate ≥7; medium at 5–6;
//!   low-medium when any single parameter scores 3 and the aggregate is below 5;
//!   low otherwise. A single 3 inside an aggregate of 5 or more is medium/high.
//! - `diastolic_bp` is stored but is not a NEWS2 parameter.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::vitals::{Avpu, LatestVitals, Observation, VitalCode, VitalValue};

/// Clinical risk from the aggregate and single-parameter scores. Ordered, so
/// "rose above the last alerted level" is a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskLevel {
    Low,
    LowMedium,
    Medium,
    High,
}

impl RiskLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::LowMedium => "low-medium",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
    pub const ALL: [RiskLevel; 4] = [RiskLevel::Low, RiskLevel::LowMedium, RiskLevel::Medium, RiskLevel::High];
}

impl std::fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seven NEWS2 chart rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    RespirationRate,
    Spo2,
    AirOrOxygen,
    SystolicBp,
    Pulse,
    Consciousness,
    Temperature,
}

impl Parameter {
    pub const ALL: [Parameter; 7] = [
        Parameter::RespirationRate,
        Parameter::Spo2,
        Parameter::AirOrOxygen,
        Parameter::SystolicBp,
        Parameter::Pulse,
        Parameter::Consciousness,
        Parameter::Temperature,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Parameter::RespirationRate => "respiration_rate",
            Parameter::Spo2 => "spo2",
            Parameter::AirOrOxygen => "air_or_oxygen",
            Parameter::SystolicBp => "systolic_bp",
            Parameter::Pulse => "pulse",
            Parameter::Consciousness => "consciousness",
            Parameter::Temperature => "temperature",
        }
    }

    /// The vital-sign code a device sends for this chart row.
    pub fn code(self) -> VitalCode {
        match self {
            Parameter::RespirationRate => VitalCode::RespiratoryRate,
            Parameter::Spo2 => VitalCode::Spo2,
            Parameter::AirOrOxygen => VitalCode::SupplementalOxygen,
            Parameter::SystolicBp => VitalCode::SystolicBp,
            Parameter::Pulse => VitalCode::HeartRate,
            Parameter::Consciousness => VitalCode::Consciousness,
            Parameter::Temperature => VitalCode::Temperature,
        }
    }
}

/// Which SpO2 row applies: scale 2 only for patients enrolled as hypercapnic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Spo2Scale {
    Scale1,
    Scale2,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub parameter: Parameter,
    pub value: VitalValue,
    pub score: u8,
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub observed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct News2Result {
    pub score: u8,
    pub risk_level: RiskLevel,
    pub components: Vec<Component>,
    pub missing: Vec<Parameter>,
    #[serde(serialize_with = "crate::timestamp::serialize_option")]
    pub observed_at: Option<DateTime<Utc>>,
}

/// Aggregate at or above which the risk is high (RCP: 7 or more).
pub const HIGH_AT: u8 = 7;
/// Aggregate at or above which the risk is medium (RCP: 5–6).
pub const MEDIUM_AT: u8 = 5;

/// The RCP risk level of an aggregate score, given whether any single
/// parameter scored 3 ("red score").
pub fn risk_level(aggregate: u8, any_single_three: bool) -> RiskLevel {
    if aggregate >= HIGH_AT {
        RiskLevel::High
    } else if aggregate >= MEDIUM_AT {
        RiskLevel::Medium
    } else if any_single_three {
        RiskLevel::LowMedium
    } else {
        RiskLevel::Low
    }
}

/// Half of a chart unit closer than this is taken as the half (see the module
/// doc: decimal values have no exact binary form).
const HALF_TOLERANCE: f64 = 1e-9;

/// Rounds `x * scale` half away from zero to an integer; `None` when `x` is
/// not finite. A finite `x` whose scaled value overflows (a temperature of
/// -1.6e308 times 10) is still a number: it saturates into the outermost band.
fn to_chart_units(x: f64, scale: f64) -> Option<i64> {
    if !x.is_finite() {
        return None;
    }
    let units = (x * scale).clamp(f64::MIN, f64::MAX);
    // f64::round is half-away-from-zero; the nudge makes 350.4999999 (35.05 °C) a half.
    let nudged = units + HALF_TOLERANCE.copysign(units);
    // `as` saturates, so absurd magnitudes land in the outermost band, never panic.
    Some(nudged.round() as i64)
}

fn respiration_rate(per_min: i64) -> u8 {
    match per_min {
        ..=8 => 3,
        9..=11 => 1,
        12..=20 => 0,
        21..=24 => 2,
        25.. => 3,
    }
}

fn spo2_scale1(percent: i64) -> u8 {
    match percent {
        ..=91 => 3,
        92..=93 => 2,
        94..=95 => 1,
        96.. => 0,
    }
}

fn spo2_scale2(percent: i64, on_oxygen: bool) -> u8 {
    match (percent, on_oxygen) {
        (..=83, _) => 3,
        (84..=85, _) => 2,
        (86..=87, _) => 1,
        (88..=92, _) => 0,
        // RCP: ≥93 % on air is a target range for hypercapnic patients, not a risk.
        (93.., false) => 0,
        (93..=94, true) => 1,
        (95..=96, true) => 2,
        (97.., true) => 3,
    }
}

fn systolic_bp(mmhg: i64) -> u8 {
    match mmhg {
        ..=90 => 3,
        91..=100 => 2,
        101..=110 => 1,
        111..=219 => 0,
        220.. => 3,
    }
}

fn pulse(per_min: i64) -> u8 {
    match per_min {
        ..=40 => 3,
        41..=50 => 1,
        51..=90 => 0,
        91..=110 => 1,
        111..=130 => 2,
        131.. => 3,
    }
}

/// Temperature in tenths of a degree Celsius.
fn temperature(tenths: i64) -> u8 {
    match tenths {
        ..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        391.. => 2,
    }
}

/// One parameter's chart score, or `None` when the value cannot be scored
/// (wrong kind for the row, or a non-finite number).
pub fn score_parameter(parameter: Parameter, value: VitalValue, scale: Spo2Scale, on_oxygen: bool) -> Option<u8> {
    let integer = |x: f64| to_chart_units(x, 1.0);
    match (parameter, value) {
        (Parameter::RespirationRate, VitalValue::Number(x)) => integer(x).map(respiration_rate),
        (Parameter::Spo2, VitalValue::Number(x)) => integer(x).map(|p| match scale {
            Spo2Scale::Scale1 => spo2_scale1(p),
            Spo2Scale::Scale2 => spo2_scale2(p, on_oxygen),
        }),
        (Parameter::AirOrOxygen, VitalValue::Flag(oxygen)) => Some(if oxygen { 2 } else { 0 }),
        (Parameter::SystolicBp, VitalValue::Number(x)) => integer(x).map(systolic_bp),
        (Parameter::Pulse, VitalValue::Number(x)) => integer(x).map(pulse),
        (Parameter::Consciousness, VitalValue::Avpu(a)) => Some(if a == Avpu::A { 0 } else { 3 }),
        (Parameter::Temperature, VitalValue::Number(x)) => to_chart_units(x, 10.0).map(temperature),
        _ => None,
    }
}

/// Scores each parameter's latest reading observed within `freshness` before
/// `now`; stale or absent parameters score nothing and are listed in `missing`.
pub fn score(latest: &LatestVitals, scale: Spo2Scale, now: DateTime<Utc>, freshness: Duration) -> News2Result {
    let oldest_fresh = now.checked_sub_signed(freshness).unwrap_or(DateTime::<Utc>::MIN_UTC);
    // One pass over the map (at most one entry per code) into a table by
    // code, rather than a map lookup per chart row: scoring runs for every
    // patient of every batch.
    let mut fresh: [Option<&Observation>; VitalCode::ALL.len()] = [None; VitalCode::ALL.len()];
    for (code, o) in latest {
        if o.observed_at >= oldest_fresh {
            fresh[*code as usize] = Some(o);
        }
    }
    let on_oxygen = matches!(fresh[VitalCode::SupplementalOxygen as usize].map(|o| o.value), Some(VitalValue::Flag(true)));

    let mut components = Vec::with_capacity(Parameter::ALL.len());
    let mut missing = Vec::new();
    let (mut aggregate, mut any_single_three, mut observed_at) = (0u8, false, None);
    for parameter in Parameter::ALL {
        let scored = fresh[parameter.code() as usize].and_then(|o| Some((o, score_parameter(parameter, o.value, scale, on_oxygen)?)));
        match scored {
            Some((o, score)) => {
                aggregate += score;
                any_single_three |= score == 3;
                observed_at = observed_at.max(Some(o.observed_at));
                components.push(Component { parameter, value: o.value, score, observed_at: o.observed_at });
            }
            None => missing.push(parameter),
        }
    }
    News2Result { score: aggregate, risk_level: risk_level(aggregate, any_single_three), observed_at, components, missing }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vitals::{Avpu, Observation, VitalCode, VitalValue};
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        "2026-11-26T20:00:00Z".parse().unwrap()
    }

    fn window() -> Duration {
        Duration::minutes(60)
    }

    fn obs(value: VitalValue, minutes_ago: i64) -> Observation {
        Observation { value, observed_at: now() - Duration::minutes(minutes_ago) }
    }

    fn latest(readings: &[(VitalCode, VitalValue)]) -> LatestVitals {
        readings.iter().map(|(c, v)| (*c, obs(*v, 1))).collect()
    }

    fn num(x: f64) -> VitalValue {
        VitalValue::Number(x)
    }

    /// A complete set of readings that each score 0 on scale 1.
    fn all_normal() -> LatestVitals {
        latest(&[
            (VitalCode::RespiratoryRate, num(16.0)),
            (VitalCode::Spo2, num(97.0)),
            (VitalCode::SupplementalOxygen, VitalValue::Flag(false)),
            (VitalCode::SystolicBp, num(120.0)),
            (VitalCode::HeartRate, num(70.0)),
            (VitalCode::Consciousness, VitalValue::Avpu(Avpu::A)),
            (VitalCode::Temperature, num(37.0)),
        ])
    }

    /// The score `score()` gives one parameter, through the public entry point.
    fn scored(parameter: Parameter, value: VitalValue, scale: Spo2Scale, extra: &[(VitalCode, VitalValue)]) -> Option<u8> {
        let mut l = latest(extra);
        l.insert(parameter.code(), obs(value, 1));
        let r = score(&l, scale, now(), window());
        r.components.iter().find(|c| c.parameter == parameter).map(|c| c.score)
    }

    fn check_rows(parameter: Parameter, scale: Spo2Scale, extra: &[(VitalCode, VitalValue)], rows: &[(f64, u8)]) {
        for &(value, expected) in rows {
            assert_eq!(
                scored(parameter, num(value), scale, extra),
                Some(expected),
                "{} = {value} (scale {scale:?}, with {extra:?})",
                parameter.as_str()
            );
        }
    }

    const ON_O2: &[(VitalCode, VitalValue)] = &[(VitalCode::SupplementalOxygen, VitalValue::Flag(true))];
    const ON_AIR: &[(VitalCode, VitalValue)] = &[(VitalCode::SupplementalOxygen, VitalValue::Flag(false))];

    #[test]
    fn respiration_rate_bands_score_on_both_sides_of_every_edge() {
        // RCP chart row: ≤8 -> 3, 9–11 -> 1, 12–20 -> 0, 21–24 -> 2, ≥25 -> 3
        check_rows(
            Parameter::RespirationRate,
            Spo2Scale::Scale1,
            &[],
            &[(0.0, 3), (8.0, 3), (9.0, 1), (11.0, 1), (12.0, 0), (20.0, 0), (21.0, 2), (24.0, 2), (25.0, 3), (80.0, 3)],
        );
    }

    #[test]
    fn spo2_scale_1_bands_score_on_both_sides_of_every_edge() {
        // RCP chart row: ≤91 -> 3, 92–93 -> 2, 94–95 -> 1, ≥96 -> 0; oxygen does not change scale 1
        let rows = [(40.0, 3), (91.0, 3), (92.0, 2), (93.0, 2), (94.0, 1), (95.0, 1), (96.0, 0), (100.0, 0)];
        check_rows(Parameter::Spo2, Spo2Scale::Scale1, ON_AIR, &rows);
        check_rows(Parameter::Spo2, Spo2Scale::Scale1, ON_O2, &rows);
    }

    #[test]
    fn spo2_scale_2_on_air_scores_93_and_above_as_zero() {
        // RCP chart row: ≤83 -> 3, 84–85 -> 2, 86–87 -> 1, 88–92 -> 0, ≥93 on air -> 0
        check_rows(
            Parameter::Spo2,
            Spo2Scale::Scale2,
            ON_AIR,
            &[(40.0, 3), (83.0, 3), (84.0, 2), (85.0, 2), (86.0, 1), (87.0, 1), (88.0, 0), (92.0, 0), (93.0, 0), (97.0, 0), (100.0, 0)],
        );
    }

    #[test]
    fn spo2_scale_2_on_oxygen_scores_high_saturation() {
        // RCP chart row: 88–92 -> 0, 93–94 on O2 -> 1, 95–96 on O2 -> 2, ≥97 on O2 -> 3
        check_rows(
            Parameter::Spo2,
            Spo2Scale::Scale2,
            ON_O2,
            &[
                (83.0, 3),
                (84.0, 2),
                (85.0, 2),
                (86.0, 1),
                (87.0, 1),
                (88.0, 0),
                (92.0, 0),
                (93.0, 1),
                (94.0, 1),
                (95.0, 2),
                (96.0, 2),
                (97.0, 3),
                (100.0, 3),
            ],
        );
    }

    #[test]
    fn spo2_scale_2_without_a_fresh_oxygen_reading_is_scored_as_on_air() {
        // GIVEN a hypercapnic patient at 97 % whose last oxygen=true reading is stale
        let mut l = latest(&[(VitalCode::Spo2, num(97.0))]);
        l.insert(VitalCode::SupplementalOxygen, obs(VitalValue::Flag(true), 61));
        // WHEN scored on scale 2
        let r = score(&l, Spo2Scale::Scale2, now(), window());
        // THEN SpO2 is scored as on air (0) and air/oxygen is reported missing
        assert_eq!(r.components.iter().find(|c| c.parameter == Parameter::Spo2).map(|c| c.score), Some(0));
        assert!(r.missing.contains(&Parameter::AirOrOxygen));
        // AND with no oxygen reading at all the same holds
        let r = score(&latest(&[(VitalCode::Spo2, num(97.0))]), Spo2Scale::Scale2, now(), window());
        assert_eq!(r.score, 0);
    }

    #[test]
    fn the_same_saturation_scores_differently_on_the_two_scales() {
        // GIVEN 90 % on oxygen
        let on_o2 = latest(&[(VitalCode::Spo2, num(90.0)), (VitalCode::SupplementalOxygen, VitalValue::Flag(true))]);
        // THEN scale 1 gives SpO2 3 (+2 oxygen), scale 2 gives SpO2 0 (+2 oxygen)
        assert_eq!(score(&on_o2, Spo2Scale::Scale1, now(), window()).score, 5);
        assert_eq!(score(&on_o2, Spo2Scale::Scale2, now(), window()).score, 2);
    }

    #[test]
    fn air_or_oxygen_scores_two_for_oxygen_and_zero_for_air() {
        assert_eq!(scored(Parameter::AirOrOxygen, VitalValue::Flag(true), Spo2Scale::Scale1, &[]), Some(2));
        assert_eq!(scored(Parameter::AirOrOxygen, VitalValue::Flag(false), Spo2Scale::Scale1, &[]), Some(0));
    }

    #[test]
    fn systolic_bp_bands_score_on_both_sides_of_every_edge() {
        // RCP chart row: ≤90 -> 3, 91–100 -> 2, 101–110 -> 1, 111–219 -> 0, ≥220 -> 3
        check_rows(
            Parameter::SystolicBp,
            Spo2Scale::Scale1,
            &[],
            &[(40.0, 3), (90.0, 3), (91.0, 2), (100.0, 2), (101.0, 1), (110.0, 1), (111.0, 0), (219.0, 0), (220.0, 3), (300.0, 3)],
        );
    }

    #[test]
    fn pulse_bands_score_on_both_sides_of_every_edge() {
        // RCP chart row: ≤40 -> 3, 41–50 -> 1, 51–90 -> 0, 91–110 -> 1, 111–130 -> 2, ≥131 -> 3
        check_rows(
            Parameter::Pulse,
            Spo2Scale::Scale1,
            &[],
            &[
                (0.0, 3),
                (40.0, 3),
                (41.0, 1),
                (50.0, 1),
                (51.0, 0),
                (90.0, 0),
                (91.0, 1),
                (110.0, 1),
                (111.0, 2),
                (130.0, 2),
                (131.0, 3),
                (300.0, 3),
            ],
        );
    }

    #[test]
    fn consciousness_scores_alert_zero_and_any_new_confusion_or_less_three() {
        // RCP chart row: A -> 0; C, V, P or U -> 3
        for (avpu, expected) in [(Avpu::A, 0), (Avpu::C, 3), (Avpu::V, 3), (Avpu::P, 3), (Avpu::U, 3)] {
            assert_eq!(scored(Parameter::Consciousness, VitalValue::Avpu(avpu), Spo2Scale::Scale1, &[]), Some(expected), "{avpu:?}");
        }
    }

    #[test]
    fn temperature_bands_score_on_both_sides_of_every_edge() {
        // RCP chart row: ≤35.0 -> 3, 35.1–36.0 -> 1, 36.1–38.0 -> 0, 38.1–39.0 -> 1, ≥39.1 -> 2
        check_rows(
            Parameter::Temperature,
            Spo2Scale::Scale1,
            &[],
            &[(25.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2), (45.0, 2)],
        );
    }

    #[test]
    fn values_between_bands_are_rounded_half_away_from_zero_to_the_chart_precision() {
        // Temperature to 0.1 °C: 35.05 is the half (even though binary stores 35.0499…)
        check_rows(
            Parameter::Temperature,
            Spo2Scale::Scale1,
            &[],
            &[(35.05, 1), (35.04, 3), (35.049, 3), (36.05, 0), (36.04, 1), (38.05, 1), (39.05, 2), (39.04, 1)],
        );
        // Every other numeric to an integer
        check_rows(Parameter::Pulse, Spo2Scale::Scale1, &[], &[(90.5, 1), (90.49, 0), (40.5, 1), (40.49, 3), (130.5, 3)]);
        check_rows(Parameter::RespirationRate, Spo2Scale::Scale1, &[], &[(8.5, 1), (8.49, 3), (20.5, 2), (24.5, 3)]);
        check_rows(Parameter::Spo2, Spo2Scale::Scale1, &[], &[(91.5, 2), (91.49, 3), (95.5, 0)]);
        check_rows(Parameter::Spo2, Spo2Scale::Scale2, ON_O2, &[(92.5, 1), (92.49, 0), (96.5, 3)]);
        check_rows(Parameter::SystolicBp, Spo2Scale::Scale1, &[], &[(90.5, 2), (90.49, 3), (219.5, 3), (219.49, 0)]);
    }

    #[test]
    fn a_reading_older_than_the_freshness_window_is_missing() {
        // GIVEN a pulse of 135 exactly at the window's start, and a temperature one second older
        let mut l = LatestVitals::new();
        l.insert(VitalCode::HeartRate, Observation { value: num(135.0), observed_at: now() - window() });
        l.insert(VitalCode::Temperature, Observation { value: num(40.0), observed_at: now() - window() - Duration::seconds(1) });
        // WHEN scored
        let r = score(&l, Spo2Scale::Scale1, now(), window());
        // THEN the pulse counts, the temperature is missing and scores nothing
        assert_eq!(r.components.iter().map(|c| c.parameter).collect::<Vec<_>>(), vec![Parameter::Pulse]);
        assert_eq!(r.score, 3);
        assert!(r.missing.contains(&Parameter::Temperature));
        // AND a wider window brings it back
        assert_eq!(score(&l, Spo2Scale::Scale1, now(), Duration::minutes(61)).score, 5);
    }

    #[test]
    fn components_follow_chart_order_and_observed_at_is_the_newest_component() {
        // GIVEN temperature observed 5 min ago and pulse 2 min ago; the rest absent
        let mut l = LatestVitals::new();
        l.insert(VitalCode::Temperature, obs(num(37.0), 5));
        l.insert(VitalCode::HeartRate, obs(num(70.0), 2));
        l.insert(VitalCode::DiastolicBp, obs(num(80.0), 0));
        let r = score(&l, Spo2Scale::Scale1, now(), window());
        // THEN pulse precedes temperature (chart order), diastolic BP is not a parameter
        assert_eq!(r.components.iter().map(|c| c.parameter).collect::<Vec<_>>(), vec![Parameter::Pulse, Parameter::Temperature]);
        assert_eq!(r.observed_at, Some(now() - Duration::minutes(2)));
        assert_eq!(
            r.missing,
            vec![Parameter::RespirationRate, Parameter::Spo2, Parameter::AirOrOxygen, Parameter::SystolicBp, Parameter::Consciousness]
        );
        // AND components carry the value as observed
        assert_eq!(r.components[0].value, num(70.0));
    }

    #[test]
    fn nothing_fresh_is_low_with_everything_missing() {
        let r = score(&LatestVitals::new(), Spo2Scale::Scale1, now(), window());
        assert_eq!((r.score, r.risk_level, r.observed_at), (0, RiskLevel::Low, None));
        assert_eq!(r.missing, Parameter::ALL.to_vec());
    }

    #[test]
    fn risk_levels_follow_the_rcp_thresholds() {
        // (aggregate, any single 3) -> level
        let table = [
            (0, false, RiskLevel::Low),
            (4, false, RiskLevel::Low),
            (3, true, RiskLevel::LowMedium),
            (4, true, RiskLevel::LowMedium),
            (5, false, RiskLevel::Medium),
            (5, true, RiskLevel::Medium),
            (6, true, RiskLevel::Medium),
            (7, false, RiskLevel::High),
            (7, true, RiskLevel::High),
            (20, true, RiskLevel::High),
        ];
        for (aggregate, three, expected) in table {
            assert_eq!(risk_level(aggregate, three), expected, "aggregate {aggregate}, single 3: {three}");
        }
    }

    #[test]
    fn risk_levels_from_whole_observation_sets() {
        let with = |changes: &[(VitalCode, VitalValue)]| {
            let mut l = all_normal();
            for (c, v) in changes {
                l.insert(*c, obs(*v, 1));
            }
            score(&l, Spo2Scale::Scale1, now(), window())
        };
        // all normal: 0, low
        assert_eq!((with(&[]).score, with(&[]).risk_level), (0, RiskLevel::Low));
        // pulse 115 (2) + temperature 38.5 (1) + RR 22 (2) = 5 without a single 3 -> medium
        let r = with(&[(VitalCode::HeartRate, num(115.0)), (VitalCode::Temperature, num(38.5)), (VitalCode::RespiratoryRate, num(22.0))]);
        assert_eq!((r.score, r.risk_level), (5, RiskLevel::Medium));
        // new confusion alone: 3 -> low-medium
        let r = with(&[(VitalCode::Consciousness, VitalValue::Avpu(Avpu::C))]);
        assert_eq!((r.score, r.risk_level), (3, RiskLevel::LowMedium));
        // new confusion + oxygen: 5 with a single 3 -> medium, not low-medium
        let r = with(&[(VitalCode::Consciousness, VitalValue::Avpu(Avpu::C)), (VitalCode::SupplementalOxygen, VitalValue::Flag(true))]);
        assert_eq!((r.score, r.risk_level), (5, RiskLevel::Medium));
        // SBP 85 (3) + SpO2 93 (2) + pulse 115 (2) = 7 -> high
        let r = with(&[(VitalCode::SystolicBp, num(85.0)), (VitalCode::Spo2, num(93.0)), (VitalCode::HeartRate, num(115.0))]);
        assert_eq!((r.score, r.risk_level), (7, RiskLevel::High));
        // four 1s = 4 -> low
        let r = with(&[
            (VitalCode::HeartRate, num(95.0)),
            (VitalCode::Temperature, num(38.5)),
            (VitalCode::RespiratoryRate, num(10.0)),
            (VitalCode::SystolicBp, num(105.0)),
        ]);
        assert_eq!((r.score, r.risk_level), (4, RiskLevel::Low));
    }

    #[test]
    fn a_value_that_cannot_be_scored_is_missing_not_guessed() {
        for bad in [num(f64::NAN), num(f64::INFINITY), num(f64::NEG_INFINITY), VitalValue::Flag(true), VitalValue::Avpu(Avpu::U)] {
            let r = score(&latest(&[(VitalCode::HeartRate, bad)]), Spo2Scale::Scale1, now(), window());
            assert!(r.missing.contains(&Parameter::Pulse), "{bad:?}");
            assert_eq!(r.score, 0);
        }
        assert!(score(&latest(&[(VitalCode::Consciousness, num(1.0))]), Spo2Scale::Scale1, now(), window())
            .missing
            .contains(&Parameter::Consciousness));
    }

    fn any_value() -> impl Strategy<Value = VitalValue> {
        prop_oneof![
            4 => any::<f64>().prop_map(VitalValue::Number),
            2 => (0.0f64..320.0).prop_map(VitalValue::Number),
            1 => any::<bool>().prop_map(VitalValue::Flag),
            1 => prop::sample::select(vec![Avpu::A, Avpu::C, Avpu::V, Avpu::P, Avpu::U]).prop_map(VitalValue::Avpu),
        ]
    }

    fn any_latest() -> impl Strategy<Value = LatestVitals> {
        prop::collection::btree_map(prop::sample::select(VitalCode::ALL.to_vec()), (any_value(), -10i64..200), 0..=8)
            .prop_map(|m| m.into_iter().map(|(code, (value, minutes_ago))| (code, obs(value, minutes_ago))).collect::<LatestVitals>())
    }

    proptest! {
        #[test]
        fn the_aggregate_is_the_sum_of_the_components_and_the_level_agrees_with_them(
            l in any_latest(),
            hypercapnic in any::<bool>(),
            freshness_minutes in 0i64..200,
        ) {
            let scale = if hypercapnic { Spo2Scale::Scale2 } else { Spo2Scale::Scale1 };
            let r = score(&l, scale, now(), Duration::minutes(freshness_minutes));
            let sum: u32 = r.components.iter().map(|c| u32::from(c.score)).sum();
            prop_assert_eq!(u32::from(r.score), sum);
            prop_assert!(r.components.iter().all(|c| c.score <= 3));
            let three = r.components.iter().any(|c| c.score == 3);
            let expected = if sum >= 7 { RiskLevel::High } else if sum >= 5 { RiskLevel::Medium } else if three { RiskLevel::LowMedium } else { RiskLevel::Low };
            prop_assert_eq!(r.risk_level, expected);
            // every parameter is either a component or missing, in chart order
            let mut seen: Vec<Parameter> = r.components.iter().map(|c| c.parameter).chain(r.missing.iter().copied()).collect();
            prop_assert_eq!(seen.len(), 7);
            seen.sort();
            prop_assert_eq!(seen, Parameter::ALL.to_vec());
            prop_assert!(r.components.windows(2).all(|w| w[0].parameter < w[1].parameter));
            // only fresh observations are scored; observedAt is the newest of them
            let oldest = now() - Duration::minutes(freshness_minutes);
            prop_assert!(r.components.iter().all(|c| c.observed_at >= oldest));
            prop_assert_eq!(r.observed_at, r.components.iter().map(|c| c.observed_at).max());
        }

        #[test]
        fn scoring_never_panics_on_any_number(x in any::<f64>(), p in prop::sample::select(Parameter::ALL.to_vec()), o2 in any::<bool>()) {
            for scale in [Spo2Scale::Scale1, Spo2Scale::Scale2] {
                let s = score_parameter(p, VitalValue::Number(x), scale, o2);
                prop_assert_eq!(s.is_some(), x.is_finite() && !matches!(p, Parameter::AirOrOxygen | Parameter::Consciousness));
            }
        }
    }
}
