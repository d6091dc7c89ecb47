//! Page 2: the summary, headline tiles and the figures behind them.

use crate::aggregate::Figures;
use crate::pdf::canvas::{Align, Canvas, CONTENT_W, MARGIN_X};
use crate::pdf::fonts::Weight;
use crate::pdf::format::*;
use crate::pdf::style::*;
use crate::pdf::table::{table, Cell, Column};

use super::{heading, subheading};

fn tile(c: &mut Canvas, x: f32, w: f32, label: &str, value: &str, note: &str) {
    let y = c.y;
    c.rect(x, y, w, 64.0, BAND);
    c.rect(x, y, 3.0, 64.0, ACCENT);
    c.text_fit(x + 10.0, y + 15.0, label, SMALL, Weight::Regular, MUTED, Align::Left, w - 16.0);
    c.text_fit(x + 10.0, y + 39.0, value, 18.0, Weight::Bold, NAVY, Align::Left, w - 16.0);
    c.text_fit(x + 10.0, y + 54.0, note, SMALL, Weight::Regular, MUTED, Align::Left, w - 16.0);
}

pub(in crate::pdf) fn summary(c: &mut Canvas, f: &Figures) {
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
