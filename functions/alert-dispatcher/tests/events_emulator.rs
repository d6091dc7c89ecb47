//! The domain-event outbox against the emulator, with real SDK clients: the
//! DynamoStore's pending items, the EventBridgePublisher, a bus rule to an
//! SQS queue (the provisioner's subscriber, as an integrator would have), and
//! this function's sweep. Each event as received is validated against its
//! schema under docs/events/.
//!
//! Needs `AWS_ENDPOINT_URL` (run with `make test`); without it the tests panic.

use std::time::{Duration, Instant};

use alert_dispatcher::events::{sweep, EventSweep};
use chrono::{DateTime, Utc};
use serde_json::Value;
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::aws::{DynamoStore, EventBridgePublisher, S3ReportStore};
use trialwatch::domain_event::{announce, grace, DomainEvent, EventType, SOURCE};
use trialwatch::enrolment::Enrolment;
use trialwatch::ports::{EnrolmentStore, PendingEvents, ReportStore};
use trialwatch::report::{ReportMeta, ReportSummary};
use trialwatch::settings::EVENT_BUS_NAME;
use trialwatch::{ReportId, TrialId};
use trialwatch_provision::{emulator_sdk_config, provision_all, subscribe_queue, template_path, unique_prefix};

/// One provisioned copy of the template, and a queue subscribed to its bus.
struct Outbox {
    sdk: aws_config::SdkConfig,
    store: DynamoStore,
    bus: EventBridgePublisher,
    /// A publisher whose every call fails: its bus does not exist.
    broken_bus: EventBridgePublisher,
    reports_bucket: String,
    queue_url: String,
}

async fn outbox(label: &str) -> Outbox {
    let sdk = emulator_sdk_config().await;
    let prefix = unique_prefix(label);
    let p = provision_all(&sdk, &template_path(), &prefix)
        .await
        .unwrap_or_else(|e| panic!("provisioning {prefix} on the emulator failed: {e} (run `make test`)"));
    let bus_name = p.environment.get(EVENT_BUS_NAME).cloned().expect("the template's bus is provisioned");
    let queue_url = subscribe_queue(&sdk, &bus_name).await.expect("a queue subscribed to the bus");
    Outbox {
        store: DynamoStore::new(&sdk, p.resources.table_name.clone(), p.resources.audit_table_name.clone()),
        bus: EventBridgePublisher::new(&sdk, bus_name),
        broken_bus: EventBridgePublisher::new(&sdk, format!("{prefix}-no-such-bus")),
        reports_bucket: p.resources.reports_bucket.clone(),
        queue_url,
        sdk,
    }
}

fn at(t: &str) -> DateTime<Utc> {
    t.parse().unwrap()
}

fn enrolment() -> Enrolment {
    serde_json::from_value(serde_json::json!({
        "trialId": "tw-ev", "patientId": "P0001", "siteId": "s1", "status": "enrolled",
        "enrolledAt": "2026-11-27T10:00:00Z", "updatedAt": "2026-11-27T10:00:00Z", "submissionCount": 0
    }))
    .unwrap()
}

/// Writes an enrolment with its PatientEnrolmentChanged event, through the store's transaction.
async fn enrol(store: &DynamoStore, changed_at: DateTime<Utc>) -> DomainEvent {
    let e = enrolment();
    let event = DomainEvent::patient_enrolment_changed(&e, changed_at, None);
    let audit = AuditEntry::new(e.trial_id.clone(), "enrolment/P0001", "enrolment.created", Actor::system("test"), changed_at)
        .with_detail("patientId", "P0001");
    store.put_enrolment(&e, &audit, std::slice::from_ref(&event)).await.expect("enrolment written");
    event
}

/// Whether the event's pending item is still in the table (its index shard, read as of a day later).
async fn is_pending(store: &DynamoStore, event: &DomainEvent) -> bool {
    let later = event.occurred_at + chrono::Duration::days(1);
    let due = store.due_events(event.event_id.shard(), later, 100).await.expect("the events index reads");
    due.iter().any(|d| d.event.event_id == event.event_id)
}

/// Receives and deletes every message until `want` have come or `patience` has passed,
/// then keeps listening one more second for any extra.
async fn drain(o: &Outbox, want: usize, patience: Duration) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(&o.sdk);
    let mut got = Vec::new();
    let deadline = Instant::now() + patience;
    loop {
        let wait = if got.len() >= want || Instant::now() >= deadline { 1 } else { 2 };
        let out = sqs.receive_message().queue_url(&o.queue_url).max_number_of_messages(10).wait_time_seconds(wait).send().await.unwrap();
        let messages = out.messages.unwrap_or_default();
        for m in &messages {
            got.push(serde_json::from_str(m.body().unwrap_or_default()).expect("an EventBridge envelope"));
            sqs.delete_message().queue_url(&o.queue_url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
        if messages.is_empty() && (got.len() >= want || Instant::now() >= deadline) {
            return got;
        }
    }
}

/// The envelope's source and its `detail` against `docs/events/<detail-type>.schema.json`.
fn assert_valid(envelope: &Value) {
    assert_eq!(envelope["source"], SOURCE, "{envelope}");
    let kind = envelope["detail-type"].as_str().and_then(EventType::parse).unwrap_or_else(|| panic!("unknown detail-type: {envelope}"));
    let path = format!("{}/../../docs/events/{}", env!("CARGO_MANIFEST_DIR"), kind.schema_file());
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).expect("schema JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator.iter_errors(&envelope["detail"]).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{kind} as received does not match {path}: {errors:?}\n{envelope}");
}

#[tokio::test]
async fn an_enrolment_committed_with_its_event_is_delivered_through_the_bus_and_its_pending_item_deleted() {
    // GIVEN the template's table and bus, and a queue subscribed to the bus
    let o = outbox("events-announce").await;
    // WHEN an enrolment is written with its event
    let event = enrol(&o.store, at("2026-11-27T10:00:00Z")).await;
    // THEN the same transaction left the event's pending item
    assert!(is_pending(&o.store, &event).await, "no pending item for {}", event.event_id);

    // WHEN it is announced
    let published = announce(&o.bus, &o.store, std::slice::from_ref(&event)).await;
    assert_eq!((published.accepted.clone(), published.failed), (vec![event.event_id.clone()], 0));

    // THEN the subscriber receives exactly that event, valid against its schema
    let received = drain(&o, 1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_valid(&received[0]);
    assert_eq!(received[0]["detail-type"], "PatientEnrolmentChanged");
    assert_eq!(received[0]["detail"]["eventId"], event.event_id.as_str());
    assert_eq!(received[0]["detail"], Value::Object(event.detail.clone()));
    // AND the pending item is gone
    assert!(!is_pending(&o.store, &event).await, "{} still pending after it was published", event.event_id);
}

#[tokio::test]
async fn a_failed_publish_leaves_the_item_pending_and_the_sweep_past_the_grace_publishes_it_once() {
    // GIVEN an enrolment committed with its event, whose publish fails (the bus is not there)
    let o = outbox("events-sweep").await;
    let t = at("2026-11-27T10:00:00Z");
    let event = enrol(&o.store, t).await;
    let published = announce(&o.broken_bus, &o.store, std::slice::from_ref(&event)).await;
    assert_eq!((published.accepted.len(), published.failed), (0, 1));
    // THEN the pending item stays, and nothing reached the subscriber
    assert!(is_pending(&o.store, &event).await);
    assert!(drain(&o, 0, Duration::ZERO).await.is_empty());

    // WHEN the sweep runs inside the grace THEN it publishes nothing
    let early = sweep(&o.store, &o.bus, t + grace() - chrono::Duration::seconds(1)).await;
    assert_eq!(early, EventSweep::default());
    assert!(is_pending(&o.store, &event).await);

    // WHEN it runs past the grace THEN it publishes the event once and deletes its item
    let late = sweep(&o.store, &o.bus, t + grace() + chrono::Duration::seconds(30)).await;
    assert_eq!((late.due, late.published, late.failed_shards), (1, 1, 0));
    let received = drain(&o, 1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_valid(&received[0]);
    assert_eq!(received[0]["detail"]["eventId"], event.event_id.as_str());
    assert!(!is_pending(&o.store, &event).await);

    // AND a second sweep publishes nothing
    let again = sweep(&o.store, &o.bus, t + grace() + chrono::Duration::seconds(90)).await;
    assert_eq!(again, EventSweep::default());
    assert!(drain(&o, 0, Duration::ZERO).await.is_empty(), "the sweep published the event twice");
}

#[tokio::test]
async fn a_report_record_and_its_report_generated_event_commit_together_and_are_delivered() {
    // GIVEN the template's table, reports bucket and bus, and a subscribed queue
    let o = outbox("events-report").await;
    let reports = S3ReportStore::new(&o.sdk, o.reports_bucket.clone(), None, o.store.clone());
    let trial = TrialId::parse("tw-ev").unwrap();
    let report_id = ReportId::parse("rpt-20261130-abcdef012345").unwrap();
    let meta = ReportMeta {
        object_key: ReportMeta::object_key_for(&trial, &report_id),
        report_id: report_id.clone(),
        trial_id: trial.clone(),
        from: "2026-11-23".parse().unwrap(),
        to: "2026-11-29".parse().unwrap(),
        generated_at: at("2026-11-30T06:00:00Z"),
        pages: 3,
        bytes: 4,
        summary: ReportSummary::default(),
    };
    let event = DomainEvent::report_generated(&meta, None);
    // WHEN the report is stored with its event
    reports.put_report(&meta, b"%PDF".to_vec(), std::slice::from_ref(&event)).await.expect("report stored");
    // THEN the record and the pending item are both written
    assert_eq!(reports.get_report(&trial, &report_id).await.unwrap(), Some(meta.clone()));
    assert!(is_pending(&o.store, &event).await);
    // AND once announced, the subscriber receives ReportGenerated, valid against its schema, and the item is gone
    assert_eq!(announce(&o.bus, &o.store, std::slice::from_ref(&event)).await.accepted.len(), 1);
    let received = drain(&o, 1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_valid(&received[0]);
    assert_eq!(received[0]["detail-type"], "ReportGenerated");
    assert_eq!(received[0]["detail"]["reportId"], report_id.as_str());
    assert!(!is_pending(&o.store, &event).await);
}
