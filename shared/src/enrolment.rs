//! A patient's enrolment in a trial. Subject ids are pseudonymous; nothing here
//! identifies a person.

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
}

impl Enrolment {
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
