//! Who is calling, from the JWT claims API Gateway's authorizer verified, and
//! the pure decisions about what they may touch.
//!
//! Outcomes: no usable identity is 401; an identity whose scope does not cover
//! the resource is 403. A 403 never says whether the patient exists: scope is
//! checked from the token before any lookup, and for site staff a patient that
//! does not exist and a patient of another site give the same 403.

use trialwatch::{Error, PatientId, SiteId, TrialId};

use crate::scope::SiteScope;

/// The caller, as the edge kit reads every function's tokens.
pub use trialwatch::edge::http::Principal;

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
        Principal::Admin { .. } if p.has_trial(trial) => Ok(PatientAccess::Admin),
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

/// Completes an `IfSiteMatches` decision once the patient's site is known:
/// staff must hold that `(trial, site)` pair. An absent patient is the same
/// 403 as a patient of another site.
pub fn staff_site_check(p: &Principal, trial: &TrialId, patient_site: Option<&SiteId>) -> Result<(), Error> {
    match patient_site {
        Some(site) if p.has_site(trial, site) => Ok(()),
        _ => Err(Error::Forbidden),
    }
}

/// The sites a use case lets the caller reach, once `access` is decided:
/// site staff the sites their token pairs with `trial`, everyone else
/// (admins, the patient themself) the whole trial.
pub fn site_scope(p: &Principal, trial: &TrialId, access: PatientAccess) -> SiteScope {
    match (access, p) {
        (PatientAccess::Own | PatientAccess::Admin, _) => SiteScope::All,
        (PatientAccess::IfSiteMatches, Principal::SiteStaff { site_ids, .. }) => {
            SiteScope::Sites(site_ids.iter().filter(|(t, _)| t == trial).map(|(_, s)| s.clone()).collect())
        }
        // No other caller is site-limited; should one be, it reaches no site.
        (PatientAccess::IfSiteMatches, _) => SiteScope::Sites(Vec::new()),
    }
}

/// Alerts: site staff of the trial (then of the alert's site) and admins of it.
pub fn alert_access(p: &Principal, trial: &TrialId) -> Result<PatientAccess, Error> {
    match p {
        Principal::Admin { .. } if p.has_trial(trial) => Ok(PatientAccess::Admin),
        Principal::SiteStaff { .. } if p.has_trial(trial) => Ok(PatientAccess::IfSiteMatches),
        _ => Err(Error::Forbidden),
    }
}

/// Any write (the routes that leave an audit entry): an auditor's token is
/// read-only, whatever else a route would allow. Checked before the route's
/// own policy, so no future route can forget it.
pub fn may_write(p: &Principal) -> Result<(), Error> {
    match p {
        Principal::Auditor { .. } => Err(Error::Forbidden),
        _ => Ok(()),
    }
}

/// Reading a trial's audit trail: admins of the trial, and its auditors.
/// Patients, site staff and sponsors never: the trail names every patient and actor.
pub fn read_audit(p: &Principal, trial: &TrialId) -> Result<(), Error> {
    match p {
        Principal::Admin { .. } | Principal::Auditor { .. } if p.has_trial(trial) => Ok(()),
        _ => Err(Error::Forbidden),
    }
}

/// Writing a trial definition is for admins only: a platform admin, or an
/// admin whose `trial_ids` names the trial (creating it included, so a scoped
/// admin cannot mint trials outside its list).
pub fn configure_trial(p: &Principal, trial: &TrialId) -> Result<(), Error> {
    match p {
        Principal::Admin { .. } if p.has_trial(trial) => Ok(()),
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
        Principal::Admin { .. } if p.has_trial(trial) => Ok(TrialReadScope::Full),
        Principal::Sponsor { .. } | Principal::SiteStaff { .. } if p.has_trial(trial) => Ok(TrialReadScope::Full),
        Principal::Patient { .. } if p.has_trial(trial) => Ok(TrialReadScope::Patient),
        _ => Err(Error::Forbidden),
    }
}

/// Enrolling: admins of the trial, or site staff of the trial (sites are
/// checked against the body and any existing enrolment by [`staff_site_check`]).
pub fn enrol(p: &Principal, trial: &TrialId) -> Result<PatientAccess, Error> {
    match p {
        Principal::Admin { .. } if p.has_trial(trial) => Ok(PatientAccess::Admin),
        Principal::SiteStaff { .. } if p.has_trial(trial) => Ok(PatientAccess::IfSiteMatches),
        _ => Err(Error::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    // How claims are read is specified in `trialwatch::edge::http::claims`;
    // these are the policies over what they grant.
    use std::collections::HashMap;

    use trialwatch::edge::http::HttpError;

    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_audit_trail_is_for_admins_and_auditors_of_the_trial_and_auditors_write_nothing() {
        let t = TrialId::parse("tw-demo").unwrap();
        let p = |c: &[(&str, &str)]| Principal::from_claims(&claims(c)).unwrap();
        let auditor = p(&[("role", "auditor"), ("trial_ids", "tw-demo")]);
        assert!(read_audit(&auditor, &t).is_ok());
        assert!(read_audit(&p(&[("role", "admin")]), &t).is_ok());
        assert!(read_audit(&p(&[("role", "auditor"), ("trial_ids", "tw-other")]), &t).is_err());
        for other in [
            p(&[("role", "sponsor"), ("trial_ids", "tw-demo")]),
            p(&[("role", "site_staff"), ("trial_ids", "tw-demo"), ("site_ids", "site-leeds")]),
            p(&[("role", "patient"), ("patient_id", "P0001"), ("trial_ids", "tw-demo")]),
        ] {
            assert_eq!(HttpError::from(read_audit(&other, &t).unwrap_err()).status(), 403, "{other:?}");
            assert!(may_write(&other).is_ok());
        }
        assert_eq!(HttpError::from(may_write(&auditor).unwrap_err()).status(), 403);
    }

    #[test]
    fn malformed_list_entries_grant_nothing() {
        let p =
            Principal::from_claims(&claims(&[("role", "site_staff"), ("site_ids", "t/ok-site,t/bad#site"), ("trial_ids", "")])).unwrap();
        // no trial in the token: the pair's trial is not held, so neither is its site
        assert!(!p.has_site(&TrialId::parse("t").unwrap(), &SiteId::parse("ok-site").unwrap()));
        assert!(patient_access(&p, &TrialId::parse("t").unwrap(), &PatientId::parse("p").unwrap()).is_err());
    }
}
