//! The one error type of the domain and its single mapping to RFC 9457
//! problem+json. Handlers never format errors themselves.

use serde::{Deserialize, Serialize};

use crate::validation::FieldError;

/// Base of every problem `type` URI; the path names the problem.
pub const PROBLEM_BASE: &str = "https://trialwatch.dev/problems/";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request is not valid")]
    Validation(Vec<FieldError>),
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("authentication required")]
    Unauthorized,
    #[error("not permitted")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The path is served, but not with this method; `allow` lists the
    /// methods that are (the response's `Allow` header, RFC 9110 15.5.6).
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<String> },
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

    pub fn status(&self) -> u16 {
        match self {
            Error::Validation(_) => 422,
            Error::BadRequest(_) | Error::MalformedJson(_) => 400,
            Error::UnsupportedMediaType(_) => 415,
            Error::PayloadTooLarge { .. } => 413,
            Error::Unauthorized => 401,
            Error::Forbidden => 403,
            Error::NotFound(_) => 404,
            Error::MethodNotAllowed { .. } => 405,
            Error::Conflict { .. } => 409,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// Whether the same request may succeed later (throttling, network).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    /// Short machine code for logs and batch-failure reasons: no payload values.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) => "validation",
            Error::BadRequest(_) => "bad-request",
            Error::MalformedJson(_) => "malformed-json",
            Error::UnsupportedMediaType(_) => "unsupported-media-type",
            Error::PayloadTooLarge { .. } => "payload-too-large",
            Error::Unauthorized => "unauthorized",
            Error::Forbidden => "forbidden",
            Error::NotFound(_) => "not-found",
            Error::MethodNotAllowed { .. } => "method-not-allowed",
            Error::Conflict { kind, .. } => kind,
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    /// The one mapping from domain error to problem+json.
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let (title, detail, errors) = match self {
            Error::Validation(errs) => ("Validation failed", format!("{} field(s) are invalid", errs.len()), errs.clone()),
            Error::BadRequest(d) => ("Bad request", d.clone(), vec![]),
            Error::MalformedJson(d) => ("Malformed JSON", d.clone(), vec![]),
            Error::UnsupportedMediaType(d) => ("Unsupported media type", d.clone(), vec![]),
            Error::PayloadTooLarge { limit } => ("Payload too large", format!("the body must be at most {limit} bytes"), vec![]),
            Error::Unauthorized => ("Unauthorized", "a valid bearer token is required".into(), vec![]),
            // Deliberately the same for "exists but not yours" and "does not exist".
            Error::Forbidden => ("Forbidden", "the token's scope does not cover this resource".into(), vec![]),
            Error::NotFound(what) => ("Not found", format!("{what} not found"), vec![]),
            Error::MethodNotAllowed { .. } => ("Method not allowed", "no such route for this method".into(), vec![]),
            Error::Conflict { detail, .. } => ("Conflict", detail.clone(), vec![]),
            Error::Unavailable(_) => {
                ("Service unavailable", "a dependency is busy; retry the same request after Retry-After seconds".into(), vec![])
            }
            // Internal details stay in logs (as codes), never in responses.
            Error::Internal(_) => ("Internal error", "an unexpected error occurred".into(), vec![]),
        };
        Problem { problem_type: format!("{PROBLEM_BASE}{}", self.code()), title: title.to_owned(), status, detail, errors }
    }
}

/// The HTTP edge's mapping of invalid fields: 422 naming every one.
impl From<crate::validation::FieldErrors> for Error {
    fn from(e: crate::validation::FieldErrors) -> Self {
        Error::Validation(e.0)
    }
}

/// The HTTP edge's one mapping of a port's failure: 503 (retry), 409 with the
/// conflict's kind, 500 for a corrupt or unexpected answer, 404, and a 422
/// naming `cursor`.
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

/// RFC 9457 problem details, `application/problem+json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_maps_to_422_with_every_field() {
        let e = Error::Validation(vec![FieldError::new("a", "bad"), FieldError::new("b", "worse")]);
        let p = e.to_problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors.len(), 2);
        assert!(p.problem_type.ends_with("/validation"));
    }

    #[test]
    fn conflict_kind_becomes_the_problem_type() {
        let p = Error::conflict("patient-not-enrolled", "patient is withdrawn").to_problem();
        assert_eq!(p.status, 409);
        assert_eq!(p.problem_type, format!("{PROBLEM_BASE}patient-not-enrolled"));
    }

    #[test]
    fn internal_errors_do_not_leak_detail() {
        let p = Error::Internal("dynamo said xyz".into()).to_problem();
        assert!(!p.detail.contains("xyz"));
    }
}
