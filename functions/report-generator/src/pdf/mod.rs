//! The report as a PDF: a cover, a summary, charts and tables. Pure Rust
//! (krilla writes the PDF; fonts are embedded and subset), no external binaries.
//!
//! Pages: 1 cover; 2 summary; 3 charts; 4+ tables (enrolment, compliance by
//! site, compliance by site and day in 7-day blocks). Only aggregates appear:
//! counts per site, day and level, never a patient id.

mod canvas;
mod charts;
mod fonts;
mod format;
mod page;
mod style;
mod table;

use chrono::{DateTime, Utc};
use trialwatch::{Error, ReportId, TrialId};

use crate::aggregate::Figures;
use crate::period::Period;
use canvas::Canvas;
pub use format::{count, minutes, percent};
use page::{chart_pages, contents_list, cover, decorate, summary, tables};

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
