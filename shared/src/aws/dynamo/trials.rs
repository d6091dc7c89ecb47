//! Trials and enrolments, with the per-site/status enrolment counters.

use async_trait::async_trait;

use super::{attr_str, attr_u64, condition_failed, from_record, n, s, to_record, DynamoStore, Expr, Item, Transacted, GSI1};
use crate::audit::AuditEntry;
use crate::aws::errors::from_sdk;
use crate::enrolment::{Enrolment, EnrolmentCount, EnrolmentStatus};
use crate::error::Error;
use crate::ids::{PatientId, SiteId, TrialId};
use crate::ports::{EnrolmentStore, TrialStore, Upsert};
use crate::trial::Trial;

/// Optimistic writes re-read and retry this often when another writer raced
/// them between the read and the conditional write.
const RACE_RETRIES: usize = 3;

pub(crate) fn trial_pk(trial: &TrialId) -> String {
    format!("TRIAL#{trial}")
}

pub(crate) fn enrolment_sk(patient: &PatientId) -> String {
    format!("PATIENT#{patient}")
}

pub(crate) fn stats_pk(trial: &TrialId) -> String {
    format!("STATS#{trial}")
}

fn enrolment_counter_sk(site: &SiteId, status: EnrolmentStatus) -> String {
    format!("ENROL#{site}#{}", status.as_str())
}

#[async_trait]
impl TrialStore for DynamoStore {
    async fn get_trial(&self, id: &TrialId) -> Result<Option<Trial>, Error> {
        const OP: &str = "dynamodb.GetItem(trial)";
        self.get(OP, trial_pk(id), "META".into(), false).await?.map(|i| from_record(OP, "trial", i)).transpose()
    }

    async fn get_trial_consistent(&self, id: &TrialId) -> Result<Option<Trial>, Error> {
        const OP: &str = "dynamodb.GetItem(trial, consistent)";
        self.get(OP, trial_pk(id), "META".into(), true).await?.map(|i| from_record(OP, "trial", i)).transpose()
    }

    async fn put_trial(&self, trial: &Trial, audit: &AuditEntry) -> Result<Upsert, Error> {
        const OP: &str = "dynamodb.TransactWriteItems(trial)";
        let keys = || {
            [
                ("pk", trial_pk(&trial.trial_id)),
                ("sk", "META".to_owned()),
                ("gsi1pk", "TRIALS".to_owned()),
                ("gsi1sk", trial.trial_id.to_string()),
            ]
        };
        for _ in 0..RACE_RETRIES {
            // A read decides created/updated; the write is conditional on what
            // was read, so a racing creator makes us re-read rather than both
            // answering "created". One write request either way.
            let exists = self.get("dynamodb.GetItem(trial)", trial_pk(&trial.trial_id), "META".into(), true).await?.is_some();
            let condition = if exists { "attribute_exists(pk)" } else { "attribute_not_exists(pk)" };
            let item = to_record(OP, "trial", trial, keys())?;
            let tx = vec![self.tx_put(OP, item, condition, Expr::default())?, self.tx_audit(OP, audit)?];
            match self.transact(OP, tx).await? {
                Transacted::Committed => return Ok(if exists { Upsert::Updated } else { Upsert::Created }),
                Transacted::Cancelled(r) if condition_failed(&r, 0) => continue,
                Transacted::Cancelled(_) => return Err(Error::Internal(format!("{OP}: audit entry id reused"))),
            }
        }
        Err(Error::Unavailable(format!("{OP}: concurrent writers")))
    }

    async fn list_trial_ids(&self) -> Result<Vec<TrialId>, Error> {
        const OP: &str = "dynamodb.Query(trials)";
        let mut ids = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("gsi1pk = :p")
                .expression_attribute_values(":p", s("TRIALS"))
                .projection_expression("gsi1sk")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| from_sdk(OP, &e))?;
            for item in out.items() {
                let id = attr_str(item, "gsi1sk").and_then(|v| TrialId::parse(v).ok());
                ids.push(id.ok_or_else(|| Error::Internal(format!("{OP}: malformed trial index item")))?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(ids),
            }
        }
    }
}

#[async_trait]
impl EnrolmentStore for DynamoStore {
    async fn get_enrolment(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<Enrolment>, Error> {
        const OP: &str = "dynamodb.GetItem(enrolment)";
        self.get(OP, trial_pk(trial), enrolment_sk(patient), false).await?.map(|i| from_record(OP, "enrolment", i)).transpose()
    }

    async fn get_enrolment_consistent(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<Enrolment>, Error> {
        const OP: &str = "dynamodb.GetItem(enrolment, consistent)";
        self.get(OP, trial_pk(trial), enrolment_sk(patient), true).await?.map(|i| from_record(OP, "enrolment", i)).transpose()
    }

    async fn put_enrolment(&self, e: &Enrolment, audit: &AuditEntry) -> Result<Upsert, Error> {
        const OP: &str = "dynamodb.TransactWriteItems(enrolment)";
        for _ in 0..RACE_RETRIES {
            let old = self.get("dynamodb.GetItem(enrolment)", trial_pk(&e.trial_id), enrolment_sk(&e.patient_id), true).await?;
            let old = old.map(|i| from_record::<Enrolment>(OP, "enrolment", i)).transpose()?;
            let tx = self.enrolment_transaction(OP, e, old.as_ref(), audit)?;
            match self.transact(OP, tx).await? {
                Transacted::Committed => return Ok(if old.is_some() { Upsert::Updated } else { Upsert::Created }),
                // Someone changed the enrolment since our read: re-read so the
                // counters move from the state that is really stored.
                Transacted::Cancelled(r) if condition_failed(&r, 0) => continue,
                Transacted::Cancelled(_) => return Err(Error::Internal(format!("{OP}: audit entry id reused"))),
            }
        }
        Err(Error::Unavailable(format!("{OP}: concurrent writers")))
    }

    async fn enrolment_counts(&self, trial: &TrialId) -> Result<Vec<EnrolmentCount>, Error> {
        const OP: &str = "dynamodb.Query(enrolment counters)";
        let mut counts = Vec::new();
        for item in self.query_stats(OP, trial, "ENROL#").await? {
            let site = attr_str(&item, "siteId").and_then(|v| SiteId::parse(v).ok());
            let status = attr_str(&item, "status").and_then(|v| EnrolmentStatus::ALL.into_iter().find(|s| s.as_str() == v));
            let (Some(site_id), Some(status)) = (site, status) else {
                return Err(Error::Internal(format!("{OP}: malformed counter item")));
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
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>, Error> {
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
             submissionCount = if_not_exists(submissionCount, :zero), gsi1pk = :gsi1pk, gsi1sk = :gsi1sk",
        );
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
            None => "attribute_not_exists(pk)",
            Some(o) => {
                expr = expr.value(":oldStatus", s(o.status.as_str())).value(":oldSite", s(o.site_id.as_str()));
                "#status = :oldStatus AND siteId = :oldSite"
            }
        };
        let mut tx = vec![
            self.tx_update(op, trial_pk(&e.trial_id), enrolment_sk(&e.patient_id), &update, Some(condition), expr)?,
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
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, Error> {
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
    pub(crate) async fn query_stats(&self, op: &'static str, trial: &TrialId, prefix: &str) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(stats_pk(trial)))
                .expression_attribute_values(":prefix", s(prefix))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| from_sdk(op, &e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}
