//! ePRO submissions: the one-transaction record, replay lookup, the patient's
//! newest-first list and the sharded per-day counters.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::NaiveDate;

use super::outbox::pending_alert_item;
use super::query::query_pages;
use super::trials::{enrolment_sk, trial_pk};
use super::{
    attr_str, attr_u64, condition_failed, decode_position, encode_position, from_record, head_condition, head_moved_on, head_values, n,
    old_item, page_limit, s, to_record, DynamoStore, Expr, Transacted, HEAD_SET, TABLE_KEY,
};
use crate::alert::Alert;
use crate::audit::append::{head_moved, Extension};
use crate::audit::chain::ChainId;
use crate::audit::AuditEntry;
use crate::aws::errors::from_sdk;
use crate::domain_event::{DomainEvent, MAX_SUBMISSION_EVENTS};
use crate::enrolment::EnrolmentStatus;
use crate::ids::{PatientId, QuestionnaireId, SiteId, SubmissionId, TrialId};
use crate::outbox::MAX_PRO_ALERTS_PER_SUBMISSION;
use crate::page::{Page, PageRequest};
use crate::ports::StorageError;
use crate::ports::{RecordOutcome, SubmissionLedger};
use crate::submission::{DailySiteCount, StoredSubmission};
use crate::timestamp;

/// Day counters of a trial are spread over this many partitions: a national
/// evening peak lands on `STATS#t#0..31` instead of one partition, whose limit
/// is 1,000 WCU/s. Reports pay 32 small queries instead of one.
pub const COUNTER_SHARDS: u32 = 32;

// Item positions in the record transaction, for reading cancellation reasons:
// [submission, guard, counter, enrolment, audit entries.., PRO alerts.., events..].
const TX_SUBMISSION: usize = 0;
const TX_GUARD: usize = 1;
const TX_ENROLMENT: usize = 3;
const TX_AUDIT: usize = 4;

pub(crate) fn patient_pk(trial: &TrialId, patient: &PatientId) -> String {
    key(["PATIENT#", trial.as_str(), "#", patient.as_str()])
}

/// The parts joined into one key, allocated once at its length (`concat`): `format!`
/// costs several times more per key, and a submission builds seven (issue 16).
fn key<const N: usize>(parts: [&str; N]) -> String {
    parts.concat()
}

/// The idempotency guard of a submission id, per trial and patient: a
/// client-chosen id reused by another patient is a new submission, not a 409
/// that would tell its sender the id exists elsewhere. Guards written before
/// this key (`SUBID#{id}`) are never read again; a replay of such a
/// submission is still recognised, by its submission item (see
/// `record_submission`), so none needs migrating.
fn guard_pk(trial: &TrialId, patient: &PatientId, id: &SubmissionId) -> String {
    key(["SUBID#", trial.as_str(), "#", patient.as_str(), "#", id.as_uuid().hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer())])
}

/// A stable shard for the patient (FNV-1a: the same on every build and
/// platform, unlike `DefaultHasher`).
pub(crate) fn counter_shard(trial: &TrialId, patient: &PatientId) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in trial.as_str().bytes().chain([b'#']).chain(patient.as_str().bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % COUNTER_SHARDS
}

/// The submission item's key: the patient's partition, newest-first by completedAt.
fn submission_key(sub: &StoredSubmission) -> (String, String) {
    let completed_at = timestamp::format(sub.completed_at);
    let id = &mut uuid::Uuid::encode_buffer();
    (
        patient_pk(&sub.trial_id, &sub.patient_id),
        key(["SUB#", &completed_at, "#", sub.submission_id.as_uuid().hyphenated().encode_lower(id)]),
    )
}

fn day_pk(trial: &TrialId, shard: u32) -> String {
    key(["STATS#", trial.as_str(), "#", &shard.to_string()])
}

#[async_trait]
impl SubmissionLedger for DynamoStore {
    async fn record_submission(
        &self,
        sub: &StoredSubmission,
        day: &str,
        audit: &[AuditEntry],
        alerts: &[Alert],
        events: &[DomainEvent],
    ) -> Result<RecordOutcome, StorageError> {
        const OP: &str = "dynamodb.TransactWriteItems(submission)";
        let ext = Extension::of(audit)?;
        if ext.chain != ChainId::Patient(sub.patient_id.clone()) {
            return Err(StorageError::Corrupt(format!("{OP}: audit entries linked into another chain")));
        }
        // First try also moves lastSubmissionAt; if a later submission was
        // recorded first (an offline phone syncing out of order), the second
        // try only counts, so lastSubmissionAt keeps the maximum.
        let (submission_pk, submission_sk) = submission_key(sub);
        for move_last in [true, false] {
            let tx = self.submission_transaction(OP, sub, day, audit, &ext, alerts, events, move_last)?;
            let reasons = match self.transact(OP, tx).await? {
                Transacted::Committed => return Ok(RecordOutcome::Recorded),
                Transacted::Cancelled(reasons) => reasons,
            };
            if condition_failed(&reasons, TX_GUARD) {
                let stored = match old_item(&reasons, TX_GUARD) {
                    Some(item) => Some(item),
                    None => {
                        self.get(
                            "dynamodb.GetItem(guard)",
                            guard_pk(&sub.trial_id, &sub.patient_id, &sub.submission_id),
                            "SUBID".into(),
                            true,
                        )
                        .await?
                    }
                };
                let stored = stored.ok_or_else(|| StorageError::Unavailable(format!("{OP}: guard not yet readable")))?;
                return Ok(RecordOutcome::Duplicate(from_record(OP, "submission", stored)?));
            }
            // The enrolment's condition holds three: enrolled, the chain head
            // the entries link from, and lastSubmissionAt not moving back.
            // The old item tells which failed, in that order of precedence.
            if condition_failed(&reasons, TX_ENROLMENT) {
                let old = old_item(&reasons, TX_ENROLMENT);
                let enrolled = old.as_ref().is_some_and(|old| attr_str(old, "status") == Some(EnrolmentStatus::Enrolled.as_str()));
                if !enrolled {
                    return Err(StorageError::conflict("patient-not-enrolled", "the patient is not enrolled in this trial"));
                }
                if head_moved_on(old.as_ref(), &ext) {
                    return Err(head_moved());
                }
                if move_last {
                    continue;
                }
                return Err(StorageError::Corrupt(format!("{OP}: enrolment refused the submission with its head in place")));
            }
            if condition_failed(&reasons, TX_SUBMISSION) {
                // The patient's submission item exists but its guard does not:
                // recorded before guards were keyed per patient (the old guard
                // is keyed by the id alone). It is this patient's own record,
                // with the same completedAt and id, so this is a replay of it.
                let stored = match old_item(&reasons, TX_SUBMISSION) {
                    Some(item) => Some(item),
                    None => self.get("dynamodb.GetItem(submission)", submission_pk.clone(), submission_sk.clone(), true).await?,
                };
                let stored = stored.ok_or_else(|| StorageError::Unavailable(format!("{OP}: submission not yet readable")))?;
                return Ok(RecordOutcome::Duplicate(from_record(OP, "submission", stored)?));
            }
            let alerts_at = TX_AUDIT + audit.len();
            if (alerts_at..alerts_at + alerts.len()).any(|i| condition_failed(&reasons, i)) {
                return Err(StorageError::Corrupt(format!("{OP}: PRO alert item exists without its submission's guard")));
            }
            return Err(StorageError::Corrupt(format!("{OP}: an audit entry already holds the next seq of its chain")));
        }
        Err(StorageError::Unavailable(format!("{OP}: concurrent writers")))
    }

    async fn get_submission(
        &self,
        trial: &TrialId,
        patient: &PatientId,
        id: &SubmissionId,
    ) -> Result<Option<StoredSubmission>, StorageError> {
        const OP: &str = "dynamodb.GetItem(guard)";
        self.get(OP, guard_pk(trial, patient, id), "SUBID".into(), false).await?.map(|i| from_record(OP, "submission", i)).transpose()
    }

    async fn list_submissions(
        &self,
        trial: &TrialId,
        patient: &PatientId,
        page: &PageRequest,
    ) -> Result<Page<StoredSubmission>, StorageError> {
        const OP: &str = "dynamodb.Query(submissions)";
        let pk = patient_pk(trial, patient);
        let start = decode_position(page.cursor.as_deref(), TABLE_KEY, "pk", &pk)?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s("SUB#"))
            .scan_index_forward(false)
            .limit(page_limit(page.limit))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| from_sdk(OP, &e))?;
        let items = out.items.unwrap_or_default().into_iter().map(|i| from_record(OP, "submission", i)).collect::<Result<_, _>>()?;
        Ok(Page { items, next_cursor: encode_position(OP, out.last_evaluated_key)? })
    }
}

/// Read by [`ReportFigures`](crate::ports::ReportFigures).
impl DynamoStore {
    pub(crate) async fn read_daily_counts(
        &self,
        trial: &TrialId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailySiteCount>, StorageError> {
        const OP: &str = "dynamodb.Query(day counters)";
        if from > to {
            return Ok(vec![]);
        }
        let totals = Mutex::new(DayTotals::new());
        let shards = (0..COUNTER_SHARDS).map(|shard| self.add_day_counters(OP, trial, shard, from, to, &totals));
        futures::future::try_join_all(shards).await?;
        let totals = totals.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok(totals
            .into_iter()
            .map(|((day, site_id, questionnaire_id), submissions)| DailySiteCount { day, site_id, questionnaire_id, submissions })
            .collect())
    }
}

/// Submissions per (day, site, questionnaire), summed over the shards.
type DayTotals = BTreeMap<(String, SiteId, QuestionnaireId), u64>;

impl DynamoStore {
    /// [submission, guard, day counter, enrolment summary and chain head,
    /// audit entries, PRO alerts as pending outbox items], all or nothing: a
    /// stored submission always has its alerts and its audit entries.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submission_transaction(
        &self,
        op: &'static str,
        sub: &StoredSubmission,
        day: &str,
        audit: &[AuditEntry],
        ext: &Extension,
        alerts: &[Alert],
        events: &[DomainEvent],
        move_last: bool,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StorageError> {
        // TransactWriteItems takes 100 items; trial validation keeps rule items below this.
        if alerts.len() > MAX_PRO_ALERTS_PER_SUBMISSION {
            return Err(StorageError::Corrupt(format!("{op}: {} PRO alerts exceed the per-submission limit", alerts.len())));
        }
        // 4 fixed items + (1 + alerts) audit entries + alerts + (1 + alerts)
        // events = 6 + 3 x 25 = 81 at most ([`MAX_SUBMISSION_EVENTS`]).
        if events.len() > MAX_SUBMISSION_EVENTS {
            return Err(StorageError::Corrupt(format!("{op}: {} events exceed the per-submission limit", events.len())));
        }
        let completed_at = timestamp::format(sub.completed_at);
        let (pk, sk) = submission_key(sub);
        let submission = to_record(op, "submission", sub, [("pk", pk), ("sk", sk)])?;
        // The guard holds the same record under its own key (a replay reads it back from the
        // cancellation): a copy of the item, not the record serialised a second time.
        // The keys are replaced in place: an insert into the full clone would grow it first.
        let mut guard = submission.clone();
        for (key, value) in [("pk", guard_pk(&sub.trial_id, &sub.patient_id, &sub.submission_id)), ("sk", "SUBID".to_owned())] {
            if let Some(v) = guard.get_mut(key) {
                *v = s(value);
            }
        }

        let counter_expr = Expr::sized(2, 4)
            .name("#n", "submissions")
            .name("#day", "day")
            .value(":one", n(1))
            .value(":day", s(day))
            .value(":site", s(sub.site_id.as_str()))
            .value(":q", s(sub.questionnaire_id.as_str()));
        let counter_sk = key(["DAY#", day, "#", sub.site_id.as_str(), "#", sub.questionnaire_id.as_str()]);

        // The chain head lives on the enrolment, which this transaction
        // updates anyway: the append costs no request of its own.
        let mut enrol_expr = head_values(
            Expr::sized(1, 6).name("#status", "status").value(":one", n(1)).value(":enrolled", s(EnrolmentStatus::Enrolled.as_str())),
            ext,
        );
        let head = head_condition(ext);
        let (enrol_update, enrol_condition) = if move_last {
            enrol_expr = enrol_expr.value(":at", s(completed_at));
            (
                key(["ADD submissionCount :one SET lastSubmissionAt = :at, ", HEAD_SET]),
                key(["#status = :enrolled AND ", head, " AND (attribute_not_exists(lastSubmissionAt) OR lastSubmissionAt <= :at)"]),
            )
        } else {
            (key(["ADD submissionCount :one SET ", HEAD_SET]), key(["#status = :enrolled AND ", head]))
        };

        let shard = counter_shard(&sub.trial_id, &sub.patient_id);
        let mut tx = Vec::with_capacity(4 + audit.len() + alerts.len() + events.len());
        tx.extend([
            self.tx_put(op, submission, "attribute_not_exists(pk)", Expr::default())?,
            self.tx_put(op, guard, "attribute_not_exists(pk)", Expr::default())?,
            self.tx_update(
                op,
                day_pk(&sub.trial_id, shard),
                counter_sk,
                "ADD #n :one SET #day = :day, siteId = :site, questionnaireId = :q",
                None,
                counter_expr,
            )?,
            self.tx_update(op, trial_pk(&sub.trial_id), enrolment_sk(&sub.patient_id), &enrol_update, Some(&enrol_condition), enrol_expr)?,
        ]);
        for entry in audit {
            tx.push(self.tx_audit(op, entry)?);
        }
        for alert in alerts {
            tx.push(self.tx_put(op, pending_alert_item(op, alert)?, "attribute_not_exists(pk)", Expr::default())?);
        }
        // Last, so the positions read from cancellation reasons above stay put.
        tx.extend(self.tx_events(op, events)?);
        Ok(tx)
    }

    /// Adds one shard's counters for the period to `totals`, page by page as
    /// they arrive. A year of 500 sites is ~200k cells but up to 32 items per
    /// cell (one per shard), so holding the items until every shard is read
    /// would take gigabytes; the sums take the cells only.
    async fn add_day_counters(
        &self,
        op: &'static str,
        trial: &TrialId,
        shard: u32,
        from: NaiveDate,
        to: NaiveDate,
        totals: &Mutex<DayTotals>,
    ) -> Result<(), StorageError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .projection_expression("#day, siteId, questionnaireId, submissions")
            .expression_attribute_names("#day", "day")
            .expression_attribute_values(":pk", s(day_pk(trial, shard)))
            .expression_attribute_values(":from", s(format!("DAY#{from}")))
            // '~' sorts after every id character, so `to`'s own items are included.
            .expression_attribute_values(":to", s(format!("DAY#{to}~")));
        query_pages(op, query, |items| {
            let mut totals = totals.lock().unwrap_or_else(|p| p.into_inner());
            for item in &items {
                let day = attr_str(item, "day").map(str::to_owned);
                let site = attr_str(item, "siteId").and_then(|v| SiteId::parse(v).ok());
                let q = attr_str(item, "questionnaireId").and_then(|v| QuestionnaireId::parse(v).ok());
                let (Some(day), Some(site), Some(q)) = (day, site, q) else {
                    return Err(StorageError::Corrupt(format!("{op}: malformed counter item")));
                };
                *totals.entry((day, site, q)).or_default() += attr_u64(item, "submissions").unwrap_or(0);
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patient_always_counts_on_the_same_shard_and_patients_spread_over_all() {
        let t = TrialId::parse("tw-1").unwrap();
        let p = PatientId::parse("P-0001").unwrap();
        assert_eq!(counter_shard(&t, &p), counter_shard(&t, &p));
        let used: std::collections::HashSet<u32> =
            (0..2000).map(|i| counter_shard(&t, &PatientId::parse(&format!("P-{i:04}")).unwrap())).collect();
        assert_eq!(used.len(), COUNTER_SHARDS as usize);
        assert!(used.iter().all(|s| *s < COUNTER_SHARDS));
    }
}
