//! Fixtures shared by the in-memory tests, the benchmark and the example:
//! a trial with Chinese and Latin site names, patients spread over its sites,
//! day counters, alerts and NEWS2 states, seeded into the memory adapters.
#![allow(dead_code)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use report_generator::{Deps, Period};
use trialwatch::alert::{Alert, AlertReason, AlertRecord, AlertStatus};
use trialwatch::audit::Actor;
use trialwatch::clock::FakeClock;
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::memory::{MemoryReportStore, MemoryStore};
use trialwatch::news2::{News2Result, RiskLevel};
use trialwatch::ports::VitalsStore;
use trialwatch::submission::DailySiteCount;
use trialwatch::trial::{Trial, TrialDefinition};
use trialwatch::vitals_state::VitalsState;
use trialwatch::{AlertId, PatientId, SiteId, TrialId};

pub type MemoryDeps = Deps<MemoryStore, MemoryReportStore, FakeClock>;

pub const TRIAL: &str = "tw-demo";
pub const SITE_NAMES: [&str; 3] = ["北京协和医院", "Leeds General Infirmary", "Hospital Universitario La Paz"];

/// The trial of `events/report-post.json`: Shanghai time, a daily and a weekly questionnaire.
pub fn trial(sites: usize) -> Trial {
    let sites: Vec<serde_json::Value> = (0..sites)
        .map(|i| {
            let name = SITE_NAMES.get(i).map_or_else(|| format!("Site {:03} Regional Hospital", i + 1), |n| (*n).to_owned());
            serde_json::json!({"id": site_id(i).to_string(), "name": name})
        })
        .collect();
    let def: TrialDefinition = serde_json::from_value(serde_json::json!({
        "name": "心衰居家监测研究 HF-Home",
        "sites": sites,
        "questionnaires": [
            {"id": "kccq", "version": "1", "items": [{"linkId": "q1", "type": "integer", "min": 0, "max": 10}]},
            {"id": "eq5d", "version": "1", "items": [{"linkId": "q1", "type": "integer", "min": 0, "max": 10}]}
        ],
        "schedule": [{"questionnaireId": "kccq", "frequency": "daily"}, {"questionnaireId": "eq5d", "frequency": "weekly"}],
        "timezone": "Asia/Shanghai"
    }))
    .expect("fixture trial is valid");
    Trial { trial_id: trial_id(), definition: def, updated_at: "2026-10-01T00:00:00.000Z".into() }
}

pub fn trial_id() -> TrialId {
    TrialId::parse(TRIAL).unwrap()
}

pub fn site_id(i: usize) -> SiteId {
    SiteId::parse(&format!("site-{:03}", i + 1)).unwrap()
}

pub fn patient_id(i: usize) -> PatientId {
    PatientId::parse(&format!("P{i:06}")).unwrap()
}

/// The week of `events/report-post.json`: Monday 16 to Sunday 22 November 2026.
pub fn week() -> Period {
    Period { from: day("2026-11-16"), to: day("2026-11-22") }
}

pub fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// The clock of the event: Thursday 26 November 2026, 20:15 UTC.
pub fn clock() -> FakeClock {
    FakeClock::at("2026-11-26T20:15:00Z")
}

/// Reports record into the same table as the store, whose pending events a
/// bus that accepts nothing ([`trialwatch::domain_event::Unpublished`]) leaves in place.
pub fn deps() -> MemoryDeps {
    let store = MemoryStore::new();
    let reports = MemoryReportStore::on(&store);
    Deps { store, reports, clock: clock(), anchoring: anchoring(), event_bus: std::sync::Arc::new(trialwatch::domain_event::Unpublished) }
}

/// `deps()` with `bus` as the event bus.
pub fn deps_with_bus(bus: std::sync::Arc<trialwatch::memory::MemoryEventBus>) -> MemoryDeps {
    MemoryDeps { event_bus: bus, ..deps() }
}

/// Anchoring in memory (the report tests never anchor).
pub fn anchoring() -> report_generator::Anchoring {
    report_generator::Anchoring {
        heads: std::sync::Arc::new(trialwatch::memory::MemoryAuditTrail::default()),
        anchors: std::sync::Arc::new(trialwatch::memory::MemoryAnchors::default()),
        retention_days: 1,
    }
}

/// What the fixture seeded, to check the report against.
#[derive(Debug, Default)]
pub struct Seeded {
    pub enrolled: u64,
    pub submissions: u64,
    pub alerts: u64,
}

/// Status of patient `i`: every 20th withdrawn, every 25th completed.
pub fn status_of(i: usize) -> EnrolmentStatus {
    if i % 20 == 19 {
        EnrolmentStatus::Withdrawn
    } else if i % 25 == 24 {
        EnrolmentStatus::Completed
    } else {
        EnrolmentStatus::Enrolled
    }
}

/// Seeds `patients` over `sites` sites, counters for every day of `period`,
/// one alert per 10 patients (at most 400) and a NEWS2 state for at most 5,000
/// patients. Deterministic, so the figures are the same every run.
pub async fn seed(store: &MemoryStore, sites: usize, patients: usize, period: Period) -> Seeded {
    let t = trial(sites);
    store.seed_trial(t.clone());
    let mut seeded = Seeded::default();
    let mut enrolled_at = vec![0u64; sites];
    for i in 0..patients {
        let status = status_of(i);
        if status == EnrolmentStatus::Enrolled {
            enrolled_at[i % sites] += 1;
            seeded.enrolled += 1;
        }
        store.seed_enrolment(Enrolment {
            trial_id: trial_id(),
            patient_id: patient_id(i),
            site_id: site_id(i % sites),
            status,
            hypercapnic: false,
            enrolled_at: "2026-10-01T00:00:00.000Z".into(),
            updated_at: "2026-10-01T00:00:00.000Z".into(),
            submission_count: 0,
            last_submission_at: None,
            withdrawn_at: None,
            audit_head: Default::default(),
        });
    }
    for (di, d) in period.each_day().enumerate() {
        for (s, &enrolled) in enrolled_at.iter().enumerate() {
            // Compliance dips mid-week and is lower at later sites.
            let dip = [0.0, 0.02, 0.04, 0.06, 0.04, 0.02, 0.0][di % 7];
            let rate = 0.96 - 0.07 * (s % 4) as f64 - dip;
            let kccq = (enrolled as f64 * rate).round() as u64;
            let mut counts = vec![("kccq", kccq)];
            if d.format("%u").to_string() == "1" {
                counts.push(("eq5d", (enrolled as f64 * (rate - 0.05)).round() as u64));
            }
            for (q, n) in counts {
                if n > 0 {
                    store.seed_daily_count(
                        &trial_id(),
                        DailySiteCount { day: d.to_string(), site_id: site_id(s), questionnaire_id: q.parse().unwrap(), submissions: n },
                    );
                    seeded.submissions += n;
                }
            }
        }
    }
    let days = period.days() as usize;
    let tz = t.definition.tz();
    let levels = [RiskLevel::LowMedium, RiskLevel::Medium, RiskLevel::High, RiskLevel::Medium];
    for i in 0..(patients / 10).min(400) {
        let d = period.from + Duration::days((i % days) as i64);
        let local = d.and_hms_opt(8 + (i % 12) as u32, (i * 7 % 60) as u32, 0).unwrap();
        let created_at = tz.from_local_datetime(&local).single().unwrap().with_timezone(&Utc);
        store.seed_alert(alert_record(i, levels[i % 4], created_at));
        seeded.alerts += 1;
    }
    for i in 0..patients.min(5_000) {
        let level = match i % 10 {
            0..=5 => RiskLevel::Low,
            6 | 7 => RiskLevel::LowMedium,
            8 => RiskLevel::Medium,
            _ => RiskLevel::High,
        };
        let mut state = VitalsState::new(trial_id(), patient_id(i));
        state.version = 1;
        state.news2 = Some(News2Result { score: 0, risk_level: level, components: vec![], missing: vec![], observed_at: None });
        store.put_state(None, &state, &[], &[]).await.unwrap();
    }
    store.requests.reset();
    seeded
}

/// Alert `i`: two in five acknowledged (after 4-43 minutes), one in five
/// delivered, one pending, one failed.
pub fn alert_record(i: usize, level: RiskLevel, created_at: DateTime<Utc>) -> AlertRecord {
    let status = match i % 5 {
        0 | 1 => AlertStatus::Acknowledged,
        2 => AlertStatus::Delivered,
        3 => AlertStatus::Pending,
        _ => AlertStatus::Failed,
    };
    let delivered = matches!(status, AlertStatus::Acknowledged | AlertStatus::Delivered);
    AlertRecord {
        alert: Alert {
            alert_id: AlertId::parse(&format!("al-{i:05}")).unwrap(),
            trial_id: trial_id(),
            patient_id: patient_id(i * 10),
            site_id: site_id(0),
            level,
            reason: AlertReason::News2 { score: 6, components: vec![] },
            created_at,
            correlation_id: None,
        },
        status,
        attempts: vec![],
        lease_until: None,
        delivered_at: delivered.then(|| created_at + Duration::seconds(3)),
        acknowledged_at: (status == AlertStatus::Acknowledged).then(|| created_at + Duration::minutes(4 + (i % 40) as i64)),
        acknowledged_by: (status == AlertStatus::Acknowledged)
            .then(|| Actor { role: "site_staff".into(), subject: Some("nurse-1".into()) }),
        ack_note: None,
    }
}

/// The API Gateway event of `events/report-post.json`, with its path, body
/// and claims adjusted.
pub fn post_event(trial: &str, body: &str, claims: &[(&str, &str)]) -> serde_json::Value {
    let mut e: serde_json::Value = serde_json::from_str(include_str!("../../../../events/report-post.json")).unwrap();
    let path = format!("/v1/trials/{trial}/reports");
    e["rawPath"] = path.clone().into();
    e["requestContext"]["http"]["path"] = path.into();
    e["pathParameters"]["trialId"] = trial.into();
    e["body"] = body.into();
    if !claims.is_empty() {
        let c: serde_json::Map<String, serde_json::Value> = claims.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect();
        e["requestContext"]["authorizer"]["jwt"]["claims"] = c.into();
    }
    e
}

pub fn get_event(trial: &str, report: &str, claims: &[(&str, &str)]) -> serde_json::Value {
    let mut e = post_event(trial, "", claims);
    let path = format!("/v1/trials/{trial}/reports/{report}");
    e["rawPath"] = path.clone().into();
    e["requestContext"]["http"]["path"] = path.into();
    e["requestContext"]["http"]["method"] = "GET".into();
    // API Gateway names the route twice, at the top and in the request context
    // (the one `lambda_http` keeps); both change together.
    e["routeKey"] = "GET /v1/trials/{trialId}/reports/{reportId}".into();
    e["requestContext"]["routeKey"] = e["routeKey"].clone();
    e["pathParameters"]["reportId"] = report.into();
    e.as_object_mut().unwrap().remove("body");
    e
}

pub fn request(event: serde_json::Value) -> lambda_http::Request {
    let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
    lambda_http::Request::from(lambda)
}

/// The report parsed by lopdf, ready for `extract_text`.
///
/// krilla writes each ToUnicode CMap as a complete PostScript CMap resource,
/// starting with DSC comments (`%!PS-Adobe-3.0 Resource-CMap`, `%%Title: ...`).
/// lopdf's CMap parser (0.34 and later alike) rejects a CMap that does not
/// start at `/CIDInit`, so comment lines are dropped from those streams
/// before extraction. Nothing else changes; poppler reads the file as stored.
pub fn load_pdf(pdf: &[u8]) -> lopdf::Document {
    let mut doc = lopdf::Document::load_mem(pdf).expect("the report is a PDF lopdf can parse");
    for obj in doc.objects.values_mut() {
        if let lopdf::Object::Stream(stream) = obj {
            let Ok(content) = stream.decompressed_content() else { continue };
            if content.starts_with(b"%!PS-Adobe-3.0 Resource-CMap") {
                let cleaned: Vec<u8> = content
                    .split(|b| *b == b'\n')
                    .filter(|line| !line.starts_with(b"%"))
                    .flat_map(|line| line.iter().copied().chain([b'\n']))
                    .collect();
                stream.set_plain_content(cleaned);
            }
        }
    }
    doc
}

/// Page count and all text lopdf extracts from every page.
pub fn pdf_text(pdf: &[u8]) -> (u32, String) {
    let doc = load_pdf(pdf);
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let text = doc.extract_text(&pages).expect("text is extractable");
    (pages.len() as u32, text)
}
