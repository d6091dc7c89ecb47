//! RFC 3339 UTC timestamps as the API accepts them.

use chrono::{DateTime, SecondsFormat, Utc};

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
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
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
}
