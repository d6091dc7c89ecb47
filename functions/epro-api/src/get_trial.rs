//! The `get_trial` use case: a trial's stored definition, read fresh
//! (definitions change rarely, but an admin expects to see their own write).
//! Which part of it a caller sees is the token's to decide, at the HTTP edge
//! (`crate::trials::get`).

use trialwatch::ports::{StorageError, TrialConfig};
use trialwatch::trial::Trial;
use trialwatch::TrialId;

/// Which trial.
#[derive(Debug, Clone)]
pub struct GetTrialCommand {
    pub trial_id: TrialId,
}

/// What can stop the read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GetTrialError {
    #[error("trial not found")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub async fn get_trial(trials: &impl TrialConfig, cmd: GetTrialCommand) -> Result<Trial, GetTrialError> {
    trials.get_trial(&cmd.trial_id).await?.ok_or(GetTrialError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler_tests::{tid, world};

    #[tokio::test]
    async fn a_stored_trial_is_returned_as_stored() {
        let w = world();
        let trial = get_trial(w.store.as_ref(), GetTrialCommand { trial_id: tid("tw-demo") }).await.expect("tw-demo");
        assert_eq!(trial.trial_id, tid("tw-demo"));
        assert_eq!(trial.definition.sites.len(), 2);
    }

    #[tokio::test]
    async fn an_unknown_trial_is_not_found() {
        let w = world();
        let r = get_trial(w.store.as_ref(), GetTrialCommand { trial_id: tid("tw-none") }).await;
        assert_eq!(r.unwrap_err(), GetTrialError::NotFound);
    }

    #[tokio::test]
    async fn a_store_that_fails_is_a_storage_error() {
        let w = world();
        w.store.fail_next("get_trial", 1);
        let r = get_trial(w.store.as_ref(), GetTrialCommand { trial_id: tid("tw-demo") }).await;
        assert!(matches!(r, Err(GetTrialError::Storage(StorageError::Unavailable(_)))), "{r:?}");
    }
}
