//! Page 1: the cover, and its list of sections (written once their pages are known).

use crate::aggregate::Figures;
use crate::pdf::canvas::{self, Align, Canvas, CONTENT_W, MARGIN_X, PAGE_H, PAGE_W};
use crate::pdf::fonts::Weight;
use crate::pdf::format::*;
use crate::pdf::style::*;
use crate::pdf::Heading;

use super::text_op;

pub(in crate::pdf) fn cover(c: &mut Canvas, h: &Heading, f: &Figures) {
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
pub(in crate::pdf) fn contents_list(c: &mut Canvas, contents: &[(&str, usize)]) {
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
