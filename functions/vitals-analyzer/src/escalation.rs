//! Whether a patient's new NEWS2 result raises an alert, and the next state
//! item that records it. Pure: the handler loads, this decides, the handler writes.
//!
//! # Rules
//! - **Open level.** `lastAlertLevel` is the highest alerted level that has
//!   not cleared (none counts as low).
//! - **Rise.** The risk level rose above the open level: alert. Low itself
//!   never alerts. A rise to a level that cleared is a new alert, even inside
//!   the cooldown.
//! - **Sustained.** The level is medium or high, equal to the open level, and
//!   at least the trial's cooldown has passed since the last alert: alert
//!   again (a patient who stays unwell is re-escalated, but not on every
//!   reading: alarm fatigue is a clinical hazard). The cooldown only holds
//!   back repeats of a level that has not cleared.
//! - **Clearing.** A result below the open level L clears L when either
//!   - the results have stayed below L for `clearMinutes` (data time, from
//!     the first of an unbroken run), each with every *alerting parameter*
//!     fresh, or
//!   - the last alert was acknowledged and this result is complete (all seven
//!     parameters fresh) and observed at or after the acknowledgement.
//!
//!   The open level then drops to the result's level (its time is kept, for
//!   the cooldown of a sustained lower level); the acknowledgement is kept
//!   too: staff who reviewed the patient at L have seen the lower levels.
//! - **No clearing on missing data.** The alerting parameters are every
//!   parameter that scored while the patient was at or above L. A lower
//!   result with one of them stale or missing is no evidence of recovery: it
//!   clears nothing and restarts the run. (State items older than the field
//!   have none recorded; their lower results must be complete.)
//! - **Flapping.** High, medium, high inside `clearMinutes` (and without an
//!   acknowledgement) is one alert: high never cleared, and the cooldown
//!   holds back its repeat.
//! - **Alert id** = (trial, patient, level, escalation sequence). The
//!   sequence counts the patient's alerts; it is in the state item and moves
//!   in the versioned write that records the alert, so a redelivered batch,
//!   assessed over the same stored state, mints the same id and the
//!   dispatcher delivers it once, while every new escalation has a new id.
//! - **Time basis.** Alert time, cooldown and clearing use the newest
//!   observation time of the scored result (data time), not the wall clock
//!   of the invocation, so a redelivery recomputes the same alert, same body.

use chrono::{DateTime, Duration, Utc};
use trialwatch::news2::{self, News2Result, Parameter, RiskLevel, Spo2Scale};
use trialwatch::trial::News2Settings;
use trialwatch::vitals::{merge_latest, VitalReading};
use trialwatch::vitals_state::VitalsState;
use trialwatch::AlertId;

/// An alert the new state calls for.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub level: RiskLevel,
    /// Newest observation time of the result that escalated.
    pub at: DateTime<Utc>,
    pub alert_id: AlertId,
}

/// Why an open level cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clearing {
    /// Below it for `clearMinutes` with the alerting parameters fresh.
    Sustained,
    /// Its alert was acknowledged and a lower complete result followed.
    Acknowledged,
}

impl Clearing {
    pub fn code(self) -> &'static str {
        match self {
            Clearing::Sustained => "cleared-after-clear-minutes",
            Clearing::Acknowledged => "cleared-after-acknowledgement",
        }
    }
}

/// The next state item and the alert (if any) it records.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// `prev.version + 1`, with the readings merged and the score recomputed.
    pub state: VitalsState,
    /// The open level this result cleared (before any new alert it raised).
    pub cleared: Option<(RiskLevel, Clearing)>,
    pub escalation: Option<Escalation>,
}

impl Assessment {
    /// Nothing the state item holds would change (a redelivered batch): the
    /// write can be skipped. A state never stored must always be written.
    pub fn changes_nothing(&self, prev: &VitalsState) -> bool {
        prev.version > 0 && VitalsState { version: prev.version, ..self.state.clone() } == *prev
    }
}

/// Parameters that scored in `result`, in chart order.
fn scoring(result: &News2Result) -> Vec<Parameter> {
    result.components.iter().filter(|c| c.score > 0).map(|c| c.parameter).collect()
}

/// Updates the open level's clearing evidence with `result` (observed at
/// `at`) and clears it when the evidence suffices.
fn track_clearing(
    state: &mut VitalsState,
    result: &News2Result,
    at: DateTime<Utc>,
    settings: &News2Settings,
) -> Option<(RiskLevel, Clearing)> {
    let open = state.last_alert_level.filter(|l| *l > RiskLevel::Low)?;
    if result.risk_level >= open {
        state.below_since = None;
        for p in scoring(result) {
            if !state.alerting_parameters.contains(&p) {
                state.alerting_parameters.push(p);
            }
        }
        state.alerting_parameters.sort();
        return None;
    }
    let complete = result.missing.is_empty();
    let alerting_fresh =
        if state.alerting_parameters.is_empty() { complete } else { state.alerting_parameters.iter().all(|p| !result.missing.contains(p)) };
    if !alerting_fresh {
        // A drop that stale or missing parameters may explain: no evidence.
        state.below_since = None;
        return None;
    }
    let since = *state.below_since.get_or_insert(at);
    let acknowledged = complete && state.last_alert_acked_at.is_some_and(|t| at >= t);
    let sustained = at - since >= Duration::minutes(i64::from(settings.clear_minutes));
    let how = if acknowledged {
        Clearing::Acknowledged
    } else if sustained {
        Clearing::Sustained
    } else {
        return None;
    };
    state.last_alert_level = Some(result.risk_level);
    state.alerting_parameters = scoring(result);
    state.below_since = None;
    Some((open, how))
}

/// Merges `readings` into `prev`, scores, and decides the alert.
pub fn assess(prev: &VitalsState, readings: &[VitalReading], scale: Spo2Scale, now: DateTime<Utc>, settings: &News2Settings) -> Assessment {
    let mut state = prev.clone();
    state.version = prev.version.saturating_add(1);
    merge_latest(&mut state.latest, readings);
    let result = news2::score(&state.latest, scale, now, Duration::minutes(i64::from(settings.freshness_minutes)));
    let level = result.risk_level;
    // A level above low always has a scored component, so `observed_at` is set.
    let at = result.observed_at.unwrap_or(now);
    let cleared = track_clearing(&mut state, &result, at, settings);

    let open = state.last_alert_level.unwrap_or(RiskLevel::Low);
    let cooled_down = state.last_alert_at.is_none_or(|t| at - t >= Duration::minutes(i64::from(settings.cooldown_minutes)));
    let rose = level > open;
    let sustained = level >= RiskLevel::Medium && level == open && cooled_down;

    let escalation = (level > RiskLevel::Low && (rose || sustained)).then(|| {
        let sequence = state.escalation_seq.saturating_add(1);
        let alert_id = AlertId::for_escalation(&prev.trial_id, &prev.patient_id, level, sequence);
        state.escalation_seq = sequence;
        state.last_alert_level = Some(level);
        state.last_alert_at = Some(at);
        state.last_alert_id = Some(alert_id.clone());
        state.last_alert_acked_at = None;
        state.alerting_parameters = scoring(&result);
        state.below_since = None;
        Escalation { level, at, alert_id }
    });
    state.news2 = Some(result);
    Assessment { state, cleared, escalation }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::ids::{PatientId, ReadingId, TrialId};
    use trialwatch::vitals::{Avpu, VitalCode, VitalValue};

    fn t0() -> DateTime<Utc> {
        "2026-11-26T20:00:00Z".parse().unwrap()
    }

    fn settings(cooldown_minutes: u32) -> News2Settings {
        News2Settings { freshness_minutes: 60, cooldown_minutes, clear_minutes: 30 }
    }

    /// A week: the longest cooldown a trial may set.
    const WEEK: u32 = 7 * 24 * 60;

    fn fresh_state() -> VitalsState {
        VitalsState::new(TrialId::parse("t1").unwrap(), PatientId::parse("p1").unwrap())
    }

    fn reading(code: VitalCode, value: VitalValue, at: DateTime<Utc>) -> VitalReading {
        VitalReading {
            reading_id: ReadingId::parse(&format!("r-{}-{}", code.as_str(), at.timestamp())).unwrap(),
            code,
            value,
            observed_at: at,
        }
    }

    /// Readings at `at` whose aggregate gives `level` (scale 1).
    fn readings_for(level: RiskLevel, at: DateTime<Utc>) -> Vec<VitalReading> {
        let n = VitalValue::Number;
        let (pulse, rr, consciousness) = match level {
            RiskLevel::Low => (70.0, 16.0, Avpu::A),
            RiskLevel::LowMedium => (70.0, 16.0, Avpu::V), // single 3
            RiskLevel::Medium => (115.0, 22.0, Avpu::A),   // 2 + 2 + temperature 1 = 5
            RiskLevel::High => (135.0, 26.0, Avpu::A),     // 3 + 3 + 1 = 7
        };
        let temperature = if level >= RiskLevel::Medium { 38.5 } else { 37.0 };
        vec![
            reading(VitalCode::HeartRate, n(pulse), at),
            reading(VitalCode::RespiratoryRate, n(rr), at),
            reading(VitalCode::Consciousness, VitalValue::Avpu(consciousness), at),
            reading(VitalCode::Temperature, n(temperature), at),
        ]
    }

    /// Applies a batch at `at` (scored at `at`) and returns the assessment.
    fn step(prev: &VitalsState, level: RiskLevel, at: DateTime<Utc>, cooldown: u32) -> Assessment {
        let a = assess(prev, &readings_for(level, at), Spo2Scale::Scale1, at, &settings(cooldown));
        assert_eq!(a.state.news2.as_ref().map(|r| r.risk_level), Some(level), "fixture for {level}");
        a
    }

    #[test]
    fn a_first_low_result_never_alerts() {
        let a = step(&fresh_state(), RiskLevel::Low, t0(), 60);
        assert_eq!(a.escalation, None);
        assert_eq!(a.state.version, 1);
        assert_eq!(a.state.last_alert_level, None);
    }

    #[test]
    fn each_rise_alerts_once_at_the_new_level() {
        // GIVEN low, WHEN low-medium, medium, high arrive a minute apart
        let mut state = step(&fresh_state(), RiskLevel::Low, t0(), 60).state;
        for (i, level) in [RiskLevel::LowMedium, RiskLevel::Medium, RiskLevel::High].into_iter().enumerate() {
            let at = t0() + Duration::minutes(i as i64 + 1);
            let a = step(&state, level, at, 60);
            // THEN each rise alerts at its level and is recorded
            let e = a.escalation.clone().expect("a rise alerts");
            assert_eq!((e.level, e.at), (level, at));
            assert_eq!((a.state.last_alert_level, a.state.last_alert_at), (Some(level), Some(at)));
            state = a.state;
        }
    }

    #[test]
    fn a_sustained_medium_alerts_again_only_after_the_cooldown() {
        // GIVEN a medium alert at t0 with a 30 min cooldown
        let first = step(&fresh_state(), RiskLevel::Medium, t0(), 30);
        assert!(first.escalation.is_some());
        // WHEN medium persists 29 min later THEN no alert
        let within = step(&first.state, RiskLevel::Medium, t0() + Duration::minutes(29), 30);
        assert_eq!(within.escalation, None);
        // WHEN medium persists 30 min after the alert THEN it alerts again, with a new id
        let after = step(&within.state, RiskLevel::Medium, t0() + Duration::minutes(30), 30);
        let again = after.escalation.expect("cooldown passed");
        assert_ne!(Some(again.alert_id), first.escalation.map(|e| e.alert_id));
    }

    #[test]
    fn a_sustained_low_medium_does_not_realert() {
        let first = step(&fresh_state(), RiskLevel::LowMedium, t0(), 30);
        assert!(first.escalation.is_some());
        assert_eq!(step(&first.state, RiskLevel::LowMedium, t0() + Duration::hours(5), 30).escalation, None);
    }

    #[test]
    fn a_fall_does_not_alert_and_a_rise_after_the_level_cleared_alerts_again() {
        // GIVEN a high alert
        let high = step(&fresh_state(), RiskLevel::High, t0(), 60);
        // WHEN the level falls to low-medium, with the alerting parameters fresh
        let fell = step(&high.state, RiskLevel::LowMedium, t0() + Duration::minutes(5), 60);
        // THEN no alert, and high stays open until it clears
        assert_eq!(fell.escalation, None);
        assert_eq!((fell.state.last_alert_level, fell.state.last_alert_at), (Some(RiskLevel::High), Some(t0())));
        // WHEN it stays below high for clearMinutes THEN high clears to low-medium, the alert's time kept
        let cleared = step(&fell.state, RiskLevel::LowMedium, t0() + Duration::minutes(35), 60);
        assert_eq!(cleared.cleared, Some((RiskLevel::High, Clearing::Sustained)));
        assert_eq!((cleared.state.last_alert_level, cleared.state.last_alert_at), (Some(RiskLevel::LowMedium), Some(t0())));
        // AND a rise back to medium alerts
        assert_eq!(
            step(&cleared.state, RiskLevel::Medium, t0() + Duration::minutes(40), 60).escalation.map(|e| e.level),
            Some(RiskLevel::Medium)
        );
    }

    #[test]
    fn the_same_batch_on_the_same_prior_state_gives_the_same_alert_even_across_an_hour_boundary() {
        // GIVEN readings observed at 20:59:30
        let at = t0() + Duration::seconds(59 * 60 + 30);
        let rs = readings_for(RiskLevel::High, at);
        // WHEN processed at 20:59:40 and redelivered at 21:03 (after a failed state write)
        let first = assess(&fresh_state(), &rs, Spo2Scale::Scale1, at + Duration::seconds(10), &settings(60));
        let retry = assess(&fresh_state(), &rs, Spo2Scale::Scale1, at + Duration::minutes(3), &settings(60));
        // THEN the alert id and time are identical
        assert_eq!(first.escalation, retry.escalation);
        assert!(first.escalation.is_some());
    }

    #[test]
    fn a_redelivered_batch_after_its_state_was_written_changes_nothing() {
        let first = step(&fresh_state(), RiskLevel::Medium, t0(), 60);
        let mut stored = first.state.clone();
        stored.version = 1;
        let again = assess(&stored, &readings_for(RiskLevel::Medium, t0()), Spo2Scale::Scale1, t0(), &settings(60));
        assert_eq!(again.escalation, None);
        assert!(again.changes_nothing(&stored));
        assert!(!first.changes_nothing(&fresh_state()), "a state never stored is written");
    }

    /// A complete set of seven readings at `at` whose aggregate gives `level`
    /// (scale 1): low is all zeros; high adds 3 + 3 + 1 to it.
    fn complete(level: RiskLevel, at: DateTime<Utc>) -> Vec<VitalReading> {
        let mut rs = readings_for(level, at);
        rs.push(reading(VitalCode::Spo2, VitalValue::Number(97.0), at));
        rs.push(reading(VitalCode::SupplementalOxygen, VitalValue::Flag(false), at));
        rs.push(reading(VitalCode::SystolicBp, VitalValue::Number(120.0), at));
        rs
    }

    fn apply(prev: &VitalsState, readings: &[VitalReading], at: DateTime<Utc>, s: &News2Settings) -> Assessment {
        assess(prev, readings, Spo2Scale::Scale1, at, s)
    }

    /// Writes an assessment's state as the analyzer's write would.
    fn stored(a: &Assessment) -> VitalsState {
        a.state.clone()
    }

    #[test]
    fn high_then_low_for_clear_minutes_then_high_inside_a_seven_day_cooldown_gives_two_alerts() {
        // GIVEN a high alert with a 7-day cooldown and clearMinutes 30
        let first = step(&fresh_state(), RiskLevel::High, t0(), WEEK);
        // AND the patient recovers to low, with the alerting parameters fresh, for 35 minutes
        let low = step(&stored(&first), RiskLevel::Low, t0() + Duration::minutes(10), WEEK);
        assert_eq!(low.cleared, None, "10 minutes below is not yet clear");
        let clear = step(&stored(&low), RiskLevel::Low, t0() + Duration::minutes(45), WEEK);
        assert_eq!(clear.cleared, Some((RiskLevel::High, Clearing::Sustained)));
        // WHEN high returns two hours later, well inside the cooldown
        let again = step(&stored(&clear), RiskLevel::High, t0() + Duration::hours(2), WEEK);
        // THEN it is a second alert, with an id of its own
        let (a, b) = (first.escalation.expect("first alert"), again.escalation.expect("a rise after clearing alerts"));
        assert_eq!(b.level, RiskLevel::High);
        assert_ne!(a.alert_id, b.alert_id);
        assert_eq!(again.state.escalation_seq, 2);
    }

    #[test]
    fn high_then_acknowledged_then_a_lower_complete_result_then_high_gives_two_alerts() {
        // GIVEN a high alert, acknowledged by site staff five minutes later
        let first = step(&fresh_state(), RiskLevel::High, t0(), WEEK);
        let mut acked = stored(&first);
        acked.last_alert_acked_at = Some(t0() + Duration::minutes(5));
        acked.version += 1;
        // WHEN a complete low set is observed after the acknowledgement
        let low = apply(&acked, &complete(RiskLevel::Low, t0() + Duration::minutes(6)), t0() + Duration::minutes(6), &settings(WEEK));
        // THEN high clears at once, without waiting clearMinutes
        assert_eq!(low.cleared, Some((RiskLevel::High, Clearing::Acknowledged)));
        assert_eq!(low.state.last_alert_level, Some(RiskLevel::Low));
        // AND high four minutes later is a new alert with a new id
        let again = step(&stored(&low), RiskLevel::High, t0() + Duration::minutes(10), WEEK);
        assert_ne!(again.escalation.map(|e| e.alert_id), first.escalation.map(|e| e.alert_id));
    }

    #[test]
    fn an_acknowledgement_clears_only_with_a_complete_result_observed_after_it() {
        let first = step(&fresh_state(), RiskLevel::High, t0(), WEEK);
        let mut acked = stored(&first);
        acked.last_alert_acked_at = Some(t0() + Duration::minutes(5));
        // WHEN the lower result is incomplete (four of seven parameters) THEN nothing clears
        let partial = step(&acked, RiskLevel::Low, t0() + Duration::minutes(6), WEEK);
        assert_eq!(partial.cleared, None);
        // WHEN the lower complete result was observed before the acknowledgement THEN nothing clears
        let before = apply(&acked, &complete(RiskLevel::Low, t0() + Duration::minutes(4)), t0() + Duration::minutes(6), &settings(WEEK));
        assert_eq!(before.cleared, None);
        // AND high again is held back by the cooldown: one alert
        assert_eq!(step(&stored(&before), RiskLevel::High, t0() + Duration::minutes(8), WEEK).escalation, None);
    }

    #[test]
    fn high_then_medium_then_high_within_clear_minutes_gives_one_alert() {
        // GIVEN a high alert (7-day cooldown, clearMinutes 30)
        let first = step(&fresh_state(), RiskLevel::High, t0(), WEEK);
        assert!(first.escalation.is_some());
        // WHEN medium 5 minutes later, then high 10 minutes later
        let medium = step(&stored(&first), RiskLevel::Medium, t0() + Duration::minutes(5), WEEK);
        let high = step(&stored(&medium), RiskLevel::High, t0() + Duration::minutes(15), WEEK);
        // THEN neither alerts: high never cleared and its repeat is inside the cooldown
        assert_eq!((medium.escalation, high.escalation), (None, None));
        assert_eq!(high.state.escalation_seq, 1);
    }

    #[test]
    fn a_dip_caused_by_a_stale_spo2_never_clears_so_high_again_gives_one_alert() {
        let s = settings(WEEK);
        let n = VitalValue::Number;
        let set = |spo2: Option<f64>, at: DateTime<Utc>| {
            let mut rs = vec![reading(VitalCode::HeartRate, n(115.0), at), reading(VitalCode::RespiratoryRate, n(22.0), at)];
            rs.extend(spo2.map(|x| reading(VitalCode::Spo2, n(x), at)));
            rs
        };
        // GIVEN high from SpO2 88 % (3) + respiration 22 (2) + pulse 115 (2) = 7
        let first = apply(&fresh_state(), &set(Some(88.0), t0()), t0(), &s);
        assert_eq!(first.escalation.as_ref().map(|e| e.level), Some(RiskLevel::High));
        // WHEN SpO2 goes stale (no reading for 70 and 110 minutes) and the rest keeps arriving: aggregate 4, low
        let dip = apply(&stored(&first), &set(None, t0() + Duration::minutes(70)), t0() + Duration::minutes(70), &s);
        let longer = apply(&stored(&dip), &set(None, t0() + Duration::minutes(110)), t0() + Duration::minutes(110), &s);
        assert_eq!(longer.state.news2.as_ref().map(|r| r.risk_level), Some(RiskLevel::Low));
        // THEN the drop never clears high, even after clearMinutes
        assert_eq!((dip.cleared, longer.cleared), (None, None));
        assert_eq!(longer.state.last_alert_level, Some(RiskLevel::High));
        // AND a fresh SpO2 of 88 % again is not a new alert
        let back = apply(&stored(&longer), &set(Some(88.0), t0() + Duration::minutes(120)), t0() + Duration::minutes(120), &s);
        assert_eq!(back.state.news2.as_ref().map(|r| r.risk_level), Some(RiskLevel::High));
        assert_eq!(back.escalation, None);
    }

    #[test]
    fn a_stale_alerting_parameter_restarts_the_clearing_run() {
        // GIVEN high, then low with every alerting parameter fresh at +10 min
        let first = step(&fresh_state(), RiskLevel::High, t0(), WEEK);
        let low = step(&stored(&first), RiskLevel::Low, t0() + Duration::minutes(10), WEEK);
        assert_eq!(low.state.below_since, Some(t0() + Duration::minutes(10)));
        // WHEN at +75 min only pulse arrives (respiration, ACVPU, temperature are stale)
        let pulse_only = vec![reading(VitalCode::HeartRate, VitalValue::Number(70.0), t0() + Duration::minutes(75))];
        let gap = apply(&stored(&low), &pulse_only, t0() + Duration::minutes(75), &settings(WEEK));
        // THEN the run restarts and nothing clears
        assert_eq!((gap.cleared, gap.state.below_since), (None, None));
        assert_eq!(gap.state.last_alert_level, Some(RiskLevel::High));
    }

    #[test]
    fn a_redelivered_batch_mints_the_same_id_and_the_next_escalation_a_new_one() {
        // GIVEN a stored state that already recorded one alert (sequence 1), cleared to low
        let first = step(&fresh_state(), RiskLevel::High, t0(), WEEK);
        let low = step(&stored(&first), RiskLevel::Low, t0() + Duration::minutes(1), WEEK);
        let clear = step(&stored(&low), RiskLevel::Low, t0() + Duration::minutes(40), WEEK);
        let prev = stored(&clear);
        // WHEN the same high batch is assessed twice over it (a redelivery after a failed state write)
        let rs = readings_for(RiskLevel::High, t0() + Duration::hours(1));
        let a = assess(&prev, &rs, Spo2Scale::Scale1, t0() + Duration::hours(1), &settings(WEEK));
        let b = assess(&prev, &rs, Spo2Scale::Scale1, t0() + Duration::hours(1) + Duration::minutes(3), &settings(WEEK));
        // THEN both mint the id of sequence 2, which differs from sequence 1's
        assert_eq!(a.escalation, b.escalation);
        let e = a.escalation.expect("a rise after clearing alerts");
        assert_eq!(e.alert_id, AlertId::for_escalation(&prev.trial_id, &prev.patient_id, RiskLevel::High, 2));
        assert_ne!(Some(e.alert_id), first.escalation.map(|e| e.alert_id));
        assert_eq!(a.state.escalation_seq, 2);
    }

    #[test]
    fn a_state_item_written_before_clearing_existed_is_read_and_clears_only_on_a_complete_result() {
        // GIVEN a stored state from before this change: a high alert, no sequence, no alerting parameters
        let legacy: VitalsState = serde_json::from_value(serde_json::json!({
            "trialId": "t1", "patientId": "p1", "version": 4, "latest": {},
            "lastAlertLevel": "high", "lastAlertAt": "2026-11-26T20:00:00Z"
        }))
        .unwrap();
        assert_eq!((legacy.escalation_seq, legacy.alerting_parameters.len()), (0, 0));
        // WHEN incomplete low results span clearMinutes THEN high stays open
        let a = step(&legacy, RiskLevel::Low, t0() + Duration::minutes(5), WEEK);
        let b = step(&stored(&a), RiskLevel::Low, t0() + Duration::minutes(40), WEEK);
        assert_eq!(b.state.last_alert_level, Some(RiskLevel::High));
        // WHEN complete low results span clearMinutes THEN high clears, and the next high is sequence 1
        let s = settings(WEEK);
        let c = apply(&legacy, &complete(RiskLevel::Low, t0() + Duration::minutes(5)), t0() + Duration::minutes(5), &s);
        let d = apply(&stored(&c), &complete(RiskLevel::Low, t0() + Duration::minutes(40)), t0() + Duration::minutes(40), &s);
        assert_eq!(d.cleared, Some((RiskLevel::High, Clearing::Sustained)));
        let e = step(&stored(&d), RiskLevel::High, t0() + Duration::minutes(50), WEEK).escalation.expect("new alert");
        assert_eq!(e.alert_id, AlertId::for_escalation(&legacy.trial_id, &legacy.patient_id, RiskLevel::High, 1));
    }
}
