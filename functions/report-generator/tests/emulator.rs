//! The report with the production AWS adapters against the local emulator:
//! a trial of 3 sites, 200 patients and 30 days of submissions and alerts is
//! written through the same port methods epro-api and the alert dispatcher
//! use, the report is requested through the HTTP handler, downloaded through
//! its presigned URL and read back with lopdf.
//!
//! Needs AWS_ENDPOINT_URL (run `make test`); without it the test fails loudly.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use report_generator::pdf::{count, minutes, percent};
use report_generator::{handle_http, local_day, percentile, Deps, Period};
use serde_json::Value;
use trialwatch::alert::{Alert, AlertReason, AlertStatus, Claim};
use trialwatch::audit::append::append_with_retry;
use trialwatch::audit::chain::{link_all, ChainHead, ChainId};
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::aws::{DynamoStore, S3ReportStore};
use trialwatch::clock::FakeClock;
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::news2::RiskLevel;
use trialwatch::ports::{AlertDelivery, AlertInbox, EnrolmentStore, RecordOutcome, SubmissionLedger, TrialRegistry};
use trialwatch::submission::{Answer, AnswerValue, StoredSubmission};
use trialwatch::trial::{Trial, TrialDefinition};
use trialwatch::{AlertId, SiteId, SubmissionId};

const PATIENTS: usize = 200;
const WITHDRAWN_LATER: usize = 10;
const ALERTS: usize = 60;
/// Each patient answers every 4th day: 1,500 submissions. moto (5.2.5)
/// deep-copies the whole table once per item of every TransactWriteItems, so
/// a submission (5 items) costs O(table) and seeding is quadratic. Measured on
/// the 2-core machine when idle: 200 enrolments 8 s, 1,500 submissions 38 s,
/// the whole test 73 s; with six other builds running, ten times that.
const EVERY_NTH_DAY: usize = 4;
/// One write at a time: two overlapping transactions make moto fail one with a
/// 500 ("dictionary changed size during iteration" in its table copy), and
/// it serialises requests anyway. The retry below still covers a 503.
const IN_FLIGHT: usize = 1;

/// Retries what a client retries after a 503: concurrent transactions on one
/// counter item conflict (TransactionConflict), on DynamoDB as on the emulator.
async fn retrying<T, F, Fut>(mut op: F) -> Result<T, trialwatch::ports::StorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, trialwatch::ports::StorageError>>,
{
    let mut attempt = 0u64;
    loop {
        match op().await {
            Err(e) if e.is_retryable() && attempt < 12 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(25 * attempt * attempt)).await;
            }
            other => return other,
        }
    }
}

struct Expected {
    enrolled: u64,
    received: u64,
    expected: u64,
    credited: u64,
    alerts: u64,
    delivered: u64,
    acknowledged: u64,
    ack_minutes: Vec<f64>,
}

fn period() -> Period {
    Period { from: NaiveDate::from_ymd_opt(2026, 10, 24).unwrap(), to: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap() }
}

fn trial_def() -> Trial {
    let def: TrialDefinition = serde_json::from_value(serde_json::json!({
        "name": "心衰居家监测研究 HF-Home (emulator)",
        "sites": [
            {"id": "site-001", "name": "北京协和医院"},
            {"id": "site-002", "name": "Leeds General Infirmary"},
            {"id": "site-003", "name": "Hospital Universitario La Paz"}
        ],
        "questionnaires": [{"id": "kccq", "version": "1", "items": [{"linkId": "q1", "type": "integer", "min": 0, "max": 10}]}],
        "schedule": [{"questionnaireId": "kccq", "frequency": "daily"}],
        // New York: the period spans the 1 November 2026 change back to EST (a 25-hour day).
        "timezone": "America/New_York"
    }))
    .unwrap();
    Trial { trial_id: common::trial_id(), definition: def, updated_at: "2026-10-01T00:00:00.000Z".into() }
}

fn admin() -> Actor {
    Actor { role: "admin".into(), subject: Some("seed".into()) }
}

fn audit(entity: String, action: &str, at: DateTime<Utc>) -> AuditEntry {
    AuditEntry::new(common::trial_id(), entity, action, admin(), at)
}

fn enrolment(i: usize, status: EnrolmentStatus) -> Enrolment {
    Enrolment {
        trial_id: common::trial_id(),
        patient_id: common::patient_id(i),
        site_id: common::site_id(i % 3),
        status,
        hypercapnic: false,
        enrolled_at: "2026-10-01T00:00:00.000Z".into(),
        updated_at: "2026-10-01T00:00:00.000Z".into(),
        submission_count: 0,
        last_submission_at: None,
        withdrawn_at: None,
        audit_head: Default::default(),
    }
}

/// Patient `i` answers on day `d` when `(i + d) % EVERY_NTH_DAY == 0`
/// (200 x 30 / 4 = 1,500 submissions, 50 every day), at 21:30 New York time,
/// which is already the next UTC day.
fn submissions(tz: &trialwatch::zone::Zone) -> Vec<(StoredSubmission, String)> {
    let mut out = Vec::new();
    for (d, day) in period().each_day().enumerate() {
        for i in (0..PATIENTS).filter(|i| (i + d) % EVERY_NTH_DAY == 0) {
            let local = day.and_hms_opt(21, 30, 0).unwrap();
            let completed_at = tz.from_local_datetime(&local).earliest().unwrap().with_timezone(&Utc);
            let s = StoredSubmission {
                trial_id: common::trial_id(),
                patient_id: common::patient_id(i),
                site_id: common::site_id(i % 3),
                submission_id: SubmissionId::new_random(),
                questionnaire_id: "kccq".parse().unwrap(),
                questionnaire_version: "1".into(),
                completed_at,
                received_at: completed_at + Duration::seconds(2),
                answers: vec![Answer { link_id: "q1".into(), value: AnswerValue::Number((i % 11) as f64) }],
                score: Some((i % 11) as f64),
                body_hash: format!("{:064x}", i * 1000 + d),
                submitted_by: Actor { role: "patient".into(), subject: Some(common::patient_id(i).to_string()) },
            };
            // The counter bucket is the trial-zone day, as epro-api computes it.
            out.push((s, local_day(completed_at, tz).to_string()));
        }
    }
    out
}

async fn seed(store: &DynamoStore) -> Expected {
    let trial = trial_def();
    let tz = trial.definition.tz();
    let t0: DateTime<Utc> = "2026-10-01T00:00:00Z".parse().unwrap();
    let started = std::time::Instant::now();
    store.put_trial(&trial, &audit("trial".into(), "trial.created", t0)).await.unwrap();

    stream::iter(0..PATIENTS)
        .map(|i| async move {
            let entry = audit(format!("patient/{}", common::patient_id(i)), "enrolment.created", t0);
            let e = enrolment(i, EnrolmentStatus::Enrolled);
            retrying(|| store.put_enrolment(&e, &entry, &[])).await
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();

    let subs = submissions(&tz);
    let mut per_site_day: BTreeMap<(SiteId, String), u64> = BTreeMap::new();
    for (s, day) in &subs {
        *per_site_day.entry((s.site_id.clone(), day.clone())).or_default() += 1;
    }
    eprintln!("enrolled {PATIENTS} in {:?}", started.elapsed());
    let recorded: Vec<RecordOutcome> = stream::iter(subs.iter())
        .map(|(s, day)| async move {
            let entry = audit(format!("submission/{}", s.submission_id), "submission.created", s.received_at);
            let chain = ChainId::Patient(s.patient_id.clone());
            // As the API: linked after the patient's chain head, re-read when another submission moved it.
            let head = || async {
                Ok(store.get_enrolment_consistent(&s.trial_id, &s.patient_id).await?.map(|e| e.audit_head).unwrap_or_default())
            };
            let record = |head: ChainHead| {
                let mut entries = vec![entry.clone()];
                link_all(entries.iter_mut(), &chain, &head);
                async move { store.record_submission(s, day, &entries, &[], &[]).await }
            };
            retrying(|| append_with_retry(None, head, record)).await
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await
        .unwrap();
    // A retry after an ambiguous failure may find its own write: stored once either way.
    assert!(recorded.iter().all(|r| matches!(r, RecordOutcome::Recorded | RecordOutcome::Duplicate(_))));

    eprintln!("recorded {} submissions in {:?}", subs.len(), started.elapsed());
    // Ten patients leave after the period: they no longer count as expected to submit.
    for i in 0..WITHDRAWN_LATER {
        let e = enrolment(i * 7, EnrolmentStatus::Withdrawn);
        let entry = audit(format!("patient/{}", e.patient_id), "enrolment.updated", t0);
        retrying(|| store.put_enrolment(&e, &entry, &[])).await.unwrap();
    }

    // Alerts through the dispatcher's and the API's paths: claim, finish, acknowledge.
    let levels = [RiskLevel::LowMedium, RiskLevel::Medium, RiskLevel::High];
    let mut ack_minutes = Vec::new();
    let (mut delivered, mut acknowledged) = (0, 0);
    let plans: Vec<(Alert, AlertStatus, Option<i64>)> = (0..ALERTS)
        .map(|i| {
            let day = period().from + Duration::days((i % 30) as i64);
            let created_at =
                tz.from_local_datetime(&day.and_hms_opt(9 + (i % 10) as u32, 0, 0).unwrap()).earliest().unwrap().with_timezone(&Utc);
            let alert = Alert {
                alert_id: AlertId::parse(&format!("al-emu-{i:04}")).unwrap(),
                trial_id: common::trial_id(),
                patient_id: common::patient_id(i * 3),
                site_id: common::site_id(i % 3),
                level: levels[i % 3],
                reason: AlertReason::News2 { score: 7, components: vec![] },
                created_at,
                correlation_id: None,
            };
            // 1 in 6 failed, 1 in 6 left pending, the rest delivered; every other delivered one acknowledged.
            let (status, ack) = match i % 6 {
                0 => (AlertStatus::Failed, None),
                1 => (AlertStatus::Pending, None),
                k if k % 2 == 0 => (AlertStatus::Delivered, Some(3 + (i as i64 * 7) % 50)),
                _ => (AlertStatus::Delivered, None),
            };
            (alert, status, ack)
        })
        .collect();
    for (_, status, ack) in &plans {
        if *status == AlertStatus::Delivered {
            delivered += 1;
        }
        if let Some(m) = ack {
            acknowledged += 1;
            ack_minutes.push(*m as f64);
        }
    }
    stream::iter(plans.iter())
        .map(|(alert, status, ack)| async move {
            let claim = retrying(|| store.claim(alert, alert.created_at, alert.created_at + Duration::seconds(30))).await?;
            assert!(matches!(claim, Claim::Acquired(_)));
            let t = common::trial_id();
            if *status != AlertStatus::Pending {
                let done_at = alert.created_at + Duration::seconds(2);
                let entry = audit(format!("alert/{}", alert.alert_id), "alert.delivered", done_at)
                    .with_detail("patientId", alert.patient_id.as_str());
                retrying(|| store.finish(&t, &alert.alert_id, *status, done_at, &entry, &[])).await?;
            }
            if let Some(m) = ack {
                let at = alert.created_at + Duration::minutes(*m);
                let by = Actor { role: "site_staff".into(), subject: Some("nurse-1".into()) };
                let entry = audit(format!("alert/{}", alert.alert_id), "alert.acknowledged", at)
                    .with_detail("patientId", alert.patient_id.as_str());
                retrying(|| store.acknowledge(&t, &alert.alert_id, &by, None, at, &entry, None, &[])).await?;
            }
            Ok::<_, trialwatch::ports::StorageError>(())
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    ack_minutes.sort_by(f64::total_cmp);

    // Independently of the report: everyone still enrolled is expected daily.
    let mut enrolled_per_site = [0u64; 3];
    for i in 0..PATIENTS {
        if !(0..WITHDRAWN_LATER).any(|w| w * 7 == i) {
            enrolled_per_site[i % 3] += 1;
        }
    }
    let days = period().days() as u64;
    let credited = per_site_day
        .iter()
        .map(|((site, _), n)| {
            let idx = (1..=3).position(|k| site.as_str() == format!("site-{k:03}")).unwrap();
            (*n).min(enrolled_per_site[idx])
        })
        .sum();
    Expected {
        enrolled: enrolled_per_site.iter().sum(),
        received: subs.len() as u64,
        expected: enrolled_per_site.iter().sum::<u64>() * days,
        credited,
        alerts: ALERTS as u64,
        delivered,
        acknowledged,
        ack_minutes,
    }
}

#[tokio::test]
async fn a_sponsor_downloads_the_report_of_30_days_of_real_writes_through_its_presigned_link() {
    // GIVEN fresh resources from template.yaml on the emulator
    let sdk = trialwatch_provision::emulator_sdk_config().await;
    let prefix = trialwatch_provision::unique_prefix("report");
    let provisioned = trialwatch_provision::provision_all(&sdk, &trialwatch_provision::template_path(), &prefix)
        .await
        .unwrap_or_else(|e| panic!("provisioning {prefix} on the emulator failed: {e} (run `make test`)"));
    let config = report_generator::Config::from_vars(&provisioned.function_env()).expect("report config");
    let aws = report_generator::AwsDeps::from_config(&config, &sdk);
    // The production adapters, with the clock of the sample event (26 Nov 2026).
    let deps: Deps<DynamoStore, S3ReportStore, FakeClock> =
        Deps { store: aws.store, reports: aws.reports, clock: common::clock(), anchoring: aws.anchoring, event_bus: aws.event_bus };

    // AND 3 sites, 200 patients, 1,500 submissions over 30 days and 60 alerts written through the ports
    let started = std::time::Instant::now();
    let want = seed(&deps.store).await;
    eprintln!("seeded in {:?}", started.elapsed());
    assert_eq!(want.received, (PATIENTS * 30 / EVERY_NTH_DAY) as u64);

    // WHEN the sponsor asks for the 30 days
    let body = format!(r#"{{"from":"{}","to":"{}"}}"#, period().from, period().to);
    let sponsor = [("custom:role", "sponsor"), ("custom:trial_ids", common::TRIAL), ("sub", "sponsor-7")];
    let started = std::time::Instant::now();
    let resp = handle_http(&deps, common::request(common::post_event(common::TRIAL, &body, &sponsor))).await;
    eprintln!("report generated in {:?}", started.elapsed());
    let status = resp.status().as_u16();
    let created: Value = serde_json::from_slice(resp.body()).unwrap();

    // THEN 201 with the figures of what was written
    assert_eq!(status, 201, "{created}");
    let s = &created["summary"];
    assert_eq!(s["sites"], 3);
    assert_eq!(s["patientsEnrolled"], want.enrolled);
    assert_eq!(s["submissionsReceived"], want.received);
    assert_eq!(s["submissionsExpected"], want.expected);
    let compliance = want.credited as f64 / want.expected as f64;
    assert!((s["compliance"].as_f64().unwrap() - compliance).abs() < 1e-9, "{s}");
    assert_eq!(s["alertsTotal"], want.alerts);
    assert_eq!(s["alertsDelivered"], want.delivered);
    assert_eq!(s["alertsAcknowledged"], want.acknowledged);
    let median = percentile(&want.ack_minutes, 0.5);
    let p90 = percentile(&want.ack_minutes, 0.9);
    assert_eq!(s["medianMinutesToAck"].as_f64(), median);

    // AND the PDF downloads through the presigned URL, without AWS credentials
    let url = created["url"].as_str().unwrap();
    let download = reqwest::get(url).await.expect("the presigned URL answers");
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(download.headers()["content-type"], "application/pdf");
    let pdf = download.bytes().await.unwrap();

    // AND it parses, has the cover, summary, charts and 3 table pages (30 days = 5 weekly blocks)
    let (pages, text) = common::pdf_text(&pdf);
    assert!(pages >= 5, "{pages} pages");
    assert_eq!(created["reportId"].as_str().map(|id| text.contains(id)), Some(true));
    for figure in [
        count(want.enrolled),
        count(want.received),
        count(want.expected),
        percent(Some(compliance)),
        count(want.alerts),
        minutes(median),
        minutes(p90),
        format!("Page {pages} of {pages}"),
        "北京协和医院".to_owned(),
    ] {
        assert!(text.contains(&figure), "{figure:?} is not in the PDF text");
    }

    // AND the object is encrypted with KMS and carries its metadata
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let key = format!("reports/{}/{}.pdf", common::TRIAL, created["reportId"].as_str().unwrap());
    let head = s3.head_object().bucket(&provisioned.resources.reports_bucket).key(&key).send().await.unwrap();
    assert_eq!(head.server_side_encryption().map(|e| e.as_str()), Some("aws:kms"));
    assert_eq!(head.metadata().and_then(|m| m.get("trial-id")).map(String::as_str), Some(common::TRIAL));

    // AND GET returns the metadata with a fresh link that works too
    let id = created["reportId"].as_str().unwrap();
    let resp = handle_http(&deps, common::request(common::get_event(common::TRIAL, id, &sponsor))).await;
    assert_eq!(resp.status().as_u16(), 200);
    let meta: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(meta["pages"], pages);
    assert_eq!(meta["bytes"], pdf.len());
    let again = reqwest::get(meta["url"].as_str().unwrap()).await.unwrap().bytes().await.unwrap();
    assert_eq!(again, pdf);

    // AND a trial id never seen is a 404, not an empty report
    let admin_claims = [("custom:role", "admin"), ("sub", "admin-1")];
    let resp = handle_http(&deps, common::request(common::post_event("tw-nothing", &body, &admin_claims))).await;
    assert_eq!(resp.status().as_u16(), 404);
}
