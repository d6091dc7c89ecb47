//! Pages 4 on: the tables (enrolment, compliance by site, compliance by site and
//! day in 7-day blocks).

use crate::aggregate::Figures;
use crate::pdf::canvas::{Align, Canvas, CONTENT_W, MARGIN_X};
use crate::pdf::fonts::Weight;
use crate::pdf::format::*;
use crate::pdf::style::*;
use crate::pdf::table::{table, Cell, Column};

use super::heading;

pub(in crate::pdf) fn tables(c: &mut Canvas, f: &Figures) {
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
