//! RFC 3339 UTC timestamps as the API accepts them.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, SecondsFormat, Timelike, Utc};

/// How far in the future a device clock may run before a timestamp is refused.
pub const MAX_FUTURE_SKEW_SECONDS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("must be an RFC 3339 timestamp, e.g. 2026-11-26T20:15:00Z")]
    Format,
    #[error("must be in UTC (suffix Z or +00:00)")]
    NotUtc,
    #[error("must not be more than 5 minutes in the future")]
    Future,
}

/// Parses an RFC 3339 UTC timestamp no later than `now` plus the allowed skew.
pub fn parse_utc(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimestampError> {
    let t = DateTime::parse_from_rfc3339(s).map_err(|_| TimestampError::Format)?;
    if t.offset().local_minus_utc() != 0 {
        return Err(TimestampError::NotUtc);
    }
    let t = t.with_timezone(&Utc);
    if (t - now).num_seconds() > MAX_FUTURE_SKEW_SECONDS {
        return Err(TimestampError::Future);
    }
    Ok(t)
}

/// The canonical rendering: millisecond precision, `Z` suffix, sortable as text.
pub fn format(t: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(24);
    push(&mut out, t);
    out
}

/// Appends [`format`]'s text to `out`. Store keys of every reading carry a
/// timestamp, and chrono's general formatter costs about ten times these
/// few digit writes; years outside 0-9999 and leap seconds, which chrono
/// renders its own way, go through chrono.
pub fn push(out: &mut String, t: DateTime<Utc>) {
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        out.push_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true));
        return;
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut digits = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    digits(0, 4, year as u32);
    digits(5, 2, t.month());
    digits(8, 2, t.day());
    digits(11, 2, t.hour());
    digits(14, 2, t.minute());
    digits(17, 2, t.second());
    digits(20, 3, nanos / 1_000_000);
    out.push_str(std::str::from_utf8(&b).expect("ASCII digits"));
}

/// Parses what chrono's `Deserialize for DateTime<Utc>` parses (RFC 3339,
/// relaxed, any offset, converted to UTC), to the same instant and with the
/// same errors. The form devices and this service send,
/// `YYYY-MM-DDTHH:MM:SS[.f]Z` with 1-9 fraction digits, is read directly
/// (every reading of every batch carries one); anything else goes to chrono.
pub fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match parse_common(s.as_bytes()) {
        Some(t) => Ok(t),
        None => s.parse::<DateTime<FixedOffset>>().map(|t| t.with_timezone(&Utc)),
    }
}

fn parse_common(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() < 20 || b.len() > 30 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let sep = |i: usize, c: u8| b[i] == c;
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    // 60 is chrono's leap second: its own path.
    if second > 59 {
        return None;
    }
    let nanos = match b.len() {
        20 => 0,
        n if b[19] == b'.' && n >= 22 => {
            let digits = n - 21;
            num(20, n - 1)? * 10u32.pow(9 - digits as u32)
        }
        _ => return None,
    };
    Some(NaiveDate::from_ymd_opt(year as i32, month, day)?.and_hms_nano_opt(hour, minute, second, nanos)?.and_utc())
}

/// `#[serde(deserialize_with)]` for a `DateTime<Utc>` read on a hot path:
/// the same instants and errors as chrono's own `Deserialize`, faster.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = DateTime<Utc>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            // chrono's own wording, so an error reads the same.
            f.write_str("an RFC 3339 formatted date and time string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            parse_rfc3339(s).map_err(E::custom)
        }
    }
    d.deserialize_str(Visitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T20:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn accepts_utc_and_small_skew_rejects_offsets_and_future() {
        assert!(parse_utc("2026-11-26T19:00:00Z", now()).is_ok());
        assert!(parse_utc("2026-11-26T20:04:59+00:00", now()).is_ok());
        assert_eq!(parse_utc("2026-11-26T21:00:00+01:00", now()), Err(TimestampError::NotUtc));
        assert_eq!(parse_utc("2026-11-26T20:06:00Z", now()), Err(TimestampError::Future));
        assert_eq!(parse_utc("yesterday", now()), Err(TimestampError::Format));
    }

    #[test]
    fn format_is_sortable_millis_z() {
        assert_eq!(format(now()), "2026-11-26T20:00:00.000Z");
    }

    /// What `format` and `deserialize` replaced: chrono's own rendering and parse.
    fn chrono_format(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
    fn chrono_parse(s: &str) -> Option<DateTime<Utc>> {
        serde_json::from_value::<DateTime<Utc>>(serde_json::Value::String(s.to_owned())).ok()
    }

    #[test]
    fn format_renders_the_edges_as_chrono_does() {
        for s in [
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "2016-12-31T23:59:60.5Z",
            "-0001-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
        ] {
            let t: DateTime<Utc> = s.parse().unwrap();
            assert_eq!(format(t), chrono_format(t), "{s}");
        }
    }

    #[test]
    fn the_fast_parse_meets_chrono_on_its_edges() {
        for s in [
            "2026-11-26T20:00:00Z",
            "2026-11-26T20:00:00.1Z",
            "2026-11-26T20:00:00.123456789Z",
            "2026-11-26T20:00:00.1234567891Z",
            "2026-11-26T20:00:00.Z",
            "2026-02-29T20:00:00Z",
            "2024-02-29T20:00:00Z",
            "2026-13-01T20:00:00Z",
            "2026-11-26T24:00:00Z",
            "2026-11-26T23:60:00Z",
            "2016-12-31T23:59:60Z",
            "2026-11-26t20:00:00z",
            "2026-11-26 20:00:00Z",
            "2026-11-26T20:00:00+01:00",
            "2026-11-26T20:00:00",
            "+2026-11-26T20:00:00Z",
            "2026-11-26T2:00:00Z",
            "",
        ] {
            let fast = serde_json::from_value::<Fast>(serde_json::json!({"t": s})).ok().map(|f| f.t);
            assert_eq!(fast, chrono_parse(s), "{s:?}");
        }
    }

    #[derive(serde::Deserialize)]
    struct Fast {
        #[serde(deserialize_with = "super::deserialize")]
        t: DateTime<Utc>,
    }

    proptest::proptest! {
        #[test]
        fn format_is_chrono_s_rendering(secs in -62_135_596_800i64..253_402_300_800, nanos in 0u32..1_000_000_000) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            proptest::prop_assert_eq!(format(t), chrono_format(t));
        }

        #[test]
        fn the_parse_is_chrono_s_on_any_near_rfc_3339_text(
            s in "[0-9+-]{0,1}[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,11})?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
        ) {
            let fast = serde_json::from_value::<Fast>(serde_json::json!({"t": s})).ok().map(|f| f.t);
            proptest::prop_assert_eq!(fast, chrono_parse(&s));
        }

        #[test]
        fn every_formatted_instant_parses_back_fast(secs in 0i64..253_402_300_800, millis in 0u32..1000) {
            let t = DateTime::from_timestamp(secs, millis * 1_000_000).unwrap();
            proptest::prop_assert_eq!(parse_common(format(t).as_bytes()), Some(t));
        }
    }
}
