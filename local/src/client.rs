//! A small client of the TrialWatch HTTP API for the demo and the end-to-end
//! tests: it mints dev tokens per role and returns status and JSON, so callers
//! assert on what the API actually answered.

use std::time::Duration;

use serde_json::Value;

use crate::auth::{self, DevIdentity};

#[derive(Clone)]
pub struct Api {
    pub base_url: String,
    http: reqwest::Client,
    secret: String,
}

/// What the API answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// The JSON body, or `Null` when empty or not JSON.
    pub body: Value,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Token(#[from] auth::SignError),
}

impl Api {
    pub fn new(base_url: &str, secret: &str, max_connections: usize) -> Self {
        let http =
            reqwest::Client::builder().pool_max_idle_per_host(max_connections).timeout(Duration::from_secs(60)).build().unwrap_or_default();
        Self { base_url: base_url.trim_end_matches('/').to_owned(), http, secret: secret.to_owned() }
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A one-hour dev token for `who`.
    pub fn token(&self, who: &DevIdentity) -> Result<String, ClientError> {
        Ok(auth::issue(&self.secret, who, chrono::Utc::now().timestamp(), 3600)?)
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Answer, ClientError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base_url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok(Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })
    }

    pub async fn get(&self, path: &str, token: &str) -> Result<Answer, ClientError> {
        self.send(reqwest::Method::GET, path, Some(token), None).await
    }
    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Result<Answer, ClientError> {
        self.send(reqwest::Method::PUT, path, Some(token), Some(body)).await
    }
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Result<Answer, ClientError> {
        self.send(reqwest::Method::POST, path, Some(token), Some(body)).await
    }

    /// Every alert of a patient (all pages), as site staff or admin.
    pub async fn patient_alerts(&self, trial: &str, patient: &str, token: &str) -> Result<Vec<Value>, ClientError> {
        self.list_all(&format!("/v1/trials/{trial}/patients/{patient}/alerts?limit=200"), token).await
    }

    /// Every item of a paginated list (`{items, nextCursor}`), following the
    /// cursor; `path` carries its query (e.g. `?limit=100`). A non-2xx page ends the list.
    pub async fn list_all(&self, first: &str, token: &str) -> Result<Vec<Value>, ClientError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = first.to_owned();
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let a = self.get(&path, token).await?;
            if !a.is_success() {
                return Ok(out);
            }
            out.extend(a.body["items"].as_array().cloned().unwrap_or_default());
            match a.body["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Ok(out),
            }
        }
    }
}
