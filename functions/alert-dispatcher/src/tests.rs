//! The handler's rules, driven through `handle` with in-memory adapters, a fake
//! HTTP sink and a fake clock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use tokio::sync::Notify;
use trialwatch::alert::{Alert, AlertReason, AlertRecord, AlertStatus, AttemptOutcome, Channel, Claim};
use trialwatch::clock::{Clock, FakeClock};
use trialwatch::memory::{MemoryNotifier, MemoryStore};
use trialwatch::news2::RiskLevel;
use trialwatch::ports::AlertDelivery;
use trialwatch::trial::Trial;
use trialwatch::{AlertId, PatientId, SiteId, TrialId};

use crate::settings::{BreakerSettings, DispatchSettings};
use crate::signature::{signature_header, ALERT_ID_HEADER, SIGNATURE_HEADER};
use crate::visibility::RecordingVisibility;
use crate::webhook::{WebhookResult, WebhookSender};
use crate::{handle, Deps};

const SECRET: &str = "whsec-0123456789abcdef";
const START: &str = "2026-11-26T20:00:00Z";

// ------------------------------------------------------------------ fakes

#[derive(Debug, Clone)]
struct Post {
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
}

impl Post {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An HTTP sink: answers each URL from a script (then 200), keeps every POST,
/// and can hold the first POST open until released.
#[derive(Default)]
struct FakeSink {
    script: Mutex<HashMap<String, VecDeque<WebhookResult>>>,
    posts: Mutex<Vec<Post>>,
    hold: Mutex<Option<(Arc<Notify>, Arc<Notify>)>>,
}

impl FakeSink {
    fn answer(&self, url: &str, results: impl IntoIterator<Item = WebhookResult>) {
        self.script.lock().unwrap().entry(url.to_owned()).or_default().extend(results);
    }
    fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }
    fn posts_to(&self, url: &str) -> usize {
        self.posts().iter().filter(|p| p.url == url).count()
    }
    /// The next POST signals `entered` and waits for `release`.
    fn hold_next(&self) -> (Arc<Notify>, Arc<Notify>) {
        let pair = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        *self.hold.lock().unwrap() = Some(pair.clone());
        pair
    }
}

#[async_trait]
impl WebhookSender for FakeSink {
    async fn post(&self, url: &str, headers: &[(String, String)], body: Vec<u8>, timeout: Duration) -> WebhookResult {
        if url.contains("/panic") {
            panic!("the sink blew up");
        }
        self.posts.lock().unwrap().push(Post { url: url.to_owned(), headers: headers.to_vec(), body, timeout });
        let hold = self.hold.lock().unwrap().take();
        if let Some((entered, release)) = hold {
            entered.notify_one();
            release.notified().await;
        }
        self.script.lock().unwrap().get_mut(url).and_then(VecDeque::pop_front).unwrap_or(WebhookResult::Status(200))
    }
}

type TestDeps = Deps<MemoryStore, MemoryNotifier, FakeSink, FakeClock>;

struct World {
    deps: TestDeps,
    visibility: Arc<RecordingVisibility>,
}

fn world_with(settings: DispatchSettings) -> World {
    let visibility = Arc::new(RecordingVisibility::new());
    let deps = Deps::new(
        Arc::new(MemoryStore::new()),
        MemoryNotifier::new(),
        FakeSink::default(),
        FakeClock::at(START),
        visibility.clone(),
        settings,
    );
    World { deps, visibility }
}

fn world() -> World {
    world_with(DispatchSettings::default())
}

fn hook_url(trial: &str) -> String {
    format!("https://{trial}.site.example/hook")
}

fn trial(id: &str, webhook: bool, topic: Option<&str>) -> Trial {
    let mut alerting = serde_json::json!({});
    if webhook {
        alerting["webhook"] = serde_json::json!({"url": hook_url(id), "secret": SECRET});
    }
    if let Some(t) = topic {
        alerting["snsTopicArn"] = serde_json::json!(t);
    }
    serde_json::from_value(serde_json::json!({
        "trialId": id, "updatedAt": START, "name": "Heart failure at home",
        "sites": [{"id": "s1", "name": "Leeds"}], "alerting": alerting
    }))
    .unwrap()
}

impl World {
    fn with_trial(self, id: &str, webhook: bool) -> Self {
        self.deps.store.seed_trial(trial(id, webhook, None));
        self
    }
    fn record(&self, a: &Alert) -> AlertRecord {
        self.deps.store.alert_records().into_iter().find(|r| r.alert.alert_id == a.alert_id).expect("alert record exists")
    }
    fn published(&self) -> usize {
        self.deps.notifier.published().len()
    }
    fn advance(&self, seconds: i64) {
        self.deps.clock.advance(chrono::Duration::seconds(seconds));
    }
    async fn deliver(&self, a: &Alert, message_id: &str, receive_count: u32) -> SqsBatchResponse {
        handle(&self.deps, event(vec![message(message_id, &body(a), receive_count)])).await.unwrap()
    }
}

fn alert(trial: &str, n: u32) -> Alert {
    let (t, p) = (TrialId::parse(trial).unwrap(), PatientId::parse(&format!("p{n}")).unwrap());
    Alert {
        alert_id: AlertId::for_escalation(&t, &p, RiskLevel::High, u64::from(n)),
        trial_id: t,
        patient_id: p,
        site_id: SiteId::parse("s1").unwrap(),
        level: RiskLevel::High,
        reason: AlertReason::News2 { score: 7, components: vec![] },
        created_at: START.parse().unwrap(),
        correlation_id: None,
    }
}

fn body(a: &Alert) -> String {
    serde_json::to_string(a).unwrap()
}

fn message(id: &str, body: &str, receive_count: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_owned());
    m.receipt_handle = Some(format!("rh-{id}-{receive_count}"));
    m.body = Some(body.to_owned());
    m.attributes.insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m
}

fn event(records: Vec<SqsMessage>) -> LambdaEvent<SqsEvent> {
    let mut e = SqsEvent::default();
    e.records = records;
    LambdaEvent::new(e, Context::default())
}

fn failed_ids(r: &SqsBatchResponse) -> Vec<&str> {
    r.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
}

fn attempts_on(r: &AlertRecord, channel: Channel) -> Vec<(AttemptOutcome, Option<u16>, Option<String>)> {
    r.attempts.iter().filter(|a| a.channel == channel).map(|a| (a.outcome, a.http_status, a.detail.clone())).collect()
}

// ------------------------------------------------------------ delivery

#[tokio::test]
async fn an_alert_is_posted_signed_and_published_then_recorded_delivered_and_audited() {
    // GIVEN a trial with a webhook
    let w = world().with_trial("t1", true);
    let a = alert("t1", 1);
    // WHEN its alert is handled
    let r = w.deliver(&a, "m1", 1).await;
    // THEN the message is acknowledged
    assert!(r.batch_item_failures.is_empty());
    // AND one POST carried the alert JSON, signed over exactly those bytes at the clock's time
    let posts = w.deps.webhook.posts();
    assert_eq!(posts.len(), 1);
    let p = &posts[0];
    assert_eq!(p.url, hook_url("t1"));
    assert_eq!(serde_json::from_slice::<Alert>(&p.body).unwrap(), a);
    let t = w.deps.clock.now().timestamp();
    assert_eq!(p.header(SIGNATURE_HEADER), Some(signature_header(SECRET.as_bytes(), t, &p.body).unwrap().as_str()));
    assert_eq!(p.header(ALERT_ID_HEADER), Some(a.alert_id.as_str()));
    assert_eq!(p.header("content-type"), Some("application/json"));
    assert_eq!(p.timeout, Duration::from_secs(5));
    // AND one SNS publish went to the default topic
    assert_eq!(w.deps.notifier.published(), vec![(None, a.clone())]);
    // AND the record is delivered with both attempts, and the transition audited
    let rec = w.record(&a);
    assert_eq!(rec.status, AlertStatus::Delivered);
    assert_eq!(attempts_on(&rec, Channel::Webhook), vec![(AttemptOutcome::Delivered, Some(200), None)]);
    assert_eq!(attempts_on(&rec, Channel::Sns), vec![(AttemptOutcome::Delivered, None, None)]);
    let audit = w.deps.store.audit_entries();
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].action.as_str(), audit[0].entity.clone()), ("alert.delivered", format!("alert/{}", a.alert_id)));
}

#[tokio::test]
async fn a_redelivered_alert_notifies_zero_more_times() {
    // GIVEN an alert already delivered
    let w = world().with_trial("t1", true);
    let a = alert("t1", 1);
    assert!(w.deliver(&a, "m1", 1).await.batch_item_failures.is_empty());
    // WHEN SQS delivers it again, twice, even under new message ids
    for (id, n) in [("m1", 2), ("m2", 1)] {
        let r = w.deliver(&a, id, n).await;
        // THEN each is acknowledged and nobody is notified again
        assert!(r.batch_item_failures.is_empty());
    }
    assert_eq!(w.deps.webhook.posts().len(), 1);
    assert_eq!(w.published(), 1);
    assert_eq!(w.record(&a).attempts.len(), 2, "no attempt recorded for a redelivery");
    assert_eq!(w.deps.store.audit_entries().len(), 1);
}

#[tokio::test]
async fn a_concurrent_duplicate_is_blocked_by_the_lease_and_comes_back_after_it() {
    // GIVEN a first delivery whose POST is still in flight
    let w = world().with_trial("t1", true);
    let a = alert("t1", 1);
    let (entered, release) = w.deps.webhook.hold_next();
    let (first, second) = tokio::join!(w.deliver(&a, "m1", 1), async {
        entered.notified().await;
        // WHEN a duplicate of the same alert is handled meanwhile
        let second = w.deliver(&a, "m1-dup", 1).await;
        release.notify_one();
        second
    });
    // THEN the duplicate is left for redelivery without a second POST or publish
    assert_eq!(failed_ids(&second), vec!["m1-dup"]);
    assert!(first.batch_item_failures.is_empty());
    assert_eq!(w.deps.webhook.posts().len(), 1);
    assert_eq!(w.published(), 1);
    // AND it is hidden until just after the lease (60 s) ends
    assert_eq!(w.visibility.calls(), vec![("rh-m1-dup-1".to_owned(), 61)]);
    // AND when it comes back, it is acknowledged without notifying
    assert!(w.deliver(&a, "m1-dup", 2).await.batch_item_failures.is_empty());
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (1, 1));
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    // GIVEN an invocation that claimed the alert and died before delivering
    let w = world().with_trial("t1", true);
    let a = alert("t1", 1);
    let now = w.deps.clock.now();
    let claim = w.deps.store.claim(&a, now, now + chrono::Duration::seconds(60)).await.unwrap();
    assert!(matches!(claim, Claim::Acquired(_)));
    // WHEN the redelivery arrives while the lease still runs THEN it waits
    w.advance(30);
    assert_eq!(failed_ids(&w.deliver(&a, "m1", 2).await), vec!["m1"]);
    assert_eq!(w.deps.webhook.posts().len(), 0);
    // WHEN it arrives after the lease expired THEN it takes over and delivers once
    w.advance(31);
    assert!(w.deliver(&a, "m1", 3).await.batch_item_failures.is_empty());
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (1, 1));
    assert_eq!(w.record(&a).status, AlertStatus::Delivered);
}

#[tokio::test]
async fn a_permanent_4xx_fails_the_alert_once_and_is_not_retried() {
    // GIVEN a site that answers 404
    let w = world().with_trial("t1", true);
    w.deps.webhook.answer(&hook_url("t1"), [WebhookResult::Status(404)]);
    let a = alert("t1", 1);
    // WHEN the alert is handled
    let r = w.deliver(&a, "m1", 1).await;
    // THEN the message is acknowledged (not retried forever), the alert failed and audited
    assert!(r.batch_item_failures.is_empty());
    let rec = w.record(&a);
    assert_eq!(rec.status, AlertStatus::Failed);
    assert_eq!(attempts_on(&rec, Channel::Webhook), vec![(AttemptOutcome::Permanent, Some(404), Some("http-404".into()))]);
    // AND SNS still carried the alert to the site's subscribers
    assert_eq!(w.published(), 1);
    let audit = w.deps.store.audit_entries();
    assert_eq!(audit[0].action, "alert.failed");
    assert_eq!(audit[0].details["failedChannels"], serde_json::json!(["webhook"]));
    // AND a redelivery changes nothing
    assert!(w.deliver(&a, "m1", 2).await.batch_item_failures.is_empty());
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (1, 1));
}

#[tokio::test]
async fn a_retryable_5xx_is_retried_and_only_the_webhook_is_redone() {
    // GIVEN a site that answers 503 once
    let w = world().with_trial("t1", true);
    w.deps.webhook.answer(&hook_url("t1"), [WebhookResult::Status(503)]);
    let a = alert("t1", 1);
    // WHEN handled THEN the record is left for SQS, the lease released, SNS delivered
    assert_eq!(failed_ids(&w.deliver(&a, "m1", 1).await), vec!["m1"]);
    let rec = w.record(&a);
    assert_eq!((rec.status, rec.lease_until), (AlertStatus::Pending, None));
    assert_eq!(attempts_on(&rec, Channel::Webhook), vec![(AttemptOutcome::Retryable, Some(503), Some("http-503".into()))]);
    // WHEN redelivered and the site recovered
    assert!(w.deliver(&a, "m1", 2).await.batch_item_failures.is_empty());
    // THEN the webhook got it, and SNS was not published twice
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (2, 1));
    let rec = w.record(&a);
    assert_eq!(rec.status, AlertStatus::Delivered);
    assert_eq!(rec.attempts.len(), 3);
}

#[tokio::test]
async fn timeouts_throttling_and_network_errors_are_retryable_too() {
    for (result, detail) in [
        (WebhookResult::Status(408), "http-408"),
        (WebhookResult::Status(429), "http-429"),
        (WebhookResult::Timeout, "timeout"),
        (WebhookResult::Network("connect"), "network-connect"),
    ] {
        let w = world().with_trial("t1", true);
        w.deps.webhook.answer(&hook_url("t1"), [result]);
        let a = alert("t1", 1);
        assert_eq!(failed_ids(&w.deliver(&a, "m1", 1).await), vec!["m1"], "{result:?}");
        let rec = w.record(&a);
        assert_eq!(rec.status, AlertStatus::Pending);
        assert_eq!(rec.attempts.iter().find(|x| x.channel == Channel::Webhook).unwrap().detail.as_deref(), Some(detail));
    }
}

#[tokio::test]
async fn when_sns_failed_after_the_webhook_succeeded_only_sns_is_retried() {
    // GIVEN SNS fails once
    let w = world().with_trial("t1", true);
    w.deps.notifier.fail_next(1);
    let a = alert("t1", 1);
    // WHEN handled twice
    assert_eq!(failed_ids(&w.deliver(&a, "m1", 1).await), vec!["m1"]);
    assert!(w.deliver(&a, "m1", 2).await.batch_item_failures.is_empty());
    // THEN the site got exactly one POST and SNS one publish
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (1, 1));
    let rec = w.record(&a);
    assert_eq!(rec.status, AlertStatus::Delivered);
    assert_eq!(
        attempts_on(&rec, Channel::Sns),
        vec![(AttemptOutcome::Retryable, None, Some("sns-unavailable".into())), (AttemptOutcome::Delivered, None, None)]
    );
}

#[tokio::test]
async fn a_trial_without_a_webhook_is_notified_through_its_own_topic_only() {
    // GIVEN a trial with no webhook and its own topic
    let w = world();
    let topic = "arn:aws:sns:us-east-1:000000000000:trial-t2";
    w.deps.store.seed_trial(trial("t2", false, Some(topic)));
    let a = alert("t2", 1);
    // WHEN its alert is handled THEN it is published there and delivered, without any POST
    assert!(w.deliver(&a, "m1", 1).await.batch_item_failures.is_empty());
    assert_eq!(w.deps.notifier.published(), vec![(Some(topic.to_owned()), a.clone())]);
    assert!(w.deps.webhook.posts().is_empty());
    assert_eq!(w.record(&a).status, AlertStatus::Delivered);
}

#[tokio::test]
async fn an_alert_of_an_unknown_trial_still_reaches_the_default_topic() {
    let w = world();
    let a = alert("t9", 1);
    assert!(w.deliver(&a, "m1", 1).await.batch_item_failures.is_empty());
    assert_eq!(w.deps.notifier.published(), vec![(None, a)]);
}

#[tokio::test]
async fn a_store_outage_while_claiming_is_retried_without_notifying() {
    let w = world().with_trial("t1", true);
    w.deps.store.fail_next("claim", 1);
    let a = alert("t1", 1);
    assert_eq!(failed_ids(&w.deliver(&a, "m1", 1).await), vec!["m1"]);
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (0, 0));
    assert!(w.deliver(&a, "m1", 2).await.batch_item_failures.is_empty());
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (1, 1));
}

#[tokio::test]
async fn a_failed_finish_is_retried_without_sending_again() {
    // GIVEN both channels deliver but the final status write fails once
    let w = world().with_trial("t1", true);
    w.deps.store.fail_next("finish", 1);
    let a = alert("t1", 1);
    assert_eq!(failed_ids(&w.deliver(&a, "m1", 1).await), vec!["m1"]);
    // WHEN redelivered THEN it only settles
    assert!(w.deliver(&a, "m1", 2).await.batch_item_failures.is_empty());
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (1, 1));
    assert_eq!(w.record(&a).status, AlertStatus::Delivered);
}

// -------------------------------------------------------- circuit breaker

fn breaker_world() -> World {
    let settings =
        DispatchSettings { breaker: BreakerSettings { threshold: 3, cooloff: Duration::from_secs(60) }, ..DispatchSettings::default() };
    world_with(settings).with_trial("t1", true).with_trial("t2", true)
}

#[tokio::test]
async fn the_breaker_opens_after_k_failures_and_fails_fast_without_calling() {
    // GIVEN trial t1's site keeps answering 503
    let w = breaker_world();
    w.deps.webhook.answer(&hook_url("t1"), std::iter::repeat_n(WebhookResult::Status(503), 10));
    for n in 1..=3 {
        assert_eq!(failed_ids(&w.deliver(&alert("t1", n), &format!("m{n}"), 1).await).len(), 1);
    }
    assert_eq!(w.deps.webhook.posts_to(&hook_url("t1")), 3);
    // WHEN more of its alerts arrive within the cool-off
    let a = alert("t1", 4);
    assert_eq!(failed_ids(&w.deliver(&a, "m4", 1).await), vec!["m4"]);
    // THEN no HTTP call was made, the attempt says circuit-open, and SNS still delivered
    assert_eq!(w.deps.webhook.posts_to(&hook_url("t1")), 3);
    assert_eq!(attempts_on(&w.record(&a), Channel::Webhook), vec![(AttemptOutcome::Retryable, None, Some("circuit-open".into()))]);
    assert_eq!(attempts_on(&w.record(&a), Channel::Sns), vec![(AttemptOutcome::Delivered, None, None)]);
    // AND another trial's webhook is unaffected
    assert!(w.deliver(&alert("t2", 1), "m-t2", 1).await.batch_item_failures.is_empty());
    assert_eq!(w.deps.webhook.posts_to(&hook_url("t2")), 1);
}

#[tokio::test]
async fn after_the_cooloff_one_probe_goes_through_and_its_success_closes_the_circuit() {
    // GIVEN t1's circuit opened on three 503s
    let w = breaker_world();
    w.deps.webhook.answer(&hook_url("t1"), std::iter::repeat_n(WebhookResult::Status(503), 3));
    for n in 1..=3 {
        w.deliver(&alert("t1", n), &format!("m{n}"), 1).await;
    }
    // WHEN the cool-off has not yet passed THEN still no call
    w.advance(59);
    w.deliver(&alert("t1", 1), "m1", 2).await;
    assert_eq!(w.deps.webhook.posts_to(&hook_url("t1")), 3);
    // WHEN it has passed THEN a probe is sent; the site recovered, so it closes
    w.advance(1);
    assert!(w.deliver(&alert("t1", 1), "m1", 3).await.batch_item_failures.is_empty());
    assert_eq!(w.deps.webhook.posts_to(&hook_url("t1")), 4);
    // AND the other alerts go straight through again
    for n in 2..=3 {
        assert!(w.deliver(&alert("t1", n), &format!("m{n}"), 2).await.batch_item_failures.is_empty());
    }
    assert_eq!(w.deps.webhook.posts_to(&hook_url("t1")), 6);
}

#[tokio::test]
async fn a_failed_probe_reopens_the_circuit_for_another_cooloff() {
    let w = breaker_world();
    w.deps.webhook.answer(&hook_url("t1"), std::iter::repeat_n(WebhookResult::Timeout, 4));
    for n in 1..=3 {
        w.deliver(&alert("t1", n), &format!("m{n}"), 1).await;
    }
    w.advance(60);
    // WHEN the probe times out
    assert_eq!(failed_ids(&w.deliver(&alert("t1", 1), "m1", 2).await), vec!["m1"]);
    assert_eq!(w.deps.webhook.posts_to(&hook_url("t1")), 4);
    // THEN calls stop again for a full cool-off
    w.advance(59);
    w.deliver(&alert("t1", 2), "m2", 2).await;
    assert_eq!(w.deps.webhook.posts_to(&hook_url("t1")), 4);
    w.advance(1);
    assert!(w.deliver(&alert("t1", 2), "m2", 3).await.batch_item_failures.is_empty());
    assert_eq!(w.deps.webhook.posts_to(&hook_url("t1")), 5);
}

// ------------------------------------------------------------- backoff

#[tokio::test]
async fn each_retry_hides_the_message_longer_as_its_receive_count_grows() {
    // GIVEN a site that is down
    let w = world().with_trial("t1", true);
    w.deps.webhook.answer(&hook_url("t1"), std::iter::repeat_n(WebhookResult::Status(500), 8));
    let a = alert("t1", 1);
    // WHEN SQS delivers it for the 1st..8th time
    for n in 1..=8 {
        assert_eq!(failed_ids(&w.deliver(&a, "m1", n).await), vec!["m1"]);
    }
    // THEN each receive is hidden within its doubling window, never shorter than the last, at most 15 min
    let delays: Vec<i32> = w.visibility.calls().into_iter().map(|(_, s)| s).collect();
    assert_eq!(delays.len(), 8);
    for (i, d) in delays.iter().enumerate() {
        let full = 10 << i;
        assert!((full / 2..=full.min(900)).contains(d) || (*d == 900 && full > 900), "receive {}: {d}s", i + 1);
    }
    assert!(delays.windows(2).all(|p| p[0] <= p[1]), "{delays:?}");
    assert!(delays[7] > delays[0] * 10, "{delays:?}");
    // AND every attempt is on the record
    assert_eq!(attempts_on(&w.record(&a), Channel::Webhook).len(), 8);
}

// ------------------------------------------------------ batch boundaries

#[tokio::test]
async fn a_bad_body_or_a_panic_fails_only_its_own_record() {
    // GIVEN a batch of a good alert, malformed JSON, an alert that is not one, and one whose delivery panics
    let w = world().with_trial("t1", true);
    let mut panicky = trial("t3", true, None);
    if let Some(h) = panicky.definition.alerting.webhook.as_mut() {
        h.url = "https://t3.site.example/panic".into();
    }
    w.deps.store.seed_trial(panicky);
    let good = alert("t1", 1);
    let r = handle(
        &w.deps,
        event(vec![
            message("good", &body(&good), 1),
            message("garbled", "{not json", 1),
            message("wrong-shape", r#"{"alertId":"al-1"}"#, 1),
            message("panics", &body(&alert("t3", 1)), 1),
        ]),
    )
    .await
    .unwrap();
    // THEN only the bad ones are reported, and the good one was delivered
    assert_eq!(failed_ids(&r), vec!["garbled", "wrong-shape", "panics"]);
    assert_eq!(w.record(&good).status, AlertStatus::Delivered);
}

#[tokio::test]
async fn a_failed_record_without_a_message_id_fails_the_whole_batch() {
    let w = world().with_trial("t1", true);
    let mut m = message("x", "{not json", 1);
    m.message_id = None;
    assert!(handle(&w.deps, event(vec![m])).await.is_err());
}

#[tokio::test]
async fn a_delivered_record_without_a_message_id_is_acknowledged_and_the_failed_ones_reported() {
    // GIVEN a batch: a deliverable alert without a message id (another with an empty one), and a garbled record
    let w = world().with_trial("t1", true);
    let (a1, a2) = (alert("t1", 1), alert("t1", 2));
    let mut unnamed = message("x", &body(&a1), 1);
    unnamed.message_id = None;
    let mut empty = message("y", &body(&a2), 1);
    empty.message_id = Some(String::new());
    // WHEN handled
    let r = handle(&w.deps, event(vec![unnamed, empty, message("garbled", "{not json", 1)])).await.unwrap();
    // THEN only the failed record is reported, and both unnamed alerts were delivered: a success needs no id
    assert_eq!(failed_ids(&r), vec!["garbled"]);
    assert_eq!(w.record(&a1).status, AlertStatus::Delivered);
    assert_eq!(w.record(&a2).status, AlertStatus::Delivered);
}

#[tokio::test]
async fn records_of_a_batch_are_delivered_concurrently() {
    // GIVEN the first POST of a batch hangs until released
    let w = world().with_trial("t1", true).with_trial("t2", true);
    let (entered, release) = w.deps.webhook.hold_next();
    let batch = event(vec![message("a", &body(&alert("t1", 1)), 1), message("b", &body(&alert("t2", 1)), 1)]);
    let (r, ()) = tokio::join!(handle(&w.deps, batch), async {
        entered.notified().await;
        // WHEN we wait for the second record's POST while the first hangs
        for _ in 0..100 {
            if w.deps.webhook.posts().len() == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
        // THEN it happened without waiting for the first
        assert_eq!(w.deps.webhook.posts().len(), 2);
        release.notify_one();
    });
    assert!(r.unwrap().batch_item_failures.is_empty());
}

#[tokio::test]
async fn the_sample_event_delivers() {
    // GIVEN the sample event developers pass to `sam local invoke`
    let e: SqsEvent = serde_json::from_str(include_str!("../../../events/alert-sqs.json")).unwrap();
    let a: Alert = serde_json::from_str(e.records[0].body.as_deref().unwrap()).unwrap();
    let w = world().with_trial(a.trial_id.as_str(), true);
    // WHEN handled THEN it is delivered on both channels
    let r = handle(&w.deps, LambdaEvent::new(e, Context::default())).await.unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (1, 1));
}

// ------------------------------------------------------------------ logs

#[tokio::test]
async fn log_lines_carry_ids_and_codes_but_never_the_body_secret_or_reason() {
    // GIVEN logs captured at debug level, and an alert whose reason carries values
    let logs = trialwatch::telemetry::CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().json().with_max_level(tracing::Level::DEBUG).with_writer(move || writer.clone()).finish();
    let _guard = trialwatch::telemetry::capture_logs_on_this_thread(subscriber);
    let w = world().with_trial("t1", true);
    w.deps.webhook.answer(&hook_url("t1"), [WebhookResult::Status(503)]);
    let mut a = alert("t1", 1);
    a.reason = AlertReason::News2 { score: 13, components: vec![] };
    // WHEN delivered through a retry and a malformed neighbour
    handle(&w.deps, event(vec![message("m1", &body(&a), 1), message("m2", "{\"secretish\": 987654", 1)])).await.unwrap();
    w.deliver(&a, "m1", 2).await;
    // THEN the lines name the alert, trial, channel and status
    let text = logs.text();
    for expected in [a.alert_id.as_str(), "t1", "webhook", "503", "invalid-alert"] {
        assert!(text.contains(expected), "missing {expected} in logs:\n{text}");
    }
    // AND never the secret, the body, the reason's values, or the bad message's content
    for forbidden in [SECRET, "\"score\":13", "news2", "987654", "secretish", "p1"] {
        assert!(!text.contains(forbidden), "{forbidden} leaked into logs:\n{text}");
    }
}

// ------------------------------------------------------------ correlation

fn correlated(a: &Alert, id: &str) -> Alert {
    Alert { correlation_id: trialwatch::correlation::CorrelationId::parse(id), ..a.clone() }
}

#[tokio::test]
async fn the_webhook_carries_the_correlation_id_and_a_replayed_alert_keeps_its_first_one() {
    // GIVEN an alert raised by request "req-first", whose first POST gets a 503
    let w = world().with_trial("t1", true);
    let a = alert("t1", 1);
    w.deps.webhook.answer(&hook_url("t1"), [WebhookResult::Status(503)]);
    assert_eq!(failed_ids(&w.deliver(&correlated(&a, "req-first"), "m1", 1).await), vec!["m1"]);
    // WHEN the same alert comes back from another request ("req-second": a replayed submission)
    w.advance(120);
    assert!(w.deliver(&correlated(&a, "req-second"), "m2", 1).await.batch_item_failures.is_empty());
    // THEN both POSTs carry the first request's id, in the header and in the signed body
    let posts = w.deps.webhook.posts();
    assert_eq!(posts.len(), 2);
    for p in &posts {
        assert_eq!(p.header(trialwatch::correlation::WEBHOOK_HEADER), Some("req-first"));
        assert_eq!(serde_json::from_slice::<Alert>(&p.body).unwrap().correlation_id.unwrap().as_str(), "req-first");
    }
    // AND the stored alert keeps it
    assert_eq!(w.record(&a).alert.correlation_id.unwrap().as_str(), "req-first");
}

#[tokio::test]
async fn an_alert_without_a_correlation_id_is_posted_without_the_header() {
    let w = world().with_trial("t1", true);
    w.deliver(&alert("t1", 1), "m1", 1).await;
    assert_eq!(w.deps.webhook.posts()[0].header(trialwatch::correlation::WEBHOOK_HEADER), None);
}

// ------------------------------------------- the use case, without SQS

fn command(a: &Alert) -> crate::DeliverCommand {
    crate::DeliverCommand { alert: a.clone(), raised_at: None }
}

#[tokio::test]
async fn deliver_settles_an_alert_delivered_on_every_channel_and_delivering_it_again_sends_nothing() {
    // GIVEN a trial with a webhook, and one of its alerts
    let w = world().with_trial("t1", true);
    let a = alert("t1", 1);
    // WHEN it is delivered THEN it is settled delivered, each channel used once
    let first = crate::deliver(&w.deps.delivery_ports(), command(&a)).await;
    assert_eq!(first, Ok(crate::DeliveryOutcome::Delivered));
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (1, 1));
    // WHEN it is delivered again THEN it was settled before, and nothing is sent (exactly once)
    let again = crate::deliver(&w.deps.delivery_ports(), command(&a)).await;
    assert_eq!(again, Ok(crate::DeliveryOutcome::AlreadySettled(AlertStatus::Delivered)));
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (1, 1));
}

#[tokio::test]
async fn deliver_answers_a_retryable_webhook_failure_with_its_error_and_gives_the_lease_back() {
    // GIVEN the site's webhook answers 503 once
    let w = world().with_trial("t1", true);
    w.deps.webhook.answer(&hook_url("t1"), [WebhookResult::Status(503)]);
    let a = alert("t1", 1);
    // WHEN delivered THEN delivery is unfinished, for a retryable channel
    let first = crate::deliver(&w.deps.delivery_ports(), command(&a)).await;
    assert_eq!(first, Err(crate::DeliverError::ChannelRetryable));
    assert_eq!(first.unwrap_err().code(), "delivery-retryable");
    // AND the lease is given back, so the retry may claim at once
    let record = w.record(&a);
    assert_eq!((record.status, record.lease_until), (AlertStatus::Pending, None));
    // WHEN retried THEN only the webhook is redone and the alert is delivered
    assert_eq!(crate::deliver(&w.deps.delivery_ports(), command(&a)).await, Ok(crate::DeliveryOutcome::Delivered));
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (2, 1));
}

#[tokio::test]
async fn deliver_with_the_claim_failing_is_a_claim_error_and_notifies_no_one() {
    let w = world().with_trial("t1", true);
    w.deps.store.fail_next("claim", 1);
    let result = crate::deliver(&w.deps.delivery_ports(), command(&alert("t1", 1))).await;
    assert!(matches!(&result, Err(crate::DeliverError::Claim(trialwatch::ports::StorageError::Unavailable(_)))), "{result:?}");
    assert_eq!(result.unwrap_err().code(), "unavailable");
    assert_eq!((w.deps.webhook.posts().len(), w.published()), (0, 0));
}

#[test]
fn at_the_edge_every_deliver_error_is_a_redelivery_and_a_held_lease_hides_the_record_until_it_ends() {
    // GIVEN a record received for the third time
    let m = message("m1", "{}", 3);
    let backoff = DispatchSettings::default().backoff;
    let backoff_range = {
        let full = i32::try_from(backoff.base_seconds << 2).unwrap();
        (full / 2)..=full
    };
    let down = || trialwatch::ports::StorageError::Unavailable("throttled".into());
    // THEN a lease held elsewhere hides it exactly until the lease ends
    assert_eq!(crate::hide_for(&crate::DeliverError::Leased { wait_seconds: 17 }, backoff, &m), 17);
    // AND every other error hides it for the backoff of its receive count, under the code it had before
    for (e, code) in [
        (crate::DeliverError::TrialUnavailable(down()), "unavailable"),
        (crate::DeliverError::Claim(down()), "unavailable"),
        (crate::DeliverError::RecordAttempt(down()), "unavailable"),
        (crate::DeliverError::ChannelRetryable, "delivery-retryable"),
        (crate::DeliverError::CircuitOpen, "circuit-open"),
        (crate::DeliverError::Settle(trialwatch::ports::StorageError::Corrupt("odd".into())), "internal"),
    ] {
        assert!(backoff_range.contains(&crate::hide_for(&e, backoff, &m)), "{e:?}");
        assert_eq!(e.code(), code);
    }
    assert_eq!(crate::DeliverError::Leased { wait_seconds: 1 }.code(), "in-progress");
}
