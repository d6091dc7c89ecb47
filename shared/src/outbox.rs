//! The PRO-alert outbox: a questionnaire alert is written as a pending alert
//! item in the submission's own transaction, so once the API answers 2xx the
//! alert exists even if the inline send to the alert queue fails or the
//! function dies before it. Until a dispatcher claims it, the item carries the
//! keys of a sparse, sharded index (`outbox`); a scheduled sweeper queries that
//! index for items past their due time and sends them to the alert queue. The
//! claim removes the keys, so the index holds only alerts no dispatcher has
//! seen, and a healthy system sweeps nothing.

use chrono::{DateTime, Duration, Utc};

use crate::alert::Alert;
use crate::ids::AlertId;

/// Partitions of the outbox index. One index partition takes 1,000 writes/s;
/// eight leave room for a national evening peak of PRO alerts, and cost the
/// sweeper eight small queries a minute.
pub const OUTBOX_SHARDS: u32 = 8;

/// A TransactWriteItems holds at most 100 items and the submission writes 5
/// besides its alerts (one per rule item), so a questionnaire may carry rules
/// on at most this many items: room is left for what later features add.
pub const MAX_PRO_ALERTS_PER_SUBMISSION: usize = 25;

/// How long the inline send has before the sweeper takes over: the dispatcher
/// claims a queued alert within seconds, which takes it out of the index.
pub fn grace() -> Duration {
    Duration::seconds(30)
}

/// How long after a sweep the sweeper sends an alert again if it is still
/// unclaimed (a dispatcher backlog or outage): once every few minutes, not
/// once a minute per waiting alert.
pub fn resend_after() -> Duration {
    Duration::minutes(5)
}

/// When an alert first becomes due for the sweeper.
pub fn first_due(alert: &Alert) -> DateTime<Utc> {
    alert.created_at + grace()
}

/// The alert's stable index shard (FNV-1a of its id: the same on every build).
pub fn shard_of(id: &AlertId) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.as_str().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % OUTBOX_SHARDS
}

/// An unclaimed alert whose due time has passed, as the sweeper reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueAlert {
    pub alert: Alert,
    /// The due time the index holds now; a deferral is conditional on it, so
    /// two overlapping sweeps move it once.
    pub due_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_spread_over_every_shard_and_keep_theirs() {
        let ids: Vec<AlertId> = (0..500).map(|i| AlertId::parse(&format!("al-{i:040}")).unwrap()).collect();
        let used: std::collections::HashSet<u32> = ids.iter().map(shard_of).collect();
        assert_eq!(used.len(), OUTBOX_SHARDS as usize);
        assert_eq!(shard_of(&ids[7]), shard_of(&ids[7]));
    }
}
