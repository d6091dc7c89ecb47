use serde_json::json;
use trialwatch_e2e::{World, TRIAL};
use trialwatch_local::scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sponsor_generates_a_report_and_downloads_the_pdf_from_its_presigned_url() {
    // GIVEN a trial with patients at every site and some submissions
    let w = World::start("e2e-report").await;
    for n in 0..3 {
        let p = w.enrol(n).await;
        // Within minutes of the enrolment: answers completed before it are refused.
        for k in 0..2 {
            let at = chrono::Utc::now() - chrono::Duration::minutes(k);
            let body = scenario::submission(&uuid::Uuid::new_v4().to_string(), at, n + k as usize, 2);
            let a = w.post(&format!("/v1/trials/{TRIAL}/patients/{p}/submissions"), &w.patient(&p), &body).await;
            assert_eq!(a.status, 201, "{}", a.body);
        }
    }
    let today = chrono::Utc::now().date_naive();
    let period = json!({"from": (today - chrono::Duration::days(6)).to_string(), "to": today.to_string()});

    // WHEN a patient asks THEN 403; WHEN the sponsor asks THEN 201 with a link
    let refused = w.post(&format!("/v1/trials/{TRIAL}/reports"), &w.patient("P00001"), &period).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let r = w.post(&format!("/v1/trials/{TRIAL}/reports"), &w.sponsor(), &period).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["summary"]["patientsEnrolled"], 3);
    assert_eq!(r.body["summary"]["submissionsReceived"], 6);

    // THEN the presigned URL serves a PDF
    let url = r.body["url"].as_str().expect("url");
    let pdf = w.api.http().get(url).send().await.expect("download");
    assert_eq!(pdf.status().as_u16(), 200);
    let bytes = pdf.bytes().await.expect("bytes");
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF: {:?}", &bytes[..bytes.len().min(16)]);

    // AND the report reads back by id
    let id = r.body["reportId"].as_str().expect("reportId");
    let meta = w.get(&format!("/v1/trials/{TRIAL}/reports/{id}"), &w.sponsor()).await;
    assert_eq!(meta.status, 200, "{}", meta.body);
    assert_eq!(meta.body["reportId"], id);
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_schedule_fires_on_demand_and_reports_every_trial() {
    let w = World::start("e2e-weekly").await;
    w.enrol(0).await;

    // WHEN the template's schedule is fired through the runner's local route
    let r = w.api.http().post(format!("{}/__local/schedules/WeeklyReports", w.stack.base_url)).send().await.expect("fire");

    // THEN the report generator ran for the one trial, without failures
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["function"], "ReportGeneratorFunction");
    assert_eq!(body["result"]["trials"], 1, "{body}");
    assert_eq!(body["result"]["failed"], 0, "{body}");

    // AND an unknown schedule is a 404 naming the known ones
    let unknown = w.api.http().post(format!("{}/__local/schedules/Nope", w.stack.base_url)).send().await.expect("fire");
    assert_eq!(unknown.status().as_u16(), 404);
    w.shutdown().await;
}
