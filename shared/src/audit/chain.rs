//! Hash chains over audit entries: tamper evidence for a store whose writers
//! IAM cannot stop from overwriting.
//!
//! An entry's `hash` is SHA-256 over its RFC 8785 (JCS) JSON form without
//! the `hash` member. That form includes `chain`, `seq` and `prevHash`, so an
//! entry can be neither edited, renumbered, moved to another chain nor
//! relinked without its hash changing, and every later entry names the hash
//! it had. A chain's head, the (seq, hash) of its last entry, lives on an
//! item the recorded change already writes (the enrolment for a patient's
//! chain, the trial item for the trial's), and each append is conditional on
//! it, so two writers can never both extend the same head. Heads are anchored
//! to S3 Object Lock: whoever rewrites a whole chain and its head still cannot
//! rewrite an anchor.
//!
//! Why JCS rather than the stored form: an entry travels through DynamoDB's
//! number and map encodings, which do not keep member order or `1.0` vs `1`;
//! JCS gives the same bytes for the same JSON value on both sides.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuditEntry;
use crate::PatientId;

/// The `prevHash` of a chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Which chain an entry belongs to. A patient's chain covers their enrolment,
/// submissions, alerts and acknowledgements; the trial's covers its
/// configuration and its reports. A per-trial chain for alerts would
/// serialise every alert of a burst on one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChainId {
    Trial,
    Patient(PatientId),
}

impl ChainId {
    const PATIENT: &'static str = "patient/";

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "trial" => Some(ChainId::Trial),
            _ => s.strip_prefix(Self::PATIENT).and_then(|p| PatientId::parse(p).ok()).map(ChainId::Patient),
        }
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainId::Trial => f.write_str("trial"),
            ChainId::Patient(p) => write!(f, "{}{p}", Self::PATIENT),
        }
    }
}

/// Where a chain ends: the last entry's `seq` and `hash`; `seq` 0 and
/// [`GENESIS`] for a chain with no entries yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

impl ChainHead {
    pub fn genesis() -> Self {
        Self { seq: 0, hash: GENESIS.to_owned() }
    }
}

impl Default for ChainHead {
    fn default() -> Self {
        Self::genesis()
    }
}

/// SHA-256 (lower-case hex) of the entry's RFC 8785 form, `hash` left out.
pub fn digest(entry: &AuditEntry) -> String {
    crate::ids::lower_hex(&Sha256::digest(canonical(entry)))
}

/// The entry's RFC 8785 (JCS) form without `hash`. Every append hashes one,
/// so the struct's own members are written directly, in JCS order (its keys
/// are ASCII: sorted as UTF-16 they sort as bytes), and the canonicaliser is
/// run only on the JSON values inside `details` and `changes`. JCS escapes
/// strings as serde_json does (short forms, else `\u00xx`, nothing beyond
/// U+001F, `"` and `\`). Keys of `details` or `changes` outside ASCII, whose
/// UTF-16 order can differ from the map's, take the general path. A test
/// holds both paths equal to the canonical form of the entry's JSON value.
fn canonical(entry: &AuditEntry) -> Vec<u8> {
    if !entry.details.keys().chain(entry.changes.keys()).all(|k| k.is_ascii()) {
        let without_hash = AuditEntry { hash: None, ..entry.clone() };
        return serde_json_canonicalizer::to_vec(&without_hash).expect("an audit entry has an RFC 8785 form");
    }
    let mut out = Vec::with_capacity(512);
    let mut members = Members::open(&mut out);
    members.string("action", &entry.action);
    members.key("actor");
    {
        let mut actor = Members::open(members.out);
        actor.string("role", &entry.actor.role);
        if let Some(s) = &entry.actor.subject {
            actor.string("subject", s);
        }
        actor.close();
    }
    members.string("at", &entry.at);
    if let Some(c) = &entry.chain {
        members.string("chain", c);
    }
    if !entry.changes.is_empty() {
        members.key("changes");
        let mut changes = Members::open(members.out);
        for (path, change) in &entry.changes {
            changes.key(path);
            match change {
                super::Change::Values { old, new } => {
                    let mut values = Members::open(changes.out);
                    values.value("new", new);
                    values.value("old", old);
                    values.close();
                }
                super::Change::Redacted(s) => json_string(changes.out, s),
            }
        }
        changes.close();
    }
    if !entry.details.is_empty() {
        members.key("details");
        let mut details = Members::open(members.out);
        for (k, v) in &entry.details {
            details.value(k, v);
        }
        details.close();
    }
    members.string("entity", &entry.entity);
    members.string("entryId", &entry.entry_id);
    if let Some(p) = &entry.prev_hash {
        members.string("prevHash", p);
    }
    if let Some(r) = &entry.reason {
        members.string("reason", r);
    }
    if let Some(seq) = entry.seq {
        members.key("seq");
        members.out.extend_from_slice(seq.to_string().as_bytes());
    }
    members.string("trialId", entry.trial_id.as_str());
    members.close();
    out
}

/// An object's members, written in the order given (the caller's is JCS's).
struct Members<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Members<'a> {
    fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }
    fn close(self) {
        self.out.push(b'}');
    }
    fn key(&mut self, k: &str) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        json_string(self.out, k);
        self.out.push(b':');
    }
    fn string(&mut self, k: &str, v: &str) {
        self.key(k);
        json_string(self.out, v);
    }
    fn value(&mut self, k: &str, v: &serde_json::Value) {
        self.key(k);
        match v {
            serde_json::Value::String(s) => json_string(self.out, s),
            other if plain(other) => write_plain(self.out, other),
            other => serde_json_canonicalizer::to_writer(other, self.out).expect("a JSON value has an RFC 8785 form"),
        }
    }
}

/// Whether `v` is what an alert's details mostly hold (a score, a map of component scores):
/// null, a bool, an integer a double holds exactly, or an object of those under
/// plain ASCII names in sorted order. Its RFC 8785 text is then its plain text, written by
/// [`write_plain`] without the canonicalizer's float formatting and key sorting.
fn plain(v: &serde_json::Value) -> bool {
    const EXACT: u64 = 1 << 53;
    match v {
        serde_json::Value::Null | serde_json::Value::Bool(_) => true,
        serde_json::Value::Number(n) => n.as_u64().is_some_and(|n| n <= EXACT) || n.as_i64().is_some_and(|n| n.unsigned_abs() <= EXACT),
        serde_json::Value::Object(m) => {
            let name = |k: &str| k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            m.iter().all(|(k, v)| name(k) && !matches!(v, serde_json::Value::Object(_)) && plain(v))
                && m.keys().zip(m.keys().skip(1)).all(|(a, b)| a < b)
        }
        _ => false,
    }
}

fn write_plain(out: &mut Vec<u8>, v: &serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            let mut members = Members::open(out);
            for (k, v) in m {
                members.key(k);
                write_plain(members.out, v);
            }
            members.close();
        }
        other => serde_json::to_writer(out, other).expect("a plain value serializes"),
    }
}

fn json_string(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("a string serializes");
}

impl AuditEntry {
    /// Places the entry right after `head` in `chain` and seals it; returns
    /// the chain's new head.
    pub fn link(&mut self, chain: &ChainId, head: &ChainHead) -> ChainHead {
        self.chain = Some(chain.to_string());
        self.seq = Some(head.seq + 1);
        self.prev_hash = Some(head.hash.clone());
        self.hash = None;
        let hash = digest(self);
        self.hash = Some(hash.clone());
        ChainHead { seq: head.seq + 1, hash }
    }

    /// This entry as a head: what the chain's head is once it is the last.
    pub fn as_head(&self) -> Option<ChainHead> {
        Some(ChainHead { seq: self.seq?, hash: self.hash.clone()? })
    }
}

/// Links the entries of one change, in order, after `head`; returns the new head.
pub fn link_all<'a>(entries: impl IntoIterator<Item = &'a mut AuditEntry>, chain: &ChainId, head: &ChainHead) -> ChainHead {
    entries.into_iter().fold(head.clone(), |head, entry| entry.link(chain, &head))
}

/// The first place a chain fails to verify. `seq` and `entry_id` name the
/// entry an investigator should look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Break {
    #[error("entry {seq} ({entry_id}) was altered: its hash does not match its contents")]
    Altered { seq: u64, entry_id: String },
    #[error("entry {seq} ({entry_id}) does not follow entry {previous}: its prevHash names another entry")]
    Unlinked { seq: u64, entry_id: String, previous: u64 },
    #[error("entry {expected} is missing (the next entry found is {found}, {entry_id})")]
    Missing { expected: u64, found: u64, entry_id: String },
    #[error("entry {entry_id} is not linked into chain {chain}")]
    Misplaced { chain: String, entry_id: String },
    #[error("the chain ends at entry {found} but its recorded head is entry {recorded_seq} ({recorded_hash})")]
    HeadMismatch { found: u64, recorded_seq: u64, recorded_hash: String },
}

/// Recomputes a chain from its first entry; `entries` in `seq` order.
/// Returns the head it ends at, or the first break.
pub fn verify<'a>(chain: &ChainId, entries: impl IntoIterator<Item = &'a AuditEntry>) -> Result<ChainHead, Break> {
    let name = chain.to_string();
    let mut head = ChainHead::genesis();
    for entry in entries {
        let (Some(seq), Some(prev), Some(hash)) = (entry.seq, entry.prev_hash.as_deref(), entry.hash.as_deref()) else {
            return Err(Break::Misplaced { chain: name, entry_id: entry.entry_id.clone() });
        };
        if entry.chain.as_deref() != Some(name.as_str()) {
            return Err(Break::Misplaced { chain: name, entry_id: entry.entry_id.clone() });
        }
        if seq != head.seq + 1 {
            return Err(Break::Missing { expected: head.seq + 1, found: seq, entry_id: entry.entry_id.clone() });
        }
        if digest(entry) != hash {
            return Err(Break::Altered { seq, entry_id: entry.entry_id.clone() });
        }
        if prev != head.hash {
            return Err(Break::Unlinked { seq, entry_id: entry.entry_id.clone(), previous: head.seq });
        }
        head = ChainHead { seq, hash: hash.to_owned() };
    }
    Ok(head)
}

/// Checks a verified chain's end against its recorded head (on the
/// enrolment or trial item) or an anchor: a head further on than the
/// entries found means the chain's tail was deleted; a different hash at the
/// same place means the chain was rewritten.
pub fn check_head(found: &ChainHead, recorded: &ChainHead) -> Result<(), Break> {
    if found == recorded {
        Ok(())
    } else {
        Err(Break::HeadMismatch { found: found.seq, recorded_seq: recorded.seq, recorded_hash: recorded.hash.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{changes, Actor};
    use crate::TrialId;
    use proptest::prelude::*;
    use serde_json::json;

    fn detail() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<u8>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            (-(1i64 << 53) - 2..-(1i64 << 53) + 2).prop_map(serde_json::Value::from),
            ((1u64 << 53) - 2..(1u64 << 53) + 2).prop_map(serde_json::Value::from),
            any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
            "[a-z_-]{0,6}|.{0,4}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(2, 16, 8, |inner| {
            prop_oneof![
                proptest::collection::btree_map("[A-Za-z0-9_-]{0,8}|.{0,3}", inner.clone(), 0..8)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                proptest::collection::vec(inner, 0..3).prop_map(serde_json::Value::Array),
            ]
        })
    }

    proptest! {
        /// The plain path writes what the canonicalizer writes, whenever it is taken.
        #[test]
        fn a_plain_detail_is_written_as_rfc_8785_writes_it(v in detail()) {
            // A top-level string was always written by serde_json: not this path.
            prop_assume!(!v.is_string());
            let mut expected = Vec::new();
            serde_json_canonicalizer::to_writer(&v, &mut expected).unwrap();
            let mut written = Vec::new();
            Members::open(&mut written).value("k", &v);
            let mut through_canonicalizer = b"{\"k\":".to_vec();
            through_canonicalizer.extend_from_slice(&expected);
            prop_assert_eq!(String::from_utf8(written).unwrap(), String::from_utf8(through_canonicalizer).unwrap());
        }
    }

    #[test]
    fn a_score_and_a_map_of_component_scores_take_the_plain_path() {
        assert!(plain(&json!(7)) && plain(&json!({"pulse": 3, "spo2": 0, "respiration_rate": 1})));
        assert!(!plain(&json!(0.5)) && !plain(&json!(9_007_199_254_740_993u64)) && !plain(&json!({"b": 1, "a": [1]})));
    }

    fn entry(action: &str, minute: u32) -> AuditEntry {
        let at = chrono::DateTime::parse_from_rfc3339(&format!("2026-11-27T10:{minute:02}:00Z")).unwrap().to_utc();
        AuditEntry::new(TrialId::parse("t1").unwrap(), "patient/P1", action, Actor::system("test"), at)
            .with_detail("score", 7)
            .with_detail("ratio", 0.5)
            .with_changes(changes(Some(&json!({"status": "enrolled"})), &json!({"status": "withdrawn"})))
    }

    fn chain_of(n: u32) -> (ChainId, Vec<AuditEntry>) {
        let chain = ChainId::Patient(PatientId::parse("P1").unwrap());
        let mut entries: Vec<AuditEntry> = (0..n).map(|i| entry("submission.recorded", i)).collect();
        link_all(entries.iter_mut(), &chain, &ChainHead::genesis());
        (chain, entries)
    }

    #[test]
    fn a_linked_chain_verifies_to_its_head() {
        let (chain, entries) = chain_of(3);
        let head = verify(&chain, &entries).unwrap();
        assert_eq!(head.seq, 3);
        assert_eq!(Some(head), entries[2].as_head());
        assert_eq!(entries[0].prev_hash.as_deref(), Some(GENESIS));
        assert_eq!(entries[1].prev_hash, entries[0].hash);
    }

    #[test]
    fn the_hash_is_sha256_of_the_rfc8785_form_without_hash() {
        let (_, entries) = chain_of(1);
        let mut value = serde_json::to_value(&entries[0]).unwrap();
        value.as_object_mut().unwrap().remove("hash");
        // RFC 8785: members sorted by key, no whitespace
        let canonical = serde_json_canonicalizer::to_string(&value).unwrap();
        assert!(canonical.starts_with(r#"{"action":"submission.recorded","actor":{"#), "{canonical}");
        assert_eq!(entries[0].hash.as_deref(), Some(hex::encode(Sha256::digest(canonical.as_bytes())).as_str()));
    }

    #[test]
    fn the_hash_of_awkward_content_is_that_of_its_json_value() {
        // GIVEN details and changes whose canonical form has to sort non-ASCII
        // keys, render floats the ECMAScript way and escape strings
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z").unwrap().to_utc();
        let mut e = AuditEntry::new(TrialId::parse("t1").unwrap(), "trial", "trial.updated", Actor::system("test"), at)
            .with_detail("zeta", 1e21)
            .with_detail("\u{e9}t\u{e9}", 0.1)
            .with_detail("Z", -0.0)
            .with_detail("nested", json!({"b": [1, 2.5, "\u{1F600}\n\"q\""], "a": null, "\u{10000}": 1, "\u{ffff}": 2}))
            .with_changes(changes(
                Some(&json!({"name": "Ol\u{e9}", "n": 1.5e-7})),
                &json!({"name": "\u{7}bell", "n": 12345678901234567890u64}),
            ));
        e.reason = Some("tab\tand \u{2028}".into());
        e.link(&ChainId::Trial, &ChainHead::genesis());
        // WHEN it is hashed, THEN it is the digest of its JSON value's RFC 8785 form
        let mut value = serde_json::to_value(&e).unwrap();
        value.as_object_mut().unwrap().remove("hash");
        let canonical = serde_json_canonicalizer::to_vec(&value).unwrap();
        assert_eq!(e.hash.as_deref(), Some(hex::encode(Sha256::digest(canonical)).as_str()));
        assert_eq!(digest(&e), e.hash.clone().unwrap(), "an entry with its hash set hashes the same");
    }

    fn reference_digest(e: &AuditEntry) -> String {
        let mut value = serde_json::to_value(e).unwrap();
        value.as_object_mut().unwrap().remove("hash");
        hex::encode(Sha256::digest(serde_json_canonicalizer::to_vec(&value).unwrap()))
    }

    fn json_leaf() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(serde_json::Value::from),
            "\\PC{0,6}".prop_map(serde_json::Value::from),
            "[\u{0}-\u{1f}\"\\\\/a\u{7f}\u{2028}]{0,4}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("\\PC{0,3}", inner, 0..3).prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn the_hash_is_that_of_the_entry_s_json_value(
            details in proptest::collection::btree_map("[a-zA-Z_.]{1,8}|\\PC{1,3}", json_leaf(), 0..4),
            old in json_leaf(),
            new in json_leaf(),
            reason in proptest::option::of("\\PC{0,8}"),
            subject in proptest::option::of("[a-z-]{1,8}"),
            linked in proptest::bool::ANY,
        ) {
            let at = chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z").unwrap().to_utc();
            let mut e = AuditEntry::new(TrialId::parse("t1").unwrap(), "patient/P1", "x.y", Actor { role: "staff".into(), subject }, at);
            e.details = details.into_iter().collect();
            e.reason = reason;
            e = e.with_changes(changes(Some(&json!({"a": old, "secret": 1})), &json!({"a": new, "secret": 2})));
            if linked {
                e.link(&ChainId::Patient(PatientId::parse("P1").unwrap()), &ChainHead::genesis());
            }
            proptest::prop_assert_eq!(digest(&e), reference_digest(&e));
        }
    }

    #[test]
    fn an_edited_entry_is_named() {
        let (chain, mut entries) = chain_of(4);
        entries[1].details.insert("score".into(), json!(3));
        assert_eq!(verify(&chain, &entries), Err(Break::Altered { seq: 2, entry_id: entries[1].entry_id.clone() }));
    }

    #[test]
    fn an_edit_with_its_hash_recomputed_breaks_the_next_link() {
        let (chain, mut entries) = chain_of(4);
        entries[1].reason = Some("rewritten".into());
        entries[1].hash = None;
        entries[1].hash = Some(digest(&entries[1]));
        assert_eq!(verify(&chain, &entries), Err(Break::Unlinked { seq: 3, entry_id: entries[2].entry_id.clone(), previous: 2 }));
    }

    #[test]
    fn a_deleted_entry_is_a_gap_and_a_deleted_tail_misses_the_head() {
        let (chain, entries) = chain_of(4);
        let without_second: Vec<_> = entries.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, e)| e).collect();
        assert_eq!(verify(&chain, without_second), Err(Break::Missing { expected: 2, found: 3, entry_id: entries[2].entry_id.clone() }));
        let recorded = entries[3].as_head().unwrap();
        let found = verify(&chain, &entries[..3]).unwrap();
        assert!(matches!(check_head(&found, &recorded), Err(Break::HeadMismatch { found: 3, recorded_seq: 4, .. })));
        assert_eq!(check_head(&verify(&chain, &entries).unwrap(), &recorded), Ok(()));
    }

    #[test]
    fn an_entry_moved_to_another_chain_is_misplaced() {
        let (_, entries) = chain_of(2);
        let other = ChainId::Patient(PatientId::parse("P2").unwrap());
        assert!(matches!(verify(&other, &entries), Err(Break::Misplaced { .. })));
        assert!(matches!(verify(&ChainId::Trial, &entries), Err(Break::Misplaced { .. })));
    }

    #[test]
    fn an_entry_stored_in_dynamodb_form_still_verifies() {
        // The item goes through DynamoDB's number and map encodings and comes back.
        let (chain, entries) = chain_of(3);
        let back: Vec<AuditEntry> = entries
            .iter()
            .map(|e| {
                let item: serde_dynamo::Item = serde_dynamo::to_item(e).unwrap();
                serde_dynamo::from_item(item).unwrap()
            })
            .collect();
        assert_eq!(verify(&chain, &back).unwrap().seq, 3);
    }

    #[test]
    fn chain_ids_round_trip() {
        for chain in [ChainId::Trial, ChainId::Patient(PatientId::parse("P-0042").unwrap())] {
            assert_eq!(ChainId::parse(&chain.to_string()), Some(chain));
        }
        assert_eq!(ChainId::parse("patient/"), None);
        assert_eq!(ChainId::parse("site/s1"), None);
    }
}
