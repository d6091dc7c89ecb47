//! Page 3: the charts (submissions per day, compliance by site, alerts by level and outcome).

use crate::aggregate::{Figures, Outcome};
use crate::pdf::canvas::{self, Canvas, CONTENT_W, MARGIN_X};
use crate::pdf::charts::{self, LegendMark, Series};
use crate::pdf::format::*;
use crate::pdf::style::*;

use super::{heading, subheading};

/// Compliance by site shows at most this many bars: the lowest, which is
/// what a reader acts on. The tables list every site.
const MAX_SITE_BARS: usize = 15;

pub(in crate::pdf) fn chart_pages(c: &mut Canvas, f: &Figures) {
    heading(c, "Charts");

    subheading(c, "ePRO submissions per day");
    let labels: Vec<String> = f.received_by_day.iter().map(|(d, _)| date_short(*d)).collect();
    let series = [
        Series { label: "Received", color: ACCENT, dashed: false, values: f.received_by_day.iter().map(|(_, v)| *v as f64).collect() },
        Series { label: "Expected", color: MUTED, dashed: true, values: f.expected_by_day.iter().map(|(_, v)| *v).collect() },
    ];
    charts::line_chart(c, MARGIN_X, c.y, CONTENT_W, 186.0, &series, &labels);
    c.y += 186.0 + 22.0;

    let mut by_site: Vec<(String, Option<f64>)> = f.sites.iter().map(|s| (s.name.clone(), s.compliance)).collect();
    let title = if by_site.len() > MAX_SITE_BARS {
        // Lowest first; sites expecting nothing last.
        by_site.sort_by(|a, b| a.1.unwrap_or(f64::INFINITY).total_cmp(&b.1.unwrap_or(f64::INFINITY)));
        by_site.truncate(MAX_SITE_BARS);
        format!("ePRO compliance by site, lowest {MAX_SITE_BARS} of {}", f.sites.len())
    } else {
        "ePRO compliance by site".to_owned()
    };
    c.ensure(20.0 + 15.0 * by_site.len() as f32 + 24.0);
    subheading(c, &title);
    let used = charts::share_bars(c, MARGIN_X, c.y, CONTENT_W, &by_site, ACCENT);
    c.y += used + 18.0;

    c.ensure(20.0 + 14.0 + 160.0);
    subheading(c, "Alerts by NEWS2 level and delivery outcome");
    let outcome_colors = [ACCENT, AMBER, CORAL];
    let items: Vec<(&str, canvas::Rgb, LegendMark)> =
        Outcome::ALL.iter().zip(outcome_colors).map(|(o, col)| (o.label(), col, LegendMark::Box)).collect();
    charts::legend(c, MARGIN_X, c.y + 4.0, &items);
    c.y += 14.0;
    let bars: Vec<(&str, Vec<u64>)> = f.alerts.by_level.iter().map(|l| (level_label(l.level), l.by_outcome.to_vec())).collect();
    charts::stacked_bars(c, MARGIN_X, c.y, CONTENT_W, 160.0, &bars, &outcome_colors);
    c.y += 160.0 + 10.0;
}
