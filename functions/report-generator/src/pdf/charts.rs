//! Charts drawn as vector paths: axes, gridlines, labels and legends, in the
//! report's palette. Each takes its box (top-left `x`, `y`, width, height).

use super::canvas::{Align, Canvas, Rgb};
use super::fonts::Weight;
use super::style::{AXIS, GRID, INK, MUTED, SMALL};

pub struct Series<'a> {
    pub label: &'a str,
    pub color: Rgb,
    pub dashed: bool,
    pub values: Vec<f64>,
}

/// A "nice" axis: a step of 1, 2, 2.5 or 5 times a power of ten giving at
/// most `max_ticks` intervals up to at least `max`. Returns (step, top).
pub fn nice_axis(max: f64, max_ticks: usize) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let raw = max / max_ticks.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    // Counts never need fractional ticks: 2.5 becomes 5, anything below 1 becomes 1.
    let step = if max >= 1.0 && step.fract() != 0.0 {
        if step < 1.0 {
            1.0
        } else {
            step * 2.0
        }
    } else {
        step
    };
    (step, (max / step).ceil() * step)
}

fn tick_label(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        super::count(v as u64)
    } else {
        format!("{v:.1}")
    }
}

/// Legend entries in a row starting at `x`; a swatch (line or box) then the label.
pub fn legend(c: &mut Canvas, x: f32, y: f32, items: &[(&str, Rgb, LegendMark)]) {
    let mut pen = x;
    for (label, color, mark) in items {
        match mark {
            LegendMark::Box => c.rect(pen, y - 6.5, 8.0, 8.0, *color),
            LegendMark::Line { dashed } => c.line(vec![(pen, y - 2.5), (pen + 14.0, y - 2.5)], 1.8, *color, *dashed),
        }
        let swatch = match mark {
            LegendMark::Box => 12.0,
            LegendMark::Line { .. } => 18.0,
        };
        let w = c.text(pen + swatch, y, label, SMALL, Weight::Regular, INK, Align::Left);
        pen += swatch + w + 14.0;
    }
}

#[derive(Clone, Copy)]
pub enum LegendMark {
    Box,
    Line { dashed: bool },
}

/// A line chart of one value per x position, with a y axis from 0 and a
/// legend of the series above the plot.
pub fn line_chart(c: &mut Canvas, x: f32, y: f32, w: f32, h: f32, series: &[Series], x_labels: &[String]) {
    let items: Vec<(&str, Rgb, LegendMark)> = series.iter().map(|s| (s.label, s.color, LegendMark::Line { dashed: s.dashed })).collect();
    legend(c, x, y + 4.0, &items);
    let y = y + 16.0;
    let h = h - 16.0;
    let left = x + 40.0; // y tick labels
    let bottom = y + h - 18.0; // x labels
    let (plot_w, plot_h) = (x + w - left, bottom - y);
    let max = series.iter().flat_map(|s| s.values.iter().copied()).fold(0.0f64, f64::max);
    let (step, top) = nice_axis(max, 5);
    let ticks = (top / step).round() as usize;
    for i in 0..=ticks {
        let v = step * i as f64;
        let ty = bottom - (v / top) as f32 * plot_h;
        c.hline(left, left + plot_w, ty, 0.5, if i == 0 { AXIS } else { GRID });
        c.text(left - 6.0, ty + 2.5, &tick_label(v), SMALL, Weight::Regular, MUTED, Align::Right);
    }
    let n = x_labels.len().max(1);
    let x_at = |i: usize| if n == 1 { left + plot_w / 2.0 } else { left + plot_w * i as f32 / (n - 1) as f32 };
    // At most about eight date labels, evenly spaced, the last one always shown.
    let every = n.div_ceil(8).max(1);
    // A regular label too close to the last one is skipped so they never overlap.
    let show = |i: usize| i == n - 1 || (i.is_multiple_of(every) && (n - 1 - i) * 2 >= every);
    for (i, label) in x_labels.iter().enumerate().filter(|(i, _)| show(*i)) {
        c.line(vec![(x_at(i), bottom), (x_at(i), bottom + 3.0)], 0.5, AXIS, false);
        c.text(x_at(i), bottom + 12.0, label, SMALL, Weight::Regular, MUTED, Align::Center);
    }
    for s in series {
        let points: Vec<(f32, f32)> = s.values.iter().enumerate().map(|(i, v)| (x_at(i), bottom - (*v / top) as f32 * plot_h)).collect();
        if points.len() == 1 || (!s.dashed && points.len() <= 31) {
            for (px, py) in &points {
                c.dot(*px, *py, 1.8, s.color);
            }
        }
        c.line(points, if s.dashed { 1.2 } else { 1.8 }, s.color, s.dashed);
    }
}

/// Horizontal bars of a share in [0, 1] per labelled row; `None` rows show a
/// dash. Returns the height used.
pub fn share_bars(c: &mut Canvas, x: f32, y: f32, w: f32, rows: &[(String, Option<f64>)], color: Rgb) -> f32 {
    let label_w = 150.0;
    let value_w = 44.0;
    let left = x + label_w;
    let plot_w = w - label_w - value_w;
    let row_h = 15.0;
    let top = y + 4.0;
    let bottom = top + row_h * rows.len() as f32;
    for i in 0..=4 {
        let gx = left + plot_w * i as f32 / 4.0;
        c.line(vec![(gx, top - 2.0), (gx, bottom)], 0.5, if i == 0 { AXIS } else { GRID }, false);
        c.text(gx, bottom + 11.0, &format!("{}%", i * 25), SMALL, Weight::Regular, MUTED, Align::Center);
    }
    for (i, (label, share)) in rows.iter().enumerate() {
        let ry = top + row_h * i as f32;
        c.text_fit(left - 8.0, ry + 10.5, label, SMALL + 0.5, Weight::Regular, INK, Align::Right, label_w - 12.0);
        match share {
            Some(s) => {
                let bw = plot_w * s.clamp(0.0, 1.0) as f32;
                c.rect(left, ry + 3.0, bw, row_h - 6.0, color);
                c.text(left + bw + 4.0, ry + 10.5, &super::percent(Some(*s)), SMALL, Weight::Bold, INK, Align::Left);
            }
            None => {
                c.text(left + 4.0, ry + 10.5, "no patients expected", SMALL, Weight::Regular, MUTED, Align::Left);
            }
        }
    }
    bottom - y + 16.0
}

/// Vertical bars, each stacked from segments (bottom first), with totals on top.
pub fn stacked_bars(c: &mut Canvas, x: f32, y: f32, w: f32, h: f32, bars: &[(&str, Vec<u64>)], colors: &[Rgb]) {
    let left = x + 40.0;
    let bottom = y + h - 18.0;
    let (plot_w, plot_h) = (x + w - left, bottom - y - 12.0);
    let max = bars.iter().map(|(_, segs)| segs.iter().sum::<u64>()).max().unwrap_or(0) as f64;
    let (step, top) = nice_axis(max, 4);
    let ticks = (top / step).round() as usize;
    for i in 0..=ticks {
        let v = step * i as f64;
        let ty = bottom - (v / top) as f32 * plot_h;
        c.hline(left, left + plot_w, ty, 0.5, if i == 0 { AXIS } else { GRID });
        c.text(left - 6.0, ty + 2.5, &tick_label(v), SMALL, Weight::Regular, MUTED, Align::Right);
    }
    let slot = plot_w / bars.len().max(1) as f32;
    let bar_w = (slot * 0.5).min(56.0);
    for (i, (label, segs)) in bars.iter().enumerate() {
        let cx = left + slot * (i as f32 + 0.5);
        let mut base = bottom;
        for (j, v) in segs.iter().enumerate() {
            let hgt = (*v as f64 / top) as f32 * plot_h;
            c.rect(cx - bar_w / 2.0, base - hgt, bar_w, hgt, colors.get(j).copied().unwrap_or(INK));
            base -= hgt;
        }
        let total: u64 = segs.iter().sum();
        c.text(cx, base - 4.0, &super::count(total), SMALL, Weight::Bold, INK, Align::Center);
        c.text(cx, bottom + 12.0, label, SMALL + 0.5, Weight::Regular, INK, Align::Center);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_to_a_nice_step() {
        assert_eq!(nice_axis(87.0, 5), (20.0, 100.0));
        assert_eq!(nice_axis(1234.0, 5), (250.0, 1250.0));
        assert_eq!(nice_axis(3.0, 4), (1.0, 3.0));
        // counts never get a 2.5 step
        assert_eq!(nice_axis(10.0, 4), (5.0, 10.0));
        // nothing to show still draws a sane axis
        assert_eq!(nice_axis(0.0, 5), (1.0, 1.0));
    }
}
