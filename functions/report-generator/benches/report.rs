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

criterion_group!(benches, generation);
criterion_main!(benches);
