//! Field-level validation that reports every problem at once, so a client fixes
//! its payload in one round trip instead of one error per request.

use serde::{Deserialize, Serialize};

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
    pub fn finish<T>(self, value: T) -> Result<T, crate::Error> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(crate::Error::Validation(self.errors))
        }
    }
}
