//! The report as a PDF: a cover, a summary, charts and tables. Pure Rust
//! (krilla writes the PDF; fonts are embedded and subset), no external binaries.
//!
//! Pages: 1 cover; 2 summary; 3 charts; 4+ tables (enrolment, compliance by
//! site, compliance by site and day in 7-day blocks). Only aggregates appear:
//! counts per site, day and level, never a patient id.

mod canvas;
mod charts;
mod fonts;
mod style;
mod table;

use chrono::{DateTime, NaiveDate, Utc};
use trialwatch::news2::RiskLevel;
use trialwatch::{Error, ReportId, TrialId};

use crate::aggregate::{Figures, Outcome};
use crate::period::Period;
use canvas::{Align, Canvas, Op, CONTENT_TOP, CONTENT_W, MARGIN_X, PAGE_H, PAGE_W};
use charts::{LegendMark, Series};
use fonts::Weight;
use style::*;
use table::{table, Cell, Column};

/// What the cover says about the report.
#[derive(Debug, Clone)]
pub struct Heading {
    pub trial_id: TrialId,
    pub trial_name: String,
    pub timezone: String,
    pub period: Period,
    pub generated_at: DateTime<Utc>,
    pub report_id: ReportId,
}

pub struct Rendered {
    pub bytes: Vec<u8>,
    pub pages: u32,
}

/// Compliance by site shows at most this many bars: the lowest, which is
/// what a reader acts on. The tables list every site.
const MAX_SITE_BARS: usize = 15;

pub fn render(h: &Heading, f: &Figures) -> Result<Rendered, Error> {
    let mut c = Canvas::new()?;
    cover(&mut c, h, f);
    let mut contents = Vec::new();

    c.new_page();
    contents.push(("Summary", c.page_index()));
    summary(&mut c, f);

    c.new_page();
    contents.push(("Charts", c.page_index()));
    chart_pages(&mut c, f);

    c.new_page();
    contents.push(("Tables", c.page_index()));
    tables(&mut c, f);

    contents_list(&mut c, &contents);
    let pages = c.pages.len();
    decorate(&mut c, h, pages);
    let bytes = canvas::write(&c.pages, &format!("{} – trial report {} to {}", h.trial_name, h.period.from, h.period.to))?;
    Ok(Rendered { bytes, pages: pages as u32 })
}

// ---------------------------------------------------------------- formatting

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

fn percent0(share: Option<f64>) -> String {
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

fn date_long(d: NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

fn date_short(d: NaiveDate) -> String {
    d.format("%-d %b").to_string()
}

fn period_text(p: Period) -> String {
    format!("{} – {}", date_long(p.from), date_long(p.to))
}

fn level_label(l: RiskLevel) -> &'static str {
    match l {
        RiskLevel::Low => "Low",
        RiskLevel::LowMedium => "Low-medium",
        RiskLevel::Medium => "Medium",
        RiskLevel::High => "High",
    }
}

fn compliance_tint(share: Option<f64>) -> Option<canvas::Rgb> {
    match share {
        Some(s) if s >= 0.9 => Some(TINT_GOOD),
        Some(s) if s >= 0.7 => Some(TINT_FAIR),
        Some(_) => Some(TINT_POOR),
        None => None,
    }
}

// --------------------------------------------------------------------- pages

fn heading(c: &mut Canvas, title: &str) {
    c.text(MARGIN_X, c.y + 14.0, title, H1, Weight::Bold, NAVY, Align::Left);
    c.y += 30.0;
}

fn subheading(c: &mut Canvas, title: &str) {
    c.text(MARGIN_X, c.y + 11.0, title, H2, Weight::Bold, NAVY, Align::Left);
    c.y += 20.0;
}

fn cover(c: &mut Canvas, h: &Heading, f: &Figures) {
    c.rect(0.0, 0.0, PAGE_W, 300.0, NAVY);
    c.text(MARGIN_X, 92.0, "TRIALWATCH  ·  TRIAL REPORT", SMALL + 1.0, Weight::Bold, canvas::Rgb(170, 192, 218), Align::Left);
    let lines = c.wrap(&h.trial_name, TITLE, Weight::Bold, CONTENT_W);
    let mut y = 142.0;
    for (i, line) in lines.iter().take(3).enumerate() {
        let text = if i == 2 && lines.len() > 3 { format!("{line}…") } else { line.clone() };
        c.text_fit(MARGIN_X, y, &text, TITLE, Weight::Bold, WHITE, Align::Left, CONTENT_W);
        y += 34.0;
    }
    c.text(MARGIN_X, y + 6.0, &period_text(h.period), 13.0, Weight::Regular, WHITE, Align::Left);

    let rows: [(&str, String); 6] = [
        ("Trial", h.trial_id.to_string()),
        ("Period", format!("{} ({} days)", period_text(h.period), h.period.days())),
        ("Time zone", format!("{} — days are calendar days in this zone", h.timezone)),
        ("Sites", count(u64::from(f.summary.sites))),
        ("Generated", h.generated_at.format("%Y-%m-%d %H:%M UTC").to_string()),
        ("Report ID", h.report_id.to_string()),
    ];
    let mut y = 352.0;
    for (label, value) in rows {
        c.text(MARGIN_X, y, label, BODY, Weight::Regular, MUTED, Align::Left);
        c.text_fit(MARGIN_X + 90.0, y, &value, BODY, Weight::Regular, INK, Align::Left, CONTENT_W - 90.0);
        c.hline(MARGIN_X, MARGIN_X + CONTENT_W, y + 8.0, 0.5, RULE);
        y += 22.0;
    }
    c.y = y + 24.0;
}

/// The cover's list of sections and their pages, written once they are known.
fn contents_list(c: &mut Canvas, contents: &[(&str, usize)]) {
    let mut y = 520.0;
    c.push_to(0, text_op(c, MARGIN_X, y, "Contents", H2, Weight::Bold, NAVY, Align::Left));
    y += 20.0;
    for (title, page) in contents {
        c.push_to(0, text_op(c, MARGIN_X, y, title, BODY, Weight::Regular, INK, Align::Left));
        c.push_to(0, text_op(c, MARGIN_X + CONTENT_W, y, &format!("page {}", page + 1), BODY, Weight::Regular, MUTED, Align::Right));
        y += 18.0;
    }
    let note = "This report contains aggregated figures only (counts per site, day and level). \
                It carries no patient-level identifiers.";
    let lines = c.wrap(note, SMALL + 0.5, Weight::Regular, CONTENT_W);
    let mut y = PAGE_H - 110.0;
    for line in lines {
        c.push_to(0, text_op(c, MARGIN_X, y, &line, SMALL + 0.5, Weight::Regular, MUTED, Align::Left));
        y += 11.0;
    }
}

#[allow(clippy::too_many_arguments)]
fn text_op(c: &Canvas, x: f32, y: f32, text: &str, size: f32, weight: Weight, color: canvas::Rgb, align: Align) -> Op {
    let shaped = c.fonts.shape(text, weight);
    let w = shaped.width(size);
    let x = match align {
        Align::Left => x,
        Align::Right => x - w,
        Align::Center => x - w / 2.0,
    };
    Op::Text { x, y, size, color, shaped }
}

fn tile(c: &mut Canvas, x: f32, w: f32, label: &str, value: &str, note: &str) {
    let y = c.y;
    c.rect(x, y, w, 64.0, BAND);
    c.rect(x, y, 3.0, 64.0, ACCENT);
    c.text_fit(x + 10.0, y + 15.0, label, SMALL, Weight::Regular, MUTED, Align::Left, w - 16.0);
    c.text_fit(x + 10.0, y + 39.0, value, 18.0, Weight::Bold, NAVY, Align::Left, w - 16.0);
    c.text_fit(x + 10.0, y + 54.0, note, SMALL, Weight::Regular, MUTED, Align::Left, w - 16.0);
}

fn summary(c: &mut Canvas, f: &Figures) {
    let s = &f.summary;
    heading(c, "Summary");
    let gap = 10.0;
    let w = (CONTENT_W - 3.0 * gap) / 4.0;
    let tiles = [
        ("Patients enrolled", count(s.patients_enrolled), format!("across {} sites", count(u64::from(s.sites)))),
        (
            "ePRO compliance",
            percent(s.compliance),
            format!("{} of {} expected", count(s.submissions_received), count(s.submissions_expected)),
        ),
        ("Alerts raised", count(s.alerts_total), format!("{} acknowledged", count(s.alerts_acknowledged))),
        ("Time to acknowledge, median", minutes(s.median_minutes_to_ack), format!("90th percentile {}", minutes(s.p90_minutes_to_ack))),
    ];
    for (i, (label, value, note)) in tiles.iter().enumerate() {
        tile(c, MARGIN_X + i as f32 * (w + gap), w, label, value, note);
    }
    c.y += 84.0;

    let a = &f.alerts;
    let figures: Vec<(&str, String)> = vec![
        ("Sites", count(u64::from(s.sites))),
        ("Patients enrolled (now)", count(s.patients_enrolled)),
        ("ePRO submissions received", count(s.submissions_received)),
        ("ePRO submissions expected", count(s.submissions_expected)),
        ("ePRO compliance", percent(s.compliance)),
        ("Alerts raised", count(a.total)),
        ("Alerts delivered", count(a.delivered)),
        ("Alerts pending delivery", count(a.pending)),
        ("Alerts failed delivery", count(a.failed)),
        ("Alerts acknowledged", count(a.acknowledged)),
        ("Median time to acknowledge", minutes(a.median_minutes_to_ack)),
        ("90th percentile time to acknowledge", minutes(a.p90_minutes_to_ack)),
    ];
    let rows: Vec<Vec<Cell>> = figures.into_iter().map(|(k, v)| vec![Cell::new(k), Cell::new(v).bold()]).collect();
    table(c, "Headline figures", &[Column::new("Measure", 300.0, Align::Left), Column::new("Value", 183.0, Align::Right)], &rows);

    let scored: u64 = f.risk_levels.iter().map(|(_, n)| n).sum();
    let rows: Vec<Vec<Cell>> = f
        .risk_levels
        .iter()
        .map(|(l, n)| {
            let share = (scored > 0).then(|| *n as f64 / scored as f64);
            vec![Cell::new(level_label(*l)), Cell::new(count(*n)), Cell::new(percent(share))]
        })
        .collect();
    table(
        c,
        "NEWS2 risk level, patients with a current score",
        &[
            Column::new("Risk level", 240.0, Align::Left),
            Column::new("Patients", 121.0, Align::Right),
            Column::new("Share", 122.0, Align::Right),
        ],
        &rows,
    );

    c.ensure(90.0);
    subheading(c, "How these figures are computed");
    let notes = [
        "Expected submissions: each patient enrolled now at a site is expected to submit each daily questionnaire once a day \
         and each weekly questionnaire once per 7 days (a 30-day period expects 30/7 per patient).",
        "Compliance: received over expected, where a site-day credits at most one daily submission per enrolled patient and \
         the period credits at most the weekly expectation. Days are calendar days in the trial's time zone.",
        "Time to acknowledge: from an alert's creation to its acknowledgement, for alerts raised in the period; the median and \
         90th percentile interpolate linearly between ranks.",
    ];
    for note in notes {
        for line in c.wrap(note, SMALL + 0.5, Weight::Regular, CONTENT_W) {
            c.ensure(11.0);
            c.text(MARGIN_X, c.y + 8.0, &line, SMALL + 0.5, Weight::Regular, MUTED, Align::Left);
            c.y += 11.0;
        }
        c.y += 5.0;
    }
}

fn chart_pages(c: &mut Canvas, f: &Figures) {
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

fn tables(c: &mut Canvas, f: &Figures) {
    heading(c, "Tables");

    let mut rows: Vec<Vec<Cell>> = f
        .sites
        .iter()
        .map(|s| {
            vec![
                Cell::new(&s.name),
                Cell::new(count(s.enrolled)),
                Cell::new(count(s.completed)),
                Cell::new(count(s.withdrawn)),
                Cell::new(count(s.enrolled + s.completed + s.withdrawn)).bold(),
            ]
        })
        .collect();
    let sum = |g: fn(&crate::aggregate::SiteFigures) -> u64| f.sites.iter().map(g).sum::<u64>();
    let (e, co, w) = (sum(|s| s.enrolled), sum(|s| s.completed), sum(|s| s.withdrawn));
    rows.push(vec![
        Cell::new("All sites").bold(),
        Cell::new(count(e)).bold(),
        Cell::new(count(co)).bold(),
        Cell::new(count(w)).bold(),
        Cell::new(count(e + co + w)).bold(),
    ]);
    let num = |t: &str| Column::new(t, 78.25, Align::Right);
    table(
        c,
        "Enrolment by site and status",
        &[Column::new("Site", 170.0, Align::Left), num("Enrolled"), num("Completed"), num("Withdrawn"), num("Total")],
        &rows,
    );

    let mut rows: Vec<Vec<Cell>> = f
        .sites
        .iter()
        .map(|s| {
            vec![
                Cell::new(&s.name),
                Cell::new(count(s.enrolled)),
                Cell::new(count(s.received)),
                Cell::new(count(s.expected.round() as u64)),
                Cell::new(percent(s.compliance)).bold().tint(compliance_tint(s.compliance)),
            ]
        })
        .collect();
    let sm = &f.summary;
    rows.push(vec![
        Cell::new("All sites").bold(),
        Cell::new(count(sm.patients_enrolled)).bold(),
        Cell::new(count(sm.submissions_received)).bold(),
        Cell::new(count(sm.submissions_expected)).bold(),
        Cell::new(percent(sm.compliance)).bold().tint(compliance_tint(sm.compliance)),
    ]);
    table(
        c,
        "ePRO compliance by site",
        &[Column::new("Site", 170.0, Align::Left), num("Enrolled now"), num("Received"), num("Expected"), num("Compliance")],
        &rows,
    );

    // Site-by-day compliance in 7-day blocks: a block's columns fit the page width.
    let n_days = f.received_by_day.len();
    let mut start = 0;
    while start < n_days {
        let end = (start + 7).min(n_days);
        let days = &f.received_by_day[start..end];
        let site_w = 140.0;
        let total_w = 50.0;
        let day_w = (CONTENT_W - site_w - total_w) / 7.0;
        let mut columns = vec![Column::new("Site", site_w, Align::Left)];
        columns.extend(days.iter().map(|(d, _)| Column::new(d.format("%a %-d").to_string(), day_w, Align::Center)));
        columns.push(Column::new("Overall", total_w + day_w * (7 - days.len()) as f32, Align::Right));
        let rows: Vec<Vec<Cell>> = f
            .sites
            .iter()
            .map(|s| {
                let cells = &s.days[start..end];
                let mut row = vec![Cell::new(&s.name)];
                row.extend(cells.iter().map(|cell| match cell.compliance {
                    Some(_) => Cell::new(percent0(cell.compliance)).tint(compliance_tint(cell.compliance)),
                    None => Cell::new("—").muted(),
                }));
                let expected: f64 = cells.iter().map(|c| c.expected).sum();
                let credited: f64 = cells.iter().filter_map(|c| c.compliance.map(|x| x * c.expected)).sum();
                let block = (expected > 0.0).then(|| credited / expected);
                row.push(Cell::new(percent0(block)).bold());
                row
            })
            .collect();
        let title = format!(
            "ePRO compliance by site and day, {} – {}",
            date_short(days[0].0),
            days.last().map_or_else(String::new, |(d, _)| date_long(*d))
        );
        table(c, &title, &columns, &rows);
        start = end;
    }
    c.ensure(24.0);
    c.text(
        MARGIN_X,
        c.y + 4.0,
        "Cells: share of the day's expected daily-questionnaire submissions received; weekly ones count per period. — where nobody was expected.",
        SMALL,
        Weight::Regular,
        MUTED,
        Align::Left,
    );
}

/// Running header (pages after the cover) and footer with "Page n of m".
fn decorate(c: &mut Canvas, h: &Heading, pages: usize) {
    let footer_y = PAGE_H - 36.0;
    for i in 0..pages {
        if i > 0 {
            let name = c.fonts.fit(&h.trial_name, Weight::Bold, SMALL + 0.5, CONTENT_W * 0.55);
            c.push_to(i, Op::Text { x: MARGIN_X, y: CONTENT_TOP - 36.0, size: SMALL + 0.5, color: MUTED, shaped: name });
            c.push_to(
                i,
                text_op(
                    c,
                    MARGIN_X + CONTENT_W,
                    CONTENT_TOP - 36.0,
                    &period_text(h.period),
                    SMALL + 0.5,
                    Weight::Regular,
                    MUTED,
                    Align::Right,
                ),
            );
            c.push_to(
                i,
                Op::Line {
                    points: vec![(MARGIN_X, CONTENT_TOP - 28.0), (MARGIN_X + CONTENT_W, CONTENT_TOP - 28.0)],
                    width: 0.5,
                    color: RULE,
                    dashed: false,
                },
            );
        }
        c.push_to(
            i,
            Op::Line {
                points: vec![(MARGIN_X, footer_y - 12.0), (MARGIN_X + CONTENT_W, footer_y - 12.0)],
                width: 0.5,
                color: RULE,
                dashed: false,
            },
        );
        c.push_to(
            i,
            text_op(
                c,
                MARGIN_X,
                footer_y,
                &format!("TrialWatch report {} · aggregated figures, no patient-level identifiers", h.report_id),
                SMALL,
                Weight::Regular,
                MUTED,
                Align::Left,
            ),
        );
        c.push_to(
            i,
            text_op(
                c,
                MARGIN_X + CONTENT_W,
                footer_y,
                &format!("Page {} of {}", i + 1, pages),
                SMALL,
                Weight::Regular,
                MUTED,
                Align::Right,
            ),
        );
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
