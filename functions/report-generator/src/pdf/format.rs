//! How figures read on the page: counts, shares, durations, dates, levels.

use chrono::NaiveDate;
use trialwatch::news2::RiskLevel;

use super::canvas;
use super::style::*;
use crate::period::Period;

/// `12,345`: thousands separated, as a reader scans a table.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `87.3%`, or an em dash when there is nothing to compare against.
pub fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "—".to_owned(), |s| format!("{:.1}%", s * 100.0))
}

pub(super) fn percent0(share: Option<f64>) -> String {
    share.map_or_else(|| "—".to_owned(), |s| format!("{:.0}%", s * 100.0))
}

/// `8.5 min`, `2 h 05 min`, or an em dash when nothing was acknowledged.
pub fn minutes(m: Option<f64>) -> String {
    match m {
        None => "—".to_owned(),
        Some(m) if m < 60.0 => format!("{m:.1} min"),
        Some(m) => {
            let total = m.round() as u64;
            format!("{} h {:02} min", total / 60, total % 60)
        }
    }
}

pub(super) fn date_long(d: NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

pub(super) fn date_short(d: NaiveDate) -> String {
    d.format("%-d %b").to_string()
}

pub(super) fn period_text(p: Period) -> String {
    format!("{} – {}", date_long(p.from), date_long(p.to))
}

pub(super) fn level_label(l: RiskLevel) -> &'static str {
    match l {
        RiskLevel::Low => "Low",
        RiskLevel::LowMedium => "Low-medium",
        RiskLevel::Medium => "Medium",
        RiskLevel::High => "High",
    }
}

pub(super) fn compliance_tint(share: Option<f64>) -> Option<canvas::Rgb> {
    match share {
        Some(s) if s >= 0.9 => Some(TINT_GOOD),
        Some(s) if s >= 0.7 => Some(TINT_FAIR),
        Some(_) => Some(TINT_POOR),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_a_person_writes_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(percent(Some(0.8734)), "87.3%");
        assert_eq!(percent(None), "—");
        assert_eq!(minutes(Some(8.5)), "8.5 min");
        assert_eq!(minutes(Some(125.0)), "2 h 05 min");
        assert_eq!(minutes(None), "—");
    }
}
