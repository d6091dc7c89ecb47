//! Making one report: gather the sections concurrently, aggregate, render the
//! PDF, store it, audit it, presign a link.

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::domain_event::{announce, DomainEvent};
use trialwatch::ports::{AuditLog, Clock, PendingEvents, ReportFigures, ReportStore, TrialConfig};
use trialwatch::report::ReportMeta;
use trialwatch::{Error, ReportId, TrialId};

use crate::aggregate::{figures, Figures, Gathered};
use crate::pdf;
use crate::period::{local_day, Period};
use crate::Deps;

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
pub async fn gather<S: TrialConfig + ReportFigures>(store: &S, trial_id: &TrialId, period: Period) -> Result<Gathered, Error> {
    let (from, to) = widest_bounds(period);
    let (trial, enrolment, daily, alerts, risk_levels) = tokio::try_join!(
        async { store.get_trial(trial_id).await?.ok_or(trialwatch::ports::StorageError::NotFound("trial")) },
        store.enrolment_counts(trial_id),
        store.daily_counts(trial_id, period.from, period.to),
        store.alerts_between(trial_id, from, to),
        store.risk_level_counts(trial_id),
    )?;
    let tz = trial.definition.tz();
    let alerts = alerts
        .into_iter()
        .filter(|a| {
            let day = local_day(a.alert.created_at, tz);
            day >= period.from && day <= period.to
        })
        .collect();
    Ok(Gathered { trial, enrolment, daily, alerts, risk_levels })
}

/// Renders off the async threads: a large report is tens of milliseconds of CPU.
async fn render(heading: pdf::Heading, figures: Figures) -> Result<pdf::Rendered, Error> {
    tokio::task::spawn_blocking(move || pdf::render(&heading, &figures))
        .await
        .map_err(|_| Error::Internal("pdf rendering panicked".into()))?
}

/// Builds, stores, announces and audits one report from gathered data.
///
/// The object and its metadata are stored before the audit entry is written:
/// an audit entry must never claim a report that does not exist.
pub async fn publish<S: AuditLog + PendingEvents, R: ReportStore, C: Clock>(
    deps: &Deps<S, R, C>,
    gathered: Gathered,
    period: Period,
    report_id: ReportId,
    actor: Actor,
) -> Result<Generated, Error> {
    let started = Instant::now();
    let generated_at = deps.clock.now();
    let trial_id = gathered.trial.trial_id.clone();
    let f = figures(&gathered, period);
    let heading = pdf::Heading {
        trial_id: trial_id.clone(),
        trial_name: gathered.trial.definition.name.clone(),
        timezone: gathered.trial.definition.timezone.clone(),
        period,
        generated_at,
        report_id: report_id.clone(),
    };
    let summary = f.summary.clone();
    let rendered = render(heading, f).await?;
    let meta = ReportMeta {
        object_key: ReportMeta::object_key_for(&trial_id, &report_id),
        report_id: report_id.clone(),
        trial_id: trial_id.clone(),
        from: period.from,
        to: period.to,
        generated_at,
        pages: rendered.pages,
        bytes: rendered.bytes.len() as u64,
        summary,
    };
    // The record and its event commit together; the event is announced at
    // once, and a failed publish is left to the sweep, never lost.
    let event = DomainEvent::report_generated(&meta, trialwatch::correlation::current().as_ref());
    deps.reports.put_report_with_events(&meta, rendered.bytes, std::slice::from_ref(&event)).await?;
    announce(deps.event_bus.as_ref(), &deps.store, std::slice::from_ref(&event)).await;
    let audit = AuditEntry::new(trial_id.clone(), format!("report/{report_id}"), "report.generated", actor, generated_at)
        .with_detail("reportId", report_id.to_string())
        .with_detail("from", period.from.to_string())
        .with_detail("to", period.to.to_string())
        .with_detail("pages", meta.pages)
        .with_detail("bytes", meta.bytes);
    deps.store.append(&audit).await?;
    let url = deps.reports.presign(&meta.object_key, LINK_TTL).await?;
    tracing::info!(
        trial_id = %trial_id,
        report_id = %report_id,
        pages = meta.pages,
        bytes = meta.bytes,
        sites = meta.summary.sites,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "report generated"
    );
    Ok(Generated { expires_at: generated_at + Duration::seconds(LINK_TTL.as_secs() as i64), meta, url })
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
            let tz: chrono_tz::Tz = zone.parse().unwrap();
            let (a, b) = p.utc_bounds(tz);
            assert!(from <= a && b <= to, "{zone}");
        }
    }
}
