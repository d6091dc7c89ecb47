//! A page-by-page display list and its rendering with krilla. Laying out into
//! a list first lets the document know its page count ("Page n of m") and
//! where each section landed (the contents) before anything is written.
//!
//! Coordinates are PDF points (1/72 in) from the page's top-left corner, y down,
//! as krilla uses them; text is placed by its baseline.

use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, LineCap, LineJoin, Stroke, StrokeDash};
use krilla::Document;
use trialwatch::Error;

use super::fonts::{fonts, Fonts, Shaped, Weight};

/// A4 portrait.
pub const PAGE_W: f32 = 595.28;
pub const PAGE_H: f32 = 841.89;
pub const MARGIN_X: f32 = 56.0;
pub const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN_X;
pub const CONTENT_TOP: f32 = 84.0;
pub const CONTENT_BOTTOM: f32 = PAGE_H - 72.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
    Center,
}

pub enum Op {
    Text { x: f32, y: f32, size: f32, color: Rgb, shaped: Shaped },
    Rect { x: f32, y: f32, w: f32, h: f32, fill: Rgb },
    Line { points: Vec<(f32, f32)>, width: f32, color: Rgb, dashed: bool },
    Dot { x: f32, y: f32, r: f32, fill: Rgb },
}

#[derive(Default)]
pub struct Page {
    pub ops: Vec<Op>,
}

/// Pages being laid out, with a vertical cursor on the last one.
pub struct Canvas {
    pub pages: Vec<Page>,
    pub y: f32,
    pub fonts: &'static Fonts,
}

impl Canvas {
    pub fn new() -> Result<Canvas, Error> {
        Ok(Canvas { pages: vec![Page::default()], y: CONTENT_TOP, fonts: fonts()? })
    }

    pub fn page_index(&self) -> usize {
        self.pages.len() - 1
    }

    pub fn new_page(&mut self) {
        self.pages.push(Page::default());
        self.y = CONTENT_TOP;
    }

    /// Starts a new page unless `height` more points fit on this one.
    pub fn ensure(&mut self, height: f32) -> bool {
        if self.y + height > CONTENT_BOTTOM {
            self.new_page();
            true
        } else {
            false
        }
    }

    fn push(&mut self, op: Op) {
        if let Some(p) = self.pages.last_mut() {
            p.ops.push(op);
        }
    }

    pub fn push_to(&mut self, page: usize, op: Op) {
        if let Some(p) = self.pages.get_mut(page) {
            p.ops.push(op);
        }
    }

    /// Draws `text` with its baseline at `y`, aligned at `x`; returns its width.
    #[allow(clippy::too_many_arguments)]
    pub fn text(&mut self, x: f32, y: f32, text: &str, size: f32, weight: Weight, color: Rgb, align: Align) -> f32 {
        let shaped = self.fonts.shape(text, weight);
        self.place(x, y, shaped, size, color, align)
    }

    /// Like [`Canvas::text`], cut with an ellipsis to `max_width`.
    #[allow(clippy::too_many_arguments)]
    pub fn text_fit(&mut self, x: f32, y: f32, text: &str, size: f32, weight: Weight, color: Rgb, align: Align, max_width: f32) -> f32 {
        let shaped = self.fonts.fit(text, weight, size, max_width);
        self.place(x, y, shaped, size, color, align)
    }

    pub fn place(&mut self, x: f32, y: f32, shaped: Shaped, size: f32, color: Rgb, align: Align) -> f32 {
        let w = shaped.width(size);
        let x = match align {
            Align::Left => x,
            Align::Right => x - w,
            Align::Center => x - w / 2.0,
        };
        if !shaped.runs.is_empty() {
            self.push(Op::Text { x, y, size, color, shaped });
        }
        w
    }

    pub fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: Rgb) {
        if w > 0.0 && h > 0.0 {
            self.push(Op::Rect { x, y, w, h, fill });
        }
    }

    pub fn line(&mut self, points: Vec<(f32, f32)>, width: f32, color: Rgb, dashed: bool) {
        if points.len() >= 2 {
            self.push(Op::Line { points, width, color, dashed });
        }
    }

    pub fn hline(&mut self, x0: f32, x1: f32, y: f32, width: f32, color: Rgb) {
        self.line(vec![(x0, y), (x1, y)], width, color, false);
    }

    pub fn dot(&mut self, x: f32, y: f32, r: f32, fill: Rgb) {
        self.push(Op::Dot { x, y, r, fill });
    }

    /// Greedy line breaking at spaces, or between any two characters where a
    /// word (or CJK text, which has no spaces) is wider than the line.
    pub fn wrap(&self, text: &str, size: f32, weight: Weight, max_width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            let candidate = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
            if self.fonts.width(&candidate, weight, size) <= max_width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // The word alone may still be too wide: break it by characters.
            for c in word.chars() {
                let candidate = format!("{line}{c}");
                if !line.is_empty() && self.fonts.width(&candidate, weight, size) > max_width {
                    lines.push(std::mem::replace(&mut line, c.to_string()));
                } else {
                    line = candidate;
                }
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }
}

fn paint(c: Rgb) -> krilla::paint::Paint {
    rgb::Color::new(c.0, c.1, c.2).into()
}

fn fill(c: Rgb) -> Fill {
    Fill { paint: paint(c), opacity: NormalizedF32::ONE, rule: Default::default() }
}

/// Writes the pages as a PDF with the given document title.
pub fn write(pages: &[Page], title: &str) -> Result<Vec<u8>, Error> {
    let mut doc = Document::new();
    doc.set_metadata(krilla::metadata::Metadata::new().title(title.to_owned()).creator("TrialWatch report-generator".to_owned()));
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| Error::Internal("page size".into()))?;
    for page in pages {
        let mut p = doc.start_page_with(settings.clone());
        let mut s = p.surface();
        for op in &page.ops {
            match op {
                Op::Text { x, y, size, color, shaped } => {
                    s.set_fill(Some(fill(*color)));
                    s.set_stroke(None);
                    let mut pen = *x;
                    for run in &shaped.runs {
                        s.draw_glyphs(Point::from_xy(pen, *y), &run.glyphs, run.face.pdf.clone(), &run.text, *size, false);
                        pen += run.width_em * size;
                    }
                }
                Op::Rect { x, y, w, h, fill: c } => {
                    let mut pb = PathBuilder::new();
                    if let Some(r) = Rect::from_xywh(*x, *y, *w, *h) {
                        pb.push_rect(r);
                    }
                    if let Some(path) = pb.finish() {
                        s.set_fill(Some(fill(*c)));
                        s.set_stroke(None);
                        s.draw_path(&path);
                    }
                }
                Op::Line { points, width, color, dashed } => {
                    let mut pb = PathBuilder::new();
                    for (i, (x, y)) in points.iter().enumerate() {
                        if i == 0 {
                            pb.move_to(*x, *y);
                        } else {
                            pb.line_to(*x, *y);
                        }
                    }
                    if let Some(path) = pb.finish() {
                        s.set_fill(None);
                        s.set_stroke(Some(Stroke {
                            paint: paint(*color),
                            width: *width,
                            line_cap: LineCap::Round,
                            line_join: LineJoin::Round,
                            dash: dashed.then(|| StrokeDash { array: vec![3.0, 2.5], offset: 0.0 }),
                            ..Default::default()
                        }));
                        s.draw_path(&path);
                    }
                }
                Op::Dot { x, y, r, fill: c } => {
                    // A circle from four cubic Béziers (k = 0.5523 of the radius).
                    let k = 0.5523 * r;
                    let mut pb = PathBuilder::new();
                    pb.move_to(x + r, *y);
                    pb.cubic_to(x + r, y + k, x + k, y + r, *x, y + r);
                    pb.cubic_to(x - k, y + r, x - r, y + k, x - r, *y);
                    pb.cubic_to(x - r, y - k, x - k, y - r, *x, y - r);
                    pb.cubic_to(x + k, y - r, x + r, y - k, x + r, *y);
                    pb.close();
                    if let Some(path) = pb.finish() {
                        s.set_fill(Some(fill(*c)));
                        s.set_stroke(None);
                        s.draw_path(&path);
                    }
                }
            }
        }
        s.finish();
        p.finish();
    }
    doc.finish().map_err(|e| Error::Internal(format!("pdf: {e:?}")))
}
