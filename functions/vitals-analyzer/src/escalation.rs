//! Whether a patient's new NEWS2 result raises an alert, and the next state
//! item that records it. Pure: the handler loads, this decides, the handler writes.
//!
//! # Rules
//! - **Rise.** The risk level rose above the last alerted level (none counts
//!   as low): alert. Low itself never alerts.
//! - **Sustained.** The level is medium or high, equal to the last alerted
//!   level, and at least the trial's cooldown has passed since that alert:
//!   alert again (a patient who stays unwell is re-escalated, but not on every
//!   reading: alarm fatigue is a clinical hazard).
//! - **Fall.** The level fell: no alert, and the last alerted level is lowered
//!   to the new level (its time is kept), so that a later rise alerts again.
//! - **Time basis.** Alert time, cooldown and window bucket use the newest
//!   observation time of the scored result (data time), not the wall clock of
//!   the invocation. A redelivered batch therefore recomputes the same alert —
//!   same id, same body — even when SQS redelivers it minutes later across a
//!   bucket boundary; with wall-clock buckets a retry that straddles a boundary
//!   would mint a second id and notify twice.
//! - **Alert id** = (trial, patient, level, bucket), bucket = alert time in
//!   seconds / max(cooldown, 60 s). Within one cooldown window a level maps to
//!   one id, so a level that flaps (high, medium, high) inside a window yields
//!   the same id again, which the dispatcher delivers once: flapping does not
//!   renotify. A sustained alert is at least one cooldown later than the last
//!   one, hence always in a later bucket, hence a new id.

use chrono::{DateTime, Duration, Utc};
use trialwatch::news2::{self, RiskLevel, Spo2Scale};
use trialwatch::trial::News2Settings;
use trialwatch::vitals::{merge_latest, VitalReading, VitalsState};
use trialwatch::AlertId;

/// An alert the new state calls for.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub level: RiskLevel,
    /// Newest observation time of the result that escalated.
    pub at: DateTime<Utc>,
    pub alert_id: AlertId,
}

/// The next state item and the alert (if any) it records.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// `prev.version + 1`, with the readings merged and the score recomputed.
    pub state: VitalsState,
    pub escalation: Option<Escalation>,
}

impl Assessment {
    /// Nothing the state item holds would change (a redelivered batch): the
    /// write can be skipped. A state never stored must always be written.
    pub fn changes_nothing(&self, prev: &VitalsState) -> bool {
        prev.version > 0
            && self.state.latest == prev.latest
            && self.state.news2 == prev.news2
            && self.state.last_alert_level == prev.last_alert_level
            && self.state.last_alert_at == prev.last_alert_at
    }
}

/// Window bucket of the deterministic alert id; buckets are at least a minute
/// so a zero cooldown still cannot mint a new id on every batch.
pub fn window_bucket(at: DateTime<Utc>, settings: &News2Settings) -> i64 {
    let seconds = (i64::from(settings.cooldown_minutes) * 60).max(60);
    at.timestamp().div_euclid(seconds)
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
    state.news2 = Some(result);

    let last = prev.last_alert_level.unwrap_or(RiskLevel::Low);
    let cooled_down = prev.last_alert_at.is_none_or(|t| at - t >= Duration::minutes(i64::from(settings.cooldown_minutes)));
    let rose = level > last;
    let sustained = level >= RiskLevel::Medium && level == last && cooled_down;

    let escalation = if level > RiskLevel::Low && (rose || sustained) {
        state.last_alert_level = Some(level);
        state.last_alert_at = Some(at);
        Some(Escalation {
            level,
            at,
            alert_id: AlertId::for_escalation(&prev.trial_id, &prev.patient_id, level, window_bucket(at, settings)),
        })
    } else {
        if level < last {
            // Fall: remember the lower level so that the next rise alerts.
            state.last_alert_level = Some(level);
        }
        None
    };
    Assessment { state, escalation }
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
        News2Settings { freshness_minutes: 60, cooldown_minutes }
    }

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
    fn a_fall_does_not_alert_and_lowers_the_last_alerted_level_so_a_new_rise_alerts() {
        // GIVEN a high alert
        let high = step(&fresh_state(), RiskLevel::High, t0(), 60);
        // WHEN the level falls to low-medium
        let fell = step(&high.state, RiskLevel::LowMedium, t0() + Duration::minutes(5), 60);
        // THEN no alert, and last alerted level is now low-medium with the high alert's time kept
        assert_eq!(fell.escalation, None);
        assert_eq!((fell.state.last_alert_level, fell.state.last_alert_at), (Some(RiskLevel::LowMedium), Some(t0())));
        // AND a rise back to medium alerts
        assert_eq!(
            step(&fell.state, RiskLevel::Medium, t0() + Duration::minutes(10), 60).escalation.map(|e| e.level),
            Some(RiskLevel::Medium)
        );
    }

    #[test]
    fn the_same_batch_on_the_same_prior_state_gives_the_same_alert_even_across_a_bucket_boundary() {
        // GIVEN readings observed at 20:59:30 (bucket of 60 min ends at 21:00)
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

    #[test]
    fn buckets_are_at_least_a_minute_even_with_a_zero_cooldown() {
        let s = settings(0);
        assert_eq!(window_bucket(t0(), &s), window_bucket(t0() + Duration::seconds(59), &s));
        assert_ne!(window_bucket(t0(), &s), window_bucket(t0() + Duration::seconds(60), &s));
    }
}
