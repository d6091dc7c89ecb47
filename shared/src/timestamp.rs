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
    date_and_time(&mut b, t);
    put_digits(&mut b, 20, 3, nanos / 1_000_000);
    out.push_str(std::str::from_utf8(&b).expect("ASCII digits"));
}

/// chrono's serde form of `t` (`to_rfc3339_opts(AutoSi, true)`: a fraction
/// of 0, 3, 6 or 9 digits, as few as keep the instant, and `Z`) in a stack
/// buffer, without chrono's general formatter: every reading, observation
/// and result time of the vitals items is written in it. `None` for years
/// outside 0-9999 and leap seconds, which chrono renders its own way.
fn serde_form(t: DateTime<Utc>) -> Option<([u8; 30], usize)> {
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    date_and_time(&mut b, t);
    let mut digits = |at: usize, width: usize, n: u32| put_digits(&mut b, at, width, n);
    let len = if nanos == 0 {
        19
    } else if nanos % 1_000_000 == 0 {
        digits(20, 3, nanos / 1_000_000);
        23
    } else if nanos % 1_000 == 0 {
        digits(20, 6, nanos / 1_000);
        26
    } else {
        digits(20, 9, nanos);
        29
    };
    b[len] = b'Z';
    Some((b, len + 1))
}

/// Writes `n` as `width` decimal digits at `b[at..]` (zero-padded; `n` fits).
fn put_digits(b: &mut [u8], at: usize, width: usize, mut n: u32) {
    // Two digits per division: every reading's key and item carry a time.
    const PAIRS: &[u8; 200] = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    let mut end = at + width;
    while end >= at + 2 {
        let pair = (n % 100) as usize * 2;
        b[end - 2..end].copy_from_slice(&PAIRS[pair..pair + 2]);
        n /= 100;
        end -= 2;
    }
    if end > at {
        b[at] = b'0' + (n % 10) as u8;
    }
}

/// `YYYY-MM-DDTHH:MM:SS` into the first 19 bytes of `b` (a year in 0-9999).
fn date_and_time(b: &mut [u8], t: DateTime<Utc>) {
    // The naive UTC time: `DateTime`'s own accessors add the (zero) offset again for each field.
    let t = t.naive_utc();
    put_digits(b, 0, 4, t.year() as u32);
    put_digits(b, 5, 2, t.month());
    put_digits(b, 8, 2, t.day());
    put_digits(b, 11, 2, t.hour());
    put_digits(b, 14, 2, t.minute());
    put_digits(b, 17, 2, t.second());
}

/// Appends chrono's serde form of `t` ([`serialize`]'s text).
pub fn push_serde(out: &mut String, t: DateTime<Utc>) {
    match serde_form(t) {
        Some((b, len)) => out.push_str(std::str::from_utf8(&b[..len]).expect("ASCII digits")),
        None => out.push_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

/// [`push_serde`] into bytes (JSON text being written).
pub(crate) fn extend_serde(out: &mut Vec<u8>, t: DateTime<Utc>) {
    match serde_form(t) {
        Some((b, len)) => out.extend_from_slice(&b[..len]),
        None => out.extend_from_slice(t.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes()),
    }
}

/// `#[serde(serialize_with)]` for a `DateTime<Utc>` written on a hot path:
/// the same text as chrono's own `Serialize`, without its formatter.
pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    match serde_form(*t) {
        Some((b, len)) => s.serialize_str(std::str::from_utf8(&b[..len]).expect("ASCII digits")),
        None => serde::Serialize::serialize(t, s),
    }
}

/// [`serialize`] for an optional time (`#[serde(serialize_with)]` on an `Option`).
pub fn serialize_option<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&Serde(*t)),
        None => s.serialize_none(),
    }
}

struct Serde(DateTime<Utc>);

impl serde::Serialize for Serde {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, s)
    }
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
    use proptest::prelude::{Just, Strategy};

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

    #[derive(serde::Serialize)]
    struct Written {
        #[serde(serialize_with = "super::serialize")]
        t: DateTime<Utc>,
        #[serde(serialize_with = "super::serialize_option")]
        o: Option<DateTime<Utc>>,
    }

    /// What `serialize` replaced: chrono's own `Serialize`, through serde_json and serde_dynamo.
    fn assert_written_as_chrono_writes(t: DateTime<Utc>) {
        let fast = Written { t, o: Some(t) };
        let chrono = serde_json::json!({"t": t, "o": Some(t)});
        assert_eq!(serde_json::to_value(&fast).unwrap(), chrono, "{t:?}");
        let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = serde_dynamo::to_item(&fast).unwrap();
        let chrono_item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(&chrono).unwrap();
        assert_eq!(item, chrono_item, "{t:?}");
        let mut pushed = String::new();
        push_serde(&mut pushed, t);
        assert_eq!(Some(pushed.as_str()), chrono["t"].as_str());
    }

    #[test]
    fn the_serde_form_is_chrono_s_on_its_edges() {
        for s in [
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "2026-11-26T20:00:00.5Z",
            "2026-11-26T20:00:00.000001Z",
            "2026-11-26T20:00:00.000000001Z",
            "2026-11-26T20:00:00.120Z",
            "2016-12-31T23:59:60.5Z",
            "2016-12-31T23:59:60Z",
            "-0001-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
        ] {
            assert_written_as_chrono_writes(s.parse().unwrap());
        }
        // AND an absent optional time stays null
        assert_eq!(serde_json::to_value(Written { t: now(), o: None }).unwrap()["o"], serde_json::Value::Null);
    }

    proptest::proptest! {
        #[test]
        fn the_serde_form_is_chrono_s(
            secs in -62_135_596_800i64..253_402_300_800,
            nanos in proptest::prop_oneof![Just(0u32), (0u32..1000).prop_map(|m| m * 1_000_000), (0u32..1_000_000).prop_map(|u| u * 1000), 0u32..1_000_000_000],
        ) {
            assert_written_as_chrono_writes(DateTime::from_timestamp(secs, nanos).unwrap());
        }

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
