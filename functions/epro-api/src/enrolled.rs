//! The rule every recording use case shares (submit, ingest vitals): only an
//! enrolled patient records.

use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::ports::StorageError;

/// The conflict kind a store gives when its own "enrolled" condition fails,
/// and the problem type the edge answers with.
pub const PATIENT_NOT_ENROLLED: &str = "patient-not-enrolled";

/// The patient is not (or no longer) enrolled; the text says what the
/// enrolment is instead (never a patient value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotEnrolled(pub String);

/// The enrolment of a patient who may record: enrolled, else [`NotEnrolled`].
pub fn require_enrolled(e: Option<Enrolment>) -> Result<Enrolment, NotEnrolled> {
    match e {
        Some(e) if e.status == EnrolmentStatus::Enrolled => Ok(e),
        Some(e) => Err(NotEnrolled(format!("the patient's enrolment is {}", e.status.as_str()))),
        None => Err(NotEnrolled("the patient is not enrolled in this trial".into())),
    }
}

impl NotEnrolled {
    /// The store's answer when its transaction found the patient not enrolled.
    pub fn from_storage(e: &StorageError) -> Option<Self> {
        match e {
            StorageError::Conflict { kind: PATIENT_NOT_ENROLLED, detail } => Some(Self(detail.clone())),
            _ => None,
        }
    }
}

/// The HTTP edge's mapping: 409 `patient-not-enrolled`.
impl From<NotEnrolled> for trialwatch::Error {
    fn from(e: NotEnrolled) -> Self {
        trialwatch::Error::conflict(PATIENT_NOT_ENROLLED, e.0)
    }
}
