//! The handlers driven end to end with the in-memory adapters: the HTTP
//! routes, the PDF as a reader (lopdf) sees it, the audit, the schedule.

mod common;

use common::*;
use lambda_runtime::{Context, LambdaEvent};
use report_generator::pdf::{count, minutes, percent};
use report_generator::{handle_event, handle_http};
use serde_json::Value;
use trialwatch::ports::{ReportStore, TrialRegistry};
use trialwatch::report::ReportSummary;
use trialwatch::trial::TrialStatus;
use trialwatch::ReportId;

const SPONSOR: &[(&str, &str)] = &[("custom:role", "sponsor"), ("custom:trial_ids", TRIAL), ("sub", "sponsor-1")];
const WEEK: &str = r#"{"from":"2026-11-16","to":"2026-11-22"}"#;

async fn call(deps: &MemoryDeps, event: Value) -> (u16, Value, lambda_http::http::HeaderMap) {
    let resp = handle_http(deps, request(event)).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        lambda_http::Body::Empty => Value::Null,
        other => panic!("unexpected body {other:?}"),
    };
    (status, body, headers)
}

fn problem_fields(body: &Value) -> Vec<String> {
    body["errors"].as_array().map(|a| a.iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn a_sponsor_gets_a_four_page_pdf_whose_summary_numbers_are_extractable_text() {
    // GIVEN a trial with 3 sites (one with a Chinese name) and 200 patients, and a week of data
    let deps = deps();
    let seeded = seed(&deps.store, 3, 200, week()).await;

    // WHEN its sponsor asks for the week's report
    let (status, body, headers) = call(&deps, post_event(TRIAL, WEEK, SPONSOR)).await;

    // THEN 201 with the id, a 15-minute link and the summary
    assert_eq!(status, 201, "{body}");
    let report_id = body["reportId"].as_str().unwrap().to_owned();
    assert!(report_id.starts_with("rpt-20261126-"), "{report_id}");
    assert_eq!(headers["location"], format!("/v1/trials/{TRIAL}/reports/{report_id}").as_str());
    assert_eq!(body["expiresAt"], "2026-11-26T20:30:00.000Z");
    assert!(body["url"].as_str().unwrap().contains(&format!("reports/{TRIAL}/{report_id}.pdf")));
    let summary: ReportSummary = serde_json::from_value(body["summary"].clone()).unwrap();
    assert_eq!(summary.patients_enrolled, seeded.enrolled);
    assert_eq!(summary.submissions_received, seeded.submissions);
    assert_eq!(summary.alerts_total, seeded.alerts);
    assert_eq!(summary.sites, 3);

    // AND the stored PDF parses, has the cover, summary, charts and tables pages
    let key = format!("reports/{TRIAL}/{report_id}.pdf");
    let pdf = deps.reports.object(&key).expect("the PDF is stored under reports/{trial}/{report}.pdf");
    let (pages, text) = pdf_text(&pdf);
    assert_eq!(pages, 4);
    let meta = deps.reports.get_report(&trial_id(), &ReportId::parse(&report_id).unwrap()).await.unwrap().unwrap();
    assert_eq!(meta.pages, 4);
    assert_eq!(meta.bytes, pdf.len() as u64);

    // AND the summary numbers, the trial and the Chinese site name are text a reader can search
    for expected in [
        count(summary.patients_enrolled),
        count(summary.submissions_received),
        count(summary.submissions_expected),
        percent(summary.compliance),
        count(summary.alerts_total),
        minutes(summary.median_minutes_to_ack),
        minutes(summary.p90_minutes_to_ack),
        report_id.clone(),
        "北京协和医院".to_owned(),
        "心衰居家监测研究".to_owned(),
        "Page 4 of 4".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected:?} is not in the PDF text");
    }
    // AND no patient-level identifier appears anywhere
    assert!(!text.contains("P000"), "a patient id leaked into the report");
    // AND the PDF is small: fonts are subset, not embedded whole (3.9 MB of CJK font)
    assert!(pdf.len() < 400_000, "{} bytes", pdf.len());
}

#[tokio::test]
async fn the_generation_is_audited_with_who_and_what() {
    let deps = deps();
    seed(&deps.store, 3, 50, week()).await;
    let (status, body, _) = call(&deps, post_event(TRIAL, WEEK, SPONSOR)).await;
    assert_eq!(status, 201);
    let audit: Vec<_> = deps.store.audit_entries().into_iter().filter(|a| a.action == "report.generated").collect();
    assert_eq!(audit.len(), 1);
    let a = &audit[0];
    assert_eq!(a.entity, format!("report/{}", body["reportId"].as_str().unwrap()));
    assert_eq!(a.actor.role, "sponsor");
    assert_eq!(a.actor.subject.as_deref(), Some("sponsor-1"));
    assert_eq!(a.at, "2026-11-26T20:15:00.000Z");
    assert_eq!(a.details["from"], "2026-11-16");
}

#[tokio::test]
async fn gathering_costs_the_same_requests_whatever_the_number_of_patients() {
    for patients in [30, 3_000] {
        // GIVEN a trial of `patients` patients
        let deps = deps();
        seed(&deps.store, 3, patients, week()).await;
        // WHEN a report is made
        let (status, _, _) = call(&deps, post_event(TRIAL, WEEK, SPONSOR)).await;
        assert_eq!(status, 201);
        // THEN the store saw 2 GetItem (trial; the trial chain's head), 3 Query (enrolment,
        // alerts, risk counters) + one Query per day-counter shard, and 1 TransactWriteItems
        // (the audit entry with its chain head's move): nothing per patient
        let shards = u64::from(trialwatch::aws::COUNTER_SHARDS);
        let r = deps.store.requests.snapshot();
        assert_eq!(r.get("dynamodb.GetItem"), Some(&2), "{r:?}");
        assert_eq!(r.get("dynamodb.Query"), Some(&(3 + shards)), "{r:?}");
        assert_eq!(r.get("dynamodb.TransactWriteItems"), Some(&1), "{r:?}");
        assert_eq!(deps.store.requests.total(), 6 + shards, "{r:?}");
        // AND the report store one PutObject and one TransactWriteItems (the record with its pending event)
        let r = deps.reports.requests.snapshot();
        assert_eq!((r.get("s3.PutObject"), r.get("dynamodb.TransactWriteItems")), (Some(&1), Some(&1)), "{r:?}");
        assert_eq!(deps.reports.requests.total(), 2, "{r:?}");
    }
}

#[tokio::test]
async fn a_generated_report_is_announced_once_and_its_pending_event_settled() {
    // GIVEN a trial and a bus that accepts
    let bus = std::sync::Arc::new(trialwatch::memory::MemoryEventBus::new());
    let deps = deps_with_bus(bus.clone());
    seed(&deps.store, 3, 50, week()).await;
    // WHEN a report is made
    let (status, body, _) = call(&deps, post_event(TRIAL, WEEK, SPONSOR)).await;
    assert_eq!(status, 201, "{body}");
    // THEN one ReportGenerated, naming the report and its period, is on the bus
    let accepted = bus.accepted();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let event = &accepted[0];
    assert_eq!(event.detail_type, trialwatch::domain_event::EventType::ReportGenerated);
    assert_eq!(event.detail["reportId"], body["reportId"]);
    assert_eq!(event.detail["trialId"], TRIAL);
    assert_eq!((event.detail["periodFrom"].as_str(), event.detail["periodTo"].as_str()), (Some("2026-11-16"), Some("2026-11-22")));
    // AND its pending item is settled: one PutEvents, one BatchWriteItem
    assert!(deps.store.pending_events().is_empty());
    assert_eq!(*bus.calls.lock().unwrap(), 1);
    assert_eq!(deps.store.requests.get("dynamodb.BatchWriteItem"), 1);
}

#[tokio::test]
async fn a_report_whose_event_is_not_published_leaves_it_pending_for_the_sweep() {
    // GIVEN a bus that fails the call
    let bus = std::sync::Arc::new(trialwatch::memory::MemoryEventBus::new());
    bus.fail_next(1);
    let deps = deps_with_bus(bus.clone());
    seed(&deps.store, 3, 50, week()).await;
    // WHEN a report is made THEN it is still made (the record is committed)
    let (status, body, _) = call(&deps, post_event(TRIAL, WEEK, SPONSOR)).await;
    assert_eq!(status, 201, "{body}");
    // AND its event waits, pending, in the same table as the record
    let pending = deps.store.pending_events();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].detail["reportId"], body["reportId"]);
    assert!(bus.accepted().is_empty());
}

#[tokio::test]
async fn get_returns_the_metadata_and_a_fresh_link() {
    let deps = deps();
    seed(&deps.store, 3, 50, week()).await;
    let (_, created, _) = call(&deps, post_event(TRIAL, WEEK, SPONSOR)).await;
    let id = created["reportId"].as_str().unwrap();
    deps.clock.advance(chrono::Duration::hours(2));

    let (status, body, _) = call(&deps, get_event(TRIAL, id, SPONSOR)).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reportId"], id);
    assert_eq!((body["from"].as_str(), body["to"].as_str()), (Some("2026-11-16"), Some("2026-11-22")));
    assert_eq!(body["pages"], 4);
    assert_eq!(body["summary"], created["summary"]);
    assert_eq!(body["expiresAt"], "2026-11-26T22:30:00.000Z", "the link is fresh, not the first one");
}

#[tokio::test]
async fn an_unknown_report_is_404_and_an_unknown_trial_is_404() {
    let deps = deps();
    seed(&deps.store, 3, 10, week()).await;
    let (status, body, _) = call(&deps, get_event(TRIAL, "rpt-20261126-000000000000", SPONSOR)).await;
    assert_eq!(status, 404, "{body}");
    let admin = &[("role", "admin"), ("sub", "admin-1")];
    let (status, body, _) = call(&deps, post_event("no-such-trial", WEEK, admin)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["type"], "https://trialwatch.dev/problems/not-found");
}

#[tokio::test]
async fn only_the_trials_sponsors_and_admins_may_have_reports() {
    let deps = deps();
    seed(&deps.store, 3, 10, week()).await;
    // a sponsor of another trial, site staff of this one, an admin scoped to another trial: 403
    for claims in [
        &[("role", "sponsor"), ("trial_ids", "other-trial")][..],
        &[("role", "site_staff"), ("trial_ids", TRIAL)][..],
        &[("role", "admin"), ("trial_ids", "other-trial"), ("sub", "admin-2")][..],
    ] {
        let (status, body, headers) = call(&deps, post_event(TRIAL, WEEK, claims)).await;
        assert_eq!(status, 403, "{claims:?}");
        assert_eq!(headers["content-type"], "application/problem+json");
        assert_eq!(body["status"], 403);
    }
    // no claims at all: 401
    let mut event = post_event(TRIAL, WEEK, SPONSOR);
    event["requestContext"].as_object_mut().unwrap().remove("authorizer");
    let (status, _, _) = call(&deps, event).await;
    assert_eq!(status, 401);
    // an admin whose token has no sub: 401, since the report's audit entry must name who asked
    let (status, _, _) = call(&deps, post_event(TRIAL, WEEK, &[("custom:role", "admin")])).await;
    assert_eq!(status, 401);
    // an admin: 201
    let (status, _, _) = call(&deps, post_event(TRIAL, WEEK, &[("custom:role", "admin"), ("sub", "admin-1")])).await;
    assert_eq!(status, 201);
    // nothing was stored for the refused ones: one report, one audit entry
    assert_eq!(deps.store.audit_entries().iter().filter(|a| a.action == "report.generated").count(), 1);
}

#[tokio::test]
async fn bad_periods_are_422_naming_the_field() {
    let deps = deps();
    seed(&deps.store, 3, 10, week()).await;
    let cases = [
        (r#"{"from":"2026-11-22","to":"2026-11-16"}"#, vec!["from"]),
        (r#"{"from":"16/11/2026","to":"2026-11-22"}"#, vec!["from"]),
        (r#"{"from":"2025-01-01","to":"2026-11-22"}"#, vec!["to"]),
        (r#"{"from":"2026-11-20","to":"2026-11-28"}"#, vec!["to"]),
        (r#"{"to":"2026-11-22"}"#, vec!["from"]),
        (r#"{"from":"2026-11-16","to":20261122}"#, vec!["to"]),
        (r#"{"from":"2026-11-16","to":"2026-11-22","format":"pdf"}"#, vec!["format"]),
    ];
    for (body, fields) in cases {
        let (status, problem, _) = call(&deps, post_event(TRIAL, body, SPONSOR)).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem_fields(&problem), fields, "{body}");
    }
    let (status, _, _) = call(&deps, post_event(TRIAL, "{not json", SPONSOR)).await;
    assert_eq!(status, 400);
    let (status, _, _) = call(&deps, post_event(TRIAL, &format!(r#"{{"from":"{}"}}"#, "x".repeat(5000)), SPONSOR)).await;
    assert_eq!(status, 413);
    assert_eq!(deps.reports.requests.get("s3.PutObject"), 0, "nothing was stored");
}

#[tokio::test]
async fn today_in_the_trials_zone_is_not_the_future_but_tomorrow_is() {
    // GIVEN 20:15 UTC on 26 Nov, which is already 04:15 on 27 Nov in Shanghai
    let deps = deps();
    seed(&deps.store, 3, 10, week()).await;
    let (status, _, _) = call(&deps, post_event(TRIAL, r#"{"from":"2026-11-27","to":"2026-11-27"}"#, SPONSOR)).await;
    assert_eq!(status, 201);
    let (status, body, _) = call(&deps, post_event(TRIAL, r#"{"from":"2026-11-28","to":"2026-11-28"}"#, SPONSOR)).await;
    assert_eq!(status, 422);
    assert_eq!(problem_fields(&body), vec!["to"]);
}

#[tokio::test]
async fn a_failing_section_cancels_the_report_and_asks_the_client_to_retry() {
    // GIVEN the alert index is throttled
    let deps = deps();
    seed(&deps.store, 3, 10, week()).await;
    deps.store.fail_next("alerts_between", 1);
    // WHEN a report is requested
    let (status, body, headers) = call(&deps, post_event(TRIAL, WEEK, SPONSOR)).await;
    // THEN 503 with Retry-After, and nothing stored or audited
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert!(deps.store.audit_entries().iter().all(|a| a.action != "report.generated"));
    assert_eq!(deps.reports.requests.total(), 0);
    // AND the retry succeeds
    let (status, _, _) = call(&deps, post_event(TRIAL, WEEK, SPONSOR)).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn tables_that_break_across_pages_repeat_their_caption_and_header() {
    // GIVEN 120 sites: the site tables cannot fit one page
    let deps = deps();
    seed(&deps.store, 120, 2_400, week()).await;
    let (status, body, _) = call(&deps, post_event(TRIAL, WEEK, SPONSOR)).await;
    assert_eq!(status, 201, "{body}");
    let pdf = deps.reports.object(&format!("reports/{TRIAL}/{}.pdf", body["reportId"].as_str().unwrap())).unwrap();
    let doc = load_pdf(&pdf);
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    assert!(pages.len() > 6, "{} pages", pages.len());
    // THEN every page after the first table page that continues a table shows its header row again
    let mut continued = 0;
    for p in &pages[4..] {
        let text = doc.extract_text(&[*p]).unwrap();
        if text.contains("(continued)") {
            continued += 1;
            assert!(text.contains("Site"), "page {p} continues a table without its header");
        }
    }
    assert!(continued >= 2, "{continued} continuation pages");
    // AND the compliance chart shows the lowest 15 sites, saying so
    let charts = doc.extract_text(&[pages[2]]).unwrap();
    assert!(charts.contains("lowest 15 of 120"), "{charts}");
}

#[tokio::test]
async fn the_api_gateway_event_is_answered_in_the_http_api_response_shape() {
    // GIVEN the sample event developers pass to `sam local invoke`
    let deps = deps();
    seed(&deps.store, 3, 20, week()).await;
    let event: Value = serde_json::from_str(include_str!("../../../events/report-post.json")).unwrap();
    // WHEN the Lambda entry point receives it
    let out = handle_event(&deps, LambdaEvent::new(event, Context::default())).await.unwrap();
    // THEN it is routed to HTTP and answered as payload format 2.0
    assert_eq!(out["statusCode"], 201, "{out}");
    assert_eq!(out["headers"]["content-type"], "application/json");
    assert_eq!(out["isBase64Encoded"], false);
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert!(body["reportId"].as_str().unwrap().starts_with("rpt-"));
}

#[tokio::test]
async fn the_weekly_schedule_reports_every_active_trial_once() {
    // GIVEN the demo trial and a closed one
    let deps = deps();
    seed(&deps.store, 3, 40, week()).await;
    let mut closed = trial(1);
    closed.trial_id = trialwatch::TrialId::parse("tw-closed").unwrap();
    closed.definition.status = TrialStatus::Closed;
    deps.store.seed_trial(closed);
    let event: Value = serde_json::from_str(include_str!("../../../events/report-schedule.json")).unwrap();

    // WHEN the Monday schedule fires (23 Nov 06:00Z, 14:00 in Shanghai)
    let out = handle_event(&deps, LambdaEvent::new(event.clone(), Context::default())).await.unwrap();

    // THEN last week's report (16-22 Nov in Shanghai) is made for the active trial only
    assert_eq!(out, serde_json::json!({"trials": 2, "generated": 1, "alreadyDone": 0, "skipped": 1, "failed": 0}));
    let id = report_generator::weekly_report_id(&trial_id(), week()).unwrap();
    let meta = deps.reports.get_report(&trial_id(), &id).await.unwrap().expect("the weekly report is stored");
    assert_eq!((meta.from, meta.to), (week().from, week().to));
    let audit: Vec<_> = deps.store.audit_entries().into_iter().filter(|a| a.action == "report.generated").collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor.role, "system");

    // AND a repeated delivery of the same event makes nothing twice
    let out = handle_event(&deps, LambdaEvent::new(event, Context::default())).await.unwrap();
    assert_eq!(out["alreadyDone"], 1);
    assert_eq!(out["generated"], 0);
}

#[tokio::test]
async fn one_failing_trial_does_not_stop_the_others_and_fails_the_run_for_a_retry() {
    let deps = deps();
    seed(&deps.store, 3, 40, week()).await;
    let mut second = trial(2);
    second.trial_id = trialwatch::TrialId::parse("tw-second").unwrap();
    deps.store.seed_trial(second);
    // the first daily-counter query fails once
    deps.store.fail_next("daily_counts", 1);
    let now = "2026-11-23T06:00:00Z".parse().unwrap();
    let out = report_generator::run_weekly(&deps, now).await.unwrap();
    assert_eq!((out.generated, out.failed), (1, 1));
    // the Lambda retry makes only the missing one
    let out = report_generator::run_weekly(&deps, now).await.unwrap();
    assert_eq!((out.generated, out.already_done, out.failed), (1, 1, 0));
    assert!(deps.store.list_trial_ids().await.unwrap().len() == 2);
}

// Where report-generator's edge used to differ from epro-api's, it now follows
// the one edge kit; each case below answered differently before.

#[tokio::test]
async fn a_bad_path_id_is_400_naming_the_parameter_after_the_identity_check() {
    let deps = deps();
    seed(&deps.store, 3, 10, week()).await;
    // GIVEN a report id that is not one (was 422 with a field)
    let (status, body, _) = call(&deps, get_event(TRIAL, ".hidden", SPONSOR)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("reportId"), "{body}");
    // AND without a token it is 401 first (the path was checked before the identity)
    let mut event = get_event(TRIAL, ".hidden", SPONSOR);
    event["requestContext"].as_object_mut().unwrap().remove("authorizer");
    assert_eq!(call(&deps, event).await.0, 401);
}

#[tokio::test]
async fn a_patient_token_without_its_patient_id_is_401() {
    // (was read as a patient and refused with 403)
    let deps = deps();
    seed(&deps.store, 3, 10, week()).await;
    let (status, _, _) = call(&deps, post_event(TRIAL, WEEK, &[("role", "patient"), ("trial_ids", TRIAL)])).await;
    assert_eq!(status, 401);
    let (status, _, _) =
        call(&deps, post_event(TRIAL, WEEK, &[("role", "patient"), ("patient_id", "P000001"), ("trial_ids", TRIAL)])).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_body_must_declare_json() {
    // GIVEN a request without Content-Type (was accepted) or with a type that
    // merely starts like JSON's
    let deps = deps();
    seed(&deps.store, 3, 10, week()).await;
    for content_type in [None, Some("application/jsonx")] {
        let mut event = post_event(TRIAL, WEEK, SPONSOR);
        match content_type {
            None => drop(event["headers"].as_object_mut().unwrap().remove("content-type")),
            Some(ct) => event["headers"]["content-type"] = ct.into(),
        }
        let (status, _, _) = call(&deps, event).await;
        assert_eq!(status, 415, "{content_type:?}");
    }
    assert_eq!(deps.reports.requests.get("s3.PutObject"), 0, "nothing was stored");
}

#[tokio::test]
async fn an_unrouted_request_with_a_wrong_method_is_405_naming_the_allowed_one() {
    let deps = deps();
    let mut event = post_event(TRIAL, WEEK, SPONSOR);
    event["routeKey"] = "$default".into();
    event["requestContext"]["routeKey"] = "$default".into();
    event["requestContext"]["http"]["method"] = "DELETE".into();
    let (status, _, headers) = call(&deps, event).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "POST");
}

#[test]
fn the_route_keys_are_the_templates() {
    let template = trialwatch_provision::Template::load(&trialwatch_provision::template_path()).unwrap();
    let function = template.function("ReportGeneratorFunction").expect("ReportGeneratorFunction in template.yaml");
    let mut declared: Vec<String> = function.http_routes.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    let mut served: Vec<String> = report_generator::routes().iter().map(|(k, _)| k.to_string()).collect();
    declared.sort();
    served.sort();
    assert_eq!(served, declared);
    // AND the sample event is routed as API Gateway would route it
    let e: Value = serde_json::from_str(include_str!("../../../events/report-post.json")).unwrap();
    let m = report_generator::routes().find("POST", e["rawPath"].as_str().unwrap()).unwrap();
    assert_eq!(e["routeKey"], m.key.as_str());
    assert_eq!(e["pathParameters"], serde_json::json!(m.params));
}
