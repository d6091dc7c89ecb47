//! The one error type of the domain: what a use case or a port refuses, with
//! a machine code for logs and batch-failure reasons. Its HTTP form (status,
//! problem+json) belongs to the HTTP edge, [`crate::edge::http::HttpError`].

use crate::validation::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request is not valid")]
    Validation(Vec<FieldError>),
    #[error("not permitted")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A state conflict; `kind` becomes the problem type (`submission-conflict`,
    /// `patient-not-enrolled`, ...).
    #[error("{detail}")]
    Conflict { kind: &'static str, detail: String },
    /// A dependency throttled or failed transiently; the client retries safely.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bug or an unexpected dependency answer. Never carries payload values.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict { kind, detail: detail.into() }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// Whether the same request may succeed later (throttling, network).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    /// Short machine code for logs and batch-failure reasons: no payload values.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) => "validation",
            Error::Forbidden => "forbidden",
            Error::NotFound(_) => "not-found",
            Error::Conflict { kind, .. } => kind,
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }
}

/// Invalid fields, every one named.
impl From<crate::validation::FieldErrors> for Error {
    fn from(e: crate::validation::FieldErrors) -> Self {
        Error::Validation(e.0)
    }
}

/// The one mapping of a port's failure: retryable, a conflict of its kind,
/// internal for a corrupt or unexpected answer, not found, and an invalid `cursor`.
impl From<crate::ports::StorageError> for Error {
    fn from(e: crate::ports::StorageError) -> Self {
        use crate::ports::StorageError as S;
        match e {
            S::Unavailable(why) => Error::Unavailable(why),
            S::Conflict { kind, detail } => Error::Conflict { kind, detail },
            S::Corrupt(why) => Error::Internal(why),
            S::NotFound(what) => Error::NotFound(what),
            S::ForeignCursor(why) => Error::field("cursor", why),
        }
    }
}
