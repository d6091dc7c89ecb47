//! Report generation time against the number of patients (1k, 10k, 50k) with
//! the in-memory adapters, and the store requests one report issues. The
//! counters make the cost O(sites x days): the request count is the same at
//! every size, and the time does not grow with patients or submissions.
//!
//! `cargo bench -p report-generator --bench report`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use report_generator::handle_http;

const SITES: usize = 20;
const WEEK: &str = r#"{"from":"2026-11-16","to":"2026-11-22"}"#;
const SPONSOR: &[(&str, &str)] = &[("custom:role", "sponsor"), ("custom:trial_ids", common::TRIAL)];

async fn one_report(deps: &common::MemoryDeps) {
    let resp = handle_http(deps, common::request(common::post_event(common::TRIAL, WEEK, SPONSOR))).await;
    assert_eq!(resp.status().as_u16(), 201);
}

fn generation(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let mut group = c.benchmark_group("report_generation");
    group.sample_size(20).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(2));
    for patients in [1_000usize, 10_000, 50_000] {
        let deps = common::deps();
        let seeded = rt.block_on(common::seed(&deps.store, SITES, patients, common::week()));
        // One report on its own, to count what it asks of the stores.
        rt.block_on(one_report(&deps));
        let store = deps.store.requests.snapshot();
        let reports = deps.reports.requests.snapshot();
        println!(
            "patients={patients} sites={SITES} days=7 submissions={} alerts={} | store requests per report: {store:?} total={} | report store: {reports:?}",
            seeded.submissions,
            seeded.alerts,
            deps.store.requests.total(),
        );
        group.bench_with_input(BenchmarkId::from_parameter(patients), &patients, |b, _| {
            b.to_async(&rt).iter(|| one_report(&deps));
        });
    }
    group.finish();
}

/// The largest report a request may ask for at national scale: 500 sites
/// (the trial maximum) over 366 days, about 700 pages of site-by-day tables.
fn largest(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let mut group = c.benchmark_group("report_generation_largest");
    group.sample_size(10).measurement_time(Duration::from_secs(30)).warm_up_time(Duration::from_secs(1));
    let year = report_generator::Period { from: common::day("2025-11-22"), to: common::day("2026-11-22") };
    let deps = common::deps();
    let seeded = rt.block_on(common::seed(&deps.store, 500, 50_000, year));
    let body = format!(r#"{{"from":"{}","to":"{}"}}"#, year.from, year.to);
    let run = || async {
        let resp = handle_http(&deps, common::request(common::post_event(common::TRIAL, &body, SPONSOR))).await;
        assert_eq!(resp.status().as_u16(), 201);
        let created: serde_json::Value = match resp.body() {
            lambda_http::Body::Text(t) => serde_json::from_str(t).expect("json"),
            _ => panic!("no body"),
        };
        created
    };
    let created = rt.block_on(run());
    let key = format!("reports/{}/{}.pdf", common::TRIAL, created["reportId"].as_str().unwrap_or_default());
    let pdf = deps.reports.object(&key).map_or(0, |p| p.len());
    let id = trialwatch::ReportId::parse(created["reportId"].as_str().unwrap_or_default()).expect("a report id");
    let pages = rt
        .block_on(trialwatch::ports::ReportStore::get_report(&deps.reports, &common::trial_id(), &id))
        .ok()
        .flatten()
        .map_or(0, |m| m.pages);
    println!(
        "sites=500 days=366 patients=50000 submissions={} | store requests per report: {:?} | pdf pages={pages} bytes={pdf}",
        seeded.submissions,
        deps.store.requests.snapshot()
    );
    group.bench_function("500_sites_366_days", |b| b.to_async(&rt).iter(run));
    group.finish();
}

criterion_group!(benches, generation, largest);
criterion_main!(benches);
