//! The trial ports, cut by consumer: what the use cases read of a trial
//! ([`TrialConfig`]) and the register admins write and schedules enumerate
//! ([`TrialRegistry`]).

use std::sync::Arc;

use async_trait::async_trait;

use super::{StorageError, Upsert};
use crate::audit::AuditEntry;
use crate::ids::TrialId;
use crate::trial::Trial;

/// A trial's configuration as the use cases read it (submit, score,
/// deliver, build a report): the definition, its questionnaires, sites and
/// alerting rules.
#[async_trait]
pub trait TrialConfig: Send + Sync {
    async fn get_trial(&self, id: &TrialId) -> Result<Option<Trial>, StorageError>;
    /// `get_trial` with a strongly consistent read, for confirming an absence
    /// before acting on it for good (a reading parked as "unknown trial"). An
    /// adapter whose `get_trial` may be stale must override this.
    async fn get_trial_consistent(&self, id: &TrialId) -> Result<Option<Trial>, StorageError> {
        self.get_trial(id).await
    }
    /// `get_trial` behind a shared pointer: a caching adapter hands out its
    /// cached copy instead of cloning a definition on every request (the
    /// submission hot path reads one per request).
    async fn get_trial_shared(&self, id: &TrialId) -> Result<Option<Arc<Trial>>, StorageError> {
        Ok(self.get_trial(id).await?.map(Arc::new))
    }
}

/// The register of trials: admins create and update them (epro-api's
/// `PUT /v1/trials/{trialId}`), the schedules enumerate them.
#[async_trait]
pub trait TrialRegistry: Send + Sync {
    /// Writes the trial and its audit entry atomically.
    async fn put_trial(&self, trial: &Trial, audit: &AuditEntry) -> Result<Upsert, StorageError>;
    /// Every trial id, for the weekly report schedule (an index item, not a Scan).
    async fn list_trial_ids(&self) -> Result<Vec<TrialId>, StorageError>;
}
