//! Writes the example report of `docs/example-report.pdf` from in-memory
//! fixtures (3 sites, one with a Chinese name; 200 patients; one week):
//! `cargo run -p report-generator --example example_report -- docs/example-report.pdf`

#[path = "../tests/common/mod.rs"]
mod common;

use report_generator::handle_http;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "example-report.pdf".to_owned());
    let deps = common::deps();
    common::seed(&deps.store, 3, 200, common::week()).await;
    let sponsor = [("custom:role", "sponsor"), ("custom:trial_ids", common::TRIAL)];
    let resp =
        handle_http(&deps, common::request(common::post_event(common::TRIAL, r#"{"from":"2026-11-16","to":"2026-11-22"}"#, &sponsor)))
            .await;
    let lambda_http::Body::Text(body) = resp.body() else { return Err("no body".into()) };
    let body: serde_json::Value = serde_json::from_str(body)?;
    let id = body["reportId"].as_str().ok_or("no report id")?;
    let pdf = deps.reports.object(&format!("reports/{}/{id}.pdf", common::TRIAL)).ok_or("no pdf")?;
    std::fs::write(&out, &pdf)?;
    println!("{out}: {} bytes, report {id}", pdf.len());
    Ok(())
}
