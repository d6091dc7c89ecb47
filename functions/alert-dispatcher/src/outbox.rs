//! The outbox sweeper: every minute (an EventBridge schedule on this
//! function), it sends to the alert queue the PRO alerts that were stored with
//! their submission but that no dispatcher has claimed within the grace
//! period (`trialwatch::outbox`): the inline send failed, or the API function
//! died before it. Then it moves each one's due time on, so an alert still
//! unclaimed (a dispatcher backlog) is sent again every few minutes rather
//! than every minute. The claim takes an alert out of the index, so a healthy
//! system sweeps nothing, and a sent duplicate is refused by the claim.

use chrono::{DateTime, Utc};
use serde::Serialize;
use trialwatch::edge::schedule::Outcome;
use trialwatch::outbox::{resend_after, DueAlert, OUTBOX_SHARDS};
use trialwatch::ports::{AlertOutbox, AlertQueue, StorageError};

use crate::sweep::SweepError;

/// Alerts read per shard per run; more wait for the next run a minute later.
pub const SWEEP_LIMIT: usize = 100;

/// What one run did: counts only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepOutcome {
    /// Unclaimed alerts found past their due time.
    pub due: usize,
    /// Of those, sent to the alert queue.
    pub sent: usize,
    /// Shards whose query or send failed (the next run retries them).
    pub failed_shards: usize,
}

impl Outcome for SweepOutcome {
    // A failed shard is retried by the next run a minute later, which is
    // sooner than Lambda's asynchronous retry; failing the run would only add
    // a duplicate sweep.
    fn incomplete(&self) -> Option<String> {
        None
    }
}

/// Sweeps every shard concurrently for alerts due at `now`.
pub async fn sweep(outbox: &impl AlertOutbox, queue: &dyn AlertQueue, now: DateTime<Utc>) -> Result<SweepOutcome, SweepError> {
    let runs = (0..OUTBOX_SHARDS).map(|shard| sweep_shard(outbox, queue, shard, now));
    let mut outcome = SweepOutcome::default();
    for result in futures::future::join_all(runs).await {
        match result {
            Ok((due, sent)) => {
                outcome.due += due;
                outcome.sent += sent;
            }
            Err(e) => {
                tracing::warn!(error = e.code(), "outbox shard not swept");
                outcome.failed_shards += 1;
            }
        }
    }
    if outcome.failed_shards == OUTBOX_SHARDS as usize {
        return Err(SweepError::NoShardSwept);
    }
    Ok(outcome)
}

async fn sweep_shard(
    outbox: &impl AlertOutbox,
    queue: &dyn AlertQueue,
    shard: u32,
    now: DateTime<Utc>,
) -> Result<(usize, usize), StorageError> {
    let due: Vec<DueAlert> = outbox.due_alerts(shard, now, SWEEP_LIMIT).await?;
    if due.is_empty() {
        return Ok((0, 0));
    }
    let alerts: Vec<_> = due.iter().map(|d| d.alert.clone()).collect();
    // Sent before the deferral: a run that dies in between sends again next
    // minute (a duplicate the claim refuses), never later than promised.
    queue.enqueue(&alerts).await?;
    for d in &due {
        tracing::info!(trial_id = %d.alert.trial_id, alert_id = %d.alert.alert_id, "outbox alert sent");
        outbox.defer(d, now + resend_after()).await?;
    }
    Ok((due.len(), due.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use trialwatch::alert::{Alert, AlertReason, AlertStatus};
    use trialwatch::audit::chain::{ChainHead, ChainId};
    use trialwatch::audit::{Actor, AuditEntry};
    use trialwatch::memory::{MemoryQueue, MemoryStore};
    use trialwatch::news2::RiskLevel;
    use trialwatch::ports::{AlertDelivery, SubmissionLedger};
    use trialwatch::submission::StoredSubmission;
    use trialwatch::{AlertId, PatientId, QuestionnaireId, SiteId, SubmissionId, TrialId};

    fn at(t: &str) -> DateTime<Utc> {
        t.parse().unwrap()
    }

    fn pro_alert(n: u32, created: &str) -> Alert {
        Alert {
            alert_id: AlertId::parse(&format!("al-pro-{n}")).unwrap(),
            trial_id: TrialId::parse("tw-1").unwrap(),
            patient_id: PatientId::parse("P0001").unwrap(),
            site_id: SiteId::parse("s1").unwrap(),
            level: RiskLevel::High,
            reason: AlertReason::ProRule {
                questionnaire_id: QuestionnaireId::parse("phq9").unwrap(),
                submission_id: SubmissionId::parse("7b0c2f43-2a8e-4e0a-9a53-0c8e1b1f0001").unwrap(),
                link_id: "q9".into(),
                value: 3.0,
                at_least: 1.0,
            },
            created_at: at(created),
            correlation_id: None,
        }
    }

    /// A store holding one recorded submission whose transaction wrote `alerts`.
    async fn recorded_with(alerts: &[Alert]) -> MemoryStore {
        let store = MemoryStore::new();
        let enrolment = serde_json::from_value(serde_json::json!({
            "trialId": "tw-1", "patientId": "P0001", "siteId": "s1", "status": "enrolled",
            "enrolledAt": "2026-11-01T00:00:00Z", "updatedAt": "2026-11-01T00:00:00Z", "submissionCount": 0
        }))
        .expect("an enrolment");
        store.seed_enrolment(enrolment);
        let submission: StoredSubmission = serde_json::from_value(serde_json::json!({
            "trialId": "tw-1", "patientId": "P0001", "siteId": "s1",
            "submissionId": "7b0c2f43-2a8e-4e0a-9a53-0c8e1b1f0001", "questionnaireId": "phq9", "questionnaireVersion": "1",
            "completedAt": "2026-11-27T10:00:00Z", "receivedAt": "2026-11-27T10:00:00Z", "answers": [],
            "bodyHash": "h", "submittedBy": {"sub": "p", "role": "patient"}
        }))
        .expect("a submission");
        let mut audit = AuditEntry::new(
            submission.trial_id.clone(),
            "submission/x",
            "submission.created",
            Actor::system("test"),
            at("2026-11-27T10:00:00Z"),
        );
        // The patient's chain is empty: the entry links from its genesis.
        audit.link(&ChainId::Patient(submission.patient_id.clone()), &ChainHead::genesis());
        store.record_submission(&submission, "2026-11-27", &[audit], alerts, &[]).await.expect("recorded");
        store
    }

    #[tokio::test]
    async fn an_unclaimed_alert_is_sent_once_its_grace_has_passed_and_not_before() {
        // GIVEN a PRO alert stored at 10:00:00 whose inline send never happened
        let alert = pro_alert(1, "2026-11-27T10:00:00Z");
        let store = recorded_with(std::slice::from_ref(&alert)).await;
        let queue = MemoryQueue::new();
        // WHEN the sweeper runs inside the grace period THEN nothing is sent
        assert_eq!(sweep(&store, &queue, at("2026-11-27T10:00:20Z")).await.unwrap().sent, 0);
        assert!(queue.sent_alerts().is_empty());
        // WHEN it runs after the grace THEN the alert is sent, exactly as stored
        let outcome = sweep(&store, &queue, at("2026-11-27T10:01:00Z")).await.unwrap();
        assert_eq!((outcome.due, outcome.sent, outcome.failed_shards), (1, 1, 0));
        assert_eq!(queue.sent_alerts(), vec![alert]);
    }

    #[tokio::test]
    async fn a_claimed_alert_leaves_the_outbox() {
        // GIVEN a stored PRO alert that a dispatcher claimed (the inline send worked)
        let alert = pro_alert(2, "2026-11-27T10:00:00Z");
        let store = recorded_with(std::slice::from_ref(&alert)).await;
        let claim = store.claim(&alert, at("2026-11-27T10:00:02Z"), at("2026-11-27T10:01:02Z")).await.unwrap();
        assert!(matches!(claim, trialwatch::alert::Claim::Acquired(ref r) if r.status == AlertStatus::Pending));
        // WHEN the sweeper runs later THEN it sends nothing
        let queue = MemoryQueue::new();
        assert_eq!(sweep(&store, &queue, at("2026-11-27T10:05:00Z")).await.unwrap(), SweepOutcome::default());
        assert!(queue.sent_alerts().is_empty());
    }

    #[tokio::test]
    async fn a_swept_alert_still_unclaimed_is_sent_again_only_after_the_resend_interval() {
        let alert = pro_alert(3, "2026-11-27T10:00:00Z");
        let store = recorded_with(std::slice::from_ref(&alert)).await;
        let queue = MemoryQueue::new();
        sweep(&store, &queue, at("2026-11-27T10:01:00Z")).await.unwrap();
        // WHEN the dispatcher has not claimed it by the next minute THEN it is not sent again yet
        sweep(&store, &queue, at("2026-11-27T10:02:00Z")).await.unwrap();
        assert_eq!(queue.sent_alerts().len(), 1);
        // AND after the resend interval it is
        sweep(&store, &queue, at("2026-11-27T10:06:00Z")).await.unwrap();
        assert_eq!(queue.sent_alerts().len(), 2);
    }

    #[tokio::test]
    async fn a_failed_send_leaves_the_alert_due_for_the_next_run() {
        let alert = pro_alert(4, "2026-11-27T10:00:00Z");
        let store = recorded_with(std::slice::from_ref(&alert)).await;
        let queue = MemoryQueue::new();
        queue.fail_next("enqueue", 1);
        let outcome = sweep(&store, &queue, at("2026-11-27T10:01:00Z")).await.unwrap();
        assert_eq!((outcome.sent, outcome.failed_shards), (0, 1));
        assert_eq!(sweep(&store, &queue, at("2026-11-27T10:02:00Z")).await.unwrap().sent, 1);
        assert_eq!(queue.sent_alerts(), vec![alert]);
    }
}
