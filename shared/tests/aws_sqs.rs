//! SQS adapters against the emulator: batch send, receive and delete on the
//! FIFO vitals queue and the alert queue, and redrive to the DLQ.

mod aws_support;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use aws_support::{at, patient, site, trial, Emulator};
use trialwatch::alert::{Alert, AlertReason};
use trialwatch::aws::{SqsAlertQueue, SqsVitalsQueue};
use trialwatch::news2::RiskLevel;
use trialwatch::ports::{AlertQueue, VitalsQueue};
use trialwatch::vitals::{VitalCode, VitalReading, VitalValue, VitalsMessage};
use trialwatch::{AlertId, PatientId, ReadingId};

fn vitals(p: &PatientId, n: usize) -> VitalsMessage {
    let readings = (0..n)
        .map(|i| VitalReading {
            reading_id: ReadingId::parse(&format!("r-{p}-{i}")).unwrap(),
            code: VitalCode::RespiratoryRate,
            value: VitalValue::Number(14.0 + i as f64),
            observed_at: at("2026-11-26T20:00:00Z") + chrono::Duration::seconds(i as i64),
        })
        .collect();
    VitalsMessage { trial_id: trial(), patient_id: p.clone(), readings }
}

fn alert(n: i64, level: RiskLevel) -> Alert {
    let p = patient(&format!("P-{n}"));
    Alert {
        alert_id: AlertId::for_escalation(&trial(), &p, level, n.unsigned_abs()),
        trial_id: trial(),
        patient_id: p,
        site_id: site("s1"),
        level,
        reason: AlertReason::News2 { score: 7, components: vec![] },
        created_at: at("2026-11-26T20:00:00Z"),
        correlation_id: None,
    }
}

/// Receives until `want` messages arrived or the queue stays empty, deleting
/// each batch with DeleteMessageBatch.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, want: usize) -> Vec<Message> {
    let mut got = Vec::new();
    for _ in 0..20 {
        if got.len() >= want {
            break;
        }
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            continue;
        }
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, m)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(format!("d{i}"))
                    .receipt_handle(m.receipt_handle().unwrap())
                    .build()
                    .unwrap()
            })
            .collect();
        let deleted = sqs.delete_message_batch().queue_url(url).set_entries(Some(entries)).send().await.expect("delete");
        assert!(deleted.failed().is_empty(), "{:?}", deleted.failed());
        got.extend(batch);
    }
    got
}

async fn visible_count(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.expect("receive");
    out.messages.unwrap_or_default().len()
}

#[tokio::test]
async fn vitals_go_out_in_one_batch_grouped_by_patient_and_a_resend_is_deduplicated() {
    // GIVEN the FIFO vitals queue and three messages of two patients
    let env = Emulator::provision("vitalsq").await;
    let url = env.provisioned.resources.vitals_queue_url.clone();
    let (sqs, requests) = env.counted_sqs();
    let queue = SqsVitalsQueue::with_client(sqs.clone(), &url);
    let (p1, p2) = (patient("P-1"), patient("P-2"));
    let messages = vec![vitals(&p1, 3), vitals(&p2, 1), vitals(&p1, 2)];
    // WHEN sent, then sent again (the client retried the request)
    queue.send_vitals(&messages).await.unwrap();
    queue.send_vitals(&messages).await.unwrap();
    // THEN each send was one SendMessageBatch
    assert_eq!(requests.get("SendMessageBatch"), 2);
    // AND exactly the three messages arrive, each in its patient's group, and are deleted
    let received = drain(&sqs, &url, 3).await;
    let mut bodies: Vec<(String, VitalsMessage)> = received
        .iter()
        .map(|m| {
            let group = m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId)).cloned().unwrap_or_default();
            (group, serde_json::from_str(m.body().unwrap()).unwrap())
        })
        .collect();
    bodies.sort_by_key(|(_, m)| (m.patient_id.clone(), m.readings.len()));
    let mut expected: Vec<(String, VitalsMessage)> = messages.iter().map(|m| (m.group_id(), m.clone())).collect();
    expected.sort_by_key(|(_, m)| (m.patient_id.clone(), m.readings.len()));
    assert_eq!(bodies, expected);
    assert_eq!(visible_count(&sqs, &url).await, 0, "deleted messages do not come back");
}

#[tokio::test]
async fn alerts_go_out_ten_per_batch_with_level_and_trial_attributes() {
    // GIVEN 23 alerts
    let env = Emulator::provision("alertq").await;
    let url = env.provisioned.resources.alert_queue_url.clone();
    let (sqs, requests) = env.counted_sqs();
    let queue = SqsAlertQueue::with_client(sqs.clone(), &url);
    let alerts: Vec<Alert> = (0..23).map(|n| alert(n, if n % 2 == 0 { RiskLevel::High } else { RiskLevel::Medium })).collect();
    // WHEN enqueued
    queue.enqueue(&alerts).await.unwrap();
    // THEN ceil(23/10) = 3 SendMessageBatch calls
    assert_eq!(requests.get("SendMessageBatch"), 3);
    // AND every alert arrives once as its JSON, with the attributes subscription filters use
    let received = drain(&sqs, &url, 23).await;
    assert_eq!(received.len(), 23);
    for m in &received {
        let a: Alert = serde_json::from_str(m.body().unwrap()).unwrap();
        let attrs = m.message_attributes().unwrap();
        assert_eq!(attrs["level"].string_value(), Some(a.level.as_str()));
        assert_eq!(attrs["trialId"].string_value(), Some(a.trial_id.as_str()));
        assert!(alerts.contains(&a));
    }
    let mut ids: Vec<String> = received.iter().map(|m| m.body().unwrap().to_owned()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 23);
}

#[tokio::test]
async fn an_alert_received_past_max_receive_count_lands_in_the_dead_letter_queue() {
    // GIVEN the alert queue with its template redrive policy, and one alert on it
    let env = Emulator::provision("dlq").await;
    let url = env.provisioned.resources.alert_queue_url.clone();
    let dead = env.provisioned.dead_letters.get("AlertQueue").expect("AlertQueue has a redrive policy").clone();
    let sqs = aws_sdk_sqs::Client::new(&env.sdk);
    let a = alert(1, RiskLevel::High);
    SqsAlertQueue::with_client(sqs.clone(), &url).enqueue(std::slice::from_ref(&a)).await.unwrap();
    // WHEN a failing consumer receives it maxReceiveCount times without deleting it
    // (visibility timeout 0: it is visible again at once, as after a failed invocation)
    for attempt in 1..=dead.max_receive_count {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let out = sqs.receive_message().queue_url(&url).visibility_timeout(0).wait_time_seconds(1).send().await.unwrap();
        assert_eq!(out.messages.unwrap_or_default().len(), 1, "receive {attempt} of {}", dead.max_receive_count);
    }
    // THEN the next receive finds nothing: SQS moved it to the DLQ, where it waits intact
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(visible_count(&sqs, &url).await, 0);
    let parked = drain(&sqs, &dead.url, 1).await;
    assert_eq!(parked.len(), 1);
    assert_eq!(serde_json::from_str::<Alert>(parked[0].body().unwrap()).unwrap(), a);
}
