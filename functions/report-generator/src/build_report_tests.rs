//! `build_report` on the in-memory ports, without HTTP or a schedule: the
//! report it makes, and each [`BuildReportError`] from its condition.

use trialwatch::clock::FakeClock;
use trialwatch::domain_event::Unpublished;
use trialwatch::memory::{MemoryReportStore, MemoryStore};
use trialwatch::trial::{Trial, TrialDefinition};

use super::*;

const NOW: &str = "2026-11-26T20:15:00Z";

fn trial_id() -> TrialId {
    TrialId::parse("tw-demo").unwrap()
}

/// GIVEN trial tw-demo (one site, Shanghai time) and nothing recorded yet.
fn store() -> MemoryStore {
    let store = MemoryStore::new();
    let definition: TrialDefinition = serde_json::from_value(serde_json::json!({
        "name": "HF-Home", "sites": [{"id": "site-001", "name": "Leeds"}], "timezone": "Asia/Shanghai"
    }))
    .unwrap();
    store.seed_trial(Trial { trial_id: trial_id(), definition, updated_at: "2026-10-01T00:00:00.000Z".into() });
    store
}

fn command(from: &str, to: &str, requested: bool) -> BuildReportCommand {
    BuildReportCommand {
        trial_id: trial_id(),
        period: Period { from: from.parse().unwrap(), to: to.parse().unwrap() },
        report_id: ReportId::parse("rpt-20261116-000000000001").unwrap(),
        requested_by: Actor { role: "sponsor".into(), subject: Some("sponsor-1".into()) },
        requested: requested.then(|| PeriodRequest { from: from.into(), to: to.into() }),
    }
}

async fn run(store: &MemoryStore, reports: &MemoryReportStore, cmd: BuildReportCommand) -> Result<Generated, BuildReportError> {
    let events = Announcer { bus: &Unpublished, pending: store };
    build_report(store, store, reports, store, events, &FakeClock::at(NOW), cmd).await
}

#[tokio::test]
async fn a_report_is_stored_audited_and_linked() {
    let store = store();
    let reports = MemoryReportStore::on(&store);
    // WHEN last week's report is built
    let g = run(&store, &reports, command("2026-11-16", "2026-11-22", true)).await.expect("a report");
    // THEN its PDF is stored under its key, one audit entry names it, and a link expires after LINK_TTL
    assert_eq!(g.meta.report_id.as_str(), "rpt-20261116-000000000001");
    let pdf = reports.object(&g.meta.object_key).expect("the stored PDF");
    assert!(pdf.starts_with(b"%PDF"));
    assert_eq!(g.meta.bytes, pdf.len() as u64);
    let audit: Vec<_> = store.audit_entries().into_iter().filter(|a| a.action == "report.generated").collect();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor.subject.as_deref(), Some("sponsor-1"));
    assert_eq!((g.expires_at - g.meta.generated_at).num_seconds(), LINK_TTL.as_secs() as i64);
    assert!(!g.url.is_empty());
}

#[tokio::test]
async fn an_unknown_trial_is_trial_not_found_and_nothing_is_stored() {
    let store = MemoryStore::new();
    let reports = MemoryReportStore::on(&store);
    let e = run(&store, &reports, command("2026-11-16", "2026-11-22", true)).await.unwrap_err();
    assert!(matches!(e, BuildReportError::TrialNotFound), "{e:?}");
    assert!(store.audit_entries().is_empty());
}

#[tokio::test]
async fn a_requested_period_ending_after_today_in_the_trials_zone_is_invalid() {
    // GIVEN 20:15 UTC on 26 November, which is already 27 November in Shanghai
    let store = store();
    let reports = MemoryReportStore::on(&store);
    // WHEN a period ending on 28 November is asked for
    let e = run(&store, &reports, command("2026-11-20", "2026-11-28", true)).await.unwrap_err();
    // THEN `to` is named, and nothing is stored
    let BuildReportError::Invalid(fields) = e else { panic!("{e:?}") };
    assert_eq!(fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["to"]);
    assert!(store.audit_entries().is_empty());
    // AND ending on 27 November (today there) is accepted
    run(&store, &reports, command("2026-11-20", "2026-11-27", true)).await.expect("today in Shanghai is not the future");
}

#[tokio::test]
async fn an_unavailable_store_is_a_storage_error() {
    let store = store();
    let reports = MemoryReportStore::on(&store);
    store.fail_next("append", 1);
    let e = run(&store, &reports, command("2026-11-16", "2026-11-22", false)).await.unwrap_err();
    assert!(matches!(e, BuildReportError::Storage(StorageError::Unavailable(_))), "{e:?}");
}
