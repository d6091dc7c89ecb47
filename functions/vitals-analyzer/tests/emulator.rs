//! vitals-analyzer end to end against the AWS emulator, with the production
//! adapters: readings sent to the FIFO queue by `SqsVitalsQueue` are received
//! with ReceiveMessage, turned into the `SqsEvent` Lambda would deliver, handled,
//! and deleted when they succeed, as the event source mapping does.
//!
//! Run with `make test` (it starts the emulator and exports AWS_ENDPOINT_URL).

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use chrono::{Duration, Utc};
use lambda_runtime::{Context, LambdaEvent};
use trialwatch::alert::Alert;
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::aws::{DynamoStore, SqsVitalsQueue};
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::news2::RiskLevel;
use trialwatch::ports::{EnrolmentStore, TrialRegistry, VitalsQueue, VitalsStore};
use trialwatch::settings::Env;
use trialwatch::trial::Trial;
use trialwatch::vitals::{VitalCode, VitalReading, VitalValue, VitalsMessage};
use trialwatch::{PatientId, ReadingId, SiteId, TrialId};
use trialwatch_provision::{emulator_sdk_config, provision_all, template_path, unique_prefix, Provisioned, Template};
use vitals_analyzer::{handle, AwsDeps, Config};

struct Stack {
    sdk: SdkConfig,
    provisioned: Provisioned,
    sqs: aws_sdk_sqs::Client,
    deps: AwsDeps,
}

impl Stack {
    /// Panics (never skips) when the emulator is not configured.
    async fn provision(label: &str) -> Self {
        if std::env::var("AWS_ENDPOINT_URL").map_or(true, |v| v.trim().is_empty()) {
            panic!("AWS_ENDPOINT_URL is not set: run the vitals-analyzer integration tests with `make test`, which starts the emulator");
        }
        let sdk = emulator_sdk_config().await;
        let provisioned = provision_all(&sdk, &template_path(), &unique_prefix(label))
            .await
            .unwrap_or_else(|e| panic!("provisioning the emulator failed (is it running? `make test` starts it): {e}"));
        // The analyzer's environment as SAM would give it: the template's own
        // variables (VITALS_DLQ_URL: !Ref VitalsDLQ) resolved to what was provisioned.
        let template = Template::load(&template_path()).expect("template");
        let function = template.function("VitalsAnalyzerFunction").expect("VitalsAnalyzerFunction in the template");
        let config = Config::from_vars(&Env::vars(provisioned.environment_for(function))).expect("analyzer config");
        assert_eq!(Some(config.dead_letter_queue_url.as_str()), provisioned.vitals_dlq_url(), "the analyzer parks in the vitals DLQ");
        let deps = AwsDeps::from_config(&config, &sdk);
        Self { sqs: aws_sdk_sqs::Client::new(&sdk), sdk, provisioned, deps }
    }

    fn store(&self) -> DynamoStore {
        DynamoStore::new(&self.sdk, &self.provisioned.resources.table_name, &self.provisioned.resources.audit_table_name)
    }

    fn vitals_url(&self) -> &str {
        &self.provisioned.resources.vitals_queue_url
    }

    async fn seed(&self, trial: &TrialId, patients: &[&PatientId]) {
        let trial_json = serde_json::json!({
            "trialId": trial.as_str(),
            "name": "integration",
            "sites": [{"id": "site-leeds", "name": "Leeds"}],
            "alerting": {"news2": {"freshnessMinutes": 60, "cooldownMinutes": 60}},
            "updatedAt": "2026-11-01T00:00:00.000Z"
        });
        let t: Trial = serde_json::from_value(trial_json).unwrap();
        let store = self.store();
        let audit = |entity: String| AuditEntry::new(trial.clone(), entity, "seed", Actor::system("test"), Utc::now());
        store.put_trial(&t, &audit(format!("trial/{trial}"))).await.expect("seed trial");
        for p in patients {
            let e = Enrolment {
                trial_id: trial.clone(),
                patient_id: (*p).clone(),
                site_id: SiteId::parse("site-leeds").unwrap(),
                status: EnrolmentStatus::Enrolled,
                hypercapnic: false,
                enrolled_at: "2026-11-01T00:00:00.000Z".into(),
                updated_at: "2026-11-01T00:00:00.000Z".into(),
                submission_count: 0,
                last_submission_at: None,
                withdrawn_at: None,
                audit_head: Default::default(),
            };
            store.put_enrolment(&e, &audit(format!("patient/{p}")), &[]).await.expect("seed enrolment");
        }
    }

    /// One ReceiveMessage (up to 10, every attribute), as the event source
    /// mapping polls; `visibility` 0 makes an unacknowledged message visible again at once.
    async fn receive(&self, url: &str, visibility: Option<i32>) -> Vec<Message> {
        self.sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .set_visibility_timeout(visibility)
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default()
    }

    /// What Lambda's SQS event source would deliver for these messages.
    fn sqs_event(&self, messages: &[Message]) -> LambdaEvent<SqsEvent> {
        let arn = self.provisioned.physical["VitalsQueue"].attributes["Arn"].clone();
        let mut event = SqsEvent::default();
        event.records = messages
            .iter()
            .map(|m| {
                let mut r = SqsMessage::default();
                r.message_id = m.message_id.clone();
                r.receipt_handle = m.receipt_handle.clone();
                r.body = m.body.clone();
                r.md5_of_body = m.md5_of_body.clone();
                r.attributes = m.attributes.clone().unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
                r.message_attributes = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| {
                                let mut attribute = SqsMessageAttribute::default();
                                attribute.string_value = v.string_value().map(str::to_owned);
                                attribute.data_type = Some(v.data_type().to_owned());
                                (k.clone(), attribute)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                r.event_source = Some("aws:sqs".into());
                r.event_source_arn = Some(arn.clone());
                r.aws_region = Some("us-east-1".into());
                r
            })
            .collect();
        LambdaEvent::new(event, Context::default())
    }

    /// Deletes what the handler did not report as failed (the event source
    /// mapping's partial-batch behaviour).
    async fn delete_succeeded(&self, messages: &[Message], response: &SqsBatchResponse) {
        let failed: HashSet<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        for m in messages.iter().filter(|m| !failed.contains(m.message_id().unwrap_or_default())) {
            self.sqs
                .delete_message()
                .queue_url(self.vitals_url())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
    }

    /// Receives from the vitals DLQ until something arrives (or a few tries pass).
    async fn receive_dead_letters(&self) -> Vec<Message> {
        let dlq = self.provisioned.vitals_dlq_url().expect("VitalsQueue has a DLQ").to_owned();
        for _ in 0..5 {
            let dead = self.receive(&dlq, None).await;
            if !dead.is_empty() {
                return dead;
            }
            tokio::time::sleep(StdDuration::from_millis(200)).await;
        }
        Vec::new()
    }

    async fn stored_reading_count(&self, trial: &TrialId, patient: &PatientId) -> usize {
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .query()
            .table_name(&self.provisioned.resources.table_name)
            .key_condition_expression("pk = :pk AND begins_with(sk, :vital)")
            .expression_attribute_values(":pk", AttributeValue::S(format!("PATIENT#{trial}#{patient}")))
            .expression_attribute_values(":vital", AttributeValue::S("VITAL#".into()))
            .send()
            .await
            .expect("Query readings")
            .count as usize
    }
}

fn high_readings(at: chrono::DateTime<Utc>, tag: &str) -> Vec<VitalReading> {
    let r = |code: VitalCode, value: VitalValue| VitalReading {
        reading_id: ReadingId::parse(&format!("{tag}-{}", code.as_str())).unwrap(),
        code,
        value,
        observed_at: at,
    };
    vec![
        r(VitalCode::HeartRate, VitalValue::Number(135.0)),      // 3
        r(VitalCode::RespiratoryRate, VitalValue::Number(26.0)), // 3
        r(VitalCode::Temperature, VitalValue::Number(38.5)),     // 1
    ]
}

#[tokio::test]
async fn readings_sent_to_the_fifo_queue_are_stored_scored_and_escalated() {
    // GIVEN a trial, an enrolled patient, and two messages of readings on the vitals queue
    let stack = Stack::provision("analyzer-e2e").await;
    let (trial, patient) = (TrialId::parse("tw-int").unwrap(), PatientId::parse("P-int-1").unwrap());
    stack.seed(&trial, &[&patient]).await;
    let now = Utc::now();
    let messages = [
        VitalsMessage { trial_id: trial.clone(), patient_id: patient.clone(), readings: high_readings(now - Duration::minutes(2), "a") },
        VitalsMessage { trial_id: trial.clone(), patient_id: patient.clone(), readings: high_readings(now - Duration::minutes(1), "b") },
    ];
    SqsVitalsQueue::new(&stack.sdk, stack.vitals_url()).send_vitals(&messages).await.expect("send vitals");

    // WHEN they are received as an SqsEvent and handled (FIFO may hand them out over several receives)
    let mut handled = 0;
    for _ in 0..10 {
        let received = stack.receive(stack.vitals_url(), None).await;
        if received.is_empty() {
            continue;
        }
        let response = handle(&stack.deps, stack.sqs_event(&received)).await.expect("handler");
        assert!(response.batch_item_failures.is_empty(), "unexpected failures: {:?}", response.batch_item_failures);
        stack.delete_succeeded(&received, &response).await;
        handled += received.len();
        if handled == messages.len() {
            break;
        }
    }
    assert_eq!(handled, 2);

    // THEN all six readings and the patient's state are stored
    assert_eq!(stack.stored_reading_count(&trial, &patient).await, 6);
    let state = stack.store().get_state(&trial, &patient).await.unwrap().expect("state stored");
    let news2 = state.news2.clone().expect("scored");
    assert_eq!((news2.score, news2.risk_level), (7, RiskLevel::High));
    assert_eq!(state.last_alert_level, Some(RiskLevel::High));
    // AND exactly one high alert is on the alert queue
    let alerts = stack.receive(&stack.provisioned.resources.alert_queue_url, None).await;
    let alerts: Vec<Alert> = alerts.iter().map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("alert JSON")).collect();
    assert_eq!(alerts.len(), 1, "one alert, however the messages were batched");
    assert_eq!((alerts[0].patient_id.as_str(), alerts[0].level, alerts[0].site_id.as_str()), ("P-int-1", RiskLevel::High, "site-leeds"));
    // AND the queue is drained
    assert!(stack.receive(stack.vitals_url(), None).await.is_empty());
}

#[tokio::test]
async fn a_poison_message_is_parked_in_the_dlq_on_its_first_receive() {
    // GIVEN a body that is not a vitals message, sent straight to the FIFO queue
    let stack = Stack::provision("analyzer-poison").await;
    let poison = r#"{"trialId":"tw-int","patientId":"P-int-2","readings":[{"code":"heart_rate","value":"fast"}]}"#;
    stack
        .sqs
        .send_message()
        .queue_url(stack.vitals_url())
        .message_body(poison)
        .message_group_id("tw-int#P-int-2")
        .message_deduplication_id("poison-1")
        .send()
        .await
        .expect("send poison");

    // WHEN it is received once and handled
    let mut received = Vec::new();
    for _ in 0..5 {
        received = stack.receive(stack.vitals_url(), None).await;
        if !received.is_empty() {
            break;
        }
    }
    assert_eq!(received.len(), 1);
    let response = handle(&stack.deps, stack.sqs_event(&received)).await.expect("the invocation itself succeeds");
    // THEN it is acknowledged, not retried maxReceiveCount times
    assert!(response.batch_item_failures.is_empty());
    stack.delete_succeeded(&received, &response).await;
    // AND it is in the vitals DLQ, unchanged, with its reason
    let dead = stack.receive_dead_letters().await;
    assert_eq!(dead.iter().map(|m| m.body().unwrap_or_default()).collect::<Vec<_>>(), [poison]);
    let reason = dead[0].message_attributes().and_then(|a| a.get(trialwatch::aws::sqs::REASON_ATTRIBUTE)).and_then(|v| v.string_value());
    assert_eq!(reason, Some("not-a-vitals-message"));
    assert!(stack.receive(stack.vitals_url(), Some(0)).await.is_empty(), "the source queue is drained");
}

#[tokio::test]
async fn a_record_that_keeps_failing_transiently_reaches_the_dlq_after_max_receive_count() {
    // GIVEN a good message, and an analyzer whose table does not exist (every load fails: transient)
    let stack = Stack::provision("analyzer-transient").await;
    let mut env = stack.provisioned.environment.clone();
    env.insert("TABLE_NAME".into(), format!("{}-missing-table", stack.provisioned.prefix));
    env.insert(vitals_analyzer::DLQ_URL_VAR.into(), stack.provisioned.vitals_dlq_url().expect("vitals DLQ").to_owned());
    let broken = AwsDeps::from_config(&Config::from_vars(&Env::vars(env)).expect("config"), &stack.sdk);
    let (trial, patient) = (TrialId::parse("tw-int").unwrap(), PatientId::parse("P-int-5").unwrap());
    let message = VitalsMessage { trial_id: trial, patient_id: patient, readings: high_readings(Utc::now(), "t") };
    SqsVitalsQueue::new(&stack.sdk, stack.vitals_url()).send_vitals(std::slice::from_ref(&message)).await.expect("send vitals");
    let max_receives = stack.provisioned.dead_letters["VitalsQueue"].max_receive_count as usize;

    // WHEN it is received, handled and left undeleted until SQS gives up on it
    let mut failures = 0;
    for _ in 0..(max_receives + 5) {
        let received = stack.receive(stack.vitals_url(), Some(0)).await;
        if received.is_empty() {
            if failures >= max_receives {
                break;
            }
            continue;
        }
        let response = handle(&broken, stack.sqs_event(&received)).await.expect("the invocation itself succeeds");
        // THEN every attempt reports it as a batch item failure (a transient failure is never parked)
        assert_eq!(response.batch_item_failures.len(), 1);
        stack.delete_succeeded(&received, &response).await;
        failures += 1;
    }
    assert_eq!(failures, max_receives, "received exactly maxReceiveCount times");

    // AND the queue's redrive policy moved it to the vitals DLQ, unchanged and without a reason attribute
    let dead = stack.receive_dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body().map(|b| serde_json::from_str::<VitalsMessage>(b).expect("vitals JSON")), Some(message));
    assert!(dead[0].message_attributes().and_then(|a| a.get(trialwatch::aws::sqs::REASON_ATTRIBUTE)).is_none());
}

#[tokio::test]
async fn a_record_that_fails_for_good_is_parked_in_the_real_dlq_and_a_redrive_reprocesses_it() {
    // GIVEN a trial where P-int-4 is enrolled and P-int-3 is not (yet), and one message of each
    let stack = Stack::provision("analyzer-park").await;
    let trial = TrialId::parse("tw-int").unwrap();
    let (late, enrolled) = (PatientId::parse("P-int-3").unwrap(), PatientId::parse("P-int-4").unwrap());
    stack.seed(&trial, &[&enrolled]).await;
    let now = Utc::now();
    let messages = [
        VitalsMessage { trial_id: trial.clone(), patient_id: late.clone(), readings: high_readings(now - Duration::minutes(2), "late") },
        VitalsMessage { trial_id: trial.clone(), patient_id: enrolled.clone(), readings: high_readings(now - Duration::minutes(2), "ok") },
    ];
    SqsVitalsQueue::new(&stack.sdk, stack.vitals_url()).send_vitals(&messages).await.expect("send vitals");

    // WHEN they are received and handled with the production adapters
    let mut handled = Vec::new();
    for _ in 0..10 {
        let received = stack.receive(stack.vitals_url(), None).await;
        if received.is_empty() {
            continue;
        }
        let response = handle(&stack.deps, stack.sqs_event(&received)).await.expect("handler");
        // THEN nothing comes back from the queue: one is scored, the other parked
        assert!(response.batch_item_failures.is_empty(), "unexpected failures: {:?}", response.batch_item_failures);
        stack.delete_succeeded(&received, &response).await;
        handled.extend(received);
        if handled.len() == messages.len() {
            break;
        }
    }
    assert_eq!(handled.len(), 2);
    assert_eq!(stack.stored_reading_count(&trial, &enrolled).await, 3, "the enrolled patient is scored in the same invocation");
    assert_eq!(stack.stored_reading_count(&trial, &late).await, 0);

    // AND the not-enrolled record is in the real vitals DLQ: body unchanged, reason code, group and dedup ids
    let original = handled.iter().find(|m| m.body().unwrap_or_default().contains("P-int-3")).expect("the late patient's message");
    let dead = stack.receive_dead_letters().await;
    assert_eq!(dead.len(), 1);
    let parked = &dead[0];
    assert_eq!(parked.body(), original.body());
    let reason = parked.message_attributes().and_then(|a| a.get(trialwatch::aws::sqs::REASON_ATTRIBUTE)).and_then(|v| v.string_value());
    assert_eq!(reason, Some("patient-not-enrolled"));
    let system = parked.attributes().cloned().unwrap_or_default();
    assert_eq!(system.get(&MessageSystemAttributeName::MessageGroupId).map(String::as_str), Some("tw-int#P-int-3"));
    assert_eq!(system.get(&MessageSystemAttributeName::MessageDeduplicationId).map(String::as_str), original.message_id());

    // WHEN the patient is enrolled and an operator redrives the DLQ: read back, re-sent to the
    // source queue with its group, deleted from the DLQ
    stack.seed(&trial, &[&late]).await;
    let dlq = stack.provisioned.vitals_dlq_url().expect("vitals DLQ").to_owned();
    for redriven in 0..2 {
        // (sent twice, as an at-least-once redrive may: the handler is idempotent)
        stack
            .sqs
            .send_message()
            .queue_url(stack.vitals_url())
            .message_body(parked.body().unwrap_or_default())
            .message_group_id("tw-int#P-int-3")
            .message_deduplication_id(format!("redrive-{redriven}-{}", parked.message_id().unwrap_or_default()))
            .send()
            .await
            .expect("redrive to the source queue");
    }
    stack
        .sqs
        .delete_message()
        .queue_url(&dlq)
        .receipt_handle(parked.receipt_handle().unwrap_or_default())
        .send()
        .await
        .expect("delete from DLQ");
    let mut redelivered = 0;
    for _ in 0..10 {
        let received = stack.receive(stack.vitals_url(), None).await;
        if received.is_empty() {
            continue;
        }
        let response = handle(&stack.deps, stack.sqs_event(&received)).await.expect("handler");
        assert!(response.batch_item_failures.is_empty());
        stack.delete_succeeded(&received, &response).await;
        redelivered += received.len();
        if redelivered == 2 {
            break;
        }
    }
    // THEN the same handler scores it, once: three readings stored, one high alert for the patient
    assert_eq!(redelivered, 2);
    assert_eq!(stack.stored_reading_count(&trial, &late).await, 3);
    let state = stack.store().get_state(&trial, &late).await.unwrap().expect("scored after the redrive");
    assert_eq!(state.news2.map(|n| n.risk_level), Some(RiskLevel::High));
    let alerts = stack.receive(&stack.provisioned.resources.alert_queue_url, None).await;
    let late_alerts = alerts.iter().filter(|m| m.body().unwrap_or_default().contains("P-int-3")).count();
    assert_eq!(late_alerts, 1);
    // AND the DLQ is empty, and the redriven record was not parked again
    assert!(stack.receive(&dlq, None).await.is_empty());
}

/// The direct-ingestion message of the README ("Integrations"), as a device
/// cloud sends it with `aws sqs send-message`, its `observedAt` moved to now.
fn documented_message(trial: &str, patient: &str) -> String {
    let at = trialwatch::timestamp::format(Utc::now() - Duration::minutes(1));
    include_str!("../../../docs/vitals-message.json")
        .replace("2026-11-27T09:58:00Z", &at)
        .replace("tw-heart-01", trial)
        .replace("\"P0001\"", &format!("\"{patient}\""))
}

#[tokio::test]
async fn the_documented_direct_message_is_scored_and_one_in_another_patient_s_group_is_parked() {
    // GIVEN a trial with two enrolled patients
    let stack = Stack::provision("analyzer-direct").await;
    let trial = TrialId::parse("tw-heart-01").unwrap();
    let (p1, p2) = (PatientId::parse("P0001").unwrap(), PatientId::parse("P0002").unwrap());
    stack.seed(&trial, &[&p1, &p2]).await;
    // WHEN a device cloud sends the README's message exactly as documented: the body,
    // MessageGroupId trialId#patientId, its own MessageDeduplicationId
    let body = documented_message("tw-heart-01", "P0001");
    let send = |body: String, group: &str, dedup: &str| {
        stack
            .sqs
            .send_message()
            .queue_url(stack.vitals_url())
            .message_body(body)
            .message_group_id(group)
            .message_deduplication_id(dedup)
            .send()
    };
    send(body, "tw-heart-01#P0001", "acme-batch-000042").await.expect("send-message");
    // AND another message carrying P0002's readings in P0001's group
    let foreign = documented_message("tw-heart-01", "P0002");
    send(foreign.clone(), "tw-heart-01#P0001", "acme-batch-000043").await.expect("send-message");
    let mut handled = 0;
    for _ in 0..10 {
        let received = stack.receive(stack.vitals_url(), None).await;
        if received.is_empty() {
            continue;
        }
        let response = handle(&stack.deps, stack.sqs_event(&received)).await.expect("handler");
        assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
        stack.delete_succeeded(&received, &response).await;
        handled += received.len();
        if handled == 2 {
            break;
        }
    }
    assert_eq!(handled, 2);
    // THEN the documented message is stored and scored (heart rate 3 + respiration 3 + temperature 1: high)
    assert_eq!(stack.stored_reading_count(&trial, &p1).await, 5);
    let state = stack.store().get_state(&trial, &p1).await.unwrap().expect("scored");
    assert_eq!(state.news2.map(|n| n.risk_level), Some(RiskLevel::High));
    // AND its alert is correlated by the SQS message id (a direct message carries no correlation id)
    let alerts = stack.receive(&stack.provisioned.resources.alert_queue_url, None).await;
    assert_eq!(alerts.len(), 1);
    let alert: Alert = serde_json::from_str(alerts[0].body().unwrap_or_default()).expect("alert JSON");
    assert!(alert.correlation_id.is_some(), "{alert:?}");
    let attribute =
        alerts[0].message_attributes().and_then(|a| a.get(trialwatch::correlation::MESSAGE_ATTRIBUTE)).and_then(|v| v.string_value());
    assert_eq!(attribute, alert.correlation_id.as_ref().map(|c| c.as_str()));
    // AND the message in the wrong group wrote nothing for P0002 and is parked with its reason
    assert_eq!(stack.stored_reading_count(&trial, &p2).await, 0);
    let dead = stack.receive_dead_letters().await;
    assert_eq!(dead.iter().map(|m| m.body().unwrap_or_default()).collect::<Vec<_>>(), [foreign.as_str()]);
    let reason = dead[0].message_attributes().and_then(|a| a.get(trialwatch::aws::sqs::REASON_ATTRIBUTE)).and_then(|v| v.string_value());
    assert_eq!(reason, Some("group-id-mismatch"));
}

#[tokio::test]
async fn a_redelivered_escalating_batch_is_audited_as_raised_once_in_a_chain_that_verifies() {
    use trialwatch::audit::chain::{check_head, verify, ChainId};
    // GIVEN an enrolled patient and one message of high readings on the vitals queue
    let stack = Stack::provision("analyzer-raised").await;
    let (trial, patient) = (TrialId::parse("tw-int").unwrap(), PatientId::parse("P-int-9").unwrap());
    stack.seed(&trial, &[&patient]).await;
    let message = VitalsMessage { trial_id: trial.clone(), patient_id: patient.clone(), readings: high_readings(Utc::now(), "r") };
    SqsVitalsQueue::new(&stack.sdk, stack.vitals_url()).send_vitals(&[message]).await.expect("send vitals");
    let mut received = Vec::new();
    for _ in 0..10 {
        received = stack.receive(stack.vitals_url(), None).await;
        if !received.is_empty() {
            break;
        }
    }
    assert_eq!(received.len(), 1);
    // WHEN it is handled, and then delivered again before its deletion (a redelivery after a lost ack)
    for _ in 0..2 {
        let response = handle(&stack.deps, stack.sqs_event(&received)).await.expect("handler");
        assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    }
    stack.delete_succeeded(&received, &SqsBatchResponse::default()).await;
    // THEN the patient's chain, read back with one Query, holds one alert.raised entry after the enrolment's
    let chain = ChainId::Patient(patient.clone());
    let items = aws_sdk_dynamodb::Client::new(&stack.sdk)
        .query()
        .table_name(&stack.provisioned.resources.audit_table_name)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(trialwatch::aws::chain_pk(&trial, &chain)))
        .send()
        .await
        .expect("Query chain")
        .items
        .unwrap_or_default();
    let entries: Vec<AuditEntry> = items
        .into_iter()
        .map(|mut i| {
            for k in ["pk", "sk", "gsi1pk", "gsi1sk"] {
                i.remove(k);
            }
            serde_dynamo::from_item(i).expect("an audit entry")
        })
        .collect();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["seed", "alert.raised"]);
    let state = stack.store().get_state(&trial, &patient).await.unwrap().expect("state");
    assert_eq!(entries[1].entity, format!("alert/{}", state.last_alert_id.expect("an alert")));
    assert_eq!(entries[1].details["score"], serde_json::json!(7));
    // AND the chain verifies and ends at the head recorded on the enrolment
    let recorded = stack.store().get_enrolment_consistent(&trial, &patient).await.unwrap().expect("enrolment").audit_head;
    assert_eq!(check_head(&verify(&chain, &entries).unwrap(), &recorded), Ok(()));
}
