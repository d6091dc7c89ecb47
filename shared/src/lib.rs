//! TrialWatch domain: the concepts every function shares, the ports they talk
//! through, and the adapters behind those ports (AWS for production; memory for
//! unit tests, behind the `test-util` feature).

pub mod alert;
pub mod audit;
pub mod aws;
pub mod clock;
pub mod config_cache;
pub mod correlation;
pub mod domain_event;
pub mod edge;
pub mod egress;
pub mod enrolment;
pub mod error;
pub mod ids;
pub mod json_object;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
pub mod news2;
pub mod outbox;
pub mod page;
pub mod ports;
pub mod report;
pub mod settings;
pub mod submission;
pub mod telemetry;
pub mod timestamp;
pub mod trail;
pub mod trial;
pub mod validation;
pub mod vitals;
pub mod vitals_state;
pub mod zone;

pub use error::Error;
pub use ids::{AlertId, PatientId, QuestionnaireId, ReadingId, ReportId, SiteId, SubmissionId, TrialId};
