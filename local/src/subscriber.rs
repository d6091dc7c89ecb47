//! The local event subscriber: the provisioner's rule delivers every
//! `trialwatch` event on the bus to the queue `<bus>-subscriber` (the
//! emulator's PutEvents delivers to SQS targets, as EventBridge does); this
//! reads that queue empty and counts the events by `detail-type`, as an
//! integrator's consumer would see them. The queue is drained first, at the
//! start of a run, so a count covers that run only.

use std::collections::BTreeMap;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;

/// Events counted by detail-type, with each event's `detail`.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub by_type: BTreeMap<String, u64>,
    pub details: Vec<(String, serde_json::Value)>,
}

impl Received {
    pub fn total(&self) -> u64 {
        self.by_type.values().sum()
    }
}

/// Receives (and deletes) everything in the queue now.
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Received, String> {
    let mut received = Received::default();
    let mut empty = 0;
    // Two empty answers in a row: SQS may answer empty once while holding messages.
    while empty < 2 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| format!("sqs.ReceiveMessage(event subscriber): {e}"))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        let mut deletes = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let event: serde_json::Value = m.body().and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
            let kind = event["detail-type"].as_str().unwrap_or("(not an event)").to_owned();
            *received.by_type.entry(kind.clone()).or_default() += 1;
            received.details.push((kind, event["detail"].clone()));
            if let Some(handle) = m.receipt_handle() {
                deletes.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .build()
                        .map_err(|e| e.to_string())?,
                );
            }
        }
        sqs.delete_message_batch()
            .queue_url(url)
            .set_entries(Some(deletes))
            .send()
            .await
            .map_err(|e| format!("sqs.DeleteMessageBatch(event subscriber): {e}"))?;
    }
    Ok(received)
}

/// "AlertRaised 12, RiskLevelChanged 30, ..." (or "none").
pub fn fmt_by_type(r: &Received) -> String {
    if r.by_type.is_empty() {
        return "none".into();
    }
    r.by_type.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}
