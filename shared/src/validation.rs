//! Field-level validation that reports every problem at once, so a client fixes
//! its payload in one round trip instead of one error per request.

use serde::{Deserialize, Serialize};

/// The largest magnitude a DynamoDB number holds is 9.99…E+125 (38 nines), the
/// smallest non-zero 1E-130 (DynamoDB developer guide, "Naming rules and data
/// types"). A value outside is refused by the table with a ValidationException,
/// which would reach a client as a 500 after the request was accepted as valid.
pub const DYNAMODB_NUMBER_MAX: f64 = 1e126;
pub const DYNAMODB_NUMBER_MIN_POSITIVE: f64 = 1e-130;

/// Whether DynamoDB can store `x` as a number. Its 38-digit precision limit
/// never binds here: an `f64` prints with at most 17 significant digits.
pub fn storable_number(x: f64) -> bool {
    x.is_finite() && (x == 0.0 || (DYNAMODB_NUMBER_MIN_POSITIVE..DYNAMODB_NUMBER_MAX).contains(&x.abs()))
}

/// One invalid field: a JSON-pointer-like path (`answers[2].value`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Every invalid field of one input, named at once: what validation
/// returns, and what a use case's `Invalid` carries. No status code here: the
/// HTTP edge answers it with 422 and the fields as the problem's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} field(s) are invalid", .0.len())]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// One invalid field.
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}

/// Read as the list of fields it is.
impl std::ops::Deref for FieldErrors {
    type Target = [FieldError];

    fn deref(&self) -> &[FieldError] {
        &self.0
    }
}

impl From<Vec<FieldError>> for FieldErrors {
    fn from(fields: Vec<FieldError>) -> Self {
        Self(fields)
    }
}

/// Collects field errors while a payload is checked.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Records an error when `ok` is false.
    pub fn check(&mut self, ok: bool, field: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.error(field, message);
        }
    }

    /// Keeps the value of a fallible parse, recording its error under `field`.
    pub fn take<T, E: std::fmt::Display>(&mut self, field: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(field, e.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// `Ok(value)` when nothing was recorded, else every error at once.
    pub fn finish<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(FieldErrors(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storable_numbers_are_dynamodbs_range() {
        for ok in [0.0, -0.0, 1.0, -1.0, 1e-130, -1e-130, 9.999_999_999_999_99e125, -9.9e125, 123.456] {
            assert!(storable_number(ok), "{ok}");
        }
        for bad in [1e126, -1e126, 1e130, 1e-131, -1e-200, f64::MAX, f64::INFINITY, f64::NAN, f64::MIN_POSITIVE] {
            assert!(!storable_number(bad), "{bad}");
        }
    }
}
