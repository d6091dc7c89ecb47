//! The vitals queue's records as the analyzer receives them: arbitrary bytes
//! as a whole SQS event (through the shared batch runner, `edge::sqs`), else
//! as one record's body. Properties: nothing panics, the batch response names
//! only records of the batch, and a message the analyzer accepts can be
//! stored (each numeric value fits a DynamoDB number), since a record that
//! fails its write is redelivered until it reaches the DLQ.
#![no_main]

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use trialwatch::alert::Alert;
use trialwatch::edge::sqs::{Batch, FailurePolicy};
use trialwatch::validation::storable_number;
use trialwatch::vitals::VitalValue;
use vitals_analyzer::record::parse_body;

fuzz_target!(|data: &[u8]| {
    let now: DateTime<Utc> = "2026-11-27T12:00:00Z".parse().expect("a fixed instant");
    let event = match serde_json::from_slice::<SqsEvent>(data) {
        Ok(event) => event,
        Err(_) => {
            let mut record = SqsMessage::default();
            record.message_id = Some("m-1".into());
            record.body = Some(String::from_utf8_lossy(data).into_owned());
            let mut event = SqsEvent::default();
            event.records = vec![record];
            event
        }
    };
    let ids: Vec<Option<String>> = event.records.iter().map(|r| r.message_id.clone()).collect();
    let batch = Batch::new(event, FailurePolicy::FifoGroup);
    let (messages, outcomes) = batch.decode(|body| parse_body(body, now));
    for (_, message) in &messages {
        for r in &message.readings {
            if let VitalValue::Number(x) = r.value {
                assert!(storable_number(x), "the analyzer accepted a value DynamoDB cannot store");
            }
        }
    }
    if let Ok(response) = batch.respond(&outcomes) {
        for failure in &response.batch_item_failures {
            assert!(ids.iter().any(|id| id.as_deref() == Some(failure.item_identifier.as_str())));
        }
    }
    for record in batch.records() {
        if let Some(body) = record.body.as_deref() {
            let _ = serde_json::from_str::<Alert>(body);
        }
    }
});
