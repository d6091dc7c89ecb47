//! Who is calling, from the JWT claims API Gateway's authorizer verified, and
//! the pure decisions about what they may touch.
//!
//! Outcomes: no usable identity is 401; an identity whose scope does not cover
//! the resource is 403. A 403 never says whether the patient exists: scope is
//! checked from the token before any lookup, and for site staff a patient that
//! does not exist and a patient of another site give the same 403.

use std::collections::HashMap;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use trialwatch::audit::Actor;
use trialwatch::{Error, PatientId, SiteId, TrialId};

/// A verified caller. Lists hold only well-formed ids: a malformed entry in a
/// claim grants nothing rather than failing the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Patient { patient_id: PatientId, trial_ids: Vec<TrialId>, subject: Option<String> },
    SiteStaff { site_ids: Vec<SiteId>, trial_ids: Vec<TrialId>, subject: Option<String> },
    Sponsor { trial_ids: Vec<TrialId>, subject: Option<String> },
    Admin { subject: Option<String> },
}

impl Principal {
    /// Reads the principal from the request's authorizer claims.
    pub fn from_request(req: &Request) -> Result<Self, Error> {
        match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                let claims = ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| &j.claims).ok_or(Error::Unauthorized)?;
                Self::from_claims(claims)
            }
            _ => Err(Error::Unauthorized),
        }
    }

    /// Builds the principal from JWT claims; Cognito's `custom:` prefix is accepted.
    pub fn from_claims(claims: &HashMap<String, String>) -> Result<Self, Error> {
        let claim = |name: &str| claims.get(name).or_else(|| claims.get(&format!("custom:{name}"))).map(|s| s.trim());
        let subject = claims.get("sub").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty() && s.len() <= 128);
        let trial_ids = || ids::<TrialId>(claim("trial_ids"));
        match claim("role").ok_or(Error::Unauthorized)? {
            "patient" => {
                let patient_id = claim("patient_id").and_then(|p| PatientId::parse(p).ok()).ok_or(Error::Unauthorized)?;
                Ok(Principal::Patient { patient_id, trial_ids: trial_ids(), subject })
            }
            "site_staff" => Ok(Principal::SiteStaff { site_ids: ids::<SiteId>(claim("site_ids")), trial_ids: trial_ids(), subject }),
            "sponsor" => Ok(Principal::Sponsor { trial_ids: trial_ids(), subject }),
            "admin" => Ok(Principal::Admin { subject }),
            _ => Err(Error::Unauthorized),
        }
    }

    pub fn role(&self) -> &'static str {
        match self {
            Principal::Patient { .. } => "patient",
            Principal::SiteStaff { .. } => "site_staff",
            Principal::Sponsor { .. } => "sponsor",
            Principal::Admin { .. } => "admin",
        }
    }

    /// The audit actor: a patient is recorded by their pseudonymous id, staff
    /// by the token's `sub`.
    pub fn actor(&self) -> Actor {
        let subject = match self {
            Principal::Patient { patient_id, .. } => Some(patient_id.to_string()),
            Principal::SiteStaff { subject, .. } | Principal::Sponsor { subject, .. } | Principal::Admin { subject } => subject.clone(),
        };
        Actor { role: self.role().to_owned(), subject }
    }

    fn has_trial(&self, trial: &TrialId) -> bool {
        match self {
            Principal::Patient { trial_ids, .. } | Principal::SiteStaff { trial_ids, .. } | Principal::Sponsor { trial_ids, .. } => {
                trial_ids.contains(trial)
            }
            Principal::Admin { .. } => true,
        }
    }

    /// Whether site staff hold `site` (admins hold every site).
    pub fn has_site(&self, site: &SiteId) -> bool {
        match self {
            Principal::SiteStaff { site_ids, .. } => site_ids.contains(site),
            Principal::Admin { .. } => true,
            _ => false,
        }
    }
}

/// How a caller may reach one patient's row-level data, decided from the
/// token alone, before anything is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientAccess {
    /// The patient themself.
    Own,
    /// Site staff: allowed only if the patient's enrolment is at one of their sites.
    IfSiteMatches,
    Admin,
}

/// Row-level access to a patient (read, submit, vitals). Sponsors never get it.
pub fn patient_access(p: &Principal, trial: &TrialId, patient: &PatientId) -> Result<PatientAccess, Error> {
    match p {
        Principal::Admin { .. } => Ok(PatientAccess::Admin),
        Principal::Patient { patient_id, .. } if patient_id == patient && p.has_trial(trial) => Ok(PatientAccess::Own),
        Principal::SiteStaff { .. } if p.has_trial(trial) => Ok(PatientAccess::IfSiteMatches),
        _ => Err(Error::Forbidden),
    }
}

/// Recording a patient's answers or vitals: the patient, or site staff of the
/// trial (then of the patient's site). Admins read patient data but never
/// record it: every clinical record comes from someone in the patient's care
/// (README, API table).
pub fn record_access(p: &Principal, trial: &TrialId, patient: &PatientId) -> Result<PatientAccess, Error> {
    match p {
        Principal::Admin { .. } => Err(Error::Forbidden),
        _ => patient_access(p, trial, patient),
    }
}

/// Completes an `IfSiteMatches` decision once the patient's site is known;
/// an absent patient is the same 403 as a patient of another site.
pub fn staff_site_check(p: &Principal, patient_site: Option<&SiteId>) -> Result<(), Error> {
    match patient_site {
        Some(site) if p.has_site(site) => Ok(()),
        _ => Err(Error::Forbidden),
    }
}

/// Alerts: site staff of the trial (then of the alert's site) and admins.
pub fn alert_access(p: &Principal, trial: &TrialId) -> Result<PatientAccess, Error> {
    match p {
        Principal::Admin { .. } => Ok(PatientAccess::Admin),
        Principal::SiteStaff { .. } if p.has_trial(trial) => Ok(PatientAccess::IfSiteMatches),
        _ => Err(Error::Forbidden),
    }
}

/// Writing a trial definition is for admins only.
pub fn configure_trial(p: &Principal) -> Result<(), Error> {
    match p {
        Principal::Admin { .. } => Ok(()),
        _ => Err(Error::Forbidden),
    }
}

/// How much of a trial definition a caller may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialReadScope {
    /// Admins, and sponsors or site staff of the trial: everything but the webhook secret.
    Full,
    /// Patients of the trial: the questionnaires and schedule their app renders.
    Patient,
}

/// Reading a trial's definition: admins, sponsors and site staff of it in
/// full; its patients the part their app needs.
pub fn read_trial(p: &Principal, trial: &TrialId) -> Result<TrialReadScope, Error> {
    match p {
        Principal::Admin { .. } => Ok(TrialReadScope::Full),
        Principal::Sponsor { .. } | Principal::SiteStaff { .. } if p.has_trial(trial) => Ok(TrialReadScope::Full),
        Principal::Patient { .. } if p.has_trial(trial) => Ok(TrialReadScope::Patient),
        _ => Err(Error::Forbidden),
    }
}

/// Enrolling: admins, or site staff of the trial (sites are checked against
/// the body and any existing enrolment by [`staff_site_check`]).
pub fn enrol(p: &Principal, trial: &TrialId) -> Result<PatientAccess, Error> {
    match p {
        Principal::Admin { .. } => Ok(PatientAccess::Admin),
        Principal::SiteStaff { .. } if p.has_trial(trial) => Ok(PatientAccess::IfSiteMatches),
        _ => Err(Error::Forbidden),
    }
}

/// Parses a list claim. API Gateway's JWT authorizer flattens an array claim
/// to `[a b c]`; tokens may also carry a JSON array string or `a,b,c`.
fn ids<T: std::str::FromStr>(raw: Option<&str>) -> Vec<T> {
    let Some(raw) = raw else { return vec![] };
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list.iter().filter_map(|s| s.trim().parse().ok()).collect();
    }
    let inner = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(raw);
    inner.split([',', ' ']).map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn list_claims_accept_json_arrays_commas_and_the_authorizers_bracket_form() {
        for raw in [r#"["site-leeds","site-york"]"#, "site-leeds,site-york", "site-leeds, site-york", "[site-leeds site-york]"] {
            let p = Principal::from_claims(&claims(&[("role", "site_staff"), ("site_ids", raw), ("trial_ids", "tw-demo")])).unwrap();
            let Principal::SiteStaff { site_ids, trial_ids, .. } = p else { panic!("expected staff for {raw}") };
            assert_eq!(site_ids, vec![SiteId::parse("site-leeds").unwrap(), SiteId::parse("site-york").unwrap()], "{raw}");
            assert_eq!(trial_ids, vec![TrialId::parse("tw-demo").unwrap()]);
        }
    }

    #[test]
    fn cognito_custom_prefixed_claims_are_accepted() {
        let p =
            Principal::from_claims(&claims(&[("custom:role", "patient"), ("custom:patient_id", "P0001"), ("custom:trial_ids", "tw-demo")]))
                .unwrap();
        assert_eq!(p.actor().subject.as_deref(), Some("P0001"));
        assert_eq!(p.role(), "patient");
    }

    #[test]
    fn an_unusable_identity_is_401() {
        for c in [
            claims(&[]),
            claims(&[("role", "superuser")]),
            claims(&[("role", "patient")]),
            claims(&[("role", "patient"), ("patient_id", "bad#id")]),
        ] {
            assert!(matches!(Principal::from_claims(&c), Err(Error::Unauthorized)), "{c:?}");
        }
    }

    #[test]
    fn malformed_list_entries_grant_nothing() {
        let p = Principal::from_claims(&claims(&[("role", "site_staff"), ("site_ids", "ok-site,bad#site"), ("trial_ids", "")])).unwrap();
        assert!(p.has_site(&SiteId::parse("ok-site").unwrap()));
        assert!(patient_access(&p, &TrialId::parse("t").unwrap(), &PatientId::parse("p").unwrap()).is_err());
    }
}
