//! The reporting period: trial-zone calendar days, how a request names them,
//! and how an instant falls into one of them.
//!
//! Counters are bucketed by the trial's own calendar day (a 23:30 submission in
//! New York belongs to that New York day, not to the next UTC day), so a report
//! period is a range of trial-zone dates and its UTC bounds come from the zone.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::Deserialize;
use trialwatch::validation::FieldErrors;
use trialwatch::validation::Validator;
use trialwatch::zone::Zone;

/// A year and a leap day: the longest period one request may ask for.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// `from..=to`, trial-zone dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Body of `POST /v1/trials/{trialId}/reports`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodRequest {
    pub from: String,
    pub to: String,
}

impl Period {
    /// Number of days, both ends included.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// Every day of the period in order.
    pub fn each_day(&self) -> impl Iterator<Item = NaiveDate> {
        let from = self.from;
        (0..self.days()).map(move |i| from + Duration::days(i))
    }

    /// The UTC instants `[start of from, start of to + 1)` in `tz`, for
    /// indexed time-range queries (alerts).
    pub fn utc_bounds(&self, tz: &Zone) -> (DateTime<Utc>, DateTime<Utc>) {
        (day_start_utc(self.from, tz), day_start_utc(self.to + Duration::days(1), tz))
    }

    /// The previous Monday-Sunday week, as seen in `tz` at `now`: the weekly
    /// schedule runs on Monday, so "last week" is the seven days that ended
    /// at the most recent local midnight before this Monday.
    pub fn last_week(now: DateTime<Utc>, tz: &Zone) -> Period {
        let today = tz.local_date(now);
        let this_monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        Period { from: this_monday - Duration::days(7), to: this_monday - Duration::days(1) }
    }

    /// Validates a request against `today` (the trial-zone date now): both
    /// dates `YYYY-MM-DD`, `from <= to`, at most 366 days, `to` not in the future.
    /// Every problem is reported at once, named by field.
    pub fn from_request(req: &PeriodRequest, today: NaiveDate) -> Result<Period, FieldErrors> {
        let mut v = Validator::new();
        let from = v.take("from", parse_date(&req.from));
        let to = v.take("to", parse_date(&req.to));
        if let Some(to) = to {
            v.check(to <= today, "to", format!("must not be in the future (today is {today} in the trial's time zone)"));
        }
        if let (Some(from), Some(to)) = (from, to) {
            v.check(from <= to, "from", "must not be after to");
            if from <= to {
                let days = (to - from).num_days() + 1;
                v.check(days <= MAX_PERIOD_DAYS, "to", format!("the period may span at most {MAX_PERIOD_DAYS} days"));
            }
        }
        match (from, to) {
            (Some(from), Some(to)) => v.finish(Period { from, to }),
            _ => Err(FieldErrors(v.into_errors())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("must be a date YYYY-MM-DD")]
pub struct DateFormatError;

fn parse_date(s: &str) -> Result<NaiveDate, DateFormatError> {
    // Exactly ten characters: chrono alone would accept "2026-3-1".
    if s.len() != 10 {
        return Err(DateFormatError);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| DateFormatError)
}

/// The trial-zone calendar day an instant falls in.
pub fn local_day(t: DateTime<Utc>, tz: &Zone) -> NaiveDate {
    tz.local_date(t)
}

/// The first instant of `day` in `tz` ([`Zone::day_start`]: where a DST
/// change skips local midnight, the first local time that exists; where
/// midnight happens twice, the earlier one).
pub fn day_start_utc(day: NaiveDate, tz: &Zone) -> DateTime<Utc> {
    tz.day_start(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }
    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }
    fn req(from: &str, to: &str) -> PeriodRequest {
        PeriodRequest { from: from.into(), to: to.into() }
    }
    fn fields(e: FieldErrors) -> Vec<String> {
        e.into_vec().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_new_york_day_spans_23_hours_when_dst_starts_on_2026_03_08() {
        // GIVEN a trial in America/New_York, where clocks jump 02:00 -> 03:00 on 2026-03-08
        let tz = Zone::parse("America/New_York").unwrap();
        // WHEN the day's bounds are computed
        let p = Period { from: d("2026-03-08"), to: d("2026-03-08") };
        let (start, end) = p.utc_bounds(&tz);
        // THEN it starts at 05:00Z (EST, -5) and ends at 04:00Z next day (EDT, -4)
        assert_eq!(start, t("2026-03-08T05:00:00Z"));
        assert_eq!(end, t("2026-03-09T04:00:00Z"));
        assert_eq!((end - start).num_hours(), 23);
    }

    #[test]
    fn instants_are_bucketed_into_the_trial_zone_day_not_the_utc_day() {
        let ny = Zone::parse("America/New_York").unwrap();
        let sh = Zone::parse("Asia/Shanghai").unwrap();
        // 23:30 EDT on 2026-03-08 is already 03:30Z on 03-09
        assert_eq!(local_day(t("2026-03-09T03:30:00Z"), &ny), d("2026-03-08"));
        // 00:30 EDT on 2026-03-09 is 04:30Z
        assert_eq!(local_day(t("2026-03-09T04:30:00Z"), &ny), d("2026-03-09"));
        // Shanghai is UTC+8 all year: 17:00Z on 03-01 is 01:00 on 03-02
        assert_eq!(local_day(t("2026-03-01T17:00:00Z"), &sh), d("2026-03-02"));
        assert_eq!(local_day(t("2026-03-01T15:59:59Z"), &sh), d("2026-03-01"));
    }

    #[test]
    fn a_shanghai_day_starts_at_16_00_utc_the_day_before() {
        let sh = Zone::parse("Asia/Shanghai").unwrap();
        assert_eq!(day_start_utc(d("2026-03-02"), &sh), t("2026-03-01T16:00:00Z"));
    }

    #[test]
    fn where_dst_skips_midnight_the_day_starts_at_the_first_local_time_that_exists() {
        // America/Santiago moved clocks 00:00 -> 01:00 on 2024-09-08 (-04 -> -03)
        let tz = Zone::parse("America/Santiago").unwrap();
        assert_eq!(day_start_utc(d("2024-09-08"), &tz), t("2024-09-08T04:00:00Z"));
    }

    #[test]
    fn last_week_is_the_previous_monday_to_sunday_in_the_trial_zone() {
        // GIVEN Monday 2026-03-09 06:00Z, the schedule's firing time
        let now = t("2026-03-09T06:00:00Z");
        // THEN in London last week is 03-02..03-08
        let p = Period::last_week(now, &Zone::parse("Europe/London").unwrap());
        assert_eq!((p.from, p.to), (d("2026-03-02"), d("2026-03-08")));
        assert_eq!(p.days(), 7);
        // AND in Los Angeles it is still Sunday night (22:00 PST): the week before
        let p = Period::last_week(now, &Zone::parse("America/Los_Angeles").unwrap());
        assert_eq!((p.from, p.to), (d("2026-02-23"), d("2026-03-01")));
    }

    #[test]
    fn a_valid_request_gives_the_period() {
        let p = Period::from_request(&req("2026-03-01", "2026-03-30"), d("2026-04-01")).unwrap();
        assert_eq!(p.days(), 30);
        assert_eq!(p.each_day().count(), 30);
        assert_eq!(p.each_day().last(), Some(d("2026-03-30")));
    }

    #[test]
    fn malformed_dates_are_422_naming_each_field() {
        let e = Period::from_request(&req("2026-3-1", "yesterday"), d("2026-04-01")).unwrap_err();
        assert_eq!(trialwatch::edge::http::HttpError::from(e.clone()).status(), 422, "the HTTP edge answers invalid fields with 422");
        assert_eq!(fields(e), vec!["from", "to"]);
    }

    #[test]
    fn from_after_to_is_422_naming_from() {
        let e = Period::from_request(&req("2026-03-10", "2026-03-01"), d("2026-04-01")).unwrap_err();
        assert_eq!(fields(e), vec!["from"]);
    }

    #[test]
    fn a_period_longer_than_366_days_is_422_naming_to() {
        assert!(Period::from_request(&req("2025-01-01", "2026-01-01"), d("2026-04-01")).is_ok());
        let e = Period::from_request(&req("2025-01-01", "2026-01-02"), d("2026-04-01")).unwrap_err();
        assert_eq!(fields(e), vec!["to"]);
    }

    #[test]
    fn a_period_ending_in_the_future_is_422_naming_to() {
        let e = Period::from_request(&req("2026-03-01", "2026-04-02"), d("2026-04-01")).unwrap_err();
        assert_eq!(fields(e), vec!["to"]);
        assert!(Period::from_request(&req("2026-03-01", "2026-04-01"), d("2026-04-01")).is_ok());
    }
}
