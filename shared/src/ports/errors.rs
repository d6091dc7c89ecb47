//! What a port reports when it fails, in storage terms. Nothing here knows
//! HTTP or SQS: each edge maps these once (`From<StorageError>` for the HTTP
//! kit's [`crate::Error`]; [`StorageError::is_retryable`] and
//! [`StorageError::code`] for a batch item failure).

/// The error of every storage and queue port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// Throttled, timed out or failed transiently: the same call may succeed
    /// later (a 503 with Retry-After; a redelivery on a queue).
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A condition the write was made under does not hold; `kind` names
    /// which (`patient-not-enrolled`, `alert-already-acknowledged`,
    /// [`crate::audit::append::HEAD_MOVED`], ...).
    #[error("{detail}")]
    Conflict { kind: &'static str, detail: String },
    /// What the store holds or answered does not fit the domain: a bug or a
    /// corrupted record, never input. Carries codes, never payload values.
    #[error("corrupt or unexpected: {0}")]
    Corrupt(String),
    /// The item a write is about does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A page cursor this store did not issue; the text says why, for the
    /// caller's `cursor` field.
    #[error("cursor {0}")]
    ForeignCursor(&'static str),
}

impl StorageError {
    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict { kind, detail: detail.into() }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// Short machine code for logs and batch-failure reasons: no payload
    /// values. The same codes the HTTP error gives for the same failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Conflict { kind, .. } => kind,
            Self::Corrupt(_) => "internal",
            Self::NotFound(_) => "not-found",
            Self::ForeignCursor(_) => "validation",
        }
    }
}

/// What publishing a notification reports ([`super::Notifier`]). The
/// permanent answers are their own variants: no retry can fix them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The topic does not exist (deleted, or a wrong ARN in the trial).
    #[error("topic not found")]
    TopicNotFound,
    /// The caller may not publish to the topic, or use its key.
    #[error("not permitted")]
    Forbidden,
    /// The request or the topic's setup is wrong (bad parameter, disabled key).
    #[error("refused: {0}")]
    Refused(String),
    /// Throttling, 5xx, timeouts, an unexpected answer: retried.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl NotifyError {
    /// Whether retrying cannot fix it.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::TopicNotFound | Self::Forbidden | Self::Refused(_))
    }

    /// Short machine code: no payload values.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TopicNotFound => "not-found",
            Self::Forbidden => "forbidden",
            Self::Refused(_) => "bad-request",
            Self::Storage(e) => e.code(),
        }
    }
}
