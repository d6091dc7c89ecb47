//! Reading the audit trail through the real SDK against the emulator: the
//! 16 shards of the time index merged newest first, pages that neither skip
//! nor repeat (entries at the same instant included), and the filters.

mod aws_support;

use std::collections::HashSet;

use aws_support::{at, Emulator};
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::page::{Page, PageRequest};
use trialwatch::ports::{AuditLog, AuditTrail};
use trialwatch::trail::{time_key, AuditFilter};
use trialwatch::{Error, TrialId};

fn trial_id(s: &str) -> TrialId {
    TrialId::parse(s).unwrap()
}

fn entry(trial: &str, entity: &str, when: &str) -> AuditEntry {
    AuditEntry::new(
        trial_id(trial),
        entity,
        "test.recorded",
        Actor { role: "site_staff".into(), subject: Some("nurse-7".into()) },
        at(when),
    )
}

/// 120 entries of trial `tw-a`: 40 instants a second apart, three entries at
/// each (same millisecond), the entities cycling trial / patient/P1 / patient/P2;
/// and 5 entries of another trial at the same instants. Returned as stored:
/// linked into their chains, whose heads (the trial and enrolment items) are
/// created first, bare, as empty chains.
async fn seed(env: &Emulator, store: &impl AuditLog) -> Vec<AuditEntry> {
    use std::collections::HashMap;
    use trialwatch::audit::chain::ChainHead;
    for (trial, sk) in [("tw-a", "META"), ("tw-a", "PATIENT#P1"), ("tw-a", "PATIENT#P2"), ("tw-b", "META")] {
        env.raw_dynamo()
            .put_item()
            .table_name(env.table())
            .item("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("TRIAL#{trial}")))
            .item("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk.into()))
            .send()
            .await
            .unwrap();
    }
    let mut heads: HashMap<(String, String), ChainHead> = HashMap::new();
    let mut append = async |e: AuditEntry| {
        store.append(&e).await.unwrap();
        let chain = e.chain_id();
        let head = heads.entry((e.trial_id.to_string(), chain.to_string())).or_default();
        let mut stored = e;
        *head = stored.link(&chain, head);
        stored
    };
    let mut mine = Vec::new();
    for i in 0..40 {
        let when = format!("2026-11-26T20:00:{i:02}.250Z");
        for entity in ["trial", "patient/P1", "patient/P2"] {
            mine.push(append(entry("tw-a", entity, &when)).await);
        }
    }
    for i in 0..5 {
        append(entry("tw-b", "trial", &format!("2026-11-26T20:00:{i:02}.250Z"))).await;
    }
    mine.sort_by_key(|e| std::cmp::Reverse(time_key(e)));
    mine
}

async fn walk(store: &impl AuditTrail, trial: &str, filter: &AuditFilter, limit: u32) -> Vec<Page<AuditEntry>> {
    let mut pages = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let got = store.audit_page(&trial_id(trial), filter, &page).await.unwrap();
        page.cursor = got.next_cursor.clone();
        pages.push(got);
        if page.cursor.is_none() {
            return pages;
        }
        assert!(pages.len() < 1000, "the walk does not end");
    }
}

/// The time-index partitions of `trial` that hold entries, read straight from the index.
async fn occupied_shards(env: &Emulator, trial: &str) -> HashSet<u32> {
    let mut occupied = HashSet::new();
    for shard in 0..trialwatch::aws::AUDIT_SHARDS {
        let out = env
            .raw_dynamo()
            .query()
            .table_name(env.audit_table())
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("AUDIT#{trial}#{shard}")))
            .limit(1)
            .send()
            .await
            .unwrap();
        if out.count > 0 {
            occupied.insert(shard);
        }
    }
    occupied
}

fn ids(entries: &[AuditEntry]) -> Vec<String> {
    entries.iter().map(|e| e.entry_id.clone()).collect()
}

#[tokio::test]
async fn pages_of_7_walk_the_whole_trail_newest_first_across_shards_without_gaps_or_repeats() {
    // GIVEN 120 entries of one trial, three at each instant, spread over the index's shards
    let env = Emulator::provision("audit-walk").await;
    let (store, requests) = env.counted_store();
    let expected = seed(&env, &store).await;
    let shards = occupied_shards(&env, "tw-a").await;
    assert!(shards.len() >= 12, "entries spread over the shards: {shards:?}");
    requests.reset();
    // WHEN the trail is read 7 entries at a time, following the cursor
    let pages = walk(&store, "tw-a", &AuditFilter::default(), 7).await;
    // THEN every entry of the trial comes back exactly once, newest first (ties by id)
    let read: Vec<AuditEntry> = pages.iter().flat_map(|p| p.items.clone()).collect();
    assert_eq!(ids(&read), ids(&expected));
    assert_eq!(read, expected, "entries come back as written");
    // AND every page but the last holds 7, and the last one ends the list
    assert_eq!(pages.len(), 18);
    assert!(pages[..17].iter().all(|p| p.items.len() == 7));
    assert_eq!(pages[17].items.len(), 1);
    // AND only Queries were sent (on the index), never a Scan
    assert_eq!(requests.get("Scan"), 0);
    assert_eq!(requests.total(), requests.get("Query"));
    assert!(requests.get("Query") >= 16 * 18, "one Query per shard per page at least");
}

#[tokio::test]
async fn the_time_filter_is_from_inclusive_to_exclusive_and_the_entity_filter_exact() {
    // GIVEN the seeded trail
    let env = Emulator::provision("audit-filter").await;
    let store = env.store();
    let all = seed(&env, &store).await;
    // WHEN read from 20:00:10.250 (an instant with entries) to 20:00:20.250
    let f = AuditFilter::parse(None, Some("2026-11-26T20:00:10.250Z"), Some("2026-11-26T20:00:20.250Z")).unwrap();
    let read: Vec<AuditEntry> = walk(&store, "tw-a", &f, 7).await.into_iter().flat_map(|p| p.items).collect();
    // THEN exactly the entries of :10 to :19 come back: `from` included, `to` excluded
    let want: Vec<AuditEntry> =
        all.iter().filter(|e| e.at.as_str() >= "2026-11-26T20:00:10.250Z" && e.at.as_str() < "2026-11-26T20:00:20.250Z").cloned().collect();
    assert_eq!(want.len(), 30);
    assert_eq!(ids(&read), ids(&want));

    // WHEN read for patient/P1 only, 4 at a time
    let f = AuditFilter::parse(Some("patient/P1"), None, None).unwrap();
    let pages = walk(&store, "tw-a", &f, 4).await;
    let read: Vec<AuditEntry> = pages.iter().flat_map(|p| p.items.clone()).collect();
    // THEN all 40 of P1's entries, and nothing else, newest first
    let want: Vec<AuditEntry> = all.iter().filter(|e| e.entity == "patient/P1").cloned().collect();
    assert_eq!(ids(&read), ids(&want));
    assert_eq!(read.len(), 40);

    // WHEN an entity and a time window are combined
    let f = AuditFilter::parse(Some("trial"), Some("2026-11-26T20:00:38Z"), None).unwrap();
    let read: Vec<AuditEntry> = walk(&store, "tw-a", &f, 50).await.into_iter().flat_map(|p| p.items).collect();
    // THEN the trial's entries of :38 and :39
    assert_eq!(
        read.iter().map(|e| (e.entity.as_str(), e.at.as_str())).collect::<Vec<_>>(),
        [("trial", "2026-11-26T20:00:39.250Z"), ("trial", "2026-11-26T20:00:38.250Z")]
    );

    // AND another trial's trail holds only its own entries
    let other: Vec<AuditEntry> = walk(&store, "tw-b", &AuditFilter::default(), 50).await.into_iter().flat_map(|p| p.items).collect();
    assert_eq!(other.len(), 5);
    assert!(other.iter().all(|e| e.trial_id.as_str() == "tw-b"));
}

#[tokio::test]
async fn a_tampered_cursor_is_a_422_naming_cursor_and_reads_nothing() {
    let env = Emulator::provision("audit-cursor").await;
    let (store, requests) = env.counted_store();
    for bad in ["garbage", "eyJwayI6IkFVRElUI3R3LWEjMyJ9"] {
        let err = store
            .audit_page(&trial_id("tw-a"), &AuditFilter::default(), &PageRequest { limit: 7, cursor: Some(bad.into()) })
            .await
            .map_err(Error::from);
        assert!(matches!(&err, Err(Error::Validation(e)) if e[0].field == "cursor"), "{bad}: {err:?}");
    }
    assert_eq!(requests.total(), 0);
}
