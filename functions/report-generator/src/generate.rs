//! What making a report reads and names: the sections gathered concurrently,
//! the report ids, the link. The use case itself is [`crate::build_report`].

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use trialwatch::ports::{Clock, ReportFigures, ReportStore, StorageError, TrialConfig};
use trialwatch::report::ReportMeta;
use trialwatch::{Error, ReportId, TrialId};

use crate::aggregate::Gathered;
use crate::period::{local_day, Period};

/// How long a presigned download link stays valid.
pub const LINK_TTL: StdDuration = StdDuration::from_secs(15 * 60);

/// A stored report and a fresh link to it.
#[derive(Debug, Clone)]
pub struct Generated {
    pub meta: ReportMeta,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// `rpt-<yyyymmdd>-<12 hex>`: the generation date, then randomness.
pub fn new_report_id(now: DateTime<Utc>) -> Result<ReportId, Error> {
    let random = uuid::Uuid::new_v4().simple().to_string();
    report_id(now.date_naive(), &random[..12])
}

/// The weekly report of a trial and week always has the same id, so a retried
/// schedule finds it done instead of making a second one.
pub fn weekly_report_id(trial: &TrialId, period: Period) -> Result<ReportId, Error> {
    let digest = Sha256::digest(format!("weekly\0{trial}\0{}\0{}", period.from, period.to).as_bytes());
    report_id(period.from, &format!("w{}", &hex::encode(digest)[..11]))
}

fn report_id(day: NaiveDate, suffix: &str) -> Result<ReportId, Error> {
    ReportId::parse(&format!("rpt-{}-{suffix}", day.format("%Y%m%d"))).map_err(|_| Error::Internal("report id".into()))
}

/// The alert index is queried by UTC instant before the trial's zone is known
/// (all sections run at once), so the window is widened to every zone on Earth
/// (UTC+14 to UTC-12) and then cut to the trial's own days.
fn widest_bounds(period: Period) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = period.from.and_time(chrono::NaiveTime::MIN).and_utc() - Duration::hours(14);
    let to = (period.to + Duration::days(1)).and_time(chrono::NaiveTime::MIN).and_utc() + Duration::hours(12);
    (from, to)
}

/// The five sections, concurrently: the first error cancels the rest
/// (`try_join!` drops the other futures) and is returned. Each is a GetItem or
/// an indexed Query over counters, so the cost grows with sites x days, never
/// with submissions or patients.
/// An absent trial is `StorageError::NotFound("trial")`.
pub async fn gather(
    trials: &impl TrialConfig,
    store: &impl ReportFigures,
    trial_id: &TrialId,
    period: Period,
) -> Result<Gathered, StorageError> {
    let (from, to) = widest_bounds(period);
    let (trial, enrolment, daily, alerts, risk_levels) = tokio::try_join!(
        async { trials.get_trial(trial_id).await?.ok_or(StorageError::NotFound("trial")) },
        store.enrolment_counts(trial_id),
        store.daily_counts(trial_id, period.from, period.to),
        store.alerts_between(trial_id, from, to),
        store.risk_level_counts(trial_id),
    )?;
    let tz = trial.definition.tz();
    let alerts = alerts
        .into_iter()
        .filter(|a| {
            let day = local_day(a.alert.created_at, &tz);
            day >= period.from && day <= period.to
        })
        .collect();
    Ok(Gathered { trial, enrolment, daily, alerts, risk_levels })
}

/// A fresh link to a stored report.
pub async fn link<R: ReportStore, C: Clock>(reports: &R, clock: &C, meta: &ReportMeta) -> Result<(String, DateTime<Utc>), Error> {
    let url = reports.presign(&meta.object_key, LINK_TTL).await?;
    Ok((url, clock.now() + Duration::seconds(LINK_TTL.as_secs() as i64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_ids_carry_the_date_and_are_valid_ids() {
        let id = new_report_id("2026-03-09T06:00:00Z".parse().unwrap()).unwrap();
        assert!(id.as_str().starts_with("rpt-20260309-"), "{id}");
        assert_eq!(id.as_str().len(), "rpt-20260309-".len() + 12);
        assert_ne!(id, new_report_id("2026-03-09T06:00:00Z".parse().unwrap()).unwrap());
    }

    #[test]
    fn the_weekly_report_of_a_trial_and_week_always_has_the_same_id() {
        let t = TrialId::parse("t1").unwrap();
        let p = Period { from: "2026-03-02".parse().unwrap(), to: "2026-03-08".parse().unwrap() };
        let id = weekly_report_id(&t, p).unwrap();
        assert_eq!(id, weekly_report_id(&t, p).unwrap());
        assert!(id.as_str().starts_with("rpt-20260302-w"), "{id}");
        assert_ne!(id, weekly_report_id(&TrialId::parse("t2").unwrap(), p).unwrap());
    }

    #[test]
    fn the_alert_window_covers_the_period_in_every_time_zone() {
        let p = Period { from: "2026-03-02".parse().unwrap(), to: "2026-03-08".parse().unwrap() };
        let (from, to) = widest_bounds(p);
        for zone in ["Pacific/Kiritimati", "Etc/GMT+12", "Asia/Shanghai", "America/New_York"] {
            let tz = trialwatch::zone::Zone::parse(zone).unwrap();
            let (a, b) = p.utc_bounds(&tz);
            assert!(from <= a && b <= to, "{zone}");
        }
    }
}
