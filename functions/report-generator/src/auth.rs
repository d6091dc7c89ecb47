//! Who may have a trial's reports: its sponsors and admins. The caller is the
//! edge kit's [`Principal`], read from the claims API Gateway's JWT authorizer
//! (or the local runner) verified; this is the scope rule over it.

use trialwatch::edge::http::Principal;
use trialwatch::{Error, TrialId};

/// Sponsors of the trial and admins of it (a platform admin, or one whose
/// `trial_ids` names it) may create and read its reports.
/// Everyone else gets 403, whether or not the trial exists.
pub fn may_read_reports(caller: &Principal, trial: &TrialId) -> Result<(), Error> {
    match caller {
        Principal::Admin { .. } | Principal::Sponsor { .. } if caller.has_trial(trial) => Ok(()),
        _ => Err(Error::Forbidden),
    }
}

#[cfg(test)]
mod tests {
    // How claims are read is specified in `trialwatch::edge::http::claims`.
    use std::collections::HashMap;

    use trialwatch::audit::Actor;
    use trialwatch::edge::http::HttpError;

    use super::*;

    fn caller(pairs: &[(&str, &str)]) -> Principal {
        let claims: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Principal::from_claims(&claims).unwrap()
    }
    fn t(s: &str) -> TrialId {
        TrialId::parse(s).unwrap()
    }

    #[test]
    fn a_sponsor_of_the_trial_may_read_its_reports() {
        let c = caller(&[("role", "sponsor"), ("trial_ids", "t1,t2"), ("sub", "u1")]);
        assert!(may_read_reports(&c, &t("t2")).is_ok());
        assert_eq!(c.actor(), Actor { role: "sponsor".into(), subject: Some("u1".into()) });
    }

    #[test]
    fn a_sponsor_of_another_trial_is_forbidden() {
        let c = caller(&[("role", "sponsor"), ("trial_ids", "t1")]);
        assert_eq!(HttpError::from(may_read_reports(&c, &t("t10")).unwrap_err()).status(), 403);
    }

    #[test]
    fn a_platform_admin_may_read_any_trials_reports() {
        assert!(may_read_reports(&caller(&[("custom:role", "admin")]), &t("anything")).is_ok());
    }

    #[test]
    fn an_admin_scoped_by_trial_ids_may_read_only_those_trials_reports() {
        // GIVEN an admin token that names trial t1
        let c = caller(&[("role", "admin"), ("trial_ids", "t1"), ("sub", "a1")]);
        // THEN t1's reports are theirs and t2's are not
        assert!(may_read_reports(&c, &t("t1")).is_ok());
        assert_eq!(HttpError::from(may_read_reports(&c, &t("t2")).unwrap_err()).status(), 403);
    }

    #[test]
    fn site_staff_patients_and_auditors_are_forbidden_even_for_their_own_trial() {
        for c in [
            caller(&[("role", "site_staff"), ("trial_ids", "t1")]),
            caller(&[("role", "patient"), ("patient_id", "P1"), ("trial_ids", "t1")]),
            // an auditor reads the audit trail (epro-api), never reports: generating one is a write
            caller(&[("role", "auditor"), ("trial_ids", "t1"), ("sub", "qa-1")]),
        ] {
            assert_eq!(HttpError::from(may_read_reports(&c, &t("t1")).unwrap_err()).status(), 403, "{c:?}");
        }
    }

    #[test]
    fn a_trial_id_that_merely_contains_an_allowed_one_is_not_allowed() {
        let c = caller(&[("role", "sponsor"), ("trial_ids", "t1")]);
        assert!(may_read_reports(&c, &t("t1x")).is_err());
    }
}
