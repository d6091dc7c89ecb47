//! Who is calling, from the JWT claims API Gateway's authorizer (or the local
//! runner's) has verified. One parser for every function: what a token means
//! must not depend on which function reads it.
//!
//! No usable identity is 401 ([`HttpError::Unauthorized`]); what an identity may
//! touch is each function's own policy, decided from the [`Principal`].

use std::collections::HashMap;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use super::problem::HttpError;
use crate::audit::Actor;
use crate::{PatientId, SiteId, TrialId};

/// Longest `sub` recorded as an audit subject; Cognito's are 36-character UUIDs.
pub const MAX_SUBJECT_LEN: usize = 128;

/// A verified caller. Lists hold only well-formed ids: a malformed entry in a
/// claim grants nothing rather than failing the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Patient {
        patient_id: PatientId,
        trial_ids: Vec<TrialId>,
        subject: Option<String>,
    },
    /// Staff hold sites per trial: `site_ids` entries are `trialId/siteId`
    /// (see [`site_pairs`]), so Leeds in trial A and York in trial B never
    /// add up to York in trial A.
    SiteStaff {
        site_ids: Vec<(TrialId, SiteId)>,
        trial_ids: Vec<TrialId>,
        subject: Option<String>,
    },
    Sponsor {
        trial_ids: Vec<TrialId>,
        subject: Option<String>,
    },
    /// Reads the audit trail of the trials in its token, and writes nothing.
    Auditor {
        trial_ids: Vec<TrialId>,
        subject: Option<String>,
    },
    /// `trial_ids: None` is a platform admin (the token has no `trial_ids`
    /// claim); `Some` limits the admin to those trials, creating one included.
    Admin {
        trial_ids: Option<Vec<TrialId>>,
        subject: Option<String>,
    },
}

impl Principal {
    /// Reads the principal from the request's authorizer claims
    /// (`requestContext.authorizer.jwt.claims`).
    pub fn from_request(req: &Request) -> Result<Self, HttpError> {
        match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => {
                let claims = ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|j| &j.claims).ok_or(HttpError::Unauthorized)?;
                Self::from_claims(claims)
            }
            _ => Err(HttpError::Unauthorized),
        }
    }

    /// Builds the principal from JWT claims. `role`, `patient_id`, `site_ids`
    /// and `trial_ids` may carry Cognito's `custom:` prefix; `sub` is the
    /// token's own subject and is read only under its standard name.
    pub fn from_claims(claims: &HashMap<String, String>) -> Result<Self, HttpError> {
        let claim = |name: &str| claims.get(name).or_else(|| claims.get(&format!("custom:{name}"))).map(|s| s.trim());
        let subject = claims.get("sub").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_LEN);
        let trial_ids = || ids::<TrialId>(claim("trial_ids"));
        match claim("role").ok_or(HttpError::Unauthorized)? {
            "patient" => {
                // A patient token without its own well-formed id speaks for no one.
                let patient_id = claim("patient_id").and_then(|p| PatientId::parse(p).ok()).ok_or(HttpError::Unauthorized)?;
                Ok(Principal::Patient { patient_id, trial_ids: trial_ids(), subject })
            }
            "site_staff" => {
                let trial_ids = trial_ids();
                Ok(Principal::SiteStaff { site_ids: site_pairs(claim("site_ids"), &trial_ids), trial_ids, subject })
            }
            "sponsor" => Ok(Principal::Sponsor { trial_ids: trial_ids(), subject }),
            "auditor" => Ok(Principal::Auditor { trial_ids: trial_ids(), subject }),
            // The claim's presence, not its content, makes a scoped admin: an
            // empty list is an admin of no trial, never of every trial.
            "admin" => Ok(Principal::Admin { trial_ids: claim("trial_ids").is_some().then(trial_ids), subject }),
            _ => Err(HttpError::Unauthorized),
        }
    }

    pub fn role(&self) -> &'static str {
        match self {
            Principal::Patient { .. } => "patient",
            Principal::SiteStaff { .. } => "site_staff",
            Principal::Sponsor { .. } => "sponsor",
            Principal::Auditor { .. } => "auditor",
            Principal::Admin { .. } => "admin",
        }
    }

    /// The audit actor: a patient is recorded by their pseudonymous id, staff
    /// by the token's `sub`.
    pub fn actor(&self) -> Actor {
        let subject = match self {
            Principal::Patient { patient_id, .. } => Some(patient_id.to_string()),
            Principal::SiteStaff { subject, .. }
            | Principal::Sponsor { subject, .. }
            | Principal::Auditor { subject, .. }
            | Principal::Admin { subject, .. } => subject.clone(),
        };
        Actor { role: self.role().to_owned(), subject }
    }

    /// The audit actor of a write: the token's `sub` and role. A write that
    /// would leave an entry without a `sub` is refused (401): the trail must
    /// name who acted (21 CFR 11.10(e)), and a patient id alone names a
    /// record, not the person who held the token.
    pub fn author(&self) -> Result<Actor, HttpError> {
        let subject = match self {
            Principal::Patient { subject, .. }
            | Principal::SiteStaff { subject, .. }
            | Principal::Sponsor { subject, .. }
            | Principal::Auditor { subject, .. }
            | Principal::Admin { subject, .. } => subject.clone(),
        };
        let subject = subject.ok_or(HttpError::Unauthorized)?;
        Ok(Actor { role: self.role().to_owned(), subject: Some(subject) })
    }

    /// Whether the token names `trial` (a platform admin holds every trial,
    /// a scoped admin those of its `trial_ids`). An exact id match: `t1` does
    /// not cover `t1x`.
    pub fn has_trial(&self, trial: &TrialId) -> bool {
        match self {
            Principal::Patient { trial_ids, .. }
            | Principal::SiteStaff { trial_ids, .. }
            | Principal::Sponsor { trial_ids, .. }
            | Principal::Auditor { trial_ids, .. } => trial_ids.contains(trial),
            Principal::Admin { trial_ids, .. } => trial_ids.as_ref().is_none_or(|t| t.contains(trial)),
        }
    }

    /// Whether the caller holds `site` of `trial`: site staff by a
    /// `(trial, site)` pair of their token, admins by holding the trial.
    pub fn has_site(&self, trial: &TrialId, site: &SiteId) -> bool {
        match self {
            Principal::SiteStaff { site_ids, .. } => self.has_trial(trial) && site_ids.iter().any(|(t, s)| t == trial && s == site),
            Principal::Admin { .. } => self.has_trial(trial),
            _ => false,
        }
    }
}

/// The `(trial, site)` pairs of a `site_ids` claim. An entry is
/// `trialId/siteId`; a bare `siteId` is read as a site of the token's only
/// trial, and grants nothing when `trial_ids` holds more or fewer than one
/// (which trial it meant cannot be known). A pair for a trial the token does
/// not name grants nothing either.
fn site_pairs(raw: Option<&str>, trials: &[TrialId]) -> Vec<(TrialId, SiteId)> {
    let pair = |entry: &str| -> Option<(TrialId, SiteId)> {
        let (trial, site) = match (entry.split_once('/'), trials) {
            (Some((t, s)), _) => (TrialId::parse(t).ok()?, s),
            (None, [only]) => (only.clone(), entry),
            (None, _) => return None,
        };
        Some((trial, SiteId::parse(site).ok()?))
    };
    entries(raw).iter().filter_map(|e| pair(e)).filter(|(t, _)| trials.contains(t)).collect()
}

/// Parses a list claim in any shape it arrives in: API Gateway's JWT
/// authorizer flattens an array claim to `[a b c]`; tokens may also carry a
/// JSON array string, or `a,b,c` as Cognito custom attributes (always strings) do.
fn ids<T: std::str::FromStr>(raw: Option<&str>) -> Vec<T> {
    entries(raw).iter().filter_map(|s| s.parse().ok()).collect()
}

/// The trimmed, non-empty entries of a list claim (see [`ids`]).
fn entries(raw: Option<&str>) -> Vec<String> {
    let Some(raw) = raw else { return vec![] };
    if let Ok(list) = serde_json::from_str::<Vec<String>>(raw) {
        return list.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    }
    let inner = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(raw);
    inner.split([',', ' ']).map(|s| s.trim().trim_matches('"')).filter(|s| !s.is_empty()).map(str::to_owned).collect()
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
    fn site(s: &str) -> SiteId {
        SiteId::parse(s).unwrap()
    }

    #[test]
    fn list_claims_accept_json_arrays_commas_and_the_authorizers_bracket_form() {
        for raw in [
            r#"["site-leeds","site-york"]"#,
            "site-leeds,site-york",
            "site-leeds, site-york",
            " site-leeds , site-york ",
            "[site-leeds site-york]",
        ] {
            let p = Principal::from_claims(&claims(&[("role", "site_staff"), ("site_ids", raw), ("trial_ids", "tw-demo")])).unwrap();
            let Principal::SiteStaff { site_ids, trial_ids, .. } = p else { panic!("expected staff for {raw}") };
            assert_eq!(site_ids, vec![(t("tw-demo"), site("site-leeds")), (t("tw-demo"), site("site-york"))], "{raw}");
            assert_eq!(trial_ids, vec![t("tw-demo")]);
        }
    }

    #[test]
    fn cognito_custom_prefixed_claims_are_accepted() {
        let p =
            Principal::from_claims(&claims(&[("custom:role", "patient"), ("custom:patient_id", "P0001"), ("custom:trial_ids", "tw-demo")]))
                .unwrap();
        assert_eq!(p.actor().subject.as_deref(), Some("P0001"));
        assert_eq!(p.role(), "patient");
        assert!(p.has_trial(&t("tw-demo")));
    }

    #[test]
    fn an_unusable_identity_is_401() {
        for c in [
            claims(&[]),
            claims(&[("role", "superuser")]),
            claims(&[("role", "")]),
            claims(&[("role", "patient")]),
            claims(&[("role", "patient"), ("patient_id", "bad#id")]),
        ] {
            assert!(matches!(Principal::from_claims(&c), Err(HttpError::Unauthorized)), "{c:?}");
        }
    }

    #[test]
    fn malformed_list_entries_grant_nothing() {
        let p = Principal::from_claims(&claims(&[
            ("role", "site_staff"),
            ("site_ids", "ok-site,bad#site,t/bad#site,bad#t/x"),
            ("trial_ids", "t,bad#t"),
        ]))
        .unwrap();
        let Principal::SiteStaff { site_ids, trial_ids, .. } = &p else { panic!("expected staff") };
        assert_eq!(trial_ids, &vec![t("t")]);
        assert_eq!(site_ids, &vec![(t("t"), site("ok-site"))]);
        assert!(p.has_site(&t("t"), &site("ok-site")));
        assert!(!p.has_trial(&t("u")));
    }

    #[test]
    fn staff_site_scope_is_trial_site_pairs_not_a_cross_product() {
        // GIVEN staff at Leeds in trial A and at York in trial B
        let p = Principal::from_claims(&claims(&[
            ("role", "site_staff"),
            ("site_ids", "trial-a/leeds,trial-b/york"),
            ("trial_ids", "trial-a,trial-b"),
        ]))
        .unwrap();
        // THEN they hold exactly those two pairs
        assert!(p.has_site(&t("trial-a"), &site("leeds")));
        assert!(p.has_site(&t("trial-b"), &site("york")));
        // AND not York in trial A, nor Leeds in trial B
        assert!(!p.has_site(&t("trial-a"), &site("york")));
        assert!(!p.has_site(&t("trial-b"), &site("leeds")));
    }

    #[test]
    fn a_bare_site_id_is_read_only_when_the_token_names_exactly_one_trial() {
        let staff = |sites: &str, trials: &str| {
            Principal::from_claims(&claims(&[("role", "site_staff"), ("site_ids", sites), ("trial_ids", trials)])).unwrap()
        };
        // one trial: the bare id is a site of it
        assert!(staff("leeds", "trial-a").has_site(&t("trial-a"), &site("leeds")));
        // two trials, or none: which trial was meant cannot be known, so it grants nothing
        let two = staff("leeds", "trial-a,trial-b");
        assert!(!two.has_site(&t("trial-a"), &site("leeds")) && !two.has_site(&t("trial-b"), &site("leeds")));
        assert_eq!(staff("leeds", ""), Principal::SiteStaff { site_ids: vec![], trial_ids: vec![], subject: None });
        // a pair for a trial the token does not name grants nothing
        assert!(!staff("trial-b/york", "trial-a").has_site(&t("trial-b"), &site("york")));
    }

    #[test]
    fn an_admin_with_trial_ids_holds_only_those_and_one_without_is_a_platform_admin() {
        let admin = |c: &[(&str, &str)]| Principal::from_claims(&claims(c)).unwrap();
        let platform = admin(&[("role", "admin")]);
        assert!(platform.has_trial(&t("any-trial")) && platform.has_site(&t("any-trial"), &site("any-site")));
        let scoped = admin(&[("role", "admin"), ("trial_ids", "trial-a")]);
        assert!(scoped.has_trial(&t("trial-a")) && scoped.has_site(&t("trial-a"), &site("leeds")));
        assert!(!scoped.has_trial(&t("trial-b")) && !scoped.has_site(&t("trial-b"), &site("leeds")));
        // an empty (or all-malformed) list is an admin of no trial, not of every trial
        for empty in ["", "[]", "bad#id"] {
            assert!(!admin(&[("role", "admin"), ("trial_ids", empty)]).has_trial(&t("trial-a")), "{empty:?}");
        }
    }

    #[test]
    fn an_auditor_holds_exactly_the_trials_of_its_token_and_no_site() {
        let p = Principal::from_claims(&claims(&[("role", "auditor"), ("trial_ids", "t1,t2"), ("sub", "qa-1")])).unwrap();
        assert_eq!(p.role(), "auditor");
        assert!(p.has_trial(&t("t1")) && p.has_trial(&t("t2")));
        assert!(!p.has_trial(&t("t3")));
        assert!(!p.has_site(&t("t1"), &SiteId::parse("s1").unwrap()));
        assert_eq!(p.actor(), Actor { role: "auditor".into(), subject: Some("qa-1".into()) });
    }

    #[test]
    fn a_trial_id_that_merely_contains_an_allowed_one_is_not_held() {
        let p = Principal::from_claims(&claims(&[("role", "sponsor"), ("trial_ids", "t1")])).unwrap();
        assert!(p.has_trial(&t("t1")));
        assert!(!p.has_trial(&t("t1x")));
        assert!(!p.has_trial(&t("t")));
    }

    // The rules below settle where the two former parsers (epro-api's and
    // report-generator's) disagreed; each was report-generator's behaviour before.

    #[test]
    fn a_patient_token_without_a_patient_id_is_401_whichever_function_reads_it() {
        // GIVEN a patient token with trials but no patient_id (report-generator
        // used to accept it as a patient and then answer 403)
        let c = claims(&[("role", "patient"), ("trial_ids", "t1"), ("sub", "u1")]);
        // THEN it is no usable identity
        assert!(matches!(Principal::from_claims(&c), Err(HttpError::Unauthorized)));
    }

    #[test]
    fn the_audit_subject_is_the_trimmed_standard_sub_of_at_most_128_characters() {
        let subject = |c: &[(&str, &str)]| Principal::from_claims(&claims(c)).unwrap().actor().subject;
        // report-generator recorded " u1 " untrimmed
        assert_eq!(subject(&[("role", "sponsor"), ("sub", " u1 ")]), Some("u1".to_owned()));
        // report-generator recorded any length
        assert_eq!(subject(&[("role", "sponsor"), ("sub", &"x".repeat(MAX_SUBJECT_LEN + 1))]), None);
        assert_eq!(subject(&[("role", "sponsor"), ("sub", &"x".repeat(MAX_SUBJECT_LEN))]).map(|s| s.len()), Some(MAX_SUBJECT_LEN));
        // report-generator took a `custom:sub` attribute (user-writable in a
        // Cognito pool unless locked down) as the subject
        assert_eq!(subject(&[("role", "sponsor"), ("custom:sub", "someone-else")]), None);
        assert_eq!(subject(&[("role", "admin"), ("sub", "   ")]), None);
    }

    #[test]
    fn a_writer_without_a_sub_is_401_and_with_one_is_recorded_by_sub_and_role() {
        for role in [
            vec![("role", "patient"), ("patient_id", "P0001")],
            vec![("role", "site_staff")],
            vec![("role", "sponsor")],
            vec![("role", "admin")],
        ] {
            // GIVEN a usable identity without `sub` (or a blank one)
            for sub in [None, Some("  ")] {
                let mut c = role.clone();
                c.extend(sub.map(|s| ("sub", s)));
                let p = Principal::from_claims(&claims(&c)).unwrap();
                // THEN it may read, but not author an audited write
                assert!(matches!(p.author(), Err(HttpError::Unauthorized)), "{c:?}");
            }
            // AND with a sub the author is that sub and the role
            let mut c = role.clone();
            c.push(("sub", "u-42"));
            let p = Principal::from_claims(&claims(&c)).unwrap();
            assert_eq!(p.author().unwrap(), Actor { role: p.role().to_owned(), subject: Some("u-42".into()) });
        }
    }

    #[test]
    fn the_principal_is_read_from_the_api_gateway_authorizer_claims() {
        let event: serde_json::Value = serde_json::from_str(include_str!("../../../../events/report-post.json")).unwrap();
        let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(event.clone()).unwrap();
        let p = Principal::from_request(&Request::from(lambda)).unwrap();
        assert_eq!(p.role(), "sponsor");
        assert_eq!(p.actor().subject.as_deref(), Some("5b0c7f3e-2d4a-4c1b-9e8f-0a1b2c3d4e5f"));
        // AND without an authorizer there is no identity
        let mut bare = event;
        bare["requestContext"].as_object_mut().unwrap().remove("authorizer");
        let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(bare).unwrap();
        assert!(matches!(Principal::from_request(&Request::from(lambda)), Err(HttpError::Unauthorized)));
    }
}
