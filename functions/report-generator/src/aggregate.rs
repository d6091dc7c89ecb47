//! Pure aggregation: what the report says, computed from what the stores
//! returned. No I/O here, so every figure is tested on hand-computed fixtures.
//!
//! ## Expected submissions and compliance
//! For a site `s` with `E(s)` patients currently *enrolled* (the enrolment
//! counters; withdrawn and completed patients are not expected to submit), a
//! period of `N` days and each questionnaire `q` on the trial's schedule:
//! - **daily** `q`: `E(s)` submissions are expected on every day; a day credits
//!   at most `E(s)` of them (`min(received, E(s))`), so one day's duplicates
//!   cannot hide another day's gaps;
//! - **weekly** `q`: `E(s) * N / 7` submissions are expected over the period (one
//!   per patient per 7 days, a rate, so a 30-day report expects 4.29 per
//!   patient); the period credits at most that many, because a weekly
//!   questionnaire may be answered on any day of its week.
//!
//! Compliance = credited / expected, per site and overall; `None` when nothing
//! was expected. "Received" counts every submission, including questionnaires
//! not on the schedule; only scheduled ones are credited.
//!
//! A site-day cell shows the daily questionnaires only (`E(s)` per daily
//! questionnaire, each capped as above): a weekly questionnaire may be
//! answered on any day, so it is judged over the period, not per day. A trial
//! whose schedule is weekly only spreads it as `E(s) / 7` a day instead.
//!
//! ## Time to acknowledge
//! Minutes from an alert's creation to its acknowledgement, for alerts created
//! in the period and acknowledged by the time the report is made. Percentiles
//! use linear interpolation between closest ranks (the "R-7" definition, also
//! numpy's default and Excel's PERCENTILE.INC): for sorted `x[0..n]` and
//! `p` in `[0, 1]`, `h = (n - 1) * p` and the result is
//! `x[floor h] + (h - floor h) * (x[floor h + 1] - x[floor h])`, so the
//! median of an even count is the mean of the two middle values.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use trialwatch::alert::{AlertRecord, AlertStatus, AttemptOutcome};
use trialwatch::enrolment::{EnrolmentCount, EnrolmentStatus};
use trialwatch::news2::RiskLevel;
use trialwatch::report::ReportSummary;
use trialwatch::submission::DailySiteCount;
use trialwatch::trial::{Frequency, Trial};
use trialwatch::{QuestionnaireId, SiteId};

use crate::period::Period;

/// Everything the report shows, in display order.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub sites: Vec<SiteFigures>,
    /// Per period day: submissions received (all sites, all questionnaires).
    pub received_by_day: Vec<(NaiveDate, u64)>,
    /// Per period day: submissions expected (all sites).
    pub expected_by_day: Vec<(NaiveDate, f64)>,
    pub alerts: AlertFigures,
    /// Patients per current NEWS2 risk level, every level listed.
    pub risk_levels: Vec<(RiskLevel, u64)>,
    pub summary: ReportSummary,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SiteFigures {
    pub site_id: SiteId,
    pub name: String,
    pub enrolled: u64,
    pub completed: u64,
    pub withdrawn: u64,
    pub received: u64,
    pub expected: f64,
    pub credited: f64,
    pub compliance: Option<f64>,
    /// One cell per period day, in order.
    pub days: Vec<DayCell>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayCell {
    pub day: NaiveDate,
    /// Every submission of the day, whatever the questionnaire.
    pub received: u64,
    /// Expected in this cell: daily questionnaires only, unless the schedule is weekly only.
    pub expected: f64,
    /// Credited over expected for the cell.
    pub compliance: Option<f64>,
}

/// Delivery outcome of an alert as the report groups it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Delivered,
    Pending,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Delivered, Outcome::Pending, Outcome::Failed];
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Delivered => "Delivered",
            Outcome::Pending => "Pending",
            Outcome::Failed => "Failed",
        }
    }

    /// Delivered once it reached a channel (even if acknowledged since);
    /// failed when the dispatcher gave up or a channel refused it for good;
    /// otherwise still pending (queued, leased, or retrying).
    pub fn of(r: &AlertRecord) -> Outcome {
        if r.delivered_at.is_some() || r.status == AlertStatus::Delivered {
            Outcome::Delivered
        } else if r.status == AlertStatus::Failed || r.attempts.iter().any(|a| a.outcome == AttemptOutcome::Permanent) {
            Outcome::Failed
        } else {
            Outcome::Pending
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertFigures {
    /// Every level in order, with counts by outcome and acknowledgements.
    pub by_level: Vec<LevelAlerts>,
    pub total: u64,
    pub delivered: u64,
    pub pending: u64,
    pub failed: u64,
    pub acknowledged: u64,
    pub median_minutes_to_ack: Option<f64>,
    pub p90_minutes_to_ack: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LevelAlerts {
    pub level: RiskLevel,
    /// Counts in `Outcome::ALL` order.
    pub by_outcome: [u64; 3],
    pub acknowledged: u64,
}

impl LevelAlerts {
    pub fn total(&self) -> u64 {
        self.by_outcome.iter().sum()
    }
}

/// What the stores returned for one report.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub trial: Trial,
    pub enrolment: Vec<EnrolmentCount>,
    pub daily: Vec<DailySiteCount>,
    pub alerts: Vec<AlertRecord>,
    pub risk_levels: Vec<(RiskLevel, u64)>,
}

/// Linear interpolation between closest ranks; `p` in `[0, 1]`.
/// `None` for no values. `sorted` must be ascending.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(last);
    let (a, b) = (sorted[lo], sorted[hi]);
    Some(a + (h - lo as f64) * (b - a))
}

/// Minutes from creation to acknowledgement of every acknowledged alert,
/// ascending. A negative span (clock skew between writers) counts as zero.
pub fn minutes_to_acknowledge(alerts: &[AlertRecord]) -> Vec<f64> {
    let mut m: Vec<f64> = alerts
        .iter()
        .filter_map(|r| r.acknowledged_at.map(|at| ((at - r.alert.created_at).num_milliseconds().max(0)) as f64 / 60_000.0))
        .collect();
    m.sort_by(f64::total_cmp);
    m
}

pub fn alert_figures(alerts: &[AlertRecord]) -> AlertFigures {
    let mut by_level: Vec<LevelAlerts> =
        RiskLevel::ALL.iter().map(|&level| LevelAlerts { level, by_outcome: [0; 3], acknowledged: 0 }).collect();
    let mut f = AlertFigures::default();
    for r in alerts {
        let outcome = Outcome::of(r);
        let idx = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        let acked = r.acknowledged_at.is_some() || r.status == AlertStatus::Acknowledged;
        if let Some(l) = by_level.iter_mut().find(|l| l.level == r.alert.level) {
            l.by_outcome[idx] += 1;
            l.acknowledged += u64::from(acked);
        }
        f.total += 1;
        match outcome {
            Outcome::Delivered => f.delivered += 1,
            Outcome::Pending => f.pending += 1,
            Outcome::Failed => f.failed += 1,
        }
        f.acknowledged += u64::from(acked);
    }
    let minutes = minutes_to_acknowledge(alerts);
    f.median_minutes_to_ack = percentile(&minutes, 0.5);
    f.p90_minutes_to_ack = percentile(&minutes, 0.9);
    f.by_level = by_level;
    f
}

/// Per-site enrolment by status, from the counters.
fn enrolment_by_site(counts: &[EnrolmentCount]) -> HashMap<&SiteId, [u64; 3]> {
    let mut m: HashMap<&SiteId, [u64; 3]> = HashMap::new();
    for c in counts {
        let i = EnrolmentStatus::ALL.iter().position(|s| *s == c.status).unwrap_or(0);
        m.entry(&c.site_id).or_default()[i] += c.count;
    }
    m
}

/// The whole computation; see the module documentation for the formulas.
pub fn figures(g: &Gathered, period: Period) -> Figures {
    let def = &g.trial.definition;
    let days: Vec<NaiveDate> = period.each_day().collect();
    let n_days = days.len() as f64;
    let day_index: HashMap<NaiveDate, usize> = days.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let frequency: HashMap<&QuestionnaireId, Frequency> = def.schedule.iter().map(|s| (&s.questionnaire_id, s.frequency)).collect();
    let n_daily = def.schedule.iter().filter(|s| s.frequency == Frequency::Daily).count() as f64;
    let n_weekly = def.schedule.iter().filter(|s| s.frequency == Frequency::Weekly).count() as f64;

    // Sites in definition order; counters for a site no longer defined still count.
    let mut sites: Vec<(SiteId, String)> = def.sites.iter().map(|s| (s.id.clone(), s.name.clone())).collect();
    let known = |sites: &Vec<(SiteId, String)>, id: &SiteId| sites.iter().any(|(s, _)| s == id);
    for id in g.enrolment.iter().map(|c| &c.site_id).chain(g.daily.iter().map(|c| &c.site_id)) {
        if !known(&sites, id) {
            sites.push((id.clone(), id.to_string()));
        }
    }
    let enrolment = enrolment_by_site(&g.enrolment);

    // received[site][questionnaire][day]
    let mut received: HashMap<&SiteId, BTreeMap<&QuestionnaireId, Vec<u64>>> = HashMap::new();
    for c in &g.daily {
        let Some(&di) = c.day.parse::<NaiveDate>().ok().as_ref().and_then(|d| day_index.get(d)) else { continue };
        let per_day = received.entry(&c.site_id).or_default().entry(&c.questionnaire_id).or_insert_with(|| vec![0; days.len()]);
        per_day[di] += c.submissions;
    }

    let mut site_figures = Vec::with_capacity(sites.len());
    for (site_id, name) in sites {
        let [enrolled, withdrawn, completed] = enrolment.get(&site_id).copied().unwrap_or_default();
        let e = enrolled as f64;
        let by_q = received.get(&site_id);
        let mut credited = 0.0;
        let mut total_received = 0u64;
        let mut all_by_day = vec![0u64; days.len()];
        // What a site-day cell credits (see the module documentation).
        let mut cell_credit = vec![0.0f64; days.len()];
        let weekly_only = n_daily == 0.0;
        let cell_expected = if weekly_only { e * n_weekly / 7.0 } else { e * n_daily };
        if let Some(by_q) = by_q {
            for (q, per_day) in by_q {
                total_received += per_day.iter().sum::<u64>();
                for (i, n) in per_day.iter().enumerate() {
                    all_by_day[i] += n;
                }
                match frequency.get(q) {
                    Some(Frequency::Daily) => {
                        credited += per_day.iter().map(|&n| (n as f64).min(e)).sum::<f64>();
                        per_day.iter().enumerate().for_each(|(i, &n)| cell_credit[i] += (n as f64).min(e));
                    }
                    Some(Frequency::Weekly) => {
                        credited += (per_day.iter().sum::<u64>() as f64).min(e * n_days / 7.0);
                        if weekly_only {
                            per_day.iter().enumerate().for_each(|(i, &n)| cell_credit[i] += n as f64);
                        }
                    }
                    None => {}
                }
            }
        }
        let expected = e * n_days * (n_daily + n_weekly / 7.0);
        let cells = days
            .iter()
            .enumerate()
            .map(|(i, &day)| DayCell {
                day,
                received: all_by_day[i],
                expected: cell_expected,
                compliance: ratio(cell_credit[i].min(cell_expected), cell_expected),
            })
            .collect();
        site_figures.push(SiteFigures {
            site_id,
            name,
            enrolled,
            completed,
            withdrawn,
            received: total_received,
            expected,
            credited,
            compliance: ratio(credited, expected),
            days: cells,
        });
    }

    let received_by_day =
        days.iter().enumerate().map(|(i, d)| (*d, site_figures.iter().map(|s| s.days[i].received).sum::<u64>())).collect();
    // The chart's expected line is the whole daily rate, weekly questionnaires as 1/7 a day.
    let per_day_rate = n_daily + n_weekly / 7.0;
    let expected_by_day = days.iter().map(|d| (*d, site_figures.iter().map(|s| s.enrolled as f64 * per_day_rate).sum::<f64>())).collect();
    let alerts = alert_figures(&g.alerts);
    let risk_levels = RiskLevel::ALL.iter().map(|&l| (l, g.risk_levels.iter().filter(|(r, _)| *r == l).map(|(_, n)| n).sum())).collect();

    let expected: f64 = site_figures.iter().map(|s| s.expected).sum();
    let credited: f64 = site_figures.iter().map(|s| s.credited).sum();
    let summary = ReportSummary {
        sites: def.sites.len() as u32,
        patients_enrolled: site_figures.iter().map(|s| s.enrolled).sum(),
        submissions_received: site_figures.iter().map(|s| s.received).sum(),
        submissions_expected: expected.round() as u64,
        compliance: ratio(credited, expected),
        alerts_total: alerts.total,
        alerts_delivered: alerts.delivered,
        alerts_acknowledged: alerts.acknowledged,
        median_minutes_to_ack: alerts.median_minutes_to_ack,
        p90_minutes_to_ack: alerts.p90_minutes_to_ack,
    };
    Figures { sites: site_figures, received_by_day, expected_by_day, alerts, risk_levels, summary }
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{DateTime, Duration, Utc};
    use trialwatch::alert::{Alert, AlertReason, Channel, DeliveryAttempt};
    use trialwatch::trial::TrialDefinition;
    use trialwatch::{AlertId, PatientId, TrialId};

    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    pub(crate) fn trial(schedule: serde_json::Value) -> Trial {
        let def: TrialDefinition = serde_json::from_value(serde_json::json!({
            "name": "心衰居家监测 Heart failure at home",
            "sites": [{"id": "s1", "name": "北京协和医院"}, {"id": "s2", "name": "Leeds General"}],
            "questionnaires": [
                {"id": "kccq", "version": "1", "items": [{"linkId": "q1", "type": "integer", "min": 0, "max": 10}]},
                {"id": "eq5d", "version": "1", "items": [{"linkId": "q1", "type": "integer", "min": 0, "max": 10}]},
                {"id": "adhoc", "version": "1", "items": [{"linkId": "q1", "type": "integer", "min": 0, "max": 10}]}
            ],
            "schedule": schedule,
            "timezone": "Asia/Shanghai"
        }))
        .unwrap();
        Trial { trial_id: TrialId::parse("t1").unwrap(), definition: def, updated_at: "2026-01-01T00:00:00.000Z".into() }
    }

    fn count(site: &str, status: EnrolmentStatus, n: u64) -> EnrolmentCount {
        EnrolmentCount { site_id: SiteId::parse(site).unwrap(), status, count: n }
    }

    fn daily(day: &str, site: &str, q: &str, n: u64) -> DailySiteCount {
        DailySiteCount { day: day.into(), site_id: SiteId::parse(site).unwrap(), questionnaire_id: q.parse().unwrap(), submissions: n }
    }

    pub(crate) fn alert(i: u32, level: RiskLevel, created: &str, status: AlertStatus, ack_after_min: Option<i64>) -> AlertRecord {
        let created_at: DateTime<Utc> = created.parse().unwrap();
        AlertRecord {
            alert: Alert {
                alert_id: AlertId::parse(&format!("al-{i}")).unwrap(),
                trial_id: TrialId::parse("t1").unwrap(),
                patient_id: PatientId::parse(&format!("p{i}")).unwrap(),
                site_id: SiteId::parse("s1").unwrap(),
                level,
                reason: AlertReason::News2 { score: 7, components: vec![] },
                created_at,
                correlation_id: None,
            },
            status,
            attempts: vec![],
            lease_until: None,
            delivered_at: matches!(status, AlertStatus::Delivered | AlertStatus::Acknowledged).then(|| created_at + Duration::seconds(5)),
            acknowledged_at: ack_after_min.map(|m| created_at + Duration::minutes(m)),
            acknowledged_by: None,
            ack_note: None,
        }
    }

    #[test]
    fn percentiles_interpolate_linearly_between_closest_ranks() {
        // [1,2,3,4]: median h=1.5 -> 2.5; p90 h=2.7 -> 3 + 0.7*(4-3) = 3.7
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&x, 0.5), Some(2.5));
        assert!((percentile(&x, 0.9).unwrap() - 3.7).abs() < 1e-12);
        // odd count: the middle value; p90 of [10,20,30,40,50] h=3.6 -> 40 + 0.6*10 = 46
        let y = [10.0, 20.0, 30.0, 40.0, 50.0];
        assert_eq!(percentile(&y, 0.5), Some(30.0));
        assert!((percentile(&y, 0.9).unwrap() - 46.0).abs() < 1e-12);
        // edges
        assert_eq!(percentile(&[7.0], 0.9), Some(7.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&x, 0.0), Some(1.0));
        assert_eq!(percentile(&x, 1.0), Some(4.0));
    }

    #[test]
    fn time_to_acknowledge_counts_only_acknowledged_alerts_and_never_goes_negative() {
        // GIVEN alerts acknowledged after 30, 5 and 12 minutes, one never, one "before" creation (skew)
        let alerts = vec![
            alert(1, RiskLevel::High, "2026-03-02T10:00:00Z", AlertStatus::Acknowledged, Some(30)),
            alert(2, RiskLevel::High, "2026-03-02T11:00:00Z", AlertStatus::Acknowledged, Some(5)),
            alert(3, RiskLevel::Medium, "2026-03-02T12:00:00Z", AlertStatus::Acknowledged, Some(12)),
            alert(4, RiskLevel::Medium, "2026-03-02T13:00:00Z", AlertStatus::Delivered, None),
            alert(5, RiskLevel::Medium, "2026-03-02T14:00:00Z", AlertStatus::Acknowledged, Some(-2)),
        ];
        // THEN the minutes are [0, 5, 12, 30]: median (5+12)/2 = 8.5, p90 h=2.7 -> 12 + 0.7*18 = 24.6
        assert_eq!(minutes_to_acknowledge(&alerts), vec![0.0, 5.0, 12.0, 30.0]);
        let f = alert_figures(&alerts);
        assert_eq!(f.median_minutes_to_ack, Some(8.5));
        assert!((f.p90_minutes_to_ack.unwrap() - 24.6).abs() < 1e-9);
        assert_eq!(f.acknowledged, 4);
    }

    #[test]
    fn alerts_are_counted_by_level_and_delivery_outcome() {
        // GIVEN: high delivered+acked, high failed, medium pending, medium pending with a permanent webhook refusal
        let mut refused = alert(4, RiskLevel::Medium, "2026-03-02T13:00:00Z", AlertStatus::Pending, None);
        refused.attempts.push(DeliveryAttempt {
            at: "2026-03-02T13:00:01Z".parse().unwrap(),
            channel: Channel::Webhook,
            outcome: AttemptOutcome::Permanent,
            http_status: Some(410),
            detail: None,
        });
        let alerts = vec![
            alert(1, RiskLevel::High, "2026-03-02T10:00:00Z", AlertStatus::Acknowledged, Some(3)),
            alert(2, RiskLevel::High, "2026-03-02T11:00:00Z", AlertStatus::Failed, None),
            alert(3, RiskLevel::Medium, "2026-03-02T12:00:00Z", AlertStatus::Pending, None),
            refused,
        ];
        let f = alert_figures(&alerts);
        assert_eq!((f.total, f.delivered, f.pending, f.failed, f.acknowledged), (4, 1, 1, 2, 1));
        let high = f.by_level.iter().find(|l| l.level == RiskLevel::High).unwrap();
        assert_eq!(high.by_outcome, [1, 0, 1]);
        assert_eq!(high.acknowledged, 1);
        let medium = f.by_level.iter().find(|l| l.level == RiskLevel::Medium).unwrap();
        assert_eq!(medium.by_outcome, [0, 1, 1]);
        assert_eq!(f.by_level.len(), 4, "every level is listed, even with no alerts");
    }

    #[test]
    fn daily_compliance_credits_at_most_the_enrolled_count_per_site_day() {
        // GIVEN 10 patients enrolled at s1 (plus 2 withdrawn), kccq daily, 3 days
        let g = Gathered {
            trial: trial(serde_json::json!([{"questionnaireId": "kccq", "frequency": "daily"}])),
            enrolment: vec![count("s1", EnrolmentStatus::Enrolled, 10), count("s1", EnrolmentStatus::Withdrawn, 2)],
            // day 1: 8, day 2: 12 (2 duplicates answered twice), day 3: 5, plus 4 unscheduled adhoc on day 3
            daily: vec![
                daily("2026-03-02", "s1", "kccq", 8),
                daily("2026-03-03", "s1", "kccq", 12),
                daily("2026-03-04", "s1", "kccq", 5),
                daily("2026-03-04", "s1", "adhoc", 4),
                daily("2026-03-05", "s1", "kccq", 99), // outside the period: ignored
            ],
            alerts: vec![],
            risk_levels: vec![],
        };
        let f = figures(&g, Period { from: d("2026-03-02"), to: d("2026-03-04") });
        let s1 = &f.sites[0];
        // THEN expected 10*3 = 30, credited 8+10+5 = 23, received 8+12+5+4 = 29
        assert_eq!(s1.expected, 30.0);
        assert_eq!(s1.credited, 23.0);
        assert_eq!(s1.received, 29);
        assert_eq!(s1.compliance, Some(23.0 / 30.0));
        assert_eq!((s1.enrolled, s1.withdrawn, s1.completed), (10, 2, 0));
        // AND the day cells: 0.8, 1.0 (capped), 0.5; received includes adhoc
        let c: Vec<_> = s1.days.iter().map(|c| (c.received, c.compliance)).collect();
        assert_eq!(c, vec![(8, Some(0.8)), (12, Some(1.0)), (9, Some(0.5))]);
        // AND s2 with nobody enrolled expects nothing: compliance undefined, not 0 or 100
        assert_eq!(f.sites[1].compliance, None);
        // AND the summary
        assert_eq!(f.summary.submissions_expected, 30);
        assert_eq!(f.summary.submissions_received, 29);
        assert_eq!(f.summary.compliance, Some(23.0 / 30.0));
        assert_eq!(f.summary.patients_enrolled, 10);
        assert_eq!(f.summary.sites, 2);
        assert_eq!(f.received_by_day, vec![(d("2026-03-02"), 8), (d("2026-03-03"), 12), (d("2026-03-04"), 9)]);
    }

    #[test]
    fn weekly_compliance_expects_one_per_patient_per_seven_days_over_the_period() {
        // GIVEN 7 enrolled at s2, eq5d weekly, a 14-day period: 7 * 14/7 = 14 expected
        let g = Gathered {
            trial: trial(serde_json::json!([{"questionnaireId": "eq5d", "frequency": "weekly"}])),
            enrolment: vec![count("s2", EnrolmentStatus::Enrolled, 7)],
            // every patient answers on the Monday of each week, one patient twice in week 2
            daily: vec![daily("2026-03-02", "s2", "eq5d", 7), daily("2026-03-09", "s2", "eq5d", 8)],
            alerts: vec![],
            risk_levels: vec![],
        };
        let f = figures(&g, Period { from: d("2026-03-02"), to: d("2026-03-15") });
        let s2 = &f.sites[1];
        // THEN the period credits min(15, 14) = 14 of 14: full compliance, not 1/7
        assert_eq!(s2.expected, 14.0);
        assert_eq!(s2.credited, 14.0);
        assert_eq!(s2.compliance, Some(1.0));
        // AND each day expects 7/7 = 1 in the site-by-day view
        assert_eq!(s2.days[0].expected, 1.0);
        assert_eq!(s2.days[0].compliance, Some(1.0));
        assert_eq!(s2.days[1].compliance, Some(0.0));
    }

    #[test]
    fn a_daily_and_a_weekly_questionnaire_add_up() {
        // GIVEN 14 enrolled at s1, kccq daily + eq5d weekly, 7 days: 14*7 + 14*1 = 112 expected
        let g = Gathered {
            trial: trial(serde_json::json!([
                {"questionnaireId": "kccq", "frequency": "daily"},
                {"questionnaireId": "eq5d", "frequency": "weekly"}
            ])),
            enrolment: vec![count("s1", EnrolmentStatus::Enrolled, 14), count("s1", EnrolmentStatus::Completed, 3)],
            daily: (2..=8)
                .map(|day| daily(&format!("2026-03-{day:02}"), "s1", "kccq", 7))
                .chain([daily("2026-03-04", "s1", "eq5d", 10)])
                .collect(),
            alerts: vec![],
            risk_levels: vec![(RiskLevel::Low, 9), (RiskLevel::High, 2)],
        };
        let f = figures(&g, Period { from: d("2026-03-02"), to: d("2026-03-08") });
        // THEN credited 7*7 + 10 = 59 of 112
        assert_eq!(f.summary.submissions_expected, 112);
        // AND the Wednesday cell judges the daily questionnaire alone: 7 of 14, the weekly ones do not mask it
        assert_eq!(f.sites[0].days[2].compliance, Some(0.5));
        assert_eq!(f.sites[0].days[2].received, 17);
        // AND the chart's expected line is the whole daily rate: 14 + 14/7 = 16 a day
        assert!((f.expected_by_day[0].1 - 16.0).abs() < 1e-9);
        assert_eq!(f.summary.submissions_received, 59);
        assert_eq!(f.summary.compliance, Some(59.0 / 112.0));
        assert_eq!(f.sites[0].completed, 3);
        // AND every risk level is listed, absent ones as 0
        assert_eq!(f.risk_levels, vec![(RiskLevel::Low, 9), (RiskLevel::LowMedium, 0), (RiskLevel::Medium, 0), (RiskLevel::High, 2)]);
    }

    #[test]
    fn counters_of_a_site_no_longer_defined_still_count_under_its_id() {
        let g = Gathered {
            trial: trial(serde_json::json!([{"questionnaireId": "kccq", "frequency": "daily"}])),
            enrolment: vec![count("s9", EnrolmentStatus::Enrolled, 2)],
            daily: vec![daily("2026-03-02", "s9", "kccq", 2)],
            alerts: vec![],
            risk_levels: vec![],
        };
        let f = figures(&g, Period { from: d("2026-03-02"), to: d("2026-03-02") });
        assert_eq!(f.sites.len(), 3);
        assert_eq!(f.sites[2].name, "s9");
        assert_eq!(f.summary.compliance, Some(1.0));
    }
}
