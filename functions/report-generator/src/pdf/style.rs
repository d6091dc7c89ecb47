//! The report's palette and type scale: calm, high-contrast, print-safe.

use super::canvas::Rgb;

/// Body text.
pub const INK: Rgb = Rgb(31, 41, 51);
/// Secondary text: captions, axis labels, notes.
pub const MUTED: Rgb = Rgb(97, 110, 124);
/// Headings and the cover band.
pub const NAVY: Rgb = Rgb(31, 58, 95);
pub const WHITE: Rgb = Rgb(255, 255, 255);
/// Thin rules and table borders.
pub const RULE: Rgb = Rgb(217, 226, 236);
pub const GRID: Rgb = Rgb(230, 235, 241);
pub const AXIS: Rgb = Rgb(154, 165, 177);
/// Table header band and alternate rows.
pub const BAND: Rgb = Rgb(238, 242, 247);
pub const ZEBRA: Rgb = Rgb(248, 250, 252);
/// Data: received submissions, compliance bars, delivered alerts.
pub const ACCENT: Rgb = Rgb(44, 125, 160);
pub const AMBER: Rgb = Rgb(233, 180, 76);
pub const CORAL: Rgb = Rgb(209, 73, 91);
/// Compliance cell tints: at least 90 %, 70-90 %, below 70 %.
pub const TINT_GOOD: Rgb = Rgb(228, 243, 232);
pub const TINT_FAIR: Rgb = Rgb(253, 244, 222);
pub const TINT_POOR: Rgb = Rgb(250, 228, 231);

pub const TITLE: f32 = 26.0;
pub const H1: f32 = 15.0;
pub const H2: f32 = 10.5;
pub const BODY: f32 = 9.5;
pub const TABLE: f32 = 8.5;
pub const SMALL: f32 = 7.5;
