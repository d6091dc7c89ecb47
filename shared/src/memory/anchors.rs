//! `AnchorStore` and `AnchorReader` in memory: every put is kept, as every
//! version of a locked object is.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::lock;
use crate::audit::anchor::Anchor;
use crate::ids::TrialId;
use crate::ports::StorageError;
use crate::ports::{AnchorReader, AnchorStore, StoredAnchor};

/// (key, body, retain-until; none for a raw put): one object version.
type Version = (String, Vec<u8>, Option<DateTime<Utc>>);

#[derive(Default)]
pub struct MemoryAnchors {
    /// In put order: each put is a new version.
    objects: Mutex<Vec<Version>>,
    failures: Mutex<u32>,
}

impl MemoryAnchors {
    /// The anchors stored by `put_anchor`, with their retain-until dates.
    pub fn stored(&self) -> Vec<(Anchor, DateTime<Utc>)> {
        lock(&self.objects).iter().filter_map(|(_, body, until)| Some((serde_json::from_slice(body).ok()?, (*until)?))).collect()
    }

    /// A new version of `key` with any body (a forged or garbled anchor).
    pub fn put_raw(&self, key: &str, body: &[u8]) {
        lock(&self.objects).push((key.to_owned(), body.to_vec(), None));
    }

    /// The next `n` puts fail as unavailable.
    pub fn fail_next(&self, n: u32) {
        *lock(&self.failures) = n;
    }
}

#[async_trait]
impl AnchorStore for MemoryAnchors {
    async fn put_anchor(&self, anchor: &Anchor, retain_until: DateTime<Utc>) -> Result<(), StorageError> {
        {
            let mut failures = lock(&self.failures);
            if *failures > 0 {
                *failures -= 1;
                return Err(StorageError::Unavailable("injected fault in put_anchor".into()));
            }
        }
        let body = serde_json::to_vec(anchor).map_err(|_| StorageError::Corrupt("anchor encoding".into()))?;
        lock(&self.objects).push((anchor.key(), body, Some(retain_until)));
        Ok(())
    }
}

#[async_trait]
impl AnchorReader for MemoryAnchors {
    async fn anchors(&self, trial: &TrialId) -> Result<Vec<StoredAnchor>, StorageError> {
        let prefix = Anchor::prefix(trial);
        Ok(lock(&self.objects)
            .iter()
            .enumerate()
            .filter(|(_, (key, _, _))| key.starts_with(&prefix))
            .map(|(version, (key, body, _))| StoredAnchor { name: format!("{key}?versionId={version}"), body: body.clone() })
            .collect())
    }
}
