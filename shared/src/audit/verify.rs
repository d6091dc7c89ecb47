//! The verifier: recomputes every chain of a trial, checks each against its
//! recorded head and every anchor, and names the first broken entry of each
//! chain that is broken.
//!
//! Chains are found three ways, so that removing one trace does not hide a
//! chain: the heads the data table records (trial item, enrolments), the
//! write-sharded time index of the audit table (an entry in a chain that no
//! enrolment names), and the anchors (a chain deleted with its enrolment).
//! Everything is read with Queries and object reads; nothing is a Scan.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::anchor::Anchor;
use super::chain::{check_head, verify, Break, ChainHead, ChainId, GENESIS};
use super::AuditEntry;
use crate::error::Error;
use crate::ids::TrialId;
use crate::ports::{AnchorReader, AuditChains, ChainHeads};

/// Chains read at once.
const CONCURRENCY: usize = 8;

/// What is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The chain does not verify from its first entry, or ends away from its
    /// recorded head; `cause` names the entry.
    Chain { chain: String, cause: Break },
    /// An entry of the trial's time index whose key places it in no chain.
    Unchained { entry_id: String },
    /// An anchored head no longer in the chain: the chain was rewritten (or
    /// cut) at or before `seq`. `entry_id` is the entry now stored there.
    Anchor { chain: String, seq: u64, entry_id: Option<String>, anchor: String, anchored_hash: String },
    /// An object under the trial's anchor prefix that is not an anchor of it.
    BadAnchor { anchor: String, why: String },
}

impl Finding {
    pub fn chain(&self) -> Option<&str> {
        match self {
            Finding::Chain { chain, .. } | Finding::Anchor { chain, .. } => Some(chain),
            Finding::Unchained { .. } | Finding::BadAnchor { .. } => None,
        }
    }

    /// The seq of the entry at fault (for a cut tail: the last one left).
    pub fn seq(&self) -> Option<u64> {
        match self {
            Finding::Chain { cause, .. } => match cause {
                Break::Altered { seq, .. } | Break::Unlinked { seq, .. } => Some(*seq),
                Break::Missing { expected, .. } => Some(*expected),
                Break::HeadMismatch { found, .. } => Some(*found),
                Break::Misplaced { .. } => None,
            },
            Finding::Anchor { seq, .. } => Some(*seq),
            Finding::Unchained { .. } | Finding::BadAnchor { .. } => None,
        }
    }

    /// The id of the entry at fault, where one is stored.
    pub fn entry_id(&self) -> Option<&str> {
        match self {
            Finding::Chain { cause, .. } => match cause {
                Break::Altered { entry_id, .. }
                | Break::Unlinked { entry_id, .. }
                | Break::Missing { entry_id, .. }
                | Break::Misplaced { entry_id, .. } => Some(entry_id),
                Break::HeadMismatch { .. } => None,
            },
            Finding::Anchor { entry_id, .. } => entry_id.as_deref(),
            Finding::Unchained { entry_id } => Some(entry_id),
            Finding::BadAnchor { .. } => None,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Chain { chain, cause } => write!(f, "chain {chain}: {cause}"),
            Finding::Unchained { entry_id } => write!(f, "entry {entry_id} is in the trial's index but its key names no chain"),
            Finding::Anchor { chain, seq, entry_id: Some(id), anchor, anchored_hash } => write!(
                f,
                "chain {chain}: entry {seq} ({id}) is not the entry anchored in {anchor} (hash {anchored_hash}): the chain was rewritten up to here"
            ),
            Finding::Anchor { chain, seq, entry_id: None, anchor, .. } => {
                write!(f, "chain {chain}: entry {seq}, anchored in {anchor}, is missing")
            }
            Finding::BadAnchor { anchor, why } => write!(f, "anchor {anchor}: {why}"),
        }
    }
}

/// What the verifier read and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub trial_id: TrialId,
    pub chains: usize,
    pub entries: usize,
    /// Anchor objects (every version) read.
    pub anchors: usize,
    /// Anchored (chain, seq, hash) triples checked.
    pub anchored_heads: usize,
    /// At most one per chain (its first break), then the rest; empty when intact.
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "trial {}: {} chains, {} entries, {} anchors ({} anchored heads) checked: ",
            self.trial_id, self.chains, self.entries, self.anchors, self.anchored_heads
        )?;
        if self.intact() {
            return write!(f, "OK");
        }
        write!(f, "{} broken", self.findings.len())?;
        for finding in &self.findings {
            write!(f, "\n  BROKEN {finding}")?;
        }
        Ok(())
    }
}

/// One anchored head, with the anchor it came from.
struct Anchored {
    seq: u64,
    hash: String,
    anchor: String,
}

/// Verifies every chain of `trial`. Storage errors are errors; everything
/// the stored data says is in the report.
pub async fn verify_trial(
    heads: &impl ChainHeads,
    trail: &impl AuditChains,
    anchors: &impl AnchorReader,
    trial: &TrialId,
) -> Result<Report, Error> {
    let mut findings = Vec::new();
    // Heads first: entries only grow, so a chain read afterwards is at least
    // as long as its head (a longer one is re-checked against fresh heads).
    let mut recorded = heads.chain_heads(trial).await?;
    let mut chains: BTreeSet<ChainId> = recorded.keys().cloned().collect();

    for indexed in trail.indexed_entries(trial).await? {
        match indexed.chain {
            Some(chain) => {
                chains.insert(chain);
            }
            None => findings.push(Finding::Unchained { entry_id: indexed.entry_id }),
        }
    }

    let stored_anchors = anchors.anchors(trial).await?;
    let mut anchored: BTreeMap<ChainId, Vec<Anchored>> = BTreeMap::new();
    let mut anchored_heads = 0;
    for stored in &stored_anchors {
        let anchor: Anchor = match serde_json::from_slice(&stored.body) {
            Ok(a) => a,
            Err(_) => {
                findings.push(Finding::BadAnchor { anchor: stored.name.clone(), why: "is not an anchor document".into() });
                continue;
            }
        };
        if &anchor.trial_id != trial {
            findings.push(Finding::BadAnchor { anchor: stored.name.clone(), why: format!("anchors trial {}", anchor.trial_id) });
            continue;
        }
        for (name, head) in anchor.chains {
            let Some(chain) = ChainId::parse(&name) else {
                findings.push(Finding::BadAnchor { anchor: stored.name.clone(), why: format!("names {name:?}, which is no chain") });
                continue;
            };
            anchored_heads += 1;
            chains.insert(chain.clone());
            anchored.entry(chain).or_default().push(Anchored { seq: head.seq, hash: head.hash, anchor: stored.name.clone() });
        }
    }

    let read: Vec<(ChainId, Vec<AuditEntry>)> = stream::iter(chains.iter().cloned())
        .map(|chain| async move { trail.chain_entries(trial, &chain).await.map(|entries| (chain, entries)) })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;

    let mut entries = 0;
    let mut reread = false;
    for (chain, stored) in &read {
        entries += stored.len();
        let name = chain.to_string();
        let found = match verify(chain, stored) {
            Ok(found) => found,
            Err(cause) => {
                findings.push(Finding::Chain { chain: name, cause });
                continue;
            }
        };
        let mut head_check = check_head(&found, recorded.get(chain).unwrap_or(&ChainHead::genesis()));
        if head_check.is_err() && !reread && found.seq > recorded.get(chain).map_or(0, |h| h.seq) {
            // A writer may have appended between our two reads: heads again, once.
            recorded = heads.chain_heads(trial).await?;
            reread = true;
            head_check = check_head(&found, recorded.get(chain).unwrap_or(&ChainHead::genesis()));
        }
        if let Err(cause) = head_check {
            findings.push(Finding::Chain { chain: name, cause });
            continue;
        }
        if let Some(finding) = first_anchor_mismatch(&name, stored, anchored.get(chain).map(Vec::as_slice).unwrap_or_default()) {
            findings.push(finding);
        }
    }

    Ok(Report { trial_id: trial.clone(), chains: chains.len(), entries, anchors: stored_anchors.len(), anchored_heads, findings })
}

/// The lowest anchored seq whose entry is gone or has another hash: the
/// earliest point the chain is known to have been rewritten by.
fn first_anchor_mismatch(chain: &str, stored: &[AuditEntry], anchored: &[Anchored]) -> Option<Finding> {
    let by_seq: BTreeMap<u64, &AuditEntry> = stored.iter().filter_map(|e| Some((e.seq?, e))).collect();
    anchored
        .iter()
        .filter(|a| {
            if a.seq == 0 {
                return a.hash != GENESIS;
            }
            by_seq.get(&a.seq).and_then(|e| e.hash.as_deref()) != Some(a.hash.as_str())
        })
        .min_by_key(|a| a.seq)
        .map(|a| Finding::Anchor {
            chain: chain.to_owned(),
            seq: a.seq,
            entry_id: by_seq.get(&a.seq).map(|e| e.entry_id.clone()),
            anchor: a.anchor.clone(),
            anchored_hash: a.hash.clone(),
        })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::*;
    use crate::audit::anchor::anchor_trial;
    use crate::audit::chain::digest;
    use crate::audit::Actor;
    use crate::memory::{MemoryAnchors, MemoryAuditTrail};
    use crate::PatientId;

    fn t1() -> TrialId {
        TrialId::parse("t1").unwrap()
    }

    fn patient(p: &str) -> ChainId {
        ChainId::Patient(PatientId::parse(p).unwrap())
    }

    fn at(minute: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-11-27T10:{minute:02}:00Z")).unwrap().to_utc()
    }

    fn entries(chain: &ChainId, n: u32) -> Vec<AuditEntry> {
        (0..n)
            .map(|i| AuditEntry::new(t1(), chain.to_string(), "submission.created", Actor::system("test"), at(i)).with_detail("score", i))
            .collect()
    }

    /// A trial with its own chain (2 entries) and patients P1 (4) and P2 (3).
    fn trail() -> MemoryAuditTrail {
        let trail = MemoryAuditTrail::default();
        for (chain, n) in [(ChainId::Trial, 2), (patient("P1"), 4), (patient("P2"), 3)] {
            trail.append(&t1(), &chain, entries(&chain, n));
        }
        trail
    }

    async fn check(trail: &MemoryAuditTrail, anchors: &MemoryAnchors) -> Report {
        verify_trial(trail, trail, anchors, &t1()).await.unwrap()
    }

    #[tokio::test]
    async fn an_untouched_anchored_trail_is_intact() {
        // GIVEN a valid trail, anchored
        let (trail, anchors) = (trail(), MemoryAnchors::default());
        anchor_trial(&trail, &anchors, &t1(), at(30), 1).await.unwrap();
        // WHEN verified
        let report = check(&trail, &anchors).await;
        // THEN every chain, entry and anchored head is checked and nothing is broken
        assert!(report.intact(), "{report}");
        assert_eq!((report.chains, report.entries, report.anchors, report.anchored_heads), (3, 9, 1, 3));
        assert!(report.to_string().ends_with("OK"), "{report}");
    }

    #[tokio::test]
    async fn an_edited_entry_is_named_by_chain_seq_and_id() {
        // GIVEN P1's third entry edited in place
        let (trail, anchors) = (trail(), MemoryAnchors::default());
        let id = trail.entries(&t1(), &patient("P1"))[2].entry_id.clone();
        trail.edit(&t1(), &patient("P1"), 3, |e| {
            e.details.insert("score".into(), json!(99));
        });
        // WHEN verified
        let report = check(&trail, &anchors).await;
        // THEN exactly that entry is named, and nothing else
        assert_eq!(report.findings, vec![Finding::Chain { chain: "patient/P1".into(), cause: Break::Altered { seq: 3, entry_id: id } }]);
        assert!(report.to_string().contains("BROKEN chain patient/P1: entry 3"), "{report}");
    }

    #[tokio::test]
    async fn a_gap_and_a_cut_tail_are_found() {
        // GIVEN P1's second entry deleted, and P2's last
        let (trail, anchors) = (trail(), MemoryAnchors::default());
        let third = trail.entries(&t1(), &patient("P1"))[2].entry_id.clone();
        trail.delete(&t1(), &patient("P1"), 2);
        trail.delete(&t1(), &patient("P2"), 3);
        // WHEN verified
        let report = check(&trail, &anchors).await;
        // THEN the gap names the entry after it, and the cut chain misses its head
        assert_eq!(report.findings.len(), 2, "{report}");
        assert_eq!(
            report.findings[0],
            Finding::Chain { chain: "patient/P1".into(), cause: Break::Missing { expected: 2, found: 3, entry_id: third } }
        );
        assert!(
            matches!(&report.findings[1], Finding::Chain { chain, cause: Break::HeadMismatch { found: 2, recorded_seq: 3, .. } } if chain == "patient/P2")
        );
    }

    #[tokio::test]
    async fn a_chain_rewritten_with_its_head_is_caught_only_by_the_anchor() {
        // GIVEN an anchored trail whose P1 chain is then rewritten from entry 2 on,
        // every hash and the head recomputed consistently
        let (trail, anchors) = (trail(), MemoryAnchors::default());
        anchor_trial(&trail, &anchors, &t1(), at(30), 1).await.unwrap();
        let p1 = patient("P1");
        let mut forged = trail.entries(&t1(), &p1);
        forged[1].reason = Some("rewritten".into());
        let mut head = forged[0].as_head().unwrap();
        for e in forged.iter_mut().skip(1) {
            head = e.link(&p1, &head);
        }
        for e in &forged {
            trail.put(&t1(), &p1, e.seq.unwrap(), e.clone());
        }
        trail.set_head(&t1(), p1.clone(), head);
        // WHEN verified without anchors THEN nothing shows
        assert!(verify_trial(&trail, &trail, &MemoryAnchors::default(), &t1()).await.unwrap().intact());
        // WHEN verified with them THEN the anchored entry 4 is named
        let report = check(&trail, &anchors).await;
        assert_eq!(report.findings.len(), 1, "{report}");
        assert_eq!(report.findings[0].chain(), Some("patient/P1"));
        assert_eq!(report.findings[0].seq(), Some(4));
        assert_eq!(report.findings[0].entry_id(), Some(forged[3].entry_id.as_str()));
    }

    #[tokio::test]
    async fn the_earliest_anchor_a_rewrite_breaks_is_named() {
        // GIVEN anchors after entry 2 and after entry 4 of a new chain, then entries 2.. rewritten
        let (trail, anchors) = (MemoryAuditTrail::default(), MemoryAnchors::default());
        let p1 = patient("P1");
        let mut all = entries(&p1, 4);
        let later = all.split_off(2);
        trail.append(&t1(), &p1, all);
        anchor_trial(&trail, &anchors, &t1(), at(30), 1).await.unwrap();
        trail.append(&t1(), &p1, later);
        anchor_trial(&trail, &anchors, &t1(), at(31), 1).await.unwrap();
        let mut forged = trail.entries(&t1(), &p1);
        forged[1].reason = Some("rewritten".into());
        let mut head = forged[0].as_head().unwrap();
        for e in forged.iter_mut().skip(1) {
            head = e.link(&p1, &head);
            trail.put(&t1(), &p1, e.seq.unwrap(), e.clone());
        }
        trail.set_head(&t1(), p1.clone(), head);
        // WHEN verified THEN entry 2, the first anchored one that differs, is named
        let report = check(&trail, &anchors).await;
        assert_eq!(report.findings[0].seq(), Some(2), "{report}");
        assert!(report.findings[0].to_string().contains("anchors/t1/2026-11-27T10:30:00.000Z.json"), "{report}");
    }

    #[tokio::test]
    async fn a_chain_no_head_names_is_found_through_the_index() {
        // GIVEN P3's enrolment (and so its head) is gone, its entries are not
        let (trail, anchors) = (trail(), MemoryAnchors::default());
        trail.append(&t1(), &patient("P3"), entries(&patient("P3"), 2));
        trail.remove_head(&t1(), &patient("P3"));
        // WHEN verified THEN the chain is read and its entries are beyond its (genesis) head
        let report = check(&trail, &anchors).await;
        assert_eq!(report.chains, 4);
        assert!(
            matches!(&report.findings[..], [Finding::Chain { chain, cause: Break::HeadMismatch { found: 2, recorded_seq: 0, .. } }] if chain == "patient/P3"),
            "{report}"
        );
    }

    #[tokio::test]
    async fn an_entry_outside_any_chain_is_named() {
        let (trail, anchors) = (trail(), MemoryAnchors::default());
        trail.put_unchained(&t1(), "legacy-entry");
        let report = check(&trail, &anchors).await;
        assert_eq!(report.findings, vec![Finding::Unchained { entry_id: "legacy-entry".into() }]);
    }

    #[tokio::test]
    async fn an_entry_whose_hash_was_recomputed_is_named_by_the_next_link() {
        let (trail, anchors) = (trail(), MemoryAnchors::default());
        let next = trail.entries(&t1(), &ChainId::Trial)[1].entry_id.clone();
        trail.edit(&t1(), &ChainId::Trial, 1, |e| {
            e.reason = Some("edited".into());
            e.hash = None;
            e.hash = Some(digest(e));
        });
        let report = check(&trail, &anchors).await;
        assert_eq!(
            report.findings,
            vec![Finding::Chain { chain: "trial".into(), cause: Break::Unlinked { seq: 2, entry_id: next, previous: 1 } }]
        );
    }

    #[tokio::test]
    async fn a_deleted_chain_is_found_through_its_anchor_and_a_forged_anchor_version_does_not_hide_the_first() {
        // GIVEN an anchored trail; then P2's chain and head are deleted, and a
        // new version of the anchor object is put without P2
        let (trail, anchors) = (trail(), MemoryAnchors::default());
        let anchor = anchor_trial(&trail, &anchors, &t1(), at(30), 1).await.unwrap();
        for seq in 1..=3 {
            trail.delete(&t1(), &patient("P2"), seq);
        }
        trail.remove_head(&t1(), &patient("P2"));
        let mut forged = anchor.clone();
        forged.chains.remove("patient/P2");
        anchors.put_raw(&anchor.key(), &serde_json::to_vec(&forged).unwrap());
        anchors.put_raw(&anchor.key(), b"not json");
        // WHEN verified
        let report = check(&trail, &anchors).await;
        // THEN the locked original still names P2's anchored entry 3 as missing, and the garbage version is reported
        assert!(
            report.findings.iter().any(|f| matches!(f, Finding::Anchor { chain, seq: 3, entry_id: None, .. } if chain == "patient/P2")),
            "{report}"
        );
        assert!(report.findings.iter().any(|f| matches!(f, Finding::BadAnchor { .. })), "{report}");
    }
}
