//! The report's pages, one module each, and what every page shares: headings,
//! positioned text, and the running header and footer.

mod charts;
mod cover;
mod summary;
mod tables;

pub(super) use charts::chart_pages;
pub(super) use cover::{contents_list, cover};
pub(super) use summary::summary;
pub(super) use tables::tables;

use crate::pdf::canvas::{self, Align, Canvas, Op, CONTENT_TOP, CONTENT_W, MARGIN_X, PAGE_H};
use crate::pdf::fonts::Weight;
use crate::pdf::format::*;
use crate::pdf::style::*;
use crate::pdf::Heading;

fn heading(c: &mut Canvas, title: &str) {
    c.text(MARGIN_X, c.y + 14.0, title, H1, Weight::Bold, NAVY, Align::Left);
    c.y += 30.0;
}

fn subheading(c: &mut Canvas, title: &str) {
    c.text(MARGIN_X, c.y + 11.0, title, H2, Weight::Bold, NAVY, Align::Left);
    c.y += 20.0;
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

/// Running header (pages after the cover) and footer with "Page n of m".
pub(in crate::pdf) fn decorate(c: &mut Canvas, h: &Heading, pages: usize) {
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
