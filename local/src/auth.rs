//! The API Gateway JWT authorizer, emulated: dev tokens are HS256-signed with a
//! shared secret instead of a Cognito key set, and verified the way the
//! authorizer does before any function runs (signature, `exp`, `nbf`).

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

/// Environment variable holding the dev signing secret.
pub const DEV_JWT_SECRET_VAR: &str = "TRIALWATCH_DEV_JWT_SECRET";
/// Used when the variable is unset. Documented, and only ever meaningful on loopback.
pub const DEFAULT_DEV_JWT_SECRET: &str = "trialwatch-dev-secret-change-me";
/// Issuer and audience of dev tokens, as a Cognito user pool would set them.
pub const DEV_ISSUER: &str = "trialwatch-local";
pub const DEV_AUDIENCE: &str = "trialwatch";

/// The dev signing secret from the environment, or the documented default.
pub fn dev_secret() -> String {
    std::env::var(DEV_JWT_SECRET_VAR).ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_DEV_JWT_SECRET.to_owned())
}

/// Who a dev token speaks for. Lists travel as comma-separated strings, the
/// way Cognito custom attributes (always strings) carry them, so a dev token
/// means the same thing locally and behind API Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevIdentity {
    pub sub: String,
    pub role: String,
    pub trial_ids: Vec<String>,
    pub patient_id: Option<String>,
    pub site_ids: Vec<String>,
}

impl DevIdentity {
    pub fn new(role: &str) -> Self {
        Self { sub: format!("dev-{role}"), role: role.to_owned(), trial_ids: vec![], patient_id: None, site_ids: vec![] }
    }
    pub fn trial(mut self, trial: &str) -> Self {
        self.trial_ids.push(trial.to_owned());
        self
    }
    pub fn patient(mut self, patient: &str) -> Self {
        self.patient_id = Some(patient.to_owned());
        self
    }
    /// Staff sites as the `site_ids` claim carries them: `trialId/siteId`
    /// pairs (a bare site id is read only when the token names one trial).
    pub fn sites(mut self, sites: &[&str]) -> Self {
        self.site_ids.extend(sites.iter().map(|s| (*s).to_owned()));
        self
    }
    pub fn subject(mut self, sub: &str) -> Self {
        self.sub = sub.to_owned();
        self
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not sign the dev token: {0}")]
pub struct SignError(#[from] jsonwebtoken::errors::Error);

/// Signs a dev token valid for `ttl_seconds` from `now` (negative makes an expired one, for tests).
pub fn issue(secret: &str, who: &DevIdentity, now_unix: i64, ttl_seconds: i64) -> Result<String, SignError> {
    let mut claims = Map::new();
    claims.insert("sub".into(), who.sub.clone().into());
    claims.insert("iss".into(), DEV_ISSUER.into());
    claims.insert("aud".into(), DEV_AUDIENCE.into());
    claims.insert("iat".into(), now_unix.into());
    claims.insert("exp".into(), (now_unix + ttl_seconds).into());
    claims.insert("role".into(), who.role.clone().into());
    if !who.trial_ids.is_empty() {
        claims.insert("trial_ids".into(), who.trial_ids.join(",").into());
    }
    if let Some(p) = &who.patient_id {
        claims.insert("patient_id".into(), p.clone().into());
    }
    if !who.site_ids.is_empty() {
        claims.insert("site_ids".into(), who.site_ids.join(",").into());
    }
    Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))?)
}

/// Why the authorizer refused; every case is the same 401 to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no bearer token")]
    Missing,
    #[error("token rejected: {0}")]
    Invalid(String),
}

/// What the authorizer passes on: `requestContext.authorizer.jwt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJwt {
    pub claims: HashMap<String, String>,
    pub scopes: Vec<String>,
}

/// The dev authorizer: one HS256 key, `exp` required, no leeway.
pub struct Authorizer {
    key: DecodingKey,
    validation: Validation,
}

impl Authorizer {
    pub fn new(secret: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        // Audience is a deployment setting of the real authorizer; dev tokens from
        // elsewhere (jwt.io, another tool) may omit it, so it is not enforced here.
        validation.validate_aud = false;
        Self { key: DecodingKey::from_secret(secret.as_bytes()), validation }
    }

    /// Verifies the `Authorization` header value (`Bearer <jwt>`).
    pub fn verify(&self, authorization: Option<&str>) -> Result<VerifiedJwt, Rejection> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Rejection::Missing)?;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| Rejection::Invalid(format!("{:?}", e.kind())))?;
        let scopes = match data.claims.get("scope") {
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            _ => vec![],
        };
        Ok(VerifiedJwt { claims: flatten_claims(&data.claims), scopes })
    }
}

/// API Gateway hands claims to the function as strings. Strings pass as they
/// are, numbers and booleans as their JSON text; lists become comma-separated
/// (API Gateway itself would write `[a b]`: dev tokens carry lists as strings,
/// so both agree on what a function sees).
pub fn flatten_claims(claims: &Map<String, Value>) -> HashMap<String, String> {
    claims
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => {
                    items.iter().map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string())).collect::<Vec<_>>().join(",")
                }
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "unit-test-secret";

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn a_token_signed_with_the_dev_secret_passes_with_its_claims_as_strings() {
        // GIVEN a site-staff token for two sites
        let who = DevIdentity::new("site_staff").trial("t1").sites(&["s1", "s2"]).subject("nurse-7");
        let token = issue(SECRET, &who, now(), 600).unwrap();
        // WHEN the authorizer checks it
        let jwt = Authorizer::new(SECRET).verify(Some(&format!("Bearer {token}"))).unwrap();
        // THEN the claims reach the function as API Gateway passes them
        assert_eq!(jwt.claims["role"], "site_staff");
        assert_eq!(jwt.claims["site_ids"], "s1,s2");
        assert_eq!(jwt.claims["trial_ids"], "t1");
        assert_eq!(jwt.claims["sub"], "nurse-7");
        assert!(jwt.claims["exp"].parse::<i64>().unwrap() > now());
    }

    #[test]
    fn a_token_signed_with_another_secret_is_rejected() {
        let token = issue("someone-else", &DevIdentity::new("admin"), now(), 600).unwrap();
        let r = Authorizer::new(SECRET).verify(Some(&format!("Bearer {token}")));
        assert!(matches!(r, Err(Rejection::Invalid(_))), "{r:?}");
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let token = issue(SECRET, &DevIdentity::new("admin"), now(), -5).unwrap();
        let r = Authorizer::new(SECRET).verify(Some(&format!("Bearer {token}")));
        assert!(matches!(r, Err(Rejection::Invalid(_))), "{r:?}");
    }

    #[test]
    fn a_missing_or_non_bearer_header_is_rejected() {
        let a = Authorizer::new(SECRET);
        assert_eq!(a.verify(None), Err(Rejection::Missing));
        assert_eq!(a.verify(Some("Basic dXNlcjpwYXNz")), Err(Rejection::Missing));
        assert!(matches!(a.verify(Some("Bearer not.a.jwt")), Err(Rejection::Invalid(_))));
    }

    #[test]
    fn list_claims_from_foreign_tokens_are_flattened_to_comma_separated_strings() {
        let claims: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"site_ids": ["a", "b"], "n": 3, "ok": true, "custom:role": "sponsor"})).unwrap();
        let flat = flatten_claims(&claims);
        assert_eq!(flat["site_ids"], "a,b");
        assert_eq!(flat["n"], "3");
        assert_eq!(flat["ok"], "true");
        assert_eq!(flat["custom:role"], "sponsor");
    }
}
