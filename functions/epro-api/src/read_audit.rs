//! The `read_audit` use case: a page of a trial's audit trail, newest first
//! (21 CFR 11.10(e): records available for inspection). Transport-free: the
//! HTTP edge (`crate::audit::list`) reads the filter and the page from the
//! query string and maps the [`ReadAuditError`].

use trialwatch::audit::AuditEntry;
use trialwatch::page::{Page, PageRequest};
use trialwatch::ports::{AuditTrail, StorageError, TrialConfig};
use trialwatch::trail::AuditFilter;
use trialwatch::TrialId;

/// Which trial's trail, filtered how, which page.
#[derive(Debug, Clone)]
pub struct ReadAuditCommand {
    pub trial_id: TrialId,
    pub filter: AuditFilter,
    pub page: PageRequest,
}

/// What can stop the read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadAuditError {
    /// An unknown trial, not an empty trail: a mistyped id must not read as
    /// "nothing happened".
    #[error("trial not found")]
    TrialNotFound,
    /// The store failed, or the cursor is not one it issued.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub async fn read_audit(
    trials: &impl TrialConfig,
    trail: &impl AuditTrail,
    cmd: ReadAuditCommand,
) -> Result<Page<AuditEntry>, ReadAuditError> {
    let ReadAuditCommand { trial_id, filter, page } = cmd;
    if trials.get_trial_shared(&trial_id).await?.is_none() {
        return Err(ReadAuditError::TrialNotFound);
    }
    let page = trail.audit_page(&trial_id, &filter, &page).await?;
    tracing::info!(trial_id = %trial_id, entries = page.items.len(), more = page.next_cursor.is_some(), "audit trail read");
    Ok(page)
}

#[cfg(test)]
mod tests {
    use trialwatch::audit::Actor;
    use trialwatch::page::DEFAULT_LIMIT;
    use trialwatch::ports::{Clock, TrialRegistry};

    use super::*;
    use crate::handler_tests::{tid, world};

    fn command(trial: &str, filter: AuditFilter) -> ReadAuditCommand {
        ReadAuditCommand { trial_id: tid(trial), filter, page: PageRequest::first(DEFAULT_LIMIT) }
    }

    #[tokio::test]
    async fn the_trail_of_a_known_trial_is_read_newest_first_and_filtered() {
        // GIVEN tw-demo written twice by an admin (created, then updated)
        let w = world();
        let store = w.store.as_ref();
        let trial = store.get_trial(&tid("tw-demo")).await.unwrap().unwrap();
        let admin = Actor { role: "admin".into(), subject: Some("u-admin".into()) };
        for action in ["trial.created", "trial.updated"] {
            let entry = trialwatch::audit::AuditEntry::new(tid("tw-demo"), "trial", action, admin.clone(), w.clock.now());
            store.put_trial(&trial, &entry).await.unwrap();
            w.clock.advance(chrono::Duration::seconds(1));
        }
        // WHEN the trail of entity "trial" is read
        let filter = AuditFilter::parse(Some("trial"), None, None).unwrap();
        let page = read_audit(store, store, command("tw-demo", filter)).await.expect("a page");
        // THEN both entries come back, newest first
        let actions: Vec<&str> = page.items.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["trial.updated", "trial.created"]);
    }

    #[tokio::test]
    async fn an_unknown_trial_is_not_found_rather_than_an_empty_trail() {
        let w = world();
        let r = read_audit(w.store.as_ref(), w.store.as_ref(), command("tw-none", AuditFilter::default())).await;
        assert_eq!(r.unwrap_err(), ReadAuditError::TrialNotFound);
    }

    #[tokio::test]
    async fn a_store_that_fails_is_a_storage_error() {
        let w = world();
        w.store.fail_next("audit_page", 1);
        let r = read_audit(w.store.as_ref(), w.store.as_ref(), command("tw-demo", AuditFilter::default())).await;
        assert!(matches!(r, Err(ReadAuditError::Storage(StorageError::Unavailable(_)))), "{r:?}");
    }
}
