//! Which sites' records a caller reaches. The edge decides it from the token
//! alone ([`crate::auth::site_scope`]); a use case applies it to the site of
//! the record it reads (an enrolment, an alert), because only the stored
//! record says which site that is.

use trialwatch::SiteId;

/// The sites of one trial a caller may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteScope {
    /// Admins of the trial, and a patient for their own record.
    All,
    /// Site staff: only the records of these sites.
    Sites(Vec<SiteId>),
}

impl SiteScope {
    /// Whether a record at `site` is within reach. An absent record (`None`)
    /// is out of reach of a site-limited caller, exactly like another site's:
    /// staff learn nothing about records outside their sites, not even
    /// whether they exist. For [`SiteScope::All`] an absence is then the
    /// caller's "not found".
    pub fn admits(&self, site: Option<&SiteId>) -> bool {
        match self {
            SiteScope::All => true,
            SiteScope::Sites(sites) => site.is_some_and(|s| sites.contains(s)),
        }
    }

    /// The record read, if within reach: `forbidden` when it is not (an absent record
    /// included, for site staff), else `absent` when there is none. The one order of
    /// these two answers for every use case that reads a record and then checks its site.
    pub fn reach<T, E>(&self, record: Option<T>, site: fn(&T) -> &SiteId, forbidden: E, absent: E) -> Result<T, E> {
        if !self.admits(record.as_ref().map(site)) {
            return Err(forbidden);
        }
        record.ok_or(absent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(s: &str) -> SiteId {
        SiteId::parse(s).unwrap()
    }

    #[test]
    fn a_site_limited_scope_admits_only_its_sites_and_never_an_absent_record() {
        let leeds = SiteScope::Sites(vec![site("site-leeds")]);
        assert!(leeds.admits(Some(&site("site-leeds"))));
        assert!(!leeds.admits(Some(&site("site-york"))));
        assert!(!leeds.admits(None));
    }

    #[test]
    fn reach_answers_forbidden_before_absent_for_site_staff_and_absent_for_the_whole_trial() {
        let leeds = SiteScope::Sites(vec![site("site-leeds")]);
        let at = |s: &str| Some(site(s));
        assert_eq!(leeds.reach(at("site-leeds"), |s| s, "forbidden", "absent"), Ok(site("site-leeds")));
        assert_eq!(leeds.reach(at("site-york"), |s| s, "forbidden", "absent"), Err("forbidden"));
        assert_eq!(leeds.reach(None, |s| s, "forbidden", "absent"), Err("forbidden"));
        assert_eq!(SiteScope::All.reach(None::<SiteId>, |s| s, "forbidden", "absent"), Err("absent"));
    }

    #[test]
    fn the_whole_trial_admits_every_site_and_leaves_an_absence_to_not_found() {
        assert!(SiteScope::All.admits(Some(&site("site-york"))));
        assert!(SiteScope::All.admits(None));
    }
}
