//! Who may write to the vitals queue directly, and for which trials.
//!
//! The queue policy can only say *who* may send (epro-api's role, the redrive
//! role, and the integrators' roles of the `VitalsIntegratorRoleArns`
//! parameter); it cannot look inside a message. The per-trial rule is
//! enforced here, on SQS's `SenderId` record attribute: SQS sets it from the
//! authenticated caller (for a role, `<role unique id>:<session>`), so a
//! sender cannot forge it, unlike a message attribute or a body field. The
//! unique id (`AROA…`, `aws iam get-role --query Role.RoleId`), not the ARN, is
//! the key: a role deleted and re-created under the same name gets a new one,
//! so it inherits nothing.
//!
//! `VITALS_INTEGRATORS` maps each integrator to its trials:
//! `AROAEXAMPLE1=tw-heart-01|tw-heart-02;AROAEXAMPLE2=tw-lung-01`. A sender
//! that is not listed is one of TrialWatch's own roles (the queue policy admits
//! no one else) and may send for any trial.

use std::collections::{HashMap, HashSet};

use trialwatch::TrialId;

/// The environment variable holding the map (optional; empty: no integrators).
pub const INTEGRATORS_VAR: &str = "VITALS_INTEGRATORS";

/// The record attribute SQS puts the sending principal in.
pub const SENDER_ID: &str = "SenderId";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Integrators(HashMap<String, HashSet<TrialId>>);

impl Integrators {
    /// Parses `ROLEID=trial|trial;ROLEID=trial`; the message names what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (role, trials) = entry.split_once('=').ok_or_else(|| format!("entry {entry:?} is not ROLEID=trial|trial"))?;
            let role = role.trim();
            if role.is_empty() || !role.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("{role:?} is not an IAM role unique id (AROA…)"));
            }
            let trials = trials
                .split('|')
                .map(|t| TrialId::parse(t.trim()).map_err(|e| format!("trial {t:?} of {role}: {e}")))
                .collect::<Result<HashSet<_>, _>>()?;
            if map.insert(role.to_owned(), trials).is_some() {
                return Err(format!("{role} is listed twice"));
            }
        }
        Ok(Self(map))
    }

    /// Whether a record from `sender` (SQS's `SenderId`) may carry readings
    /// for `trial`. A record without a sender (hand-built events, an emulator
    /// that sets none) is not an integrator's.
    pub fn allows(&self, sender: Option<&str>, trial: &TrialId) -> bool {
        let Some(principal) = sender.map(|s| s.split(':').next().unwrap_or(s)) else { return true };
        self.0.get(principal).is_none_or(|trials| trials.contains(trial))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TrialId {
        TrialId::parse(s).unwrap()
    }

    #[test]
    fn an_integrator_may_send_for_its_own_trials_only() {
        let i = Integrators::parse("AROAACME=tw-heart-01|tw-heart-02; AROAOTHER=tw-lung-01").unwrap();
        assert!(i.allows(Some("AROAACME:device-cloud"), &t("tw-heart-02")));
        assert!(!i.allows(Some("AROAACME:device-cloud"), &t("tw-lung-01")));
        assert!(i.allows(Some("AROAOTHER:s"), &t("tw-lung-01")));
        // TrialWatch's own roles (not listed) and records with no sender are not integrators
        assert!(i.allows(Some("AROAEPROAPI:epro-api"), &t("tw-lung-01")));
        assert!(i.allows(None, &t("tw-lung-01")));
    }

    #[test]
    fn a_bad_map_is_refused_naming_the_entry() {
        assert_eq!(Integrators::parse("").unwrap(), Integrators::default());
        for bad in ["AROAACME", "arn:aws:iam::1:role/x=t1", "AROAACME=t#1", "A=t1;A=t2"] {
            assert!(Integrators::parse(bad).is_err(), "{bad}");
        }
    }
}
