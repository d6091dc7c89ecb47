//! Trials and enrolments, with the per-site/status enrolment counters.

use async_trait::async_trait;

use super::query::query_pages;
use super::{
    attr_str, attr_u64, chain_refusal, condition_failed, expr_without, from_record, head_condition, head_of, head_values, n, s, to_record,
    DynamoStore, Expr, Item, Transacted, GSI1, HEAD_HASH, HEAD_SEQ, HEAD_SET,
};
use crate::audit::append::{append_with_retry, head_moved, Extension};
use crate::audit::chain::{ChainHead, ChainId};
use crate::audit::AuditEntry;
use crate::domain_event::DomainEvent;
use crate::enrolment::{Enrolment, EnrolmentCount, EnrolmentStatus};
use crate::ids::{PatientId, SiteId, TrialId};
use crate::ports::StorageError;
use crate::ports::{EnrolmentStore, TrialConfig, TrialRegistry, Upsert};
use crate::trial::Trial;

pub(crate) fn trial_pk(trial: &TrialId) -> String {
    format!("TRIAL#{trial}")
}

pub(crate) fn enrolment_sk(patient: &PatientId) -> String {
    format!("PATIENT#{patient}")
}

pub(crate) fn stats_pk(trial: &TrialId) -> String {
    ["STATS#", trial.as_str()].concat()
}

fn enrolment_counter_sk(site: &SiteId, status: EnrolmentStatus) -> String {
    format!("ENROL#{site}#{}", status.as_str())
}

#[async_trait]
impl TrialConfig for DynamoStore {
    async fn get_trial(&self, id: &TrialId) -> Result<Option<Trial>, StorageError> {
        const OP: &str = "dynamodb.GetItem(trial)";
        self.get(OP, trial_pk(id), "META".into(), false).await?.map(|i| from_record(OP, "trial", i)).transpose()
    }

    async fn get_trial_consistent(&self, id: &TrialId) -> Result<Option<Trial>, StorageError> {
        const OP: &str = "dynamodb.GetItem(trial, consistent)";
        self.get(OP, trial_pk(id), "META".into(), true).await?.map(|i| from_record(OP, "trial", i)).transpose()
    }
}

#[async_trait]
impl TrialRegistry for DynamoStore {
    async fn put_trial(&self, trial: &Trial, audit: &AuditEntry) -> Result<Upsert, StorageError> {
        const OP: &str = "dynamodb.TransactWriteItems(trial)";
        let keys = || {
            [
                ("pk", trial_pk(&trial.trial_id)),
                ("sk", "META".to_owned()),
                ("gsi1pk", "TRIALS".to_owned()),
                ("gsi1sk", trial.trial_id.to_string()),
            ]
        };
        // A read decides created/updated and gives the trial chain's head;
        // the write is conditional on both, so a racing writer makes us
        // re-read rather than both answering "created" or forking the chain.
        let read = || async {
            let old = self.get("dynamodb.GetItem(trial)", trial_pk(&trial.trial_id), "META".into(), true).await?;
            Ok::<_, StorageError>(old.as_ref().map(head_of))
        };
        append_with_retry(None, read, |old_head| async move {
            let mut linked = audit.clone();
            linked.link(&ChainId::Trial, old_head.as_ref().unwrap_or(&ChainHead::genesis()));
            let ext = Extension::of(std::slice::from_ref(&linked))?;
            // The put replaces the whole item, so it carries the head it moves to.
            let mut item = to_record(OP, "trial", trial, keys())?;
            item.insert(HEAD_SEQ.into(), n(ext.to.seq));
            item.insert(HEAD_HASH.into(), s(ext.to.hash.clone()));
            let (condition, expr) = match old_head {
                Some(_) => (format!("attribute_exists(pk) AND {}", head_condition(&ext)), head_values(Expr::default(), &ext)),
                None => ("attribute_not_exists(pk)".to_owned(), Expr::default()),
            };
            // The head values are for the condition only here: drop the SET ones.
            let expr = expr_without(expr, &[":auditSeq", ":auditHash"]);
            let tx = vec![self.tx_put(OP, item, &condition, expr)?, self.tx_audit(OP, &linked)?];
            match self.transact(OP, tx).await? {
                Transacted::Committed => Ok(if old_head.is_some() { Upsert::Updated } else { Upsert::Created }),
                Transacted::Cancelled(r) if condition_failed(&r, 0) => Err(head_moved()),
                Transacted::Cancelled(r) => Err(chain_refusal(OP, &r, 0, 1)),
            }
        })
        .await
    }

    async fn list_trial_ids(&self) -> Result<Vec<TrialId>, StorageError> {
        const OP: &str = "dynamodb.Query(trials)";
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", s("TRIALS"))
            .projection_expression("gsi1sk");
        let mut ids = Vec::new();
        query_pages(OP, query, |items| {
            for item in &items {
                let id = attr_str(item, "gsi1sk").and_then(|v| TrialId::parse(v).ok());
                ids.push(id.ok_or_else(|| StorageError::Corrupt(format!("{OP}: malformed trial index item")))?);
            }
            Ok(())
        })
        .await?;
        Ok(ids)
    }
}

#[async_trait]
impl EnrolmentStore for DynamoStore {
    async fn get_enrolment(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<Enrolment>, StorageError> {
        const OP: &str = "dynamodb.GetItem(enrolment)";
        self.get(OP, trial_pk(trial), enrolment_sk(patient), false).await?.map(|i| enrolment_of(OP, i)).transpose()
    }

    async fn get_enrolment_consistent(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<Enrolment>, StorageError> {
        const OP: &str = "dynamodb.GetItem(enrolment, consistent)";
        self.get(OP, trial_pk(trial), enrolment_sk(patient), true).await?.map(|i| enrolment_of(OP, i)).transpose()
    }

    async fn put_enrolment(&self, e: &Enrolment, audit: &AuditEntry, events: &[DomainEvent]) -> Result<Upsert, StorageError> {
        self.write_enrolment(e, audit, None, events).await
    }

    async fn put_enrolment_after_read(
        &self,
        e: &Enrolment,
        audit: &AuditEntry,
        read: Option<&Enrolment>,
        events: &[DomainEvent],
    ) -> Result<Upsert, StorageError> {
        // The enrolment carries its chain's head (`enrolment_of`): no second read of the item.
        let start = (read.cloned(), read.map(|r| r.audit_head.clone()).unwrap_or_default());
        self.write_enrolment(e, audit, Some(start), events).await
    }
}

/// Read by [`ReportFigures`](crate::ports::ReportFigures).
impl DynamoStore {
    pub(crate) async fn read_enrolment_counts(&self, trial: &TrialId) -> Result<Vec<EnrolmentCount>, StorageError> {
        const OP: &str = "dynamodb.Query(enrolment counters)";
        let mut counts = Vec::new();
        for item in self.query_stats(OP, trial, "ENROL#").await? {
            let site = attr_str(&item, "siteId").and_then(|v| SiteId::parse(v).ok());
            let status = attr_str(&item, "status").and_then(|v| EnrolmentStatus::ALL.into_iter().find(|s| s.as_str() == v));
            let (Some(site_id), Some(status)) = (site, status) else {
                return Err(StorageError::Corrupt(format!("{OP}: malformed counter item")));
            };
            let count = attr_u64(&item, "count").unwrap_or(0);
            if count > 0 {
                counts.push(EnrolmentCount { site_id, status, count });
            }
        }
        Ok(counts)
    }
}

impl DynamoStore {
    /// The enrolment transaction, linked from `start` (the stored record and
    /// chain head as the caller read them) or, without one, from a consistent
    /// read; a moved head or changed record re-reads and retries.
    async fn write_enrolment(
        &self,
        e: &Enrolment,
        audit: &AuditEntry,
        start: Option<(Option<Enrolment>, ChainHead)>,
        events: &[DomainEvent],
    ) -> Result<Upsert, StorageError> {
        const OP: &str = "dynamodb.TransactWriteItems(enrolment)";
        let chain = ChainId::Patient(e.patient_id.clone());
        let read = || async {
            let old = self.get("dynamodb.GetItem(enrolment)", trial_pk(&e.trial_id), enrolment_sk(&e.patient_id), true).await?;
            let head = old.as_ref().map(head_of).unwrap_or_default();
            Ok::<_, StorageError>((old.map(|i| enrolment_of(OP, i)).transpose()?, head))
        };
        append_with_retry(start, read, |(old, head)| {
            let chain = &chain;
            async move {
                let mut linked = audit.clone();
                linked.link(chain, &head);
                let ext = Extension::of(std::slice::from_ref(&linked))?;
                let mut tx = self.enrolment_transaction(OP, e, old.as_ref(), &linked, &ext)?;
                // Last: the reasons read below are at fixed positions before them.
                tx.extend(self.tx_events(OP, events)?);
                match self.transact(OP, tx).await? {
                    Transacted::Committed => Ok(if old.is_some() { Upsert::Updated } else { Upsert::Created }),
                    // Someone changed the enrolment (or extended its chain)
                    // since our read: re-read so the counters move from the
                    // state that is really stored and the entry links from its head.
                    Transacted::Cancelled(r) if condition_failed(&r, 0) => Err(head_moved()),
                    Transacted::Cancelled(r) => Err(chain_refusal(OP, &r, 0, 1)),
                }
            }
        })
        .await
    }
}

/// The enrolment with its chain's head, which the item carries beside the record.
pub(super) fn enrolment_of(op: &'static str, item: Item) -> Result<Enrolment, StorageError> {
    let head = head_of(&item);
    Ok(Enrolment { audit_head: head, ..from_record(op, "enrolment", item)? })
}

impl DynamoStore {
    /// [enrolment update, audit put, counter updates...]. The enrolment is an
    /// UpdateItem of its own fields so the submission summary
    /// (`submissionCount`, `lastSubmissionAt`), kept by the submission
    /// transaction, survives a site or status change.
    fn enrolment_transaction(
        &self,
        op: &'static str,
        e: &Enrolment,
        old: Option<&Enrolment>,
        audit: &AuditEntry,
        ext: &Extension,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, StorageError> {
        let mut expr = Expr::default()
            .name("#status", "status")
            .value(":trialId", s(e.trial_id.as_str()))
            .value(":patientId", s(e.patient_id.as_str()))
            .value(":siteId", s(e.site_id.as_str()))
            .value(":status", s(e.status.as_str()))
            .value(":hypercapnic", aws_sdk_dynamodb::types::AttributeValue::Bool(e.hypercapnic))
            .value(":enrolledAt", s(e.enrolled_at.as_str()))
            .value(":updatedAt", s(e.updated_at.as_str()))
            .value(":zero", n(0))
            .value(":gsi1pk", s(format!("TRIAL#{}#SITE#{}", e.trial_id, e.site_id)))
            .value(":gsi1sk", s(enrolment_sk(&e.patient_id)));
        let mut update = String::from(
            "SET trialId = :trialId, patientId = :patientId, siteId = :siteId, #status = :status, \
             hypercapnic = :hypercapnic, enrolledAt = if_not_exists(enrolledAt, :enrolledAt), updatedAt = :updatedAt, \
             submissionCount = if_not_exists(submissionCount, :zero), gsi1pk = :gsi1pk, gsi1sk = :gsi1sk, ",
        );
        // An update, not a put: the submission summary and the chain head
        // on the item survive; the head moves to this change's entry.
        update.push_str(HEAD_SET);
        expr = head_values(expr, ext);
        // The first withdrawal time survives repeated withdrawn writes; it is
        // removed on re-enrolment, so it exists only while withdrawn.
        if e.status == EnrolmentStatus::Withdrawn {
            expr = expr.value(":withdrawnAt", s(e.withdrawn_at.as_deref().unwrap_or(&e.updated_at)));
            update.push_str(", withdrawnAt = if_not_exists(withdrawnAt, :withdrawnAt)");
        } else {
            update.push_str(" REMOVE withdrawnAt");
        }
        // The condition pins the state the counters are computed from.
        let condition = match old {
            None => "attribute_not_exists(pk)".to_owned(),
            Some(o) => {
                expr = expr.value(":oldStatus", s(o.status.as_str())).value(":oldSite", s(o.site_id.as_str()));
                format!("#status = :oldStatus AND siteId = :oldSite AND {}", head_condition(ext))
            }
        };

        let mut tx = vec![
            self.tx_update(op, trial_pk(&e.trial_id), enrolment_sk(&e.patient_id), &update, Some(&condition), expr)?,
            self.tx_audit(op, audit)?,
        ];
        let moved = old.is_none_or(|o| o.site_id != e.site_id || o.status != e.status);
        if moved {
            tx.push(self.counter_update(op, &e.trial_id, &e.site_id, e.status, 1)?);
            if let Some(o) = old {
                tx.push(self.counter_update(op, &e.trial_id, &o.site_id, o.status, -1)?);
            }
        }
        Ok(tx)
    }

    fn counter_update(
        &self,
        op: &'static str,
        trial: &TrialId,
        site: &SiteId,
        status: EnrolmentStatus,
        delta: i64,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StorageError> {
        let expr = Expr::default()
            .name("#count", "count")
            .name("#status", "status")
            .value(":d", n(delta))
            .value(":site", s(site.as_str()))
            .value(":status", s(status.as_str()));
        self.tx_update(
            op,
            stats_pk(trial),
            enrolment_counter_sk(site, status),
            "ADD #count :d SET siteId = :site, #status = :status",
            None,
            expr,
        )
    }

    /// Every item of the trial's stats partition whose sort key starts with `prefix`.
    pub(crate) async fn query_stats(&self, op: &'static str, trial: &TrialId, prefix: &str) -> Result<Vec<Item>, StorageError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(stats_pk(trial)))
            .expression_attribute_values(":prefix", s(prefix));
        let mut all = Vec::new();
        query_pages(op, query, |items| {
            all.extend(items);
            Ok(())
        })
        .await?;
        Ok(all)
    }
}
