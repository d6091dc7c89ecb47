//! One correlation id per request, followed from the HTTP API to the site's
//! webhook: the API Gateway request id, or a valid `X-Correlation-Id` the
//! caller sent. It travels
//! - in the vitals and alert queues' message attributes ([`MESSAGE_ATTRIBUTE`]);
//! - in the alert (`correlationId`), so the alert item keeps it: the claim
//!   writes the alert only if absent, so a replayed alert keeps its first id;
//! - in the webhook header [`WEBHOOK_HEADER`];
//! - on every log line on the way, as the `correlation_id` field of the span
//!   [`span`] opens.
//!
//! Within one request the id is ambient ([`scope`], [`current`]), as the
//! X-Ray trace header is: the SQS adapters read it when they send, so no port
//! grows a parameter for it. Where one invocation serves many requests (an SQS
//! batch), each record's id is explicit (the alert carries its own) and each
//! patient's work runs in its own span.
//!
//! The id is an opaque token of at most 64 characters of `[A-Za-z0-9_-]`: it
//! lands in headers, attributes and logs, so it may carry nothing else. An
//! invalid incoming header is ignored (the request id is used), never an error:
//! a caller's tracing must not be able to fail its request.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The request header a caller may set, and the response header that echoes the id.
pub const HTTP_HEADER: &str = "x-correlation-id";
/// The header on every webhook delivery.
pub const WEBHOOK_HEADER: &str = "X-TrialWatch-Correlation-Id";
/// The SQS message attribute (String) on the vitals and alert queues.
pub const MESSAGE_ATTRIBUTE: &str = "trialwatch.correlationId";
/// The longest id kept.
pub const MAX_LEN: usize = 64;

/// A validated correlation id: 1 to 64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CorrelationId(String);

impl CorrelationId {
    /// The id if it is valid as it stands; `None` otherwise (never an error).
    pub fn parse(s: &str) -> Option<Self> {
        let valid = !s.is_empty() && s.len() <= MAX_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        valid.then(|| Self(s.to_owned()))
    }

    /// An id made from a platform id (API Gateway's request id, an SQS
    /// message id): characters outside the charset are dropped (an HTTP API
    /// request id such as `JKJaXmPLvHcESHA=` ends in `=`) and it is cut to 64.
    /// A fresh UUID when nothing is left.
    pub fn from_platform_id(id: &str) -> Self {
        // An SQS message id (a UUID) is valid as it stands: no filtering copy.
        if let Some(id) = Self::parse(id) {
            return id;
        }
        let kept: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')).take(MAX_LEN).collect();
        Self::parse(&kept).unwrap_or_else(Self::generate)
    }

    /// A fresh id, for work that starts without one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The caller's header if valid, else the platform's request id.
    pub fn for_request(header: Option<&str>, request_id: Option<&str>) -> Self {
        header.and_then(|h| Self::parse(h.trim())).unwrap_or_else(|| request_id.map_or_else(Self::generate, Self::from_platform_id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored or queued id that is no longer valid reads as none, rather than
/// failing the alert it rides on.
impl<'de> Deserialize<'de> for CorrelationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s).unwrap_or_else(|| Self::from_platform_id(&s)))
    }
}

tokio::task_local! {
    static CURRENT: CorrelationId;
}

/// The id of the request being served, if any (see [`scope`]).
pub fn current() -> Option<CorrelationId> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The span whose `correlation_id` field every line logged inside it carries.
pub fn span(id: &CorrelationId) -> tracing::Span {
    tracing::info_span!("correlated", correlation_id = %id)
}

/// Runs `work` with `id` as the ambient id ([`current`]) and inside its [`span`].
pub async fn scope<F: std::future::Future>(id: CorrelationId, work: F) -> F::Output {
    use tracing::Instrument;
    let span = span(&id);
    CURRENT.scope(id, work).instrument(span).await
}

/// The X-Ray trace header of this invocation, for SQS's `AWSTraceHeader`
/// system attribute. `lambda_runtime` sets `_X_AMZN_TRACE_ID` per invocation
/// (the AWS SDKs' own convention); absent locally and in tests.
pub fn trace_header() -> Option<String> {
    std::env::var("_X_AMZN_TRACE_ID").ok().filter(|v| !v.is_empty() && v.len() <= 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_header_wins_and_an_invalid_one_is_ignored() {
        let id = CorrelationId::for_request(Some("app-7f3a_01"), Some("req-1"));
        assert_eq!(id.as_str(), "app-7f3a_01");
        for bad in ["", "has space", "semi;colon", "a.b", &"x".repeat(65), "é"] {
            assert_eq!(CorrelationId::for_request(Some(bad), Some("req-1")).as_str(), "req-1", "{bad:?}");
        }
        assert_eq!(CorrelationId::for_request(Some(&"y".repeat(64)), None).as_str().len(), 64);
    }

    #[test]
    fn a_platform_id_is_cleaned_to_the_charset() {
        assert_eq!(CorrelationId::from_platform_id("JKJaXmPLvHcESHA=").as_str(), "JKJaXmPLvHcESHA");
        assert_eq!(CorrelationId::from_platform_id(&"a".repeat(100)).as_str().len(), 64);
        // Nothing usable left: a fresh UUID, still valid.
        assert!(CorrelationId::parse(CorrelationId::from_platform_id("==").as_str()).is_some());
    }

    #[tokio::test]
    async fn the_id_is_ambient_inside_its_scope_only() {
        assert_eq!(current(), None);
        let id = CorrelationId::parse("c-1").unwrap();
        let seen = scope(id.clone(), async { current() }).await;
        assert_eq!(seen, Some(id));
        assert_eq!(current(), None);
    }
}
