//! Who may read a trial's reports: its sponsors and admins. API Gateway's JWT
//! authorizer (or the local runner) has verified the token; the function reads
//! the claims it passed and applies the scope rule.

use std::collections::HashMap;

use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use trialwatch::audit::Actor;
use trialwatch::{Error, TrialId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Patient,
    SiteStaff,
    Sponsor,
    Admin,
}

impl Role {
    fn parse(s: &str) -> Option<Role> {
        match s.trim() {
            "patient" => Some(Role::Patient),
            "site_staff" => Some(Role::SiteStaff),
            "sponsor" => Some(Role::Sponsor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::SiteStaff => "site_staff",
            Role::Sponsor => "sponsor",
            Role::Admin => "admin",
        }
    }
}

/// The caller as the verified token describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    pub subject: Option<String>,
    pub trial_ids: Vec<String>,
}

impl Caller {
    /// From the claims map API Gateway passes (`requestContext.authorizer.jwt.claims`).
    /// No claims, or no recognisable role, is unauthenticated (401).
    pub fn from_claims(claims: &HashMap<String, String>) -> Result<Caller, Error> {
        let role = claim(claims, "role").and_then(Role::parse).ok_or(Error::Unauthorized)?;
        Ok(Caller {
            role,
            subject: claim(claims, "sub").map(str::to_owned),
            trial_ids: claim(claims, "trial_ids").map(list).unwrap_or_default(),
        })
    }

    pub fn from_request(req: &lambda_http::Request) -> Result<Caller, Error> {
        match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                let claims = ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| &j.claims).ok_or(Error::Unauthorized)?;
                Caller::from_claims(claims)
            }
            _ => Err(Error::Unauthorized),
        }
    }

    /// Sponsors of the trial and admins may create and read its reports.
    /// Everyone else gets 403, whether or not the trial exists.
    pub fn may_read_reports(&self, trial: &TrialId) -> Result<(), Error> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Sponsor if self.trial_ids.iter().any(|t| t == trial.as_str()) => Ok(()),
            _ => Err(Error::Forbidden),
        }
    }

    pub fn actor(&self) -> Actor {
        Actor { role: self.role.as_str().to_owned(), subject: self.subject.clone() }
    }
}

/// A claim by its plain name or Cognito's `custom:` spelling.
fn claim<'a>(claims: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    claims.get(name).or_else(|| claims.get(&format!("custom:{name}"))).map(String::as_str).filter(|v| !v.trim().is_empty())
}

/// A list claim in any of the shapes it arrives in: a JSON array (`["t1","t2"]`),
/// API Gateway's flattening of a JSON array (`[t1 t2]`), or comma-separated
/// (`t1,t2`, as Cognito custom attributes carry it).
fn list(raw: &str) -> Vec<String> {
    let raw = raw.trim();
    if let Ok(items) = serde_json::from_str::<Vec<String>>(raw) {
        return items.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    }
    let inner = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(raw);
    inner.split([',', ' ']).map(|s| s.trim().trim_matches('"').to_owned()).filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }
    fn t(s: &str) -> TrialId {
        TrialId::parse(s).unwrap()
    }

    #[test]
    fn a_sponsor_of_the_trial_may_read_its_reports() {
        let c = Caller::from_claims(&claims(&[("role", "sponsor"), ("trial_ids", "t1,t2"), ("sub", "u1")])).unwrap();
        assert!(c.may_read_reports(&t("t2")).is_ok());
        assert_eq!(c.actor(), Actor { role: "sponsor".into(), subject: Some("u1".into()) });
    }

    #[test]
    fn a_sponsor_of_another_trial_is_forbidden() {
        let c = Caller::from_claims(&claims(&[("role", "sponsor"), ("trial_ids", "t1")])).unwrap();
        assert_eq!(c.may_read_reports(&t("t10")).unwrap_err().status(), 403);
    }

    #[test]
    fn an_admin_may_read_any_trials_reports() {
        let c = Caller::from_claims(&claims(&[("custom:role", "admin")])).unwrap();
        assert!(c.may_read_reports(&t("anything")).is_ok());
    }

    #[test]
    fn site_staff_and_patients_are_forbidden_even_for_their_own_trial() {
        for role in ["site_staff", "patient"] {
            let c = Caller::from_claims(&claims(&[("role", role), ("trial_ids", "t1")])).unwrap();
            assert_eq!(c.may_read_reports(&t("t1")).unwrap_err().status(), 403, "{role}");
        }
    }

    #[test]
    fn no_role_or_an_unknown_role_is_unauthenticated() {
        assert_eq!(Caller::from_claims(&claims(&[])).unwrap_err().status(), 401);
        assert_eq!(Caller::from_claims(&claims(&[("role", "root")])).unwrap_err().status(), 401);
    }

    #[test]
    fn list_claims_are_read_in_every_shape_and_with_the_custom_prefix() {
        for raw in [r#"["t1","t2"]"#, "[t1 t2]", "t1,t2", " t1 , t2 "] {
            let c = Caller::from_claims(&claims(&[("custom:role", "sponsor"), ("custom:trial_ids", raw)])).unwrap();
            assert_eq!(c.trial_ids, vec!["t1", "t2"], "{raw}");
        }
    }

    #[test]
    fn a_trial_id_that_merely_contains_an_allowed_one_is_not_allowed() {
        let c = Caller::from_claims(&claims(&[("role", "sponsor"), ("trial_ids", "t1")])).unwrap();
        assert!(c.may_read_reports(&t("t1x")).is_err());
    }
}
