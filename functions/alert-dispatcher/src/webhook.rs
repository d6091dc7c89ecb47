//! The webhook port, the one rule that classifies its answers, and the
//! reqwest adapter.

use std::time::Duration;

use async_trait::async_trait;
use trialwatch::alert::AttemptOutcome;

/// What one POST came to. Never carries the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookResult {
    /// The endpoint answered with this HTTP status.
    Status(u16),
    /// No complete answer within the timeout.
    Timeout,
    /// Connection refused/reset, DNS, TLS...: a code such as `connect`.
    Network(&'static str),
    /// The request could not even be built (e.g. an unusable URL): retrying cannot help.
    Rejected(&'static str),
}

#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn post(&self, url: &str, headers: &[(String, String)], body: Vec<u8>, timeout: Duration) -> WebhookResult;
}

/// An attempt's outcome, HTTP status and detail code, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub outcome: AttemptOutcome,
    pub http_status: Option<u16>,
    pub detail: Option<String>,
}

impl Classified {
    /// Whether the endpoint looks unavailable (counts towards opening its circuit).
    /// A 4xx means it answered: it is up, the request is wrong.
    pub fn endpoint_unavailable(&self) -> bool {
        self.outcome == AttemptOutcome::Retryable
    }
}

/// 2xx delivered; 408, 429, 5xx, timeouts and network errors retryable (the
/// site may recover); any other status permanent (retrying the same request
/// gets the same answer). Redirects are not followed, so 3xx is permanent too:
/// re-POSTing a signed alert to wherever a redirect points is not ours to decide.
pub fn classify(result: WebhookResult) -> Classified {
    let (outcome, http_status, detail) = match result {
        WebhookResult::Status(s @ 200..=299) => (AttemptOutcome::Delivered, Some(s), None),
        WebhookResult::Status(s @ (408 | 429 | 500..=599)) => (AttemptOutcome::Retryable, Some(s), Some(format!("http-{s}"))),
        WebhookResult::Status(s) => (AttemptOutcome::Permanent, Some(s), Some(format!("http-{s}"))),
        WebhookResult::Timeout => (AttemptOutcome::Retryable, None, Some("timeout".to_owned())),
        WebhookResult::Network(code) => (AttemptOutcome::Retryable, None, Some(format!("network-{code}"))),
        WebhookResult::Rejected(code) => (AttemptOutcome::Permanent, None, Some(format!("rejected-{code}"))),
    };
    Classified { outcome, http_status, detail }
}

/// POSTs with reqwest over rustls. One client per execution environment, so
/// connections to a site are reused across invocations.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
}

impl HttpWebhookSender {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("TrialWatch-AlertDispatcher/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            // Building fails only if the TLS backend cannot initialise, and then
            // the default client fails the same way: loudly, in init, never mid-delivery.
            .unwrap_or_default();
        Self { client }
    }
}

impl Default for HttpWebhookSender {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn post(&self, url: &str, headers: &[(String, String)], body: Vec<u8>, timeout: Duration) -> WebhookResult {
        let mut request = self.client.post(url).timeout(timeout).body(body);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match request.send().await {
            Ok(response) => WebhookResult::Status(response.status().as_u16()),
            Err(e) if e.is_timeout() => WebhookResult::Timeout,
            Err(e) if e.is_builder() => WebhookResult::Rejected("request"),
            Err(e) if e.is_connect() => WebhookResult::Network("connect"),
            Err(e) if e.is_redirect() => WebhookResult::Rejected("redirect"),
            Err(e) if e.is_body() => WebhookResult::Network("body"),
            Err(_) => WebhookResult::Network("request"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_2xx_is_delivered() {
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(classify(WebhookResult::Status(s)).outcome, AttemptOutcome::Delivered, "{s}");
        }
    }

    #[test]
    fn server_errors_timeouts_throttling_and_network_failures_are_retryable() {
        for r in [
            WebhookResult::Status(408),
            WebhookResult::Status(429),
            WebhookResult::Status(500),
            WebhookResult::Status(503),
            WebhookResult::Status(599),
            WebhookResult::Timeout,
            WebhookResult::Network("connect"),
        ] {
            let c = classify(r);
            assert_eq!(c.outcome, AttemptOutcome::Retryable, "{r:?}");
            assert!(c.endpoint_unavailable());
        }
    }

    #[test]
    fn other_client_errors_and_redirects_are_permanent() {
        for s in [301, 400, 401, 403, 404, 410, 422] {
            let c = classify(WebhookResult::Status(s));
            assert_eq!(c.outcome, AttemptOutcome::Permanent, "{s}");
            assert_eq!(c.http_status, Some(s));
            assert_eq!(c.detail.as_deref(), Some(format!("http-{s}").as_str()));
            assert!(!c.endpoint_unavailable(), "a 4xx means the endpoint is up");
        }
        assert_eq!(classify(WebhookResult::Rejected("request")).outcome, AttemptOutcome::Permanent);
    }
}
