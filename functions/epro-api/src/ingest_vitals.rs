//! The `ingest_vitals` use case: a patient's device readings, validated and
//! packed into FIFO messages for vitals-analyzer (group trial#patient,
//! content-derived dedup id). Transport-free: the HTTP edge (`crate::vitals`)
//! decodes native or FHIR bodies into an [`IngestVitalsCommand`] and maps the
//! [`IngestVitalsError`] to problem+json.

use trialwatch::aws::sqs::{batched, MAX_MESSAGE_BYTES};
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::ports::{Clock, StorageError, VitalsQueue};
use trialwatch::validation::{FieldErrors, Validator};
use trialwatch::vitals::{ReadingInput, VitalReading, VitalsMessage, MAX_READINGS_PER_REQUEST};
use trialwatch::{PatientId, TrialId};

use crate::enrolled::{require_enrolled, NotEnrolled};

/// Room for the message envelope (`{"trialId":…,"patientId":…,"readings":[]}`)
/// with the longest ids, and for the batch's per-entry overhead.
const ENVELOPE_BYTES: usize = 512;

/// Decoded readings and whose they are.
#[derive(Debug, Clone)]
pub struct IngestVitalsCommand {
    pub trial_id: TrialId,
    pub patient_id: PatientId,
    /// Each reading with the name its errors carry (`readings[3]`, or the FHIR path).
    pub readings: Vec<(String, ReadingInput)>,
    /// The patient's enrolment as the access check read it.
    pub enrolment: Option<Enrolment>,
}

/// Readings queued for scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VitalsAccepted {
    pub readings: usize,
}

/// What can stop an ingest.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestVitalsError {
    /// Not enrolled (a withdrawn patient's readings from before the
    /// withdrawal are still taken).
    #[error(transparent)]
    NotEnrolled(#[from] NotEnrolled),
    /// Readings out of range, too many or none, or observed after the
    /// patient withdrew: every one named at once.
    #[error("the readings are not valid")]
    Invalid(FieldErrors),
    /// The queue refused or failed the send (the whole request may be retried).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Validates every reading, then sends them in as few messages and calls as
/// fit the queue's limits, in order.
pub async fn ingest_vitals(
    queue: &impl VitalsQueue,
    clock: &impl Clock,
    cmd: IngestVitalsCommand,
) -> Result<VitalsAccepted, IngestVitalsError> {
    let IngestVitalsCommand { trial_id, patient_id, readings: inputs, enrolment } = cmd;
    // A withdrawn patient's readings observed before the withdrawal were taken
    // under consent and are still accepted; later ones are refused below.
    let enrolment = match enrolment {
        Some(e) if e.status == EnrolmentStatus::Withdrawn => e,
        other => require_enrolled(other)?,
    };
    let withdrawn_at = enrolment.withdrawal_time();
    let now = clock.now();
    let mut v = Validator::new();
    if inputs.is_empty() || inputs.len() > MAX_READINGS_PER_REQUEST {
        v.error("readings", format!("must hold 1 to {MAX_READINGS_PER_REQUEST} readings"));
    }
    let mut readings: Vec<VitalReading> = Vec::with_capacity(inputs.len().min(MAX_READINGS_PER_REQUEST));
    for (path, input) in inputs.iter().take(MAX_READINGS_PER_REQUEST) {
        let Some(r) = input.validate(path, now, &mut v) else { continue };
        // 422, not 409: the fault is in named fields, and resending the same
        // readings can never succeed, whereas a 409 invites a retry once the
        // resource's state changes. Every such reading is named at once.
        match withdrawn_at.filter(|_| enrolment.observed_after_withdrawal(r.observed_at)) {
            Some(w) => v.error(
                format!("{path}.observedAt"),
                format!("observed after the patient withdrew consent at {}", trialwatch::timestamp::format(w)),
            ),
            None => readings.push(r),
        }
    }
    v.finish(()).map_err(IngestVitalsError::Invalid)?;
    let accepted = readings.len();
    for batch in batches(pack(&trial_id, &patient_id, readings)) {
        // Batches go one after another; FIFO order within the group is kept.
        queue.send_vitals(&batch).await?;
    }
    tracing::info!(trial_id = %trial_id, accepted, "vitals queued");
    Ok(VitalsAccepted { readings: accepted })
}

/// Packs readings into as few messages as fit under the SQS payload limit.
/// At most 500 small readings (~150 bytes each) always fit in one.
pub fn pack(trial: &TrialId, patient: &PatientId, readings: Vec<VitalReading>) -> Vec<VitalsMessage> {
    let budget = MAX_MESSAGE_BYTES - ENVELOPE_BYTES;
    let mut messages = Vec::new();
    let mut current: Vec<VitalReading> = Vec::new();
    let mut size = 0;
    for r in readings {
        let len = serde_json::to_vec(&r).map_or(budget, |b| b.len()) + 1;
        if !current.is_empty() && size + len > budget {
            messages.push(VitalsMessage { trial_id: trial.clone(), patient_id: patient.clone(), readings: std::mem::take(&mut current) });
            size = 0;
        }
        size += len;
        current.push(r);
    }
    if !current.is_empty() {
        messages.push(VitalsMessage { trial_id: trial.clone(), patient_id: patient.clone(), readings: current });
    }
    messages
}

/// Groups messages into SendMessageBatch calls by the shared SQS rule (10
/// entries, 256 KiB per call), each message counted with room for its
/// envelope. Normally one message, so one call.
pub fn batches(messages: Vec<VitalsMessage>) -> Vec<Vec<VitalsMessage>> {
    batched(messages, |m| serde_json::to_vec(m).map_or(MAX_MESSAGE_BYTES, |b| b.len()) + ENVELOPE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::aws::sqs::{MAX_BATCH_BYTES, MAX_BATCH_MESSAGES};
    use trialwatch::vitals::{VitalCode, VitalValue};
    use trialwatch::ReadingId;

    fn reading(i: usize, id_len: usize) -> VitalReading {
        VitalReading {
            reading_id: ReadingId::parse(&format!("{i:0>width$}", width = id_len)).unwrap(),
            code: VitalCode::HeartRate,
            value: VitalValue::Number(72.5),
            observed_at: "2026-11-26T19:59:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn five_hundred_readings_fit_one_message_and_one_call() {
        let (t, p) = (TrialId::parse("tw-demo").unwrap(), PatientId::parse("P0001").unwrap());
        let msgs = pack(&t, &p, (0..500).map(|i| reading(i, 64)).collect());
        assert_eq!(msgs.len(), 1);
        assert_eq!(batches(msgs).len(), 1);
    }

    #[test]
    fn every_message_and_every_batch_stays_under_the_sqs_limit() {
        // GIVEN more readings than one message can carry
        let (t, p) = (TrialId::parse("tw-demo").unwrap(), PatientId::parse("P0001").unwrap());
        let readings: Vec<_> = (0..4000).map(|i| reading(i, 64)).collect();
        // WHEN packed and batched
        let msgs = pack(&t, &p, readings);
        let total: usize = msgs.iter().map(|m| m.readings.len()).sum();
        let groups = batches(msgs);
        // THEN nothing is lost and every limit holds
        assert_eq!(total, 4000);
        assert!(groups.len() > 1);
        for b in &groups {
            assert!(b.len() <= MAX_BATCH_MESSAGES);
            let sum: usize = b.iter().map(|m| serde_json::to_vec(m).unwrap().len()).sum();
            assert!(sum <= MAX_BATCH_BYTES, "{sum}");
        }
    }

    // ---- the use case on in-memory ports, without HTTP ----

    use crate::handler_tests::{enrolment, pid, tid, NOW};
    use trialwatch::clock::FakeClock;
    use trialwatch::memory::MemoryQueue;

    /// The readings of `events/epro-post-vitals.json`, named as the edge names them.
    fn readings() -> Vec<(String, ReadingInput)> {
        let event: serde_json::Value = serde_json::from_str(include_str!("../../../events/epro-post-vitals.json")).unwrap();
        let body: serde_json::Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
        let inputs: Vec<ReadingInput> = serde_json::from_value(body["readings"].clone()).unwrap();
        inputs.into_iter().enumerate().map(|(i, r)| (format!("readings[{i}]"), r)).collect()
    }

    fn command(status: Option<EnrolmentStatus>, readings: Vec<(String, ReadingInput)>) -> IngestVitalsCommand {
        IngestVitalsCommand {
            trial_id: tid("tw-demo"),
            patient_id: pid("P0001"),
            readings,
            enrolment: status.map(|s| enrolment("P0001", "site-leeds", s)),
        }
    }

    #[tokio::test]
    async fn an_enrolled_patients_readings_are_accepted_and_queued_in_one_message() {
        let (queue, clock) = (MemoryQueue::new(), FakeClock::at(NOW));
        let accepted = ingest_vitals(&queue, &clock, command(Some(EnrolmentStatus::Enrolled), readings())).await.unwrap();
        assert_eq!(accepted, VitalsAccepted { readings: 8 });
        assert_eq!(queue.sent_vitals().len(), 1);
        assert_eq!(queue.sent_vitals()[0].readings.len(), 8);
    }

    #[tokio::test]
    async fn a_patient_not_enrolled_is_not_enrolled_and_nothing_is_sent() {
        let (queue, clock) = (MemoryQueue::new(), FakeClock::at(NOW));
        let e = ingest_vitals(&queue, &clock, command(None, readings())).await.unwrap_err();
        assert_eq!(e, IngestVitalsError::NotEnrolled(NotEnrolled("the patient is not enrolled in this trial".into())));
        let completed = ingest_vitals(&queue, &clock, command(Some(EnrolmentStatus::Completed), readings())).await.unwrap_err();
        assert!(matches!(completed, IngestVitalsError::NotEnrolled(_)), "{completed:?}");
        assert!(queue.sent_vitals().is_empty());
    }

    #[tokio::test]
    async fn readings_after_a_withdrawal_are_invalid_and_each_is_named() {
        // GIVEN P0001 withdrew before the readings were observed
        let (queue, clock) = (MemoryQueue::new(), FakeClock::at(NOW));
        let mut cmd = command(Some(EnrolmentStatus::Withdrawn), readings());
        if let Some(e) = cmd.enrolment.as_mut() {
            e.withdrawn_at = Some("2026-11-02T09:00:00.000Z".into());
        }
        // WHEN they are ingested
        let e = ingest_vitals(&queue, &clock, cmd).await.unwrap_err();
        // THEN every reading is named by its observedAt, and nothing is sent
        let IngestVitalsError::Invalid(fields) = e else { panic!("{e:?}") };
        assert_eq!(fields.len(), 8);
        assert!(fields.iter().all(|f| f.field.ends_with(".observedAt")), "{fields:?}");
        assert!(queue.sent_vitals().is_empty());
    }

    #[tokio::test]
    async fn no_readings_is_invalid_naming_readings() {
        let (queue, clock) = (MemoryQueue::new(), FakeClock::at(NOW));
        let e = ingest_vitals(&queue, &clock, command(Some(EnrolmentStatus::Enrolled), vec![])).await.unwrap_err();
        let IngestVitalsError::Invalid(fields) = e else { panic!("{e:?}") };
        assert_eq!(fields[0].field, "readings");
    }

    #[tokio::test]
    async fn a_queue_that_fails_the_send_is_a_storage_error() {
        let (queue, clock) = (MemoryQueue::new(), FakeClock::at(NOW));
        queue.fail_next("send_vitals", 1);
        let e = ingest_vitals(&queue, &clock, command(Some(EnrolmentStatus::Enrolled), readings())).await.unwrap_err();
        assert!(matches!(e, IngestVitalsError::Storage(StorageError::Unavailable(_))), "{e:?}");
    }
}
