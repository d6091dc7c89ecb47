//! Vital readings (batched), the per-patient latest-vitals state under an
//! optimistic version, and per-trial risk-level counters.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::batch::{chunks, write_until_done, Backoff};
use super::submissions::patient_pk;
use super::trials::stats_pk;
use super::{attr_i64, attr_str, chain_refusal, condition_failed, from_record, n, s, to_record, DynamoStore, Expr, Item, Transacted};
use crate::audit::append::Extension;
use crate::audit::chain::ChainId;
use crate::audit::AuditEntry;
use crate::aws::errors::from_sdk;
use crate::domain_event::DomainEvent;
use crate::ids::{AlertId, PatientId, TrialId};
use crate::news2::RiskLevel;
use crate::ports::StorageError;
use crate::ports::{PatientReadings, StateWrite, VitalsStore};
use crate::timestamp;
use crate::vitals::VitalReading;
use crate::vitals_state::VitalsState;

pub(super) const STATE_SK: &str = "STATE#VITALS";

fn reading_sk(r: &VitalReading) -> String {
    let mut sk = String::with_capacity(96);
    sk.push_str("VITAL#");
    r.push_key(&mut sk);
    sk
}

fn risk_sk(level: RiskLevel) -> String {
    format!("RISK#{}", level.as_str())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadingRecord<'a> {
    trial_id: &'a TrialId,
    patient_id: &'a PatientId,
    #[serde(flatten)]
    reading: &'a VitalReading,
}

impl DynamoStore {
    /// Builds one PutRequest per distinct reading key, across patients.
    /// BatchWriteItem refuses a call naming one key twice, and a repeated
    /// reading key is the same reading, so the last one wins.
    #[doc(hidden)] // public for the request-building benchmark
    pub fn reading_requests(&self, batch: &[PatientReadings<'_>]) -> Result<Vec<WriteRequest>, StorageError> {
        const OP: &str = "dynamodb.BatchWriteItem(readings)";
        let mut by_key: BTreeMap<(String, String), Item> = BTreeMap::new();
        for group in batch {
            let pk = patient_pk(group.trial, group.patient);
            for reading in group.readings {
                let sk = reading_sk(reading);
                let record = ReadingRecord { trial_id: group.trial, patient_id: group.patient, reading };
                let item = to_record(OP, "reading", &record, [("pk", pk.clone()), ("sk", sk.clone())])?;
                by_key.insert((pk.clone(), sk), item);
            }
        }
        by_key
            .into_values()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|_| StorageError::Corrupt(format!("{OP}: request-build")))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect()
    }

    /// One BatchWriteItem; returns the requests DynamoDB left unprocessed.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<Vec<WriteRequest>, StorageError> {
        const OP: &str = "dynamodb.BatchWriteItem(readings)";
        let out = self.client.batch_write_item().request_items(self.table.clone(), requests).send().await.map_err(|e| from_sdk(OP, &e))?;
        Ok(out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default())
    }

    /// The acknowledgement's mark on a patient's vitals state, for the ack
    /// transaction: conditional on `alert` still being the state's last alert,
    /// and moving the version so that an analyzer write based on the unmarked
    /// item fails its version check and re-reads instead of erasing the mark.
    pub(super) fn state_ack_mark(
        &self,
        op: &'static str,
        trial: &TrialId,
        patient: &PatientId,
        alert: &AlertId,
        at: DateTime<Utc>,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StorageError> {
        let expr = Expr::default()
            .name("#v", "version")
            .value(":id", s(alert.as_str()))
            .value(":at", s(timestamp::format(at)))
            .value(":one", n(1));
        self.tx_update(
            op,
            patient_pk(trial, patient),
            STATE_SK.to_owned(),
            "SET lastAlertAckedAt = :at ADD #v :one",
            Some("lastAlertId = :id"),
            expr,
        )
    }

    fn risk_counter(
        &self,
        op: &'static str,
        trial: &TrialId,
        level: RiskLevel,
        delta: i64,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StorageError> {
        let expr = Expr::default().name("#count", "count").value(":d", n(delta)).value(":level", s(level.as_str()));
        self.tx_update(op, stats_pk(trial), risk_sk(level), "ADD #count :d SET riskLevel = :level", None, expr)
    }
}

fn parse_level(s: &str) -> Option<RiskLevel> {
    RiskLevel::ALL.into_iter().find(|l| l.as_str() == s)
}

#[async_trait]
impl VitalsStore for DynamoStore {
    async fn put_readings(&self, trial: &TrialId, patient: &PatientId, readings: &[VitalReading]) -> Result<(), StorageError> {
        self.put_readings_batch(&[PatientReadings { trial, patient, readings }]).await
    }

    /// ceil(N/25) BatchWriteItem calls for N distinct readings, whatever the
    /// number of patients; chunks are written concurrently.
    async fn put_readings_batch(&self, batch: &[PatientReadings<'_>]) -> Result<(), StorageError> {
        let requests = self.reading_requests(batch)?;
        let writes = chunks(requests).into_iter().map(|chunk| write_until_done(chunk, Backoff::default(), |batch| self.batch_write(batch)));
        futures::future::try_join_all(writes).await.map(|_| ())
    }

    async fn get_state(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<VitalsState>, StorageError> {
        const OP: &str = "dynamodb.GetItem(vitals state)";
        // Consistent: the analyzer reads, merges and writes under the version.
        self.get(OP, patient_pk(trial, patient), STATE_SK.into(), true).await?.map(|i| from_record(OP, "vitals state", i)).transpose()
    }

    /// One PutItem, or one TransactWriteItems when the risk level moves; no
    /// read: the caller's `previous` is the stored item whenever the version
    /// condition passes (see the port).
    async fn put_state(
        &self,
        previous: Option<&VitalsState>,
        state: &VitalsState,
        raised: &[AuditEntry],
        events: &[DomainEvent],
    ) -> Result<StateWrite, StorageError> {
        const OP: &str = "dynamodb.PutItem(vitals state)";
        if !state.follows(previous) {
            return Err(StorageError::Corrupt(format!("{OP}: the state does not follow the previous one")));
        }
        let previous_level = previous.and_then(|p| p.news2.as_ref()).map(|r| r.risk_level);
        let new_level = state.news2.as_ref().map(|r| r.risk_level);

        let pk = patient_pk(&state.trial_id, &state.patient_id);
        let item = to_record(OP, "vitals state", state, [("pk", pk), ("sk", STATE_SK.to_owned())])?;
        let (condition, expr) = match previous {
            None => ("attribute_not_exists(pk)", Expr::default()),
            Some(p) => ("#v = :prev", Expr::default().name("#v", "version").value(":prev", n(p.version))),
        };

        let ext = if raised.is_empty() { None } else { Some(Extension::of(raised)?) };
        if ext.as_ref().is_some_and(|e| e.chain != ChainId::Patient(state.patient_id.clone())) {
            return Err(StorageError::Corrupt(format!("{OP}: audit entries linked into another chain")));
        }

        if new_level == previous_level && ext.is_none() && events.is_empty() {
            let res = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .send()
                .await;
            return match res {
                Ok(_) => Ok(StateWrite::Written),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(StateWrite::Stale),
                Err(e) => Err(from_sdk(OP, &e)),
            };
        }

        // The level moved, or an alert is raised: the state, both counters
        // and the alert.raised entry (with its chain's head on the enrolment)
        // change together, so risk_level_counts is one small Query that is
        // never off by a crash, and the entry commits only with the state
        // write that moves the escalation sequence: a redelivered batch,
        // whose state write fails its version check, writes no second entry.
        // The put's version condition makes the decrement of the previous
        // level right: the transaction commits only over the item the caller read.
        const TX: &str = "dynamodb.TransactWriteItems(vitals state)";
        // [state, (head, audit entries..)?, counters.., events..]
        let mut tx = vec![self.tx_put(TX, item, condition, expr)?];
        if let Some(ext) = &ext {
            tx.push(self.tx_head(TX, &state.trial_id, ext)?);
            for entry in raised {
                tx.push(self.tx_audit(TX, entry)?);
            }
        }
        if new_level != previous_level {
            if let Some(level) = new_level {
                tx.push(self.risk_counter(TX, &state.trial_id, level, 1)?);
            }
            if let Some(level) = previous_level {
                tx.push(self.risk_counter(TX, &state.trial_id, level, -1)?);
            }
        }
        tx.extend(self.tx_events(TX, events)?);
        match self.transact(TX, tx).await? {
            Transacted::Committed => Ok(StateWrite::Written),
            Transacted::Cancelled(r) if condition_failed(&r, 0) => Ok(StateWrite::Stale),
            Transacted::Cancelled(r) if ext.is_some() => Err(chain_refusal(TX, &r, 1, 2)),
            Transacted::Cancelled(_) => Err(StorageError::Corrupt(format!("{TX}: counter condition failed"))),
        }
    }
}

/// Read by [`ReportFigures`](crate::ports::ReportFigures).
impl DynamoStore {
    pub(crate) async fn read_risk_level_counts(&self, trial: &TrialId) -> Result<Vec<(RiskLevel, u64)>, StorageError> {
        const OP: &str = "dynamodb.Query(risk counters)";
        let mut counts = Vec::new();
        for item in self.query_stats(OP, trial, "RISK#").await? {
            let level = attr_str(&item, "riskLevel").and_then(parse_level);
            let level = level.ok_or_else(|| StorageError::Corrupt(format!("{OP}: malformed counter item")))?;
            let count = attr_i64(&item, "count").unwrap_or(0);
            if count > 0 {
                counts.push((level, count.unsigned_abs()));
            }
        }
        counts.sort_by_key(|(level, _)| *level);
        Ok(counts)
    }
}
