//! Anchors: every chain head of a trial, written on a schedule to S3 under
//! Object Lock in compliance mode, which no one (root included) can delete or
//! overwrite until the retain-until date.
//!
//! IAM cannot stop a role that may PutItem from overwriting an audit entry,
//! and someone who rewrites a whole chain can recompute its hashes and its
//! head too. What they cannot rewrite is an anchor taken before: the
//! verifier ([`super::verify`]) checks that each anchored (chain, seq, hash)
//! is still the entry at that seq.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use super::chain::ChainHead;
use crate::error::Error;
use crate::ids::TrialId;
use crate::ports::{AnchorStore, ChainHeads, TrialRegistry};

/// How long an anchor is locked when the deployment does not say
/// (`AUDIT_ANCHOR_RETENTION_DAYS`): ten years, as long as the trail's other
/// records (API access logs) are kept.
pub const DEFAULT_RETENTION_DAYS: u32 = 3653;

/// Trials anchored at once: bounded so a long trial list neither throttles
/// the table nor opens hundreds of S3 connections.
const CONCURRENCY: usize = 8;

/// The body of `anchors/<trialId>/<at>.json`: the head of every chain of the
/// trial at `at`, keyed by chain (`trial`, `patient/<patientId>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anchor {
    pub trial_id: TrialId,
    /// [`crate::timestamp::format`] of the run's time.
    pub at: String,
    pub chains: BTreeMap<String, ChainHead>,
}

impl Anchor {
    /// Where the anchor of `trial` taken at `at` is stored.
    pub fn object_key(trial: &TrialId, at: &str) -> String {
        format!("{}{at}.json", Self::prefix(trial))
    }

    /// The prefix every anchor of `trial` is under.
    pub fn prefix(trial: &TrialId) -> String {
        format!("anchors/{trial}/")
    }

    pub fn key(&self) -> String {
        Self::object_key(&self.trial_id, &self.at)
    }
}

/// Anchors every chain head of `trial`, locked for `retention_days` from `at`.
pub async fn anchor_trial(
    heads: &(impl ChainHeads + ?Sized),
    store: &(impl AnchorStore + ?Sized),
    trial: &TrialId,
    at: DateTime<Utc>,
    retention_days: u32,
) -> Result<Anchor, Error> {
    let chains = heads.chain_heads(trial).await?.into_iter().map(|(chain, head)| (chain.to_string(), head)).collect();
    let anchor = Anchor { trial_id: trial.clone(), at: crate::timestamp::format(at), chains };
    store.put_anchor(&anchor, at + chrono::Duration::days(i64::from(retention_days))).await?;
    Ok(anchor)
}

/// What one anchoring run did: counts only (it is logged).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchorOutcome {
    pub trials: u32,
    pub anchored: u32,
    /// Chain heads written, over all trials.
    pub chains: u32,
    pub failed: u32,
}

impl crate::edge::schedule::Outcome for AnchorOutcome {
    fn incomplete(&self) -> Option<String> {
        (self.failed > 0).then(|| format!("{} of {} trials not anchored", self.failed, self.trials))
    }
}

/// Anchors every trial (listed from the trials index, not a Scan). One trial
/// failing does not stop the others; the outcome counts it, so the schedule
/// edge fails the invocation and Lambda's retry anchors it (a second anchor
/// of a trial that did succeed is harmless: anchors only add evidence).
pub async fn anchor_all(
    trials: &(impl TrialRegistry + ?Sized),
    heads: &(impl ChainHeads + ?Sized),
    store: &(impl AnchorStore + ?Sized),
    at: DateTime<Utc>,
    retention_days: u32,
) -> Result<AnchorOutcome, Error> {
    let ids = trials.list_trial_ids().await?;
    let mut outcome = AnchorOutcome { trials: u32::try_from(ids.len()).unwrap_or(u32::MAX), ..Default::default() };
    let results: Vec<(TrialId, Result<Anchor, Error>)> = stream::iter(ids)
        .map(|id| async move {
            let r = anchor_trial(heads, store, &id, at, retention_days).await;
            (id, r)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (trial_id, r) in results {
        match r {
            Ok(anchor) => {
                outcome.anchored += 1;
                outcome.chains += u32::try_from(anchor.chains.len()).unwrap_or(u32::MAX);
            }
            Err(e) => {
                tracing::error!(trial_id = %trial_id, code = e.code(), "anchoring failed");
                outcome.failed += 1;
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::ChainId;
    use crate::memory::{MemoryAnchors, MemoryAuditTrail};
    use crate::PatientId;

    fn t(s: &str) -> TrialId {
        TrialId::parse(s).unwrap()
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T20:00:00Z").unwrap().to_utc()
    }

    #[test]
    fn the_object_key_and_body_follow_the_spec() {
        let anchor = Anchor {
            trial_id: t("t1"),
            at: crate::timestamp::format(at()),
            chains: [("trial".to_owned(), ChainHead { seq: 3, hash: "ab".repeat(32) })].into(),
        };
        assert_eq!(anchor.key(), "anchors/t1/2026-11-27T20:00:00.000Z.json");
        let json = serde_json::to_value(&anchor).unwrap();
        assert_eq!(json["trialId"], "t1");
        assert_eq!(json["at"], "2026-11-27T20:00:00.000Z");
        assert_eq!(json["chains"]["trial"]["seq"], 3);
    }

    #[tokio::test]
    async fn an_anchor_holds_every_chain_head_of_the_trial_locked_for_the_retention() {
        // GIVEN trial t1 with its own chain and two patients' chains, and another trial
        let trail = MemoryAuditTrail::default();
        let p1 = ChainId::Patient(PatientId::parse("P1").unwrap());
        let p2 = ChainId::Patient(PatientId::parse("P2").unwrap());
        trail.set_head(&t("t1"), ChainId::Trial, ChainHead { seq: 2, hash: "a".repeat(64) });
        trail.set_head(&t("t1"), p1.clone(), ChainHead { seq: 5, hash: "b".repeat(64) });
        trail.set_head(&t("t1"), p2.clone(), ChainHead::genesis());
        trail.set_head(&t("t2"), ChainId::Trial, ChainHead { seq: 1, hash: "c".repeat(64) });
        let anchors = MemoryAnchors::default();
        // WHEN t1 is anchored
        let anchor = anchor_trial(&trail, &anchors, &t("t1"), at(), 10).await.unwrap();
        // THEN one object holds exactly t1's three heads, locked 10 days from the run
        let stored = anchors.stored();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].0, anchor);
        assert_eq!(stored[0].1, at() + chrono::Duration::days(10));
        assert_eq!(anchor.chains.len(), 3);
        assert_eq!(anchor.chains["patient/P1"].seq, 5);
        assert_eq!(anchor.chains["trial"].seq, 2);
        assert!(!anchor.chains.values().any(|h| h.hash == "c".repeat(64)));
    }

    use crate::ports::StorageError;

    /// The trials index only: anchoring reads nothing else of a trial.
    struct Listed(Vec<&'static str>);

    #[async_trait::async_trait]
    impl TrialRegistry for Listed {
        async fn put_trial(&self, _: &crate::trial::Trial, _: &crate::audit::AuditEntry) -> Result<crate::ports::Upsert, StorageError> {
            Err(StorageError::Corrupt("not used".into()))
        }
        async fn list_trial_ids(&self) -> Result<Vec<TrialId>, StorageError> {
            Ok(self.0.iter().map(|id| t(id)).collect())
        }
    }

    #[tokio::test]
    async fn a_run_anchors_every_listed_trial_and_counts_failures() {
        // GIVEN two trials, one with a chain
        let store = Listed(vec!["t1", "t2"]);
        let trail = MemoryAuditTrail::default();
        trail.set_head(&t("t1"), ChainId::Trial, ChainHead { seq: 1, hash: "a".repeat(64) });
        let anchors = MemoryAnchors::default();
        // WHEN the schedule runs
        let outcome = anchor_all(&store, &trail, &anchors, at(), DEFAULT_RETENTION_DAYS).await.unwrap();
        // THEN both are anchored
        assert_eq!(outcome, AnchorOutcome { trials: 2, anchored: 2, chains: 1, failed: 0 });
        assert_eq!(anchors.stored().len(), 2);
        // AND a failing store fails the run's outcome, so Lambda retries it
        anchors.fail_next(1);
        let outcome = anchor_all(&store, &trail, &anchors, at(), DEFAULT_RETENTION_DAYS).await.unwrap();
        assert_eq!((outcome.anchored, outcome.failed), (1, 1));
        assert!(crate::edge::schedule::Outcome::incomplete(&outcome).is_some());
    }
}
