//! Tables that flow across pages, repeating the caption and header row on
//! every page they continue on.

use super::canvas::{Align, Canvas, Rgb, CONTENT_BOTTOM, MARGIN_X};
use super::fonts::Weight;
use super::style::{BAND, H2, INK, MUTED, NAVY, RULE, SMALL, TABLE, ZEBRA};

pub const ROW_H: f32 = 15.0;
const HEADER_H: f32 = 18.0;
const CAPTION_H: f32 = 18.0;

pub struct Column {
    pub title: String,
    pub width: f32,
    pub align: Align,
}

impl Column {
    pub fn new(title: impl Into<String>, width: f32, align: Align) -> Self {
        Self { title: title.into(), width, align }
    }
}

#[derive(Default, Clone)]
pub struct Cell {
    pub text: String,
    pub bold: bool,
    pub muted: bool,
    pub tint: Option<Rgb>,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), ..Default::default() }
    }
    pub fn bold(mut self) -> Self {
        self.bold = true;
        self
    }
    pub fn muted(mut self) -> Self {
        self.muted = true;
        self
    }
    pub fn tint(mut self, tint: Option<Rgb>) -> Self {
        self.tint = tint;
        self
    }
}

fn caption(c: &mut Canvas, title: &str, continued: bool) {
    let y = c.y + 12.0;
    let w = c.text(MARGIN_X, y, title, H2, Weight::Bold, NAVY, Align::Left);
    if continued {
        c.text(MARGIN_X + w + 6.0, y, "(continued)", SMALL, Weight::Regular, MUTED, Align::Left);
    }
    c.y += CAPTION_H;
}

fn header(c: &mut Canvas, columns: &[Column]) {
    let width: f32 = columns.iter().map(|col| col.width).sum();
    c.rect(MARGIN_X, c.y, width, HEADER_H, BAND);
    let mut x = MARGIN_X;
    for col in columns {
        let anchor = anchor(x, col);
        c.text_fit(anchor, c.y + 12.0, &col.title, SMALL + 0.5, Weight::Bold, NAVY, col.align, col.width - 8.0);
        x += col.width;
    }
    c.y += HEADER_H;
}

fn anchor(x: f32, col: &Column) -> f32 {
    match col.align {
        Align::Left => x + 5.0,
        Align::Right => x + col.width - 5.0,
        Align::Center => x + col.width / 2.0,
    }
}

/// Draws a captioned table at the cursor. Starts on a new page unless the
/// caption, the header and two rows fit, so a caption is never orphaned.
pub fn table(c: &mut Canvas, title: &str, columns: &[Column], rows: &[Vec<Cell>]) {
    let width: f32 = columns.iter().map(|col| col.width).sum();
    c.ensure(CAPTION_H + HEADER_H + 2.0 * ROW_H);
    caption(c, title, false);
    header(c, columns);
    for (i, row) in rows.iter().enumerate() {
        if c.y + ROW_H > CONTENT_BOTTOM {
            c.hline(MARGIN_X, MARGIN_X + width, c.y, 0.6, RULE);
            c.new_page();
            caption(c, title, true);
            header(c, columns);
        }
        if i % 2 == 1 {
            c.rect(MARGIN_X, c.y, width, ROW_H, ZEBRA);
        }
        let mut x = MARGIN_X;
        for (col, cell) in columns.iter().zip(row) {
            if let Some(t) = cell.tint {
                c.rect(x + 1.5, c.y + 1.5, col.width - 3.0, ROW_H - 3.0, t);
            }
            let weight = if cell.bold { Weight::Bold } else { Weight::Regular };
            let color = if cell.muted { MUTED } else { INK };
            c.text_fit(anchor(x, col), c.y + 10.5, &cell.text, TABLE, weight, color, col.align, col.width - 10.0);
            x += col.width;
        }
        c.y += ROW_H;
    }
    c.hline(MARGIN_X, MARGIN_X + width, c.y, 0.6, RULE);
    c.y += 14.0;
}
