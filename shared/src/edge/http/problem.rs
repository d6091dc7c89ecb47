//! The HTTP edge's error and its single mapping to RFC 9457 problem+json.
//! A refused domain operation arrives as [`HttpError::Refused`]; what only a
//! request can get wrong (its method, size, media type, JSON, token, path)
//! is named here, so the domain [`Error`] carries no status codes.

use serde::{Deserialize, Serialize};

use crate::validation::FieldError;
use crate::Error;

/// Base of every problem `type` URI; the path names the problem.
pub const PROBLEM_BASE: &str = "https://trialwatch.dev/problems/";

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Seconds a client should wait after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The domain refused the request (validation, scope, state, storage).
    #[error(transparent)]
    Refused(#[from] Error),
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
    /// The path is served, but not with this method; `allow` lists the
    /// methods that are (the response's `Allow` header, RFC 9110 15.5.6).
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<String> },
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Refused(e) => match e {
                Error::Validation(_) => 422,
                Error::Forbidden => 403,
                Error::NotFound(_) => 404,
                Error::Conflict { .. } => 409,
                Error::Unavailable(_) => 503,
                Error::Internal(_) => 500,
            },
            HttpError::BadRequest(_) | HttpError::MalformedJson(_) => 400,
            HttpError::UnsupportedMediaType(_) => 415,
            HttpError::PayloadTooLarge { .. } => 413,
            HttpError::Unauthorized => 401,
            HttpError::MethodNotAllowed { .. } => 405,
        }
    }

    /// Whether the same request may succeed later (a 503 with `Retry-After`).
    pub fn is_retryable(&self) -> bool {
        matches!(self, HttpError::Refused(e) if e.is_retryable())
    }

    /// Short machine code, the last segment of the problem `type`: no payload values.
    pub fn code(&self) -> &'static str {
        match self {
            HttpError::Refused(e) => e.code(),
            HttpError::BadRequest(_) => "bad-request",
            HttpError::MalformedJson(_) => "malformed-json",
            HttpError::UnsupportedMediaType(_) => "unsupported-media-type",
            HttpError::PayloadTooLarge { .. } => "payload-too-large",
            HttpError::Unauthorized => "unauthorized",
            HttpError::MethodNotAllowed { .. } => "method-not-allowed",
        }
    }

    /// The one mapping from an HTTP edge error to problem+json.
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let (title, detail, errors) = match self {
            HttpError::Refused(e) => match e {
                Error::Validation(errs) => ("Validation failed", format!("{} field(s) are invalid", errs.len()), errs.clone()),
                // Deliberately the same for "exists but not yours" and "does not exist".
                Error::Forbidden => ("Forbidden", "the token's scope does not cover this resource".into(), vec![]),
                Error::NotFound(what) => ("Not found", format!("{what} not found"), vec![]),
                Error::Conflict { detail, .. } => ("Conflict", detail.clone(), vec![]),
                Error::Unavailable(_) => {
                    ("Service unavailable", "a dependency is busy; retry the same request after Retry-After seconds".into(), vec![])
                }
                // Internal details stay in logs (as codes), never in responses.
                Error::Internal(_) => ("Internal error", "an unexpected error occurred".into(), vec![]),
            },
            HttpError::BadRequest(d) => ("Bad request", d.clone(), vec![]),
            HttpError::MalformedJson(d) => ("Malformed JSON", d.clone(), vec![]),
            HttpError::UnsupportedMediaType(d) => ("Unsupported media type", d.clone(), vec![]),
            HttpError::PayloadTooLarge { limit } => ("Payload too large", format!("the body must be at most {limit} bytes"), vec![]),
            HttpError::Unauthorized => ("Unauthorized", "a valid bearer token is required".into(), vec![]),
            HttpError::MethodNotAllowed { .. } => ("Method not allowed", "no such route for this method".into(), vec![]),
        };
        Problem { problem_type: format!("{PROBLEM_BASE}{}", self.code()), title: title.to_owned(), status, detail, errors }
    }
}

/// Invalid fields: 422 naming every one.
impl From<crate::validation::FieldErrors> for HttpError {
    fn from(e: crate::validation::FieldErrors) -> Self {
        HttpError::Refused(e.into())
    }
}

/// A port's failure, through the domain's one mapping of it.
impl From<crate::ports::StorageError> for HttpError {
    fn from(e: crate::ports::StorageError) -> Self {
        HttpError::Refused(e.into())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_maps_to_422_with_every_field() {
        let e = HttpError::from(Error::Validation(vec![FieldError::new("a", "bad"), FieldError::new("b", "worse")]));
        let p = e.to_problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors.len(), 2);
        assert!(p.problem_type.ends_with("/validation"));
    }

    #[test]
    fn conflict_kind_becomes_the_problem_type() {
        let p = HttpError::from(Error::conflict("patient-not-enrolled", "patient is withdrawn")).to_problem();
        assert_eq!(p.status, 409);
        assert_eq!(p.problem_type, format!("{PROBLEM_BASE}patient-not-enrolled"));
    }

    #[test]
    fn internal_errors_do_not_leak_detail() {
        let p = HttpError::from(Error::Internal("dynamo said xyz".into())).to_problem();
        assert!(!p.detail.contains("xyz"));
    }

    #[test]
    fn every_edge_only_error_keeps_its_status_and_type() {
        let cases = [
            (HttpError::BadRequest("x".into()), 400, "bad-request"),
            (HttpError::MalformedJson("x".into()), 400, "malformed-json"),
            (HttpError::UnsupportedMediaType("x".into()), 415, "unsupported-media-type"),
            (HttpError::PayloadTooLarge { limit: 8 }, 413, "payload-too-large"),
            (HttpError::Unauthorized, 401, "unauthorized"),
            (HttpError::MethodNotAllowed { allow: vec!["GET".into()] }, 405, "method-not-allowed"),
        ];
        for (e, status, code) in cases {
            let p = e.to_problem();
            assert_eq!((p.status, p.problem_type), (status, format!("{PROBLEM_BASE}{code}")), "{e:?}");
            assert!(!e.is_retryable(), "{e:?}");
        }
    }
}
