//! Specifications of the whole handler, driven through `handle` with the
//! in-memory adapters and a fake clock. Requests are real API Gateway v2
//! events (the same shape as `events/`), converted by lambda_http.

mod audit;
mod authz;
mod fuzz;
mod reads;
mod routes;
mod submissions;
mod vitals;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use trialwatch::alert::{Alert, AlertReason, AlertRecord, AlertStatus};
use trialwatch::clock::FakeClock;
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::memory::{MemoryQueue, MemoryStore};
use trialwatch::news2::RiskLevel;
use trialwatch::trial::{Trial, TrialDefinition};
use trialwatch::{AlertId, PatientId, SiteId, TrialId};

use crate::Deps;

pub const NOW: &str = "2026-11-26T20:00:00Z";
pub const WEBHOOK_SECRET: &str = "whsec_demo_0123456789abcdef";

pub type TestDeps = Deps<MemoryStore, MemoryQueue, MemoryQueue, Arc<FakeClock>>;

pub struct World {
    pub deps: TestDeps,
    pub store: Arc<MemoryStore>,
    pub queue: Arc<MemoryQueue>,
    pub clock: Arc<FakeClock>,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: lambda_http::http::HeaderMap,
}

/// The trial definition from `events/epro-put-trial.json`, so the fixture and
/// the sample event cannot drift apart.
pub fn trial_definition() -> TrialDefinition {
    let event: Value = serde_json::from_str(include_str!("../../../../events/epro-put-trial.json")).unwrap();
    serde_json::from_str(event["body"].as_str().unwrap()).unwrap()
}

pub fn tid(s: &str) -> TrialId {
    TrialId::parse(s).unwrap()
}
pub fn pid(s: &str) -> PatientId {
    PatientId::parse(s).unwrap()
}
pub fn sid(s: &str) -> SiteId {
    SiteId::parse(s).unwrap()
}

pub fn enrolment(patient: &str, site: &str, status: EnrolmentStatus) -> Enrolment {
    Enrolment {
        trial_id: tid("tw-demo"),
        patient_id: pid(patient),
        site_id: sid(site),
        status,
        hypercapnic: false,
        enrolled_at: "2026-11-01T09:00:00.000Z".into(),
        updated_at: "2026-11-01T09:00:00.000Z".into(),
        submission_count: 0,
        last_submission_at: None,
        withdrawn_at: None,
        audit_head: Default::default(),
    }
}

pub fn alert_record(id: &str, patient: &str, site: &str, status: AlertStatus) -> AlertRecord {
    AlertRecord {
        alert: Alert {
            alert_id: AlertId::parse(id).unwrap(),
            trial_id: tid("tw-demo"),
            patient_id: pid(patient),
            site_id: sid(site),
            level: RiskLevel::Medium,
            reason: AlertReason::News2 { score: 5, components: vec![] },
            created_at: "2026-11-26T19:00:00Z".parse().unwrap(),
            correlation_id: None,
        },
        status,
        attempts: vec![],
        lease_until: None,
        delivered_at: None,
        acknowledged_at: None,
        acknowledged_by: None,
        ack_note: None,
    }
}

/// GIVEN trial `tw-demo` (sites site-leeds and site-york, questionnaire kccq v1,
/// PRO rule breathless >= 8 -> medium), P0001 enrolled at site-leeds, P0002
/// enrolled at site-york, P0003 withdrawn at site-leeds.
pub fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    let queue = Arc::new(MemoryQueue::new());
    let clock = Arc::new(FakeClock::at(NOW));
    store.seed_trial(Trial { trial_id: tid("tw-demo"), definition: trial_definition(), updated_at: "2026-11-01T09:00:00.000Z".into() });
    store.seed_enrolment(enrolment("P0001", "site-leeds", EnrolmentStatus::Enrolled));
    store.seed_enrolment(enrolment("P0002", "site-york", EnrolmentStatus::Enrolled));
    store.seed_enrolment(enrolment("P0003", "site-leeds", EnrolmentStatus::Withdrawn));
    let deps = Deps::from_shared(store.clone(), queue.clone(), queue.clone(), clock.clone(), Duration::from_secs(300));
    World { deps, store, queue, clock }
}

pub fn patient(p: &str) -> Value {
    json!({"sub": "u-patient", "role": "patient", "patient_id": p, "trial_ids": "[\"tw-demo\"]"})
}
pub fn staff(sites: &str) -> Value {
    json!({"sub": "u-staff", "role": "site_staff", "site_ids": sites, "trial_ids": "tw-demo"})
}
pub fn sponsor() -> Value {
    json!({"sub": "u-sponsor", "role": "sponsor", "trial_ids": "tw-demo"})
}
pub fn admin() -> Value {
    json!({"sub": "u-admin", "role": "admin"})
}

/// An API Gateway v2 event, converted exactly as in Lambda. It is routed as
/// API Gateway routes it (route key and decoded path parameters, by the edge
/// kit's matcher over this function's routes); a request no route takes is
/// sent as a `$default` (catch-all) integration would deliver it.
pub fn request(method: &str, path_and_query: &str, claims: Option<Value>, body: Option<(&str, Vec<u8>)>) -> lambda_http::Request {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let (route_key, path_parameters) = match crate::routes::routes().find(method, path) {
        Ok(m) => (m.key.to_string(), json!(m.params)),
        Err(_) => ("$default".to_owned(), Value::Null),
    };
    let mut headers = json!({"host": "api.trialwatch.example"});
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "pathParameters": path_parameters,
        "rawPath": path,
        "rawQueryString": query,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.trialwatch.example", "requestId": "r",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "t"},
            "stage": "$default", "timeEpoch": 0, "routeKey": route_key
        },
        "isBase64Encoded": false
    });
    if let Some(c) = claims {
        event["requestContext"]["authorizer"] = json!({"jwt": {"claims": c, "scopes": null}});
    }
    if let Some((content_type, bytes)) = body {
        headers["content-type"] = json!(content_type);
        match String::from_utf8(bytes) {
            Ok(text) => event["body"] = json!(text),
            Err(e) => {
                use base64::Engine;
                event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(e.into_bytes()));
                event["isBase64Encoded"] = json!(true);
            }
        }
    }
    event["headers"] = headers;
    let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
    lambda_http::Request::from(lambda)
}

impl World {
    pub async fn call(&self, method: &str, path: &str, claims: Option<Value>, body: Option<Value>) -> Reply {
        let body = body.map(|b| ("application/json", serde_json::to_vec(&b).unwrap()));
        self.send(request(method, path, claims, body)).await
    }

    pub async fn call_fhir(&self, method: &str, path: &str, claims: Option<Value>, body: Value) -> Reply {
        self.send(request(method, path, claims, Some(("application/fhir+json", serde_json::to_vec(&body).unwrap())))).await
    }

    pub async fn send(&self, req: lambda_http::Request) -> Reply {
        let r = crate::handle(&self.deps, req).await;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = String::from_utf8(r.body().to_vec()).unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        if status >= 400 {
            assert_eq!(content_type, "application/problem+json", "errors are problem+json: {text}");
        }
        assert!(!text.contains(WEBHOOK_SECRET), "the webhook secret leaked in a response");
        Reply { status, body, text, headers }
    }
}

/// A valid native submission of kccq v1 with the given breathlessness score.
pub fn submission(id: &str, breathless: i64) -> Value {
    json!({
        "submissionId": id, "questionnaireId": "kccq", "questionnaireVersion": "1",
        "completedAt": "2026-11-26T19:00:00Z",
        "answers": [{"linkId": "breathless", "value": breathless}, {"linkId": "swelling", "value": 1},
                    {"linkId": "weight", "value": 81.4}, {"linkId": "dizzy", "value": false}, {"linkId": "notes", "value": "ok"}]
    })
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub const SUBS: &str = "/v1/trials/tw-demo/patients/P0001/submissions";

/// The status and problem type (after [`trialwatch::edge::http::PROBLEM_BASE`]) a
/// use case's error gets at the HTTP edge.
pub fn problem_of(e: impl Into<trialwatch::edge::http::HttpError>) -> (u16, String) {
    let r = trialwatch::edge::http::respond::problem(&e.into());
    let body: Value = serde_json::from_slice(r.body()).unwrap();
    (r.status().as_u16(), body["type"].as_str().unwrap().trim_start_matches(trialwatch::edge::http::PROBLEM_BASE).to_owned())
}
