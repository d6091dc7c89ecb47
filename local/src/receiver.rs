//! A site's webhook endpoint, for the demo and the end-to-end tests: it checks
//! every delivery's `X-TrialWatch-Signature` as a site would, and counts
//! deliveries per alert id so duplicates are visible.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{watch, Notify};

pub const SIGNATURE_HEADER: &str = "x-trialwatch-signature";
pub const CORRELATION_HEADER: &str = "x-trialwatch-correlation-id";
/// Deliveries signed longer ago than this are refused as possible replays.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a delivery was refused (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no signature header")]
    Missing,
    #[error("signature header is not t=<unix>,v1=<hex>")]
    Malformed,
    #[error("signed outside the {TOLERANCE_SECONDS} s tolerance")]
    Stale,
    #[error("no v1 signature matches")]
    Mismatch,
}

/// Verifies `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` in constant time.
pub fn verify_signature(secret: &[u8], header: Option<&str>, body: &[u8], now_unix: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<i64> = None;
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => candidates.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            // Other schemes may appear next to v1; a site ignores what it does not know.
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now_unix - t).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    for sig in candidates {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// One alert as the receiver saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The first delivery's body.
    pub alert: Value,
    /// Verified deliveries of this alert id (more than 1 is a duplicate).
    pub deliveries: u32,
    /// The first delivery's `X-TrialWatch-Correlation-Id`: the request that raised the alert.
    pub correlation_id: Option<String>,
}

#[derive(Default)]
struct Inbox {
    alerts: Mutex<BTreeMap<String, Received>>,
    rejected: AtomicU64,
    changed: Notify,
}

struct Shared {
    secret: Vec<u8>,
    inbox: Inbox,
}

pub struct WebhookReceiver {
    /// POST alerts here.
    pub url: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookReceiver {
    /// Listens on a free loopback port.
    pub async fn start(secret: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { secret: secret.as_bytes().to_vec(), inbox: Inbox::default() });
        let app = axum::Router::new().fallback(receive).with_state(shared.clone());
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(error = %e, "webhook receiver stopped");
            }
        });
        Ok(Self { url: format!("http://{addr}/hooks/trialwatch"), shared, stop, task })
    }

    /// Every alert received, by alert id.
    pub fn received(&self) -> BTreeMap<String, Received> {
        self.shared.inbox.alerts.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Deliveries beyond the first, over all alerts.
    pub fn duplicates(&self) -> u64 {
        self.received().values().map(|r| u64::from(r.deliveries.saturating_sub(1))).sum()
    }

    /// Deliveries refused for a bad, stale or missing signature.
    pub fn rejected(&self) -> u64 {
        self.shared.inbox.rejected.load(Ordering::Relaxed)
    }

    /// Waits until `done` holds for what was received, or `timeout` passes.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&BTreeMap<String, Received>) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.inbox.changed.notified();
            if done(&self.received()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(&self.received());
            }
        }
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if verify_signature(&shared.secret, header, &body, chrono::Utc::now().timestamp()).is_err() {
        shared.inbox.rejected.fetch_add(1, Ordering::Relaxed);
        shared.inbox.changed.notify_waiters();
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(alert) = serde_json::from_slice::<Value>(&body) else { return StatusCode::BAD_REQUEST };
    let Some(id) = alert.get("alertId").and_then(Value::as_str).map(str::to_owned) else { return StatusCode::BAD_REQUEST };
    let correlation_id = headers.get(CORRELATION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Ok(mut alerts) = shared.inbox.alerts.lock() {
        alerts.entry(id).and_modify(|r| r.deliveries += 1).or_insert(Received { alert, deliveries: 1, correlation_id });
    }
    shared.inbox.changed.notify_waiters();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn a_correct_signature_within_tolerance_verifies() {
        let h = sign(b"secret-0123456789", 1000, b"{}");
        assert_eq!(verify_signature(b"secret-0123456789", Some(&h), b"{}", 1100), Ok(()));
    }

    #[test]
    fn a_changed_body_or_secret_is_a_mismatch() {
        let h = sign(b"secret-0123456789", 1000, b"{}");
        assert_eq!(verify_signature(b"secret-0123456789", Some(&h), b"{ }", 1000), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(b"another-secret-xx", Some(&h), b"{}", 1000), Err(SignatureError::Mismatch));
    }

    #[test]
    fn an_old_signature_is_refused_as_a_possible_replay() {
        let h = sign(b"s", 1000, b"{}");
        assert_eq!(verify_signature(b"s", Some(&h), b"{}", 1000 + TOLERANCE_SECONDS + 1), Err(SignatureError::Stale));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for h in ["", "t=abc,v1=00", "v1=00", "t=5", "t=5,v1=zz"] {
            assert!(verify_signature(b"s", Some(h), b"{}", 5).is_err(), "{h}");
        }
        assert_eq!(verify_signature(b"s", None, b"{}", 5), Err(SignatureError::Missing));
    }

    #[tokio::test]
    async fn deliveries_are_counted_per_alert_id_and_bad_signatures_rejected() {
        // GIVEN a running receiver
        let secret = "whsec-demo-0123456789";
        let r = WebhookReceiver::start(secret).await.unwrap();
        let http = reqwest::Client::new();
        let body = br#"{"alertId":"al-1","level":"high"}"#.to_vec();
        let now = chrono::Utc::now().timestamp();
        // WHEN the same alert arrives twice, correctly signed, and once forged
        for _ in 0..2 {
            let s = http
                .post(&r.url)
                .header("X-TrialWatch-Signature", sign(secret.as_bytes(), now, &body))
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(s.status().as_u16(), 204);
        }
        let forged =
            http.post(&r.url).header("X-TrialWatch-Signature", sign(b"wrong", now, &body)).body(body.clone()).send().await.unwrap();
        // THEN the duplicate and the forgery are both visible
        assert_eq!(forged.status().as_u16(), 401);
        assert!(r.wait_until(Duration::from_secs(2), |a| a.get("al-1").is_some_and(|x| x.deliveries == 2)).await);
        assert_eq!(r.duplicates(), 1);
        assert_eq!(r.rejected(), 1);
        r.shutdown().await;
    }
}
