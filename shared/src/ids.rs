//! Identifiers. Each is a newtype validated on construction, so a function taking
//! `(TrialId, PatientId)` cannot have them swapped and no id can smuggle key
//! separators (`#`) or control characters into a DynamoDB key or a log line.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest id accepted; keys stay far below DynamoDB's 2 KiB key limit.
pub const MAX_ID_LEN: usize = 64;

/// Why an id was refused; the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_ID_LEN} characters")]
    TooLong,
    #[error("may contain only letters, digits, '-', '_' and '.'")]
    Charset,
    #[error("must be a UUID")]
    NotUuid,
    #[error("must not be the nil UUID")]
    NilUuid,
}

/// The safe id charset: `[A-Za-z0-9._-]{1,64}`, not starting with '.'.
pub fn check_safe_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if s.starts_with('.') || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(IdError::Charset);
    }
    Ok(())
}

/// Lower-case hex of `bytes`, as `hex::encode` writes it: one allocation
/// of the final size (that crate collects `char`s one at a time, which costs
/// more than the SHA-256 of a short id it renders).
pub fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

macro_rules! safe_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_safe_id(s)?;
                Ok(Self(s.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // The string read is the id: checked, then moved in, not copied.
                let s = String::deserialize(d)?;
                check_safe_id(&s).map_err(serde::de::Error::custom)?;
                Ok(Self(s))
            }
        }
    };
}

safe_id!(
    /// A clinical trial, e.g. `tw-heart-01`.
    TrialId
);
safe_id!(
    /// A pseudonymous subject id. Never a name, MRN or contact detail.
    PatientId
);
safe_id!(
    /// A study site within a trial.
    SiteId
);
safe_id!(
    /// A questionnaire definition within a trial.
    QuestionnaireId
);
safe_id!(
    /// A vital-sign reading, client-supplied or derived from its content.
    ReadingId
);
safe_id!(
    /// An alert; deterministic so that a redelivery can never notify twice.
    AlertId
);
safe_id!(
    /// A generated report.
    ReportId
);

/// A client-generated UUID naming one ePRO submission; the idempotency key
/// (per trial and patient). Never the nil UUID: a client that sends it has
/// not generated an id, and every such client would collide on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SubmissionId(uuid::Uuid);

impl SubmissionId {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match uuid::Uuid::try_parse(s) {
            Ok(id) if id.is_nil() => Err(IdError::NilUuid),
            Ok(id) => Ok(Self(id)),
            Err(_) => Err(IdError::NotUuid),
        }
    }
    pub fn new_random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl fmt::Display for SubmissionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl<'de> Deserialize<'de> for SubmissionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn lower_hex_is_what_the_hex_crate_writes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            proptest::prop_assert_eq!(lower_hex(&bytes), hex::encode(&bytes));
        }
    }

    #[test]
    fn safe_ids_reject_key_separators_and_control_characters() {
        assert_eq!(TrialId::parse("a#b"), Err(IdError::Charset));
        assert_eq!(TrialId::parse("a\nb"), Err(IdError::Charset));
        assert_eq!(TrialId::parse(""), Err(IdError::Empty));
        assert_eq!(TrialId::parse(".hidden"), Err(IdError::Charset));
        assert_eq!(TrialId::parse(&"x".repeat(65)), Err(IdError::TooLong));
        assert!(TrialId::parse(&"x".repeat(64)).is_ok());
        assert!(PatientId::parse("P-000_1.a").is_ok());
    }

    #[test]
    fn submission_ids_must_be_uuids() {
        assert!(SubmissionId::parse("0f8fad5b-d9cb-469f-a165-70867728950e").is_ok());
        assert_eq!(SubmissionId::parse("not-a-uuid"), Err(IdError::NotUuid));
        assert_eq!(SubmissionId::parse("00000000-0000-0000-0000-000000000000"), Err(IdError::NilUuid));
    }
}
