//! alert-dispatcher against the emulator: the real DynamoStore, SNS notifier and
//! SQS queue (with its template redrive policy), and a real HTTP receiver on
//! 127.0.0.1 that verifies every signature. A small poller plays Lambda's SQS
//! event source: receive, `handle`, delete what did not fail.
//!
//! Needs `AWS_ENDPOINT_URL` (run with `make test`); without it the tests panic.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alert_dispatcher::settings::{Backoff, BreakerSettings, DispatchSettings};
use alert_dispatcher::signature::{ALERT_ID_HEADER, SIGNATURE_HEADER};
use alert_dispatcher::{handle, AwsDeps, Config};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use lambda_runtime::{Context, LambdaEvent};
use sha2::Sha256;
use trialwatch::alert::{Alert, AlertReason, AlertRecord, AlertStatus, AttemptOutcome, Channel};
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::enrolment::Enrolment;
use trialwatch::news2::RiskLevel;
use trialwatch::ports::{AlertInbox, EnrolmentStore, TrialRegistry};
use trialwatch::trial::Trial;
use trialwatch::{AlertId, PatientId, SiteId, TrialId};
use trialwatch_provision::{emulator_sdk_config, provision_all, template_path, unique_prefix, Provisioned};

const SECRET: &str = "whsec-integration-0123456789";
/// How far a receiver lets `t` drift from its own clock (replay protection).
const TOLERANCE_SECONDS: i64 = 300;

// ------------------------------------------------------------ the receiver

#[derive(Debug, Clone)]
struct Hit {
    alert_id: String,
    signature_valid: bool,
    answered: u16,
}

/// A site's webhook endpoint: verifies the signature as the README tells sites to
/// sites to, answers from a script of statuses (then `then`), keeps every hit.
#[derive(Clone)]
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    async fn start(script: Vec<u16>, then: u16) -> Receiver {
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (h, s) = (hits.clone(), script.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (hits, script) = (h.clone(), s.clone());
                async move {
                    let signature_valid = verify(&headers, &body);
                    let alert_id = headers.get(ALERT_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    let answered = if signature_valid {
                        script.lock().unwrap().pop_front().unwrap_or(then)
                    } else {
                        StatusCode::UNAUTHORIZED.as_u16()
                    };
                    hits.lock().unwrap().push(Hit { alert_id, signature_valid, answered });
                    StatusCode::from_u16(answered).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, hits }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn accepted(&self) -> usize {
        self.hits().iter().filter(|h| (200..300).contains(&h.answered)).count()
    }
}

/// The check a site runs: HMAC-SHA256 over "<t>.<raw body>" compared in
/// constant time, `t` within the tolerance, and the id header matching the body.
fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(header) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else { return false };
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    if (chrono::Utc::now().timestamp() - t).abs() > TOLERANCE_SECONDS {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    if mac.verify_slice(&v1).is_err() {
        return false;
    }
    let id_header = headers.get(ALERT_ID_HEADER).and_then(|v| v.to_str().ok());
    let body_id = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| v["alertId"].as_str().map(str::to_owned));
    id_header.is_some() && id_header == body_id.as_deref()
}

// ------------------------------------------------------------- the stack

struct Stack {
    provisioned: Provisioned,
    deps: AwsDeps,
    sqs: aws_sdk_sqs::Client,
    sns: aws_sdk_sns::Client,
}

/// Short leases and backoff so redeliveries happen within seconds; a breaker
/// threshold above maxReceiveCount so every receive really calls the site.
fn fast_settings() -> DispatchSettings {
    DispatchSettings {
        webhook_timeout: Duration::from_secs(1),
        lease: Duration::from_secs(3),
        breaker: BreakerSettings { threshold: 100, cooloff: Duration::from_secs(60) },
        backoff: Backoff { base_seconds: 1, max_seconds: 1 },
        ..DispatchSettings::default()
    }
}

impl Stack {
    async fn new(label: &str) -> Stack {
        let sdk = emulator_sdk_config().await;
        let provisioned =
            provision_all(&sdk, &template_path(), &unique_prefix(label)).await.expect("provisioning the template on the emulator");
        // The receiver is on http://127.0.0.1: the local stack's egress allowance, as the local runner sets it.
        let config = Config {
            dispatch: fast_settings(),
            egress: trialwatch::egress::EgressPolicy::LOCAL,
            ..Config::from_vars(&provisioned.resources.env()).expect("dispatcher config")
        };
        let deps = AwsDeps::from_config(&config, &sdk);
        Stack { deps, sqs: aws_sdk_sqs::Client::new(&sdk), sns: aws_sdk_sns::Client::new(&sdk), provisioned }
    }

    fn queue_url(&self) -> &str {
        &self.provisioned.resources.alert_queue_url
    }

    async fn seed_trial(&self, id: &str, webhook_url: Option<&str>) {
        self.seed_trial_with_topic(id, webhook_url, None).await;
    }

    async fn seed_trial_with_topic(&self, id: &str, webhook_url: Option<&str>, topic_arn: Option<&str>) {
        let mut alerting = serde_json::json!({});
        if let Some(url) = webhook_url {
            alerting["webhook"] = serde_json::json!({"url": url, "secret": SECRET});
        }
        if let Some(arn) = topic_arn {
            alerting["snsTopicArn"] = serde_json::json!(arn);
        }
        let trial: Trial = serde_json::from_value(serde_json::json!({
            "trialId": id, "updatedAt": "2026-11-26T20:00:00.000Z", "name": "Heart failure at home",
            "sites": [{"id": "s1", "name": "Leeds"}], "alerting": alerting
        }))
        .unwrap();
        let audit = AuditEntry::new(trial.trial_id.clone(), "trial", "trial.created", Actor::system("test"), chrono::Utc::now());
        self.deps.store.put_trial(&trial, &audit).await.unwrap();
    }

    /// Enrols the alert's patient: the enrolment holds the head of the
    /// patient's audit chain, which the dispatcher's delivered/failed entry extends.
    async fn enrol(&self, alert: &Alert) {
        let enrolment: Enrolment = serde_json::from_value(serde_json::json!({
            "trialId": alert.trial_id, "patientId": alert.patient_id, "siteId": alert.site_id, "status": "enrolled",
            "enrolledAt": "2026-11-01T00:00:00.000Z", "updatedAt": "2026-11-01T00:00:00.000Z"
        }))
        .unwrap();
        let audit = AuditEntry::new(
            alert.trial_id.clone(),
            format!("patient/{}", alert.patient_id),
            "enrolment.created",
            Actor::system("test"),
            chrono::Utc::now(),
        );
        self.deps.store.put_enrolment(&enrolment, &audit, &[]).await.unwrap();
    }

    async fn send(&self, alert: &Alert) {
        self.sqs.send_message().queue_url(self.queue_url()).message_body(serde_json::to_string(alert).unwrap()).send().await.unwrap();
    }

    /// One round of Lambda's event source: receive up to `batch`, handle, delete
    /// the records not reported as failures. Returns how many were received.
    async fn poll_once(&self, batch: i32) -> usize {
        let received = self
            .sqs
            .receive_message()
            .queue_url(self.queue_url())
            .max_number_of_messages(batch)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap();
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return 0;
        }
        let mut event = SqsEvent::default();
        for m in &messages {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            if let Some(count) = m.attributes.as_ref().and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount)) {
                record.attributes.insert("ApproximateReceiveCount".into(), count.clone());
            }
            event.records.push(record);
        }
        let response = handle(&self.deps, LambdaEvent::new(event, Context::default())).await.unwrap();
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        for m in &messages {
            if !failed.contains(&m.message_id.as_deref().unwrap_or_default()) {
                self.sqs
                    .delete_message()
                    .queue_url(self.queue_url())
                    .receipt_handle(m.receipt_handle.clone().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        messages.len()
    }

    /// Polls in batches of up to `batch` until the queue stays empty for
    /// `quiet` consecutive rounds; fails the test after `deadline`.
    async fn drain(&self, batch: i32, quiet: usize, deadline: Duration) {
        let start = Instant::now();
        let mut empty_rounds = 0;
        while empty_rounds < quiet {
            assert!(start.elapsed() < deadline, "the alert queue did not drain within {deadline:?}");
            empty_rounds = if self.poll_once(batch).await == 0 { empty_rounds + 1 } else { 0 };
        }
    }

    async fn record(&self, alert: &Alert) -> AlertRecord {
        self.deps.store.get_alert(&alert.trial_id, &alert.alert_id).await.unwrap().expect("the alert is recorded")
    }

    /// A queue subscribed to the alert topic with raw delivery: what an SNS
    /// subscriber receives, body and attributes as published.
    async fn subscribe_probe(&self) -> String {
        let name = format!("{}-sns-probe", self.provisioned.prefix);
        let url = self.sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
        let arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap();
        self.sns
            .subscribe()
            .topic_arn(&self.provisioned.resources.alert_topic_arn)
            .protocol("sqs")
            .endpoint(arn)
            .attributes("RawMessageDelivery", "true")
            .send()
            .await
            .unwrap();
        url
    }

    /// Every message currently in `url` (removing them).
    async fn take_all(&self, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        let mut all = Vec::new();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .send()
                .await
                .unwrap()
                .messages
                .unwrap_or_default();
            if got.is_empty() {
                return all;
            }
            for m in &got {
                self.sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle.clone().unwrap()).send().await.unwrap();
            }
            all.extend(got);
        }
    }
}

fn alert(trial: &str, patient: &str) -> Alert {
    let (t, p) = (TrialId::parse(trial).unwrap(), PatientId::parse(patient).unwrap());
    Alert {
        alert_id: AlertId::for_escalation(&t, &p, RiskLevel::High, 492_080),
        trial_id: t,
        patient_id: p,
        site_id: SiteId::parse("s1").unwrap(),
        level: RiskLevel::High,
        reason: AlertReason::News2 { score: 8, components: vec![] },
        created_at: chrono::Utc::now(),
        correlation_id: None,
    }
}

fn on(record: &AlertRecord, channel: Channel) -> Vec<(AttemptOutcome, Option<u16>)> {
    record.attempts.iter().filter(|a| a.channel == channel).map(|a| (a.outcome, a.http_status)).collect()
}

// ------------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_sent_three_times_reaches_the_site_and_the_topic_exactly_once() {
    // GIVEN a trial whose site verifies signatures, and a subscriber on the alert topic
    let stack = Stack::new("dispatch-once").await;
    let site = Receiver::start(vec![], 200).await;
    stack.seed_trial("t-once", Some(&site.url)).await;
    let probe = stack.subscribe_probe().await;
    let a = alert("t-once", "p-1");
    stack.enrol(&a).await;
    // WHEN the same alert is on the queue three times (at-least-once upstream)
    // and each copy is handled in turn. One per batch: moto serves requests on
    // threads without locking its tables, so two conditional writes racing on
    // one item can both pass there (DynamoDB serialises them). Concurrent
    // duplicates are covered by the unit tests' atomic in-memory store.
    for _ in 0..3 {
        stack.send(&a).await;
    }
    stack.drain(1, 2, Duration::from_secs(60)).await;
    // THEN the site got one correctly signed POST
    let hits = stack_hits_for(&site, &a);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(hits[0].signature_valid);
    // AND the topic carried it once
    assert_eq!(stack.take_all(&probe).await.len(), 1);
    // AND the record says delivered, with one attempt per channel
    let rec = stack.record(&a).await;
    assert_eq!(rec.status, AlertStatus::Delivered);
    assert_eq!(on(&rec, Channel::Webhook), vec![(AttemptOutcome::Delivered, Some(200))]);
    assert_eq!(on(&rec, Channel::Sns), vec![(AttemptOutcome::Delivered, None)]);
}

fn stack_hits_for(site: &Receiver, a: &Alert) -> Vec<Hit> {
    site.hits().into_iter().filter(|h| h.alert_id == a.alert_id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_that_fails_twice_gets_the_alert_once_it_recovers() {
    // GIVEN a site that answers 503, then 500, then 200
    let stack = Stack::new("dispatch-recover").await;
    let site = Receiver::start(vec![503, 500], 200).await;
    stack.seed_trial("t-recover", Some(&site.url)).await;
    let a = alert("t-recover", "p-2");
    stack.enrol(&a).await;
    // WHEN the alert is queued and the event source keeps polling
    stack.send(&a).await;
    stack.drain(10, 2, Duration::from_secs(60)).await;
    // THEN the site saw three signed POSTs and accepted exactly one
    let hits = site.hits();
    assert_eq!(hits.iter().map(|h| h.answered).collect::<Vec<_>>(), vec![503, 500, 200]);
    assert!(hits.iter().all(|h| h.signature_valid));
    assert_eq!(site.accepted(), 1);
    // AND every attempt is recorded, while SNS was published only once
    let rec = stack.record(&a).await;
    assert_eq!(rec.status, AlertStatus::Delivered);
    assert_eq!(
        on(&rec, Channel::Webhook),
        vec![(AttemptOutcome::Retryable, Some(503)), (AttemptOutcome::Retryable, Some(500)), (AttemptOutcome::Delivered, Some(200))]
    );
    assert_eq!(on(&rec, Channel::Sns), vec![(AttemptOutcome::Delivered, None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_that_always_fails_sends_the_alert_to_the_dlq_with_every_attempt_recorded() {
    // GIVEN a site that always answers 500
    let stack = Stack::new("dispatch-dlq").await;
    let site = Receiver::start(vec![], 500).await;
    stack.seed_trial("t-dlq", Some(&site.url)).await;
    let dead_letter = stack.provisioned.dead_letters.get("AlertQueue").expect("AlertQueue has a redrive policy").clone();
    let a = alert("t-dlq", "p-3");
    stack.enrol(&a).await;
    // WHEN the event source polls until SQS gives up on the message
    stack.send(&a).await;
    stack.drain(10, 3, Duration::from_secs(120)).await;
    // THEN it waits in the AlertDLQ, unchanged
    let dlq = stack.take_all(&dead_letter.url).await;
    assert_eq!(dlq.len(), 1);
    assert_eq!(serde_json::from_str::<Alert>(dlq[0].body.as_deref().unwrap()).unwrap(), a);
    // AND the site was called once per receive, all signed
    let receives = dead_letter.max_receive_count as usize;
    assert_eq!(site.hits().len(), receives);
    assert!(site.hits().iter().all(|h| h.signature_valid));
    // AND the record holds every attempt, still pending for an operator's redrive
    let rec = stack.record(&a).await;
    assert_eq!(rec.status, AlertStatus::Pending);
    assert_eq!(on(&rec, Channel::Webhook), vec![(AttemptOutcome::Retryable, Some(500)); receives]);
    assert_eq!(on(&rec, Channel::Sns), vec![(AttemptOutcome::Delivered, None)], "SNS delivered once, never repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sns_publish_reaches_a_subscriber_with_level_and_trial_attributes() {
    // GIVEN a trial without a webhook and a subscriber on the alert topic
    let stack = Stack::new("dispatch-sns").await;
    stack.seed_trial("t-sns", None).await;
    let probe = stack.subscribe_probe().await;
    let a = alert("t-sns", "p-4");
    stack.enrol(&a).await;
    // WHEN its alert is dispatched
    stack.send(&a).await;
    stack.drain(10, 2, Duration::from_secs(60)).await;
    // THEN the subscriber receives a notice (ids, level, link) with filterable attributes
    let got = stack.take_all(&probe).await;
    assert_eq!(got.len(), 1);
    let notice: serde_json::Value = serde_json::from_str(got[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(notice["alertId"], a.alert_id.as_str());
    assert!(notice.get("reason").is_none(), "ids, level and link only: {notice}");
    let attrs = got[0].message_attributes.clone().unwrap_or_default();
    assert_eq!(attrs.get("level").and_then(|v| v.string_value.as_deref()), Some("high"));
    assert_eq!(attrs.get("trialId").and_then(|v| v.string_value.as_deref()), Some("t-sns"));
    assert_eq!(stack.record(&a).await.status, AlertStatus::Delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_trial_topic_fails_the_sns_channel_at_once_and_names_the_missing_topic() {
    // GIVEN a trial whose site answers 200 and whose own SNS topic has been deleted
    let stack = Stack::new("dispatch-topic-gone").await;
    let site = Receiver::start(vec![], 200).await;
    let gone = stack.sns.create_topic().name(format!("{}-gone", stack.provisioned.prefix)).send().await.unwrap().topic_arn.unwrap();
    stack.sns.delete_topic().topic_arn(&gone).send().await.unwrap();
    stack.seed_trial_with_topic("t-gone", Some(&site.url), Some(&gone)).await;
    let dead_letter = stack.provisioned.dead_letters.get("AlertQueue").expect("AlertQueue has a redrive policy").clone();
    let a = alert("t-gone", "p-5");
    stack.enrol(&a).await;
    // WHEN the alert is queued and the event source polls until the queue is empty
    stack.send(&a).await;
    stack.drain(10, 2, Duration::from_secs(60)).await;
    // THEN the site got it once, and SNS was tried once: a missing topic is permanent, not retried into the DLQ
    assert_eq!(site.accepted(), 1);
    let rec = stack.record(&a).await;
    let sns: Vec<(AttemptOutcome, Option<&str>)> =
        rec.attempts.iter().filter(|x| x.channel == Channel::Sns).map(|x| (x.outcome, x.detail.as_deref())).collect();
    assert_eq!(sns, vec![(AttemptOutcome::Permanent, Some("sns-topic-not-found"))]);
    assert_eq!(on(&rec, Channel::Webhook), vec![(AttemptOutcome::Delivered, Some(200))]);
    // AND the alert is settled as failed (a channel failed for good) instead of waiting in the DLQ
    assert_eq!(rec.status, AlertStatus::Failed);
    assert!(stack.take_all(&dead_letter.url).await.is_empty(), "nothing parked in the DLQ");
}
