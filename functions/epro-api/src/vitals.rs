//! `POST /v1/trials/{trialId}/patients/{patientId}/vitals`: validate, pack
//! into FIFO messages (group trial#patient, content-derived dedup id), send,
//! 202. Native `{readings: [...]}` or FHIR Observation / Bundle.

use lambda_http::Request;
use serde::{Deserialize, Serialize};
use trialwatch::aws::sqs::{batched, MAX_MESSAGE_BYTES};
use trialwatch::enrolment::EnrolmentStatus;
use trialwatch::ports::{Clock, EnrolmentStore, VitalsQueue};
use trialwatch::validation::Validator;
use trialwatch::vitals::{ReadingInput, VitalReading, VitalsMessage, MAX_READINGS_PER_REQUEST};
use trialwatch::{Error, PatientId, TrialId};

use crate::auth::Principal;
use crate::body::MediaType;
use crate::deps::Deps;
use crate::enrolled::require_enrolled;
use crate::patients::{authorize, Purpose};
use trialwatch::edge::http::respond::{self, HttpResponse};

/// Room for the message envelope (`{"trialId":…,"patientId":…,"readings":[]}`)
/// with the longest ids, and for the batch's per-entry overhead.
const ENVELOPE_BYTES: usize = 512;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VitalsRequest {
    #[serde(deserialize_with = "trialwatch::json_object::each")]
    readings: Vec<ReadingInput>,
}

#[derive(Serialize)]
struct Accepted {
    accepted: usize,
}

pub async fn post<S: EnrolmentStore + 'static, V: VitalsQueue, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial_id: TrialId,
    patient_id: PatientId,
) -> Result<HttpResponse, Error> {
    let enrolment = authorize(deps, p, &trial_id, &patient_id, Purpose::Record).await?;
    let inputs = parse(req, &patient_id)?;
    // A withdrawn patient's readings observed before the withdrawal were taken
    // under consent and are still accepted; later ones are refused below.
    let enrolment = match enrolment {
        Some(e) if e.status == EnrolmentStatus::Withdrawn => e,
        other => require_enrolled(other)?,
    };
    let withdrawn_at = enrolment.withdrawal_time();
    let now = deps.clock.now();
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
    v.finish(())?;
    let accepted = readings.len();
    for batch in batches(pack(&trial_id, &patient_id, readings)) {
        // Batches go one after another; FIFO order within the group is kept.
        deps.vitals_queue.send_vitals(&batch).await?;
    }
    tracing::info!(trial_id = %trial_id, accepted, "vitals queued");
    Ok(respond::json(202, &Accepted { accepted }))
}

/// Readings, each with the name its errors carry (`readings[3]`, or the FHIR path).
fn parse(req: &Request, patient: &PatientId) -> Result<Vec<(String, ReadingInput)>, Error> {
    let bytes = crate::body::bytes(req)?;
    match crate::body::media_type(req)? {
        MediaType::Json => {
            let body: VitalsRequest = crate::body::decode(bytes)?;
            Ok(body.readings.into_iter().enumerate().map(|(i, r)| (format!("readings[{i}]"), r)).collect())
        }
        MediaType::FhirJson => {
            let resource: serde_json::Value = crate::body::decode(bytes)?;
            Ok(crate::fhir::readings(resource, patient)?.into_iter().map(|r| (r.path, r.input)).collect())
        }
    }
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
}
