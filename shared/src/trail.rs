//! Reading a trial's audit trail newest first, from the audit table's
//! write-sharded time index (`gsi1`: `AUDIT#<trial>#<shard>` / `<at>#<entryId>`):
//! the filter, the cursor, and the k-way merge of one newest-first stream per
//! shard that every adapter of [`crate::ports::AuditTrail`] shares.
//!
//! The time-index key `<at>#<entryId>` is a total order (fixed-width UTC
//! millis, then a unique id), so "newest first" is "greatest key first", and
//! a page's position is the key of the last entry it returned: the next page
//! reads every shard strictly below it. Entries at the same instant are
//! ordered by id, so none is skipped or repeated across pages.

use std::collections::VecDeque;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::audit::AuditEntry;
use crate::page::{decode_cursor, encode_cursor, Page};
use crate::ports::StorageError;
use crate::validation::FieldError;

/// Longest `entity` filter (characters); entities are `kind/<id>` with ids of at most 128.
pub const MAX_ENTITY_CHARS: usize = 160;

/// Refill rounds one page may spend before it returns what it has (with a
/// cursor): an entity filter that matches little of a long trail makes each
/// Query return few or no entries, and a request must stay well inside the
/// function's timeout. At most this many Queries per shard per page.
pub const MAX_ROUNDS: u32 = 8;

/// Largest `Limit` of one shard's Query (a Query also stops at 1 MB).
const MAX_SHARD_READ: usize = 1000;

/// What to read of a trial's trail. Times are compared at millisecond
/// precision, the precision at which entries record `at`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exactly this entity: `trial`, `patient/P1`, `alert/<id>`, ...
    pub entity: Option<String>,
    /// Entries at or after this instant (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Entries before this instant (exclusive).
    pub to: Option<DateTime<Utc>>,
}

impl AuditFilter {
    /// Reads the filter from its query-string form, every invalid field at once.
    /// Times are RFC 3339 with any offset (read as the instant they name).
    pub fn parse(entity: Option<&str>, from: Option<&str>, to: Option<&str>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let entity = entity.map(str::to_owned);
        if let Some(e) = &entity {
            let well_formed = !e.is_empty()
                && e.chars().count() <= MAX_ENTITY_CHARS
                && e.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
            if !well_formed {
                errors.push(FieldError::new(
                    "entity",
                    format!("must be an entity such as trial, patient/P0001 or alert/<id> (at most {MAX_ENTITY_CHARS} characters of A-Z a-z 0-9 . _ - /)"),
                ));
            }
        }
        let mut time = |field: &str, raw: Option<&str>| {
            let raw = raw?;
            match DateTime::parse_from_rfc3339(raw) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    errors.push(FieldError::new(field, "must be an RFC 3339 timestamp, e.g. 2026-11-26T20:15:00Z"));
                    None
                }
            }
        };
        let (from, to) = (time("from", from), time("to", to));
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                errors.push(FieldError::new("to", "must be after from (from is inclusive, to exclusive)"));
            }
        }
        if errors.is_empty() {
            Ok(Self { entity, from, to })
        } else {
            Err(errors)
        }
    }
}

/// Where a page of the trail ends: the time-index key of the last entry
/// returned (or, for a page cut short, of the last entry examined). The next
/// page holds the entries strictly below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position(String);

impl Position {
    pub fn key(&self) -> &str {
        &self.0
    }

    pub fn encode(&self) -> String {
        encode_cursor(&json!({ "before": self.0 }))
    }

    /// A cursor this API issued, or `ForeignCursor` (a 422 naming `cursor`). The key is checked
    /// to be a time-index key (canonical time, then an id), so a tampered
    /// cursor can position a read but never change what it reads.
    pub fn decode(cursor: &str) -> Result<Self, StorageError> {
        let foreign = || StorageError::ForeignCursor("is not a cursor of this list");
        let value = decode_cursor(cursor)?;
        let serde_json::Value::Object(map) = value else { return Err(foreign()) };
        let (1, Some(serde_json::Value::String(key))) = (map.len(), map.get("before")) else { return Err(foreign()) };
        Self::from_key(key).ok_or_else(foreign)
    }

    /// A time-index key `<at>#<entryId>` as stored, else `None`.
    pub fn from_key(key: &str) -> Option<Self> {
        let (at, id) = key.split_once('#')?;
        let canonical = DateTime::parse_from_rfc3339(at).ok().map(|t| crate::timestamp::format(t.with_timezone(&Utc)));
        let id_ok = (1..=128).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        (canonical.as_deref() == Some(at) && id_ok).then(|| Self(key.to_owned()))
    }
}

/// The time-index key of an entry, as the adapters store it.
pub fn time_key(entry: &AuditEntry) -> String {
    format!("{}#{}", entry.at, entry.entry_id)
}

/// The slice of the time index a read covers: keys `>= lower` and `< upper`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    pub lower: Option<String>,
    pub upper: Option<String>,
}

impl KeyRange {
    /// `from` (inclusive) and the smaller of `to` and the cursor (both
    /// exclusive). A bare time sorts before every key at that instant
    /// (`T` < `T#id`), which makes `from` inclusive and `to` exclusive.
    pub fn new(filter: &AuditFilter, after: Option<&Position>) -> Self {
        let lower = filter.from.map(|t| crate::timestamp::format(ceil_to_millis(t)));
        let to = filter.to.map(|t| crate::timestamp::format(ceil_to_millis(t)));
        let upper = match (to, after) {
            (Some(t), Some(p)) => Some(t.min(p.0.clone())),
            (t, p) => t.or_else(|| p.map(|p| p.0.clone())),
        };
        Self { lower, upper }
    }

    pub fn is_empty(&self) -> bool {
        matches!((&self.lower, &self.upper), (Some(l), Some(u)) if l >= u)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.lower.as_deref().is_none_or(|l| key >= l) && self.upper.as_deref().is_none_or(|u| key < u)
    }
}

/// Rounds up to whole milliseconds: stored times have millisecond precision,
/// so an entry at .000 is before a bound of .0005 (kept out by an inclusive
/// `from`, kept in by an exclusive `to`), exactly as at the bound .001.
fn ceil_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    let sub_milli = i64::from(t.timestamp_subsec_nanos() % 1_000_000);
    if sub_milli == 0 {
        t
    } else {
        t - Duration::nanoseconds(sub_milli) + Duration::milliseconds(1)
    }
}

/// One read of one shard: what a Query with `Limit` returns.
#[derive(Debug)]
pub struct ShardRead<R> {
    /// Matching entries with their time-index keys, newest first.
    pub entries: Vec<(String, AuditEntry)>,
    /// `Some((resume, key))` when the shard may hold more below: where the
    /// next read starts, and the key of the last item this read examined
    /// (matching the filter or not). `None`: the shard is exhausted.
    pub more: Option<(R, String)>,
}

/// The shards of one trial's time index within one [`KeyRange`] and filter,
/// each read newest first.
#[async_trait]
pub trait ShardReader: Sync {
    /// An adapter's own continuation (DynamoDB's LastEvaluatedKey).
    type Resume: Send;
    /// At most `limit` items of `shard` examined, newest first, continuing at `resume`.
    async fn read(&self, shard: u32, resume: Option<Self::Resume>, limit: usize) -> Result<ShardRead<Self::Resume>, StorageError>;
}

enum Next<R> {
    Unread,
    At(R, String),
    Exhausted,
}

struct Shard<R> {
    id: u32,
    buffered: VecDeque<(String, AuditEntry)>,
    next: Next<R>,
    reads: u32,
}

impl<R> Shard<R> {
    /// Whether the shard must be read before the next entry can be chosen.
    fn needs_read(&self) -> bool {
        self.buffered.is_empty() && !matches!(self.next, Next::Exhausted)
    }
}

/// The first `limit` entries (newest first) of the union of `shards` streams,
/// and the cursor of the rest.
///
/// An entry is taken only when every shard that is not exhausted has its
/// newest untaken entry buffered, so the greatest buffered key is the next
/// entry of the whole trail. Shards are read in parallel, and only those whose
/// buffer ran dry; each read of a shard asks for twice as many items as the
/// last. One entry beyond `limit` is sought, so the last page has no cursor.
///
/// When [`MAX_ROUNDS`] rounds of reads do not settle the page (a filter
/// matching little), the page is cut short: it takes the buffered entries
/// above every dry shard's last examined key, and the cursor is that key.
/// Every entry below the cursor is still to come and every one above it was
/// returned, so following the cursor still misses nothing.
pub async fn merge<S: ShardReader>(reader: &S, shards: u32, limit: usize) -> Result<Page<AuditEntry>, StorageError> {
    let target = limit + 1;
    let first_read = (2 * target).div_ceil(shards.max(1) as usize).clamp(4, MAX_SHARD_READ);
    let mut state: Vec<Shard<S::Resume>> =
        (0..shards).map(|id| Shard { id, buffered: VecDeque::new(), next: Next::Unread, reads: 0 }).collect();
    let mut out: Vec<(String, AuditEntry)> = Vec::with_capacity(target);
    let mut rounds = 0;
    loop {
        let dry: Vec<usize> = (0..state.len()).filter(|&i| state[i].needs_read()).collect();
        if !dry.is_empty() {
            if rounds == MAX_ROUNDS {
                return Ok(cut_short(&mut state, out, limit));
            }
            rounds += 1;
            let reads = dry.iter().map(|&i| {
                let shard = &mut state[i];
                let resume = match std::mem::replace(&mut shard.next, Next::Exhausted) {
                    Next::At(resume, _) => Some(resume),
                    _ => None,
                };
                let size = first_read.saturating_mul(1 << shard.reads.min(10)).min(MAX_SHARD_READ);
                reader.read(shard.id, resume, size)
            });
            let results = futures::future::try_join_all(reads).await?;
            for (i, read) in dry.into_iter().zip(results) {
                let shard = &mut state[i];
                shard.reads += 1;
                shard.buffered.extend(read.entries);
                shard.next = read.more.map_or(Next::Exhausted, |(resume, key)| Next::At(resume, key));
            }
            continue;
        }
        let Some(entry) = take_newest(&mut state) else { break };
        out.push(entry);
        if out.len() == target {
            break;
        }
    }
    Ok(page_of(out, limit, None))
}

/// Pops the greatest buffered head.
fn take_newest<R>(state: &mut [Shard<R>]) -> Option<(String, AuditEntry)> {
    let best = state.iter_mut().filter(|s| !s.buffered.is_empty()).max_by(|a, b| a.buffered[0].0.cmp(&b.buffered[0].0))?;
    best.buffered.pop_front()
}

fn cut_short<R>(state: &mut [Shard<R>], mut out: Vec<(String, AuditEntry)>, limit: usize) -> Page<AuditEntry> {
    // Below a dry shard's last examined key lies what no read has seen yet.
    let unseen = state
        .iter()
        .filter(|s| s.buffered.is_empty())
        .filter_map(|s| match &s.next {
            Next::At(_, key) => Some(key.clone()),
            _ => None,
        })
        .max();
    let Some(unseen) = unseen else { return page_of(out, limit, None) };
    while out.len() <= limit {
        let newest = state.iter().filter_map(|s| s.buffered.front()).map(|(k, _)| k).max();
        if newest.is_none_or(|k| *k < unseen) {
            break;
        }
        out.extend(take_newest(state));
    }
    page_of(out, limit, Some(Position(unseen)))
}

/// The first `limit` entries; the cursor is the last one's key when more
/// were found, else `cut` (a page cut short), else none (the trail's end).
fn page_of(mut out: Vec<(String, AuditEntry)>, limit: usize, cut: Option<Position>) -> Page<AuditEntry> {
    let next = if out.len() > limit {
        out.truncate(limit);
        out.last().map(|(k, _)| Position(k.clone()))
    } else {
        cut
    };
    Page { items: out.into_iter().map(|(_, e)| e).collect(), next_cursor: next.map(|p| p.encode()) }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::audit::Actor;
    use crate::ids::TrialId;

    fn entry(entity: &str, at: &str, id: &str) -> AuditEntry {
        let mut e = AuditEntry::new(TrialId::parse("t").unwrap(), entity, "x.done", Actor::system("test"), at.parse().unwrap());
        e.entry_id = id.into();
        e
    }

    /// Shards in memory that read exactly as a Query with `Limit` and a
    /// FilterExpression does: `limit` items examined, the matching ones returned.
    struct Fake {
        shards: Vec<Vec<(String, AuditEntry)>>,
        range: KeyRange,
        entity: Option<String>,
        reads: AtomicUsize,
    }

    impl Fake {
        fn new(entries: &[AuditEntry], shards: usize, filter: &AuditFilter, after: Option<&Position>) -> Self {
            let mut by_shard = vec![Vec::new(); shards];
            for (i, e) in entries.iter().enumerate() {
                by_shard[i % shards].push((time_key(e), e.clone()));
            }
            for s in &mut by_shard {
                s.sort_by(|a, b| b.0.cmp(&a.0));
            }
            Self { shards: by_shard, range: KeyRange::new(filter, after), entity: filter.entity.clone(), reads: AtomicUsize::new(0) }
        }
    }

    #[async_trait]
    impl ShardReader for Fake {
        type Resume = String;
        async fn read(&self, shard: u32, resume: Option<String>, limit: usize) -> Result<ShardRead<String>, StorageError> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            let examined: Vec<&(String, AuditEntry)> = self.shards[shard as usize]
                .iter()
                .filter(|(k, _)| self.range.contains(k) && resume.as_ref().is_none_or(|r| k < r))
                .take(limit)
                .collect();
            let more = (examined.len() == limit).then(|| examined.last().map(|(k, _)| (k.clone(), k.clone()))).flatten();
            let entries = examined.into_iter().filter(|(_, e)| self.entity.as_ref().is_none_or(|x| &e.entity == x)).cloned().collect();
            Ok(ShardRead { entries, more })
        }
    }

    async fn walk(entries: &[AuditEntry], shards: usize, filter: &AuditFilter, limit: usize) -> (Vec<Vec<String>>, usize) {
        let (mut pages, mut cursor, mut reads) = (Vec::new(), None::<Position>, 0);
        loop {
            let fake = Fake::new(entries, shards, filter, cursor.as_ref());
            let page = merge(&fake, shards as u32, limit).await.unwrap();
            reads += fake.reads.load(Ordering::Relaxed);
            pages.push(page.items.iter().map(|e| e.entry_id.clone()).collect());
            match page.next_cursor {
                Some(c) => cursor = Some(Position::decode(&c).unwrap()),
                None => return (pages, reads),
            }
            assert!(pages.len() < 10_000, "the walk does not end");
        }
    }

    fn ids_newest_first(entries: &[AuditEntry], keep: impl Fn(&AuditEntry) -> bool) -> Vec<String> {
        let mut sorted: Vec<&AuditEntry> = entries.iter().filter(|e| keep(e)).collect();
        sorted.sort_by_key(|e| std::cmp::Reverse(time_key(e)));
        sorted.into_iter().map(|e| e.entry_id.clone()).collect()
    }

    /// 100 entries over 10 instants, 10 at each: ties everywhere.
    fn trail() -> Vec<AuditEntry> {
        (0..100)
            .map(|i| {
                let entity = if i % 10 == 3 { "patient/P1" } else { "trial" };
                entry(entity, &format!("2026-11-26T20:00:0{}.000Z", i % 10), &format!("e{i:03}"))
            })
            .collect()
    }

    #[tokio::test]
    async fn pages_walk_the_whole_trail_newest_first_without_gaps_or_repeats() {
        // GIVEN 100 entries, ten at each of ten instants, over 16 shards
        let entries = trail();
        for limit in [1, 7, 16, 99, 100, 200] {
            // WHEN the trail is read page by page
            let (pages, _) = walk(&entries, 16, &AuditFilter::default(), limit).await;
            // THEN the pages, joined, are every entry exactly once, newest first
            let all: Vec<String> = pages.concat();
            assert_eq!(all, ids_newest_first(&entries, |_| true), "limit {limit}");
            // AND every page but the last is full, and the last has no cursor
            assert!(pages[..pages.len() - 1].iter().all(|p| p.len() == limit), "limit {limit}");
        }
    }

    #[tokio::test]
    async fn a_filter_that_matches_little_cuts_pages_short_but_misses_nothing() {
        // GIVEN a long trail of which one entry in 10 is P1's, over 16 shards
        let entries: Vec<AuditEntry> = (0..3000)
            .map(|i| {
                let entity = if i % 10 == 3 { "patient/P1" } else { "trial" };
                entry(entity, &format!("2026-11-26T20:{:02}:{:02}.000Z", i / 60 % 60, i % 60), &format!("e{i:04}"))
            })
            .collect();
        let filter = AuditFilter { entity: Some("patient/P1".into()), ..AuditFilter::default() };
        // WHEN P1's entries are read 50 at a time
        let (pages, reads) = walk(&entries, 16, &filter, 50).await;
        // THEN every one of P1's entries comes back once, newest first
        assert_eq!(pages.concat(), ids_newest_first(&entries, |e| e.entity == "patient/P1"));
        // AND no page spent more than MAX_ROUNDS reads per shard
        assert!(reads <= pages.len() * 16 * MAX_ROUNDS as usize, "{reads} reads for {} pages", pages.len());
    }

    #[tokio::test]
    async fn a_page_cut_short_by_the_round_bound_still_has_a_cursor_that_misses_nothing() {
        // GIVEN 4,000 entries of which only the oldest is P1's, over 2 shards:
        // the first round examines few items, then each read doubles, and the
        // bound stops the page long before the end
        let mut entries: Vec<AuditEntry> = (0..4000)
            .map(|i| entry("trial", &format!("2026-11-26T{}:{:02}:{:02}.000Z", 20 + i / 3600, i / 60 % 60, i % 60), &format!("e{i:04}")))
            .collect();
        entries[0].entity = "patient/P1".into();
        let filter = AuditFilter { entity: Some("patient/P1".into()), ..AuditFilter::default() };
        // WHEN the first page is read
        let fake = Fake::new(&entries, 2, &filter, None);
        let first = merge(&fake, 2, 1).await.unwrap();
        // THEN it is empty but carries a cursor (the reads were bounded)
        assert!(first.items.is_empty());
        assert_eq!(fake.reads.load(Ordering::Relaxed), 2 * MAX_ROUNDS as usize);
        // AND following cursors finds the one entry
        let (pages, _) = walk(&entries, 2, &filter, 1).await;
        assert_eq!(pages.concat(), ["e0000"]);
    }

    #[tokio::test]
    async fn time_bounds_are_from_inclusive_and_to_exclusive() {
        // GIVEN entries at 20:00:00 .. 20:00:09, ten at each
        let entries = trail();
        let f = AuditFilter::parse(None, Some("2026-11-26T20:00:02Z"), Some("2026-11-26T20:00:05Z")).unwrap();
        // WHEN read between 20:00:02 and 20:00:05
        let (pages, _) = walk(&entries, 16, &f, 7).await;
        // THEN exactly the entries at :02, :03 and :04 come back
        let within = |e: &AuditEntry| ("2026-11-26T20:00:02.000Z".."2026-11-26T20:00:05.000Z").contains(&e.at.as_str());
        assert_eq!(pages.concat(), ids_newest_first(&entries, within));
        assert_eq!(pages.concat().len(), 30);
    }

    #[test]
    fn sub_millisecond_bounds_round_up_to_the_stored_precision() {
        let f = AuditFilter::parse(None, Some("2026-11-26T20:00:00.0005Z"), Some("2026-11-26T20:00:01.0005+00:00")).unwrap();
        let r = KeyRange::new(&f, None);
        assert_eq!(r.lower.as_deref(), Some("2026-11-26T20:00:00.001Z"));
        assert_eq!(r.upper.as_deref(), Some("2026-11-26T20:00:01.001Z"));
        assert!(!r.contains("2026-11-26T20:00:00.000Z#a") && r.contains("2026-11-26T20:00:01.000Z#a"));
    }

    #[test]
    fn a_cursor_below_to_narrows_the_range_and_one_below_from_empties_it() {
        let f = AuditFilter::parse(None, Some("2026-11-26T20:00:00Z"), Some("2026-11-26T22:00:00+01:00")).unwrap();
        let early = Position::from_key("2026-11-26T19:00:00.000Z#abc").unwrap();
        assert!(KeyRange::new(&f, Some(&early)).is_empty());
        let mid = Position::from_key("2026-11-26T20:00:00.000Z#abc").unwrap();
        assert_eq!(KeyRange::new(&f, Some(&mid)).upper.as_deref(), Some(mid.key()));
    }

    #[test]
    fn bad_filters_name_every_field() {
        let errors = AuditFilter::parse(Some("patient#P1"), Some("yesterday"), Some("2026-13-01T00:00:00Z")).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["entity", "from", "to"]);
        let inverted = AuditFilter::parse(None, Some("2026-11-26T20:00:00Z"), Some("2026-11-26T20:00:00Z")).unwrap_err();
        assert_eq!(inverted[0].field, "to");
        assert!(AuditFilter::parse(Some(""), None, None).is_err());
        assert!(AuditFilter::parse(Some(&"a".repeat(MAX_ENTITY_CHARS + 1)), None, None).is_err());
        let ok = AuditFilter::parse(Some("alert/al-1.x_y"), None, None).unwrap();
        assert_eq!(ok.entity.as_deref(), Some("alert/al-1.x_y"));
    }

    #[test]
    fn a_cursor_round_trips_and_a_tampered_one_is_a_422_naming_cursor() {
        let p = Position::from_key("2026-11-26T20:00:00.000Z#0123abcd").unwrap();
        assert_eq!(Position::decode(&p.encode()).unwrap(), p);
        let forged = |v: serde_json::Value| encode_cursor(&v);
        for bad in [
            "garbage!".to_owned(),
            forged(json!({"before": "2026-11-26T20:00:00Z#x"})), // not the stored time form
            forged(json!({"before": "2026-11-26T20:00:00.000Z"})), // no id
            forged(json!({"before": "2026-11-26T20:00:00.000Z#a#b"})), // not an id
            forged(json!({"before": "2026-11-26T20:00:00.000Z#x", "pk": "AUDIT#other"})),
            forged(json!({"pk": "x", "sk": "y"})),
            forged(json!(["2026-11-26T20:00:00.000Z#x"])),
        ] {
            let err = crate::Error::from(Position::decode(&bad).unwrap_err());
            assert!(matches!(&err, crate::Error::Validation(e) if e[0].field == "cursor"), "{bad}: {err:?}");
        }
    }

    #[tokio::test]
    async fn an_empty_trail_is_one_empty_page_without_a_cursor() {
        let fake = Fake::new(&[], 16, &AuditFilter::default(), None);
        let page = merge(&fake, 16, 50).await.unwrap();
        assert!(page.items.is_empty() && page.next_cursor.is_none());
        assert_eq!(fake.reads.load(Ordering::Relaxed), 16, "one Query per shard");
    }
}
