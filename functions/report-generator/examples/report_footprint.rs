//! Peak memory and wall time of one report, the figures behind the template's
//! `MemorySize` and `Timeout` for the function (Linux only: it reads `/proc`):
//! `cargo run --release -p report-generator --example report_footprint [typical|largest]`
//!
//! With no argument the binary runs itself once per case, so each case starts
//! from a fresh process: pages freed by one case would otherwise be reused by
//! the next and hide its growth. A case seeds the in-memory store, resets the
//! peak RSS (`5` written to `/proc/self/clear_refs`), makes a report through
//! `handle_http` and reads `VmHWM` again. The seeded store is resident too and
//! a Lambda does not hold it, so the report's own footprint is the growth of
//! the peak during generation. Each case makes two reports: the first also
//! inflates and parses the embedded fonts (once per execution environment, as
//! on a cold start), the second is a warm invocation. The allocator keeps the
//! first report's freed pages and the second reuses them, so the second's
//! growth is small: compare its peak with the RSS after seeding instead.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Instant;

use report_generator::{handle_http, Period};
use trialwatch::ports::ReportStore;

const SPONSOR: &[(&str, &str)] = &[("custom:role", "sponsor"), ("custom:trial_ids", common::TRIAL)];

struct Case {
    name: &'static str,
    sites: usize,
    patients: usize,
    period: fn() -> Period,
}

const CASES: [Case; 2] = [
    // The weekly report of a mid-sized trial.
    Case { name: "typical", sites: 20, patients: 10_000, period: common::week },
    // The most a request may ask for: the trial maximum of sites over 366 days.
    Case { name: "largest", sites: 500, patients: 50_000, period: year },
];

fn year() -> Period {
    Period { from: common::day("2025-11-22"), to: common::day("2026-11-22") }
}

/// A `VmRSS`/`VmHWM`-style line of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with(field)).ok_or_else(|| format!("no {field} in /proc/self/status"))?;
    Ok(line.split_whitespace().nth(1).ok_or("malformed status line")?.parse()?)
}

/// CPU time of the whole process (every thread), from `/proc/self/stat`:
/// unlike wall time it does not count waiting for a core that other work on
/// this machine holds. Ticks are USER_HZ, 100 per second on Linux.
fn cpu_ms() -> Result<u64, Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    let rest: Vec<&str> = stat.rsplit_once(')').ok_or("malformed /proc/self/stat")?.1.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64, Box<dyn std::error::Error>> { Ok(rest.get(i).ok_or("short /proc/self/stat")?.parse()?) };
    Ok((ticks(11)? + ticks(12)?) * 10)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Sets the peak (`VmHWM`) back to the current RSS.
fn reset_peak() -> Result<(), Box<dyn std::error::Error>> {
    std::fs::write("/proc/self/clear_refs", "5")?;
    Ok(())
}

async fn measure(case: &Case) -> Result<(), Box<dyn std::error::Error>> {
    let start_rss = status_kib("VmRSS:")?;
    let deps = common::deps();
    let period = (case.period)();
    let seeded = common::seed(&deps.store, case.sites, case.patients, period).await;
    let seeded_rss = status_kib("VmRSS:")?;
    println!(
        "{}: sites={} days={} patients={} submissions={} | RSS at start {:.1} MiB, after seeding {:.1} MiB",
        case.name,
        case.sites,
        period.days(),
        case.patients,
        seeded.submissions,
        mib(start_rss),
        mib(seeded_rss),
    );
    let body = format!(r#"{{"from":"{}","to":"{}"}}"#, period.from, period.to);
    for run in ["cold", "warm"] {
        reset_peak()?;
        let before = status_kib("VmHWM:")?;
        let (started, cpu_before) = (Instant::now(), cpu_ms()?);
        let resp = handle_http(&deps, common::request(common::post_event(common::TRIAL, &body, SPONSOR))).await;
        let (elapsed, cpu) = (started.elapsed(), cpu_ms()? - cpu_before);
        let after = status_kib("VmHWM:")?;
        if resp.status().as_u16() != 201 {
            return Err(format!("{}: status {}", case.name, resp.status()).into());
        }
        let lambda_http::Body::Text(text) = resp.body() else { return Err("no body".into()) };
        let created: serde_json::Value = serde_json::from_str(text)?;
        let id = trialwatch::ReportId::parse(created["reportId"].as_str().ok_or("no report id")?)?;
        let meta = deps.reports.get_report(&common::trial_id(), &id).await?.ok_or("no report metadata")?;
        println!(
            "  {run}: {:.0} ms wall, {cpu} ms CPU | VmHWM {:.1} -> {:.1} MiB, grew {:.1} MiB | pdf {} bytes, {} pages",
            elapsed.as_secs_f64() * 1000.0,
            mib(before),
            mib(after),
            mib(after.saturating_sub(before)),
            meta.bytes,
            meta.pages,
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1) {
        Some(name) => {
            let case = CASES.iter().find(|c| c.name == name).ok_or_else(|| format!("unknown case {name}: typical or largest"))?;
            measure(case).await
        }
        None => {
            let exe = std::env::current_exe()?;
            for case in &CASES {
                let status = Command::new(&exe).arg(case.name).status()?;
                if !status.success() {
                    return Err(format!("case {} failed: {status}", case.name).into());
                }
            }
            Ok(())
        }
    }
}
