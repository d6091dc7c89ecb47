//! A patient's enrolment in a trial. Subject ids are pseudonymous; nothing here
//! identifies a person.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{PatientId, SiteId, TrialId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnrolmentStatus {
    Enrolled,
    Withdrawn,
    Completed,
}

impl EnrolmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EnrolmentStatus::Enrolled => "enrolled",
            EnrolmentStatus::Withdrawn => "withdrawn",
            EnrolmentStatus::Completed => "completed",
        }
    }
    pub const ALL: [EnrolmentStatus; 3] = [EnrolmentStatus::Enrolled, EnrolmentStatus::Withdrawn, EnrolmentStatus::Completed];
}

/// Body of `PUT /v1/trials/{t}/patients/{p}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrolmentRequest {
    pub site_id: SiteId,
    pub status: EnrolmentStatus,
    #[serde(default)]
    pub hypercapnic: bool,
    /// Why: required to withdraw a patient or to change a recorded enrolment
    /// (kept in the audit entry, not on the enrolment).
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enrolment {
    pub trial_id: TrialId,
    pub patient_id: PatientId,
    pub site_id: SiteId,
    pub status: EnrolmentStatus,
    #[serde(default)]
    pub hypercapnic: bool,
    /// RFC 3339; first enrolment.
    pub enrolled_at: String,
    pub updated_at: String,
    /// Maintained by the submission transaction.
    #[serde(default)]
    pub submission_count: u64,
    #[serde(default)]
    pub last_submission_at: Option<String>,
    /// RFC 3339; when the status became withdrawn (consent withdrawn). Kept
    /// while the patient stays withdrawn; gone once re-enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<String>,
    /// The head of the patient's audit chain as read with the enrolment (the
    /// item holds it as `auditSeq`/`auditHash`): a writer that holds the
    /// enrolment links from it without another read. Not part of the record.
    #[serde(skip)]
    pub audit_head: crate::audit::chain::ChainHead,
}

impl Enrolment {
    /// When consent was withdrawn, if it was: readings observed at or after it
    /// are refused (epro-api) and skipped (vitals-analyzer); earlier ones are
    /// still scored. An item withdrawn before the field existed falls back to
    /// `updatedAt`, the time of the write that last changed it (at or after
    /// the withdrawal); an unreadable time refuses everything rather than guess.
    pub fn withdrawal_time(&self) -> Option<DateTime<Utc>> {
        if self.status != EnrolmentStatus::Withdrawn {
            return None;
        }
        let at = self.withdrawn_at.as_deref().unwrap_or(&self.updated_at);
        Some(DateTime::parse_from_rfc3339(at).map_or(DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc)))
    }

    /// Whether a reading observed at `observed_at` falls after consent was withdrawn.
    pub fn observed_after_withdrawal(&self, observed_at: DateTime<Utc>) -> bool {
        self.withdrawal_time().is_some_and(|w| observed_at >= w)
    }

    pub fn spo2_scale(&self) -> crate::news2::Spo2Scale {
        if self.hypercapnic {
            crate::news2::Spo2Scale::Scale2
        } else {
            crate::news2::Spo2Scale::Scale1
        }
    }
}

/// Enrolled-patient count for one site and status, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolmentCount {
    pub site_id: SiteId,
    pub status: EnrolmentStatus,
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrolment(status: EnrolmentStatus, withdrawn_at: Option<&str>) -> Enrolment {
        Enrolment {
            trial_id: TrialId::parse("t1").unwrap(),
            patient_id: PatientId::parse("p1").unwrap(),
            site_id: SiteId::parse("s1").unwrap(),
            status,
            hypercapnic: false,
            enrolled_at: "2026-11-01T00:00:00.000Z".into(),
            updated_at: "2026-11-20T00:00:00.000Z".into(),
            submission_count: 0,
            last_submission_at: None,
            withdrawn_at: withdrawn_at.map(str::to_owned),
            audit_head: Default::default(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn readings_at_or_after_the_withdrawal_fall_after_it_and_earlier_ones_do_not() {
        let e = enrolment(EnrolmentStatus::Withdrawn, Some("2026-11-10T12:00:00.000Z"));
        assert!(!e.observed_after_withdrawal(at("2026-11-10T11:59:59Z")));
        assert!(e.observed_after_withdrawal(at("2026-11-10T12:00:00Z")));
        assert!(e.observed_after_withdrawal(at("2026-11-11T00:00:00Z")));
    }

    #[test]
    fn only_a_withdrawn_enrolment_has_a_withdrawal_time_and_an_old_item_falls_back_to_its_update_time() {
        assert_eq!(enrolment(EnrolmentStatus::Enrolled, Some("2026-11-10T12:00:00.000Z")).withdrawal_time(), None);
        assert_eq!(enrolment(EnrolmentStatus::Completed, None).withdrawal_time(), None);
        assert_eq!(enrolment(EnrolmentStatus::Withdrawn, None).withdrawal_time(), Some(at("2026-11-20T00:00:00Z")));
    }
}
