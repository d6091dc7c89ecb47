//! One SQS record: its body parsed and re-checked, and why it failed. The
//! shared runner parks the permanent failures in the vitals DLQ and turns the
//! transient ones into `batchItemFailures`.

use chrono::{DateTime, Utc};
use trialwatch::edge::sqs::Disposition;
use trialwatch::timestamp::MAX_FUTURE_SKEW_SECONDS;
use trialwatch::vitals::{VitalCode, VitalReading, VitalValue, VitalsMessage, MAX_READINGS_PER_REQUEST};

use crate::score_batch::ScoreBatchError;

/// Why a record was reported as a batch item failure. The one mapping from
/// anything that goes wrong to what is logged: codes and positions only,
/// never a body or a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordFailure {
    #[error("the record has no body")]
    MissingBody,
    /// The body is not JSON (or is truncated).
    #[error("the body is not JSON")]
    MalformedJson,
    /// JSON, but not a `VitalsMessage` (unknown or missing field, wrong type, bad id).
    #[error("the body is not a vitals message")]
    NotAVitalsMessage,
    /// A reading fails the same plausibility rules epro-api applies; integrators
    /// may write to the queue directly, so the analyzer never trusts the sender.
    #[error("reading {index} is not plausible: {reason}")]
    Implausible { index: usize, reason: &'static str },
    /// The record's `MessageGroupId` is not `trialId#patientId` of its body: a
    /// direct sender's mistake (or an attempt to write into another patient's
    /// group). The FIFO order and the one-patient-per-group rule rest on it.
    #[error("the message group is not the body's trial#patient")]
    GroupMismatch,
    /// The sender is a direct integrator not allowed to send for the body's trial.
    #[error("the sender may not send for this trial")]
    SenderNotAllowed,
    /// Absent even on a consistent read (never parked on a stale one).
    #[error("the trial is not configured")]
    UnknownTrial,
    /// Absent even on a consistent read (never parked on a stale one).
    #[error("the patient is not enrolled in the trial")]
    NotEnrolled,
    /// A store or queue failed; `code` is the port's `StorageError::code()`.
    #[error("a dependency failed: {code}")]
    Dependency { code: &'static str },
    /// Other writers kept winning the state item's version check.
    #[error("the state item stayed contended")]
    StateContention,
    #[error("processing panicked")]
    Panicked,
}

impl RecordFailure {
    pub fn code(&self) -> &'static str {
        match self {
            RecordFailure::MissingBody => "missing-body",
            RecordFailure::MalformedJson => "malformed-json",
            RecordFailure::NotAVitalsMessage => "not-a-vitals-message",
            RecordFailure::Implausible { reason, .. } => reason,
            RecordFailure::GroupMismatch => "group-id-mismatch",
            RecordFailure::SenderNotAllowed => "sender-not-allowed-for-trial",
            RecordFailure::UnknownTrial => "unknown-trial",
            RecordFailure::NotEnrolled => "patient-not-enrolled",
            RecordFailure::Dependency { code } => code,
            RecordFailure::StateContention => "state-contention",
            RecordFailure::Panicked => "panicked",
        }
    }
}

impl trialwatch::edge::sqs::Failure for RecordFailure {
    fn panicked() -> Self {
        RecordFailure::Panicked
    }
    fn code(&self) -> &'static str {
        RecordFailure::code(self)
    }
    /// Permanent: the record itself is wrong, so no redelivery can fix it; it
    /// is parked at once rather than waiting out the visibility timeout five
    /// times. Transient: the record may be good and something around it was
    /// not. A panic is a bug of ours, not proof the record is bad: a fixed
    /// deploy processes it, and the queue's redrive policy parks it if not.
    fn disposition(&self) -> Disposition {
        match self {
            RecordFailure::MissingBody
            | RecordFailure::MalformedJson
            | RecordFailure::NotAVitalsMessage
            | RecordFailure::Implausible { .. }
            | RecordFailure::GroupMismatch
            | RecordFailure::SenderNotAllowed
            | RecordFailure::UnknownTrial
            | RecordFailure::NotEnrolled => Disposition::Permanent,
            RecordFailure::Dependency { .. } | RecordFailure::StateContention | RecordFailure::Panicked => Disposition::Transient,
        }
    }
}

/// The one mapping from the use case's answer for a patient to what its
/// records become: the patient's own absence (after a consistent read) is
/// permanent and parks them; everything around them is transient, and they
/// come back with their groups' later records.
impl From<ScoreBatchError> for RecordFailure {
    fn from(e: ScoreBatchError) -> Self {
        match e {
            ScoreBatchError::UnknownTrial => RecordFailure::UnknownTrial,
            ScoreBatchError::NotEnrolled => RecordFailure::NotEnrolled,
            ScoreBatchError::Read(e)
            | ScoreBatchError::ReadingsWrite(e)
            | ScoreBatchError::AlertSend(e)
            | ScoreBatchError::StateWrite(e) => RecordFailure::Dependency { code: e.code() },
            ScoreBatchError::StateContention => RecordFailure::StateContention,
            ScoreBatchError::Panicked => RecordFailure::Panicked,
        }
    }
}

/// Parses and re-validates a record body.
pub fn parse_body(body: Option<&str>, now: DateTime<Utc>) -> Result<VitalsMessage, RecordFailure> {
    let body = body.ok_or(RecordFailure::MissingBody)?;
    // serde's messages quote the offending value; only its category is kept.
    let message: VitalsMessage = serde_json::from_str(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => RecordFailure::NotAVitalsMessage,
        _ => RecordFailure::MalformedJson,
    })?;
    check_plausible(&message, now)?;
    Ok(message)
}

fn check_plausible(message: &VitalsMessage, now: DateTime<Utc>) -> Result<(), RecordFailure> {
    if message.readings.is_empty() {
        return Err(RecordFailure::Implausible { index: 0, reason: "no-readings" });
    }
    if message.readings.len() > MAX_READINGS_PER_REQUEST {
        return Err(RecordFailure::Implausible { index: MAX_READINGS_PER_REQUEST, reason: "too-many-readings" });
    }
    let latest_allowed = now + chrono::Duration::seconds(MAX_FUTURE_SKEW_SECONDS);
    for (index, r) in message.readings.iter().enumerate() {
        check_reading(r, latest_allowed).map_err(|reason| RecordFailure::Implausible { index, reason })?;
    }
    Ok(())
}

fn check_reading(r: &VitalReading, latest_allowed: DateTime<Utc>) -> Result<(), &'static str> {
    match (r.code, r.value) {
        (VitalCode::SupplementalOxygen, VitalValue::Flag(_)) | (VitalCode::Consciousness, VitalValue::Avpu(_)) => {}
        (code, VitalValue::Number(x)) => match code.plausible_range() {
            // In range yet unstorable (1e-200 breaths a minute): the API refuses it, but a
            // direct integrator's message would otherwise fail the state write on every
            // redelivery before reaching the DLQ; refused now, it goes there at once.
            Some(_) if x.is_finite() && !trialwatch::validation::storable_number(x) => return Err("value-unstorable"),
            Some((lo, hi)) if x.is_finite() && (lo..=hi).contains(&x) => {}
            Some(_) => return Err("value-out-of-range"),
            None => return Err("value-of-wrong-kind"),
        },
        _ => return Err("value-of-wrong-kind"),
    }
    if r.observed_at > latest_allowed {
        return Err("observed-in-the-future");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-26T20:00:00Z".parse().unwrap()
    }

    fn body(readings: serde_json::Value) -> String {
        serde_json::json!({"trialId": "t1", "patientId": "p1", "readings": readings}).to_string()
    }

    fn reading(code: &str, value: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"readingId": "r1", "code": code, "value": value, "observedAt": "2026-11-26T19:59:00Z"})
    }

    #[test]
    fn a_valid_body_parses() {
        let m = parse_body(Some(&body(serde_json::json!([reading("heart_rate", 72.into()), reading("consciousness", "A".into())]))), now())
            .unwrap();
        assert_eq!(m.readings.len(), 2);
    }

    #[test]
    fn each_kind_of_bad_body_has_its_own_reason() {
        let cases: Vec<(Option<String>, &str)> = vec![
            (None, "missing-body"),
            (Some("{not json".into()), "malformed-json"),
            (Some(r#"{"trialId":"t1","patientId":"p1","readings":[],"extra":1}"#.into()), "not-a-vitals-message"),
            (Some(r#"{"trialId":"t#1","patientId":"p1","readings":[]}"#.into()), "not-a-vitals-message"),
            (Some(body(serde_json::json!([]))), "no-readings"),
            (Some(body(serde_json::json!([reading("heart_rate", 301.into())]))), "value-out-of-range"),
            (Some(body(serde_json::json!([reading("spo2", true.into())]))), "value-of-wrong-kind"),
            (Some(body(serde_json::json!([reading("supplemental_oxygen", 1.into())]))), "value-of-wrong-kind"),
            (Some(body(serde_json::json!([reading("consciousness", 1.into())]))), "value-of-wrong-kind"),
        ];
        for (b, expected) in cases {
            assert_eq!(parse_body(b.as_deref(), now()).unwrap_err().code(), expected, "{b:?}");
        }
    }

    #[test]
    fn a_reading_from_the_future_beyond_the_skew_is_refused() {
        let mut r = reading("heart_rate", 72.into());
        r["observedAt"] = "2026-11-26T20:06:00Z".into();
        assert_eq!(
            parse_body(Some(&body(serde_json::json!([r]))), now()),
            Err(RecordFailure::Implausible { index: 0, reason: "observed-in-the-future" })
        );
    }

    #[test]
    fn an_in_range_number_dynamodb_cannot_store_is_refused_as_permanent() {
        // GIVEN a respiratory rate inside 0-80 but below DynamoDB's smallest non-zero number
        let e = parse_body(Some(&body(serde_json::json!([reading("respiratory_rate", serde_json::json!(1e-200))]))), now()).unwrap_err();
        // THEN the record is refused with its own reason, which parks it in the DLQ at once
        assert_eq!(e, RecordFailure::Implausible { index: 0, reason: "value-unstorable" });
        assert_eq!(trialwatch::edge::sqs::Failure::disposition(&e), Disposition::Permanent);
        // AND zero, which DynamoDB stores, is still accepted
        assert!(parse_body(Some(&body(serde_json::json!([reading("respiratory_rate", serde_json::json!(0))]))), now()).is_ok());
    }

    #[test]
    fn failure_reasons_never_carry_the_value() {
        let e =
            parse_body(Some(&body(serde_json::json!([reading("heart_rate", 299.5.into()), reading("heart_rate", 987654.into())]))), now())
                .unwrap_err();
        assert!(!e.to_string().contains("987654") && !e.code().contains("987654"));
        assert_eq!(e, RecordFailure::Implausible { index: 1, reason: "value-out-of-range" });
    }

    #[test]
    fn the_use_case_s_absences_park_the_records_and_every_other_error_retries_them_with_the_same_code() {
        use trialwatch::edge::sqs::Failure;
        use trialwatch::ports::StorageError;
        // GIVEN every error score_batch answers a patient with
        let down = || StorageError::Unavailable("throttled".into());
        let cases = [
            (ScoreBatchError::UnknownTrial, Disposition::Permanent),
            (ScoreBatchError::NotEnrolled, Disposition::Permanent),
            (ScoreBatchError::Read(down()), Disposition::Transient),
            (ScoreBatchError::ReadingsWrite(down()), Disposition::Transient),
            (ScoreBatchError::AlertSend(down()), Disposition::Transient),
            (ScoreBatchError::StateWrite(StorageError::Corrupt("odd".into())), Disposition::Transient),
            (ScoreBatchError::StateContention, Disposition::Transient),
            (ScoreBatchError::Panicked, Disposition::Transient),
        ];
        for (e, disposition) in cases {
            // WHEN the edge maps it THEN it parks or retries, and the reason logged and parked is the use case's code
            let f = RecordFailure::from(e.clone());
            assert_eq!((f.disposition(), Failure::code(&f)), (disposition, e.code()), "{e:?}");
        }
        // AND a storage failure keeps the port's code, as before the use case existed
        assert_eq!(RecordFailure::from(ScoreBatchError::StateWrite(down())), RecordFailure::Dependency { code: "unavailable" });
    }

    #[test]
    fn the_record_s_own_faults_are_permanent_and_everything_around_it_is_transient() {
        use trialwatch::edge::sqs::Failure;
        let permanent = [
            RecordFailure::MissingBody,
            RecordFailure::MalformedJson,
            RecordFailure::NotAVitalsMessage,
            RecordFailure::Implausible { index: 0, reason: "value-out-of-range" },
            RecordFailure::GroupMismatch,
            RecordFailure::SenderNotAllowed,
            RecordFailure::UnknownTrial,
            RecordFailure::NotEnrolled,
        ];
        let transient = [RecordFailure::Dependency { code: "unavailable" }, RecordFailure::StateContention, RecordFailure::Panicked];
        for f in permanent {
            assert_eq!(f.disposition(), Disposition::Permanent, "{f:?}");
        }
        for f in transient {
            assert_eq!(f.disposition(), Disposition::Transient, "{f:?}");
        }
    }
}
