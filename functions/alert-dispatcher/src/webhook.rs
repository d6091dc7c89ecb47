//! The webhook port, the one rule that classifies its answers, and the
//! reqwest adapter with its egress guard.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use trialwatch::alert::AttemptOutcome;
use trialwatch::egress::{EgressPolicy, Refusal};

/// What one POST came to. Never carries the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookResult {
    /// The endpoint answered with this HTTP status.
    Status(u16),
    /// No complete answer within the timeout.
    Timeout,
    /// Connection refused/reset, DNS, TLS...: a code such as `connect`.
    Network(&'static str),
    /// The request could not even be built (e.g. an unusable URL), or its
    /// destination is refused by the egress rules (`scheme`, `address`):
    /// retrying cannot help. A refused address is this code alone, never a
    /// network error, so attempts shown to staff cannot map internal hosts.
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

/// The system resolver (getaddrinfo on a blocking thread, as reqwest's own).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A resolved address the egress rules refuse; found again in the error
/// chain by [`refused`] so the attempt records a refusal, not a DNS error.
#[derive(Debug, thiserror::Error)]
#[error("the webhook host resolved to an address the egress rules refuse")]
struct AddressRefused;

/// Wraps a resolver and refuses the whole answer if any address in it is
/// refused: a name that resolves to one public and one internal address
/// could otherwise be steered to the internal one (DNS rebinding).
struct GuardedResolver {
    inner: Arc<dyn Resolve>,
    policy: EgressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (resolving, policy) = (self.inner.resolve(name), self.policy);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = resolving.await?.collect();
            if addrs.iter().any(|a| !policy.allows(a.ip())) {
                return Err(Box::new(AddressRefused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether an error's chain holds an [`AddressRefused`].
fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<AddressRefused>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// POSTs with reqwest over rustls. One client per execution environment, so
/// connections to a site are reused across invocations.
///
/// Egress: the URL is checked before sending ([`EgressPolicy::check_url`]:
/// reqwest does not consult the resolver for an IP-literal host), and every
/// name is resolved through a guard that refuses internal addresses at
/// connect time. No proxy is taken from the environment (`HTTPS_PROXY` would
/// move the connection, and the check, elsewhere) and redirects are not followed.
#[derive(Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    policy: EgressPolicy,
}

impl std::fmt::Debug for HttpWebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpWebhookSender").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl HttpWebhookSender {
    /// The deployed sender: the system resolver, [`EgressPolicy::DEPLOYED`].
    pub fn new() -> Self {
        Self::with_resolver(EgressPolicy::DEPLOYED, Arc::new(SystemResolver))
    }

    /// A sender under `policy`, resolving names with `resolver` (tests inject one; there is no DNS there).
    pub fn with_resolver(policy: EgressPolicy, resolver: Arc<dyn Resolve>) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { inner: resolver, policy }))
            .user_agent(concat!("TrialWatch-AlertDispatcher/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(50))
            .use_preconfigured_tls(webhook_tls())
            .build()
            // Building fails only if the TLS backend cannot initialise; a default
            // client would lack the egress guard, so fail loudly, in init.
            .expect("the webhook HTTP client (TLS backend) must initialise");
        Self { client, policy }
    }

    /// The deployed sender with `policy` (the local stack's loopback allowance).
    pub fn with_policy(policy: EgressPolicy) -> Self {
        Self::with_resolver(policy, Arc::new(SystemResolver))
    }
}

/// rustls on ring, the provider the AWS SDK's client already links (one
/// crypto provider per binary), trusting the Mozilla roots compiled into the binary:
/// no certificate file is read in init, and the set is the same on every host.
fn webhook_tls() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring offers TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl Default for HttpWebhookSender {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn post(&self, url: &str, headers: &[(String, String)], body: Vec<u8>, timeout: Duration) -> WebhookResult {
        let url = match self.policy.check_url(url) {
            Ok(url) => url,
            Err(why @ (Refusal::NotHttps | Refusal::Address)) => return WebhookResult::Rejected(why.code()),
        };
        let mut request = self.client.post(url).timeout(timeout).body(body);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match request.send().await {
            Ok(response) => WebhookResult::Status(response.status().as_u16()),
            Err(e) if refused(&e) => WebhookResult::Rejected(Refusal::Address.code()),
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

    /// Names resolved from a fixed table: there is no DNS in tests.
    struct FixedResolver(Vec<(&'static str, Vec<&'static str>)>);

    impl Resolve for FixedResolver {
        fn resolve(&self, name: Name) -> Resolving {
            let found = self.0.iter().find(|(n, _)| *n == name.as_str()).map(|(_, a)| a.clone());
            Box::pin(async move {
                let addrs = found.ok_or("no such host")?;
                let addrs: Vec<SocketAddr> = addrs.iter().map(|a| SocketAddr::new(a.parse().unwrap(), 0)).collect();
                Ok(Box::new(addrs.into_iter()) as Addrs)
            })
        }
    }

    fn sender(policy: EgressPolicy) -> HttpWebhookSender {
        HttpWebhookSender::with_resolver(
            policy,
            Arc::new(FixedResolver(vec![
                ("loopback.example", vec!["127.0.0.1"]),
                ("v6-loopback.example", vec!["::1"]),
                ("mapped.example", vec!["::ffff:127.0.0.1"]),
                ("metadata.example", vec!["169.254.169.254"]),
                ("metadata-v6.example", vec!["fd00:ec2::254"]),
                ("cgnat.example", vec!["100.64.0.9"]),
                // one public and one private answer: refused as a whole
                ("rebinding.example", vec!["93.184.215.14", "10.0.0.5"]),
            ])),
        )
    }

    async fn post(s: &HttpWebhookSender, url: &str) -> WebhookResult {
        s.post(url, &[], b"{}".to_vec(), Duration::from_secs(2)).await
    }

    #[tokio::test]
    async fn every_internal_or_clear_text_destination_is_refused_and_recorded_as_a_refusal() {
        let s = sender(EgressPolicy::DEPLOYED);
        for (url, code) in [
            ("http://alerts.site.example/hook", "scheme"),
            ("https://10.0.0.7/hook", "address"),
            ("https://localhost/hook", "address"),
            ("https://[::1]/hook", "address"),
            ("https://[::ffff:127.0.0.1]/hook", "address"),
            ("https://169.254.169.254/latest/meta-data/", "address"),
            ("https://[fd00:ec2::254]/", "address"),
            // names that only the resolver shows to be internal
            ("https://loopback.example/hook", "address"),
            ("https://v6-loopback.example/hook", "address"),
            ("https://mapped.example/hook", "address"),
            ("https://metadata.example/hook", "address"),
            ("https://metadata-v6.example/hook", "address"),
            ("https://cgnat.example/hook", "address"),
            ("https://rebinding.example/hook", "address"),
        ] {
            // WHEN the dispatcher posts to it
            let result = post(&s, url).await;
            // THEN it is refused with a code alone, permanently (no retry, no breaker)
            assert_eq!(result, WebhookResult::Rejected(code), "{url}");
            let c = classify(result);
            assert_eq!(
                (c.outcome, c.http_status, c.detail.as_deref()),
                (AttemptOutcome::Permanent, None, Some(format!("rejected-{code}").as_str()))
            );
        }
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_a_network_error_not_a_refusal() {
        // A refusal must mean "internal address", so it is told apart from DNS failure.
        let result = post(&sender(EgressPolicy::DEPLOYED), "https://nxdomain.example/hook").await;
        assert!(matches!(result, WebhookResult::Network(_)), "{result:?}");
    }

    #[tokio::test]
    async fn the_local_policy_reaches_a_loopback_receiver_over_http_and_nothing_internal_beyond_it() {
        // GIVEN a receiver on 127.0.0.1 answering 204
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            let _ = sock.read(&mut buf).await;
            sock.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await.unwrap();
        });
        let local = sender(EgressPolicy::LOCAL);
        // THEN the local stack delivers to it
        assert_eq!(post(&local, &format!("http://127.0.0.1:{port}/hook")).await, WebhookResult::Status(204));
        server.await.unwrap();
        // AND still refuses the metadata service and private ranges
        assert_eq!(post(&local, "https://metadata.example/").await, WebhookResult::Rejected("address"));
        assert_eq!(post(&local, "https://rebinding.example/").await, WebhookResult::Rejected("address"));
        // WHILE the deployed policy refuses that same receiver
        assert_eq!(
            post(&sender(EgressPolicy::DEPLOYED), &format!("http://127.0.0.1:{port}/hook")).await,
            WebhookResult::Rejected("scheme")
        );
    }
}
