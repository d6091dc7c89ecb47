//! Vital readings (batched), the per-patient latest-vitals state under an
//! optimistic version, and per-trial risk-level counters.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{DateTime, Utc};

use super::batch::{chunks, write_until_done, Backoff};
use super::item_codec::Shape;
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
use crate::vitals::{VitalReading, VitalValue};
use crate::vitals_state::VitalsState;

pub(super) const STATE_SK: &str = "STATE#VITALS";

fn reading_sk(r: &VitalReading) -> String {
    let mut sk = String::with_capacity(96);
    sk.push_str("VITAL#");
    r.push_key(&mut sk);
    sk
}

fn risk_sk(level: RiskLevel) -> String {
    ["RISK#", level.as_str()].concat()
}

/// A reading's stored record: its serde form is the item [`reading_item`] builds.
#[cfg(test)]
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadingRecord<'a> {
    trial_id: &'a TrialId,
    patient_id: &'a PatientId,
    #[serde(flatten)]
    reading: &'a VitalReading,
}

/// A reading's item, attribute by attribute: what `to_record` makes of its
/// [`ReadingRecord`] (a property test holds them equal), without
/// serde_dynamo's map serialiser (which `#[serde(flatten)]` forces) and
/// chrono's formatter: readings are most of a vitals batch's items.
fn reading_item(pk: String, sk: String, trial: &TrialId, patient: &PatientId, r: &VitalReading) -> Item {
    let value = match r.value {
        // serde_dynamo writes an f64 with `to_string` (Display) too.
        VitalValue::Number(x) => AttributeValue::N(super::item_codec::f64_text(x)),
        VitalValue::Flag(b) => AttributeValue::Bool(b),
        VitalValue::Avpu(a) => s(a.as_str()),
    };
    let mut observed_at = String::with_capacity(30);
    timestamp::push_serde(&mut observed_at, r.observed_at);
    static READING: Shape<8> = Shape::new(["trialId", "patientId", "readingId", "code", "value", "observedAt", "pk", "sk"]);
    READING.item([
        s(trial.as_str()),
        s(patient.as_str()),
        s(r.reading_id.as_str()),
        s(r.code.as_str()),
        value,
        s(observed_at),
        s(pk),
        s(sk),
    ])
}

/// Builds one PutRequest per distinct reading key, across patients.
/// BatchWriteItem refuses a call naming one key twice, and a repeated
/// reading key is the same reading, so the last one wins. The in-memory
/// store builds the same requests (`crate::memory`), so a replay on it pays
/// the item conversion too.
pub(crate) fn reading_requests(batch: &[PatientReadings<'_>]) -> Result<Vec<WriteRequest>, StorageError> {
    const OP: &str = "dynamodb.BatchWriteItem(readings)";
    let pks: Vec<String> = batch.iter().map(|g| patient_pk(g.trial, g.patient)).collect();
    // (group, sk, reading), sorted by key: the order the requests always had. The sort is
    // stable, so of a repeated key the last reading comes last, and dedup keeps it. Keys
    // are compared where they lie: no key is cloned into a map.
    let mut keyed: Vec<(usize, String, &VitalReading)> = Vec::with_capacity(batch.iter().map(|g| g.readings.len()).sum());
    for (g, group) in batch.iter().enumerate() {
        keyed.extend(group.readings.iter().map(|r| (g, reading_sk(r), r)));
    }
    // Each group's rank in pk order, so the sort compares two small numbers, not two pks
    // (groups with the same pk, one patient listed twice, share a rank).
    let mut by_pk: Vec<usize> = (0..pks.len()).collect();
    by_pk.sort_by(|&a, &b| pks[a].cmp(&pks[b]));
    let mut rank = vec![0usize; pks.len()];
    for (at, pair) in by_pk.windows(2).enumerate() {
        rank[pair[1]] = if pks[pair[1]] == pks[pair[0]] { rank[pair[0]] } else { at + 1 };
    }
    keyed.sort_by(|a, b| rank[a.0].cmp(&rank[b.0]).then_with(|| a.1.cmp(&b.1)));
    keyed.dedup_by(|later, kept| {
        let same = rank[later.0] == rank[kept.0] && later.1 == kept.1;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    let mut requests = Vec::with_capacity(keyed.len());
    for (g, sk, reading) in keyed {
        let group = &batch[g];
        let item = reading_item(pks[g].clone(), sk, group.trial, group.patient, reading);
        let put = PutRequest::builder().set_item(Some(item)).build().map_err(|_| StorageError::Corrupt(format!("{OP}: request-build")))?;
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    Ok(requests)
}

/// What one state write sends: a conditional PutItem when the risk level
/// stays and nothing else commits with it, else one TransactWriteItems.
pub(crate) enum StateRequest {
    Put {
        item: Item,
        condition: &'static str,
        expr: Expr,
    },
    /// `[state, (head, audit entries..)?, counters.., events..]`; `chained`: with the head and entries.
    Transact {
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
        chained: bool,
    },
}

impl DynamoStore {
    /// The request building of [`reading_requests`], public for the request-building benchmark.
    #[doc(hidden)]
    pub fn reading_requests(&self, batch: &[PatientReadings<'_>]) -> Result<Vec<WriteRequest>, StorageError> {
        reading_requests(batch)
    }

    /// The request of a state write over `previous` (see `VitalsStore::put_state`);
    /// no I/O, so the in-memory store builds the same one.
    pub(crate) fn state_request(
        &self,
        previous: Option<&VitalsState>,
        state: &VitalsState,
        raised: &[AuditEntry],
        events: &[DomainEvent],
    ) -> Result<StateRequest, StorageError> {
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
            return Ok(StateRequest::Put { item, condition, expr });
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
        // Sized once: a transaction item is large, and growing the vector copies them all.
        let mut tx = Vec::with_capacity(1 + raised.len() + 1 + 2 + events.len());
        tx.push(self.tx_put(TX, item, condition, expr)?);
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
        Ok(StateRequest::Transact { items: tx, chained: ext.is_some() })
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
        const TX: &str = "dynamodb.TransactWriteItems(vitals state)";
        match self.state_request(previous, state, raised, events)? {
            StateRequest::Put { item, condition, expr } => {
                let (names, values) = expr.into_parts();
                let res = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .send()
                    .await;
                match res {
                    Ok(_) => Ok(StateWrite::Written),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(StateWrite::Stale),
                    Err(e) => Err(from_sdk(OP, &e)),
                }
            }
            StateRequest::Transact { items, chained } => match self.transact(TX, items).await? {
                Transacted::Committed => Ok(StateWrite::Written),
                Transacted::Cancelled(r) if condition_failed(&r, 0) => Ok(StateWrite::Stale),
                Transacted::Cancelled(r) if chained => Err(chain_refusal(TX, &r, 1, 2)),
                Transacted::Cancelled(_) => Err(StorageError::Corrupt(format!("{TX}: counter condition failed"))),
            },
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ids::ReadingId;
    use crate::vitals::{Avpu, VitalCode};

    fn value() -> impl Strategy<Value = VitalValue> {
        prop_oneof![
            any::<f64>().prop_map(VitalValue::Number),
            (0.0f64..400.0).prop_map(VitalValue::Number),
            (0u32..400).prop_map(|n| VitalValue::Number(f64::from(n))),
            any::<bool>().prop_map(VitalValue::Flag),
            prop_oneof![Just(Avpu::A), Just(Avpu::C), Just(Avpu::V), Just(Avpu::P), Just(Avpu::U)].prop_map(VitalValue::Avpu),
        ]
    }

    fn code() -> impl Strategy<Value = VitalCode> {
        (0usize..VitalCode::ALL.len()).prop_map(|i| VitalCode::ALL[i])
    }

    #[test]
    fn a_repeated_reading_key_is_sent_once_with_its_last_reading_in_key_order() {
        // GIVEN two patients, listed out of key order, and patient b's reading r1 sent twice
        // (a resend with a corrected value) between two other readings
        let t = TrialId::parse("t1").unwrap();
        let (a, b) = (PatientId::parse("a").unwrap(), PatientId::parse("b").unwrap());
        let at: DateTime<Utc> = "2026-11-26T19:00:00Z".parse().unwrap();
        let reading = |id: &str, x: f64, secs: i64| VitalReading {
            reading_id: ReadingId::parse(id).unwrap(),
            code: VitalCode::HeartRate,
            value: VitalValue::Number(x),
            observed_at: at + chrono::Duration::seconds(secs),
        };
        let of_b = [reading("r1", 70.0, 5), reading("r0", 71.0, 0), reading("r1", 72.0, 5)];
        let of_a = [reading("r9", 60.0, 9)];
        let batch =
            [PatientReadings { trial: &t, patient: &b, readings: &of_b }, PatientReadings { trial: &t, patient: &a, readings: &of_a }];
        // WHEN the requests are built
        let items: Vec<Item> = reading_requests(&batch).unwrap().into_iter().map(|r| r.put_request.unwrap().item).collect();
        // THEN one request per distinct key, ordered by (pk, sk), the repeated key with its last value
        let keys: Vec<(&str, &str, &str)> = items
            .iter()
            .map(|i| (attr_str(i, "pk").unwrap(), attr_str(i, "readingId").unwrap(), i["value"].as_n().unwrap().as_str()))
            .collect();
        assert_eq!(keys, [("PATIENT#t1#a", "r9", "60"), ("PATIENT#t1#b", "r0", "71"), ("PATIENT#t1#b", "r1", "72")]);
    }

    proptest! {
        /// The hand-built item against what it replaced: serde_dynamo's item of the record.
        #[test]
        fn a_reading_item_is_serde_dynamo_s_item_of_its_record(
            trial in "[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}",
            patient in "[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}",
            id in "[A-Za-z0-9_-][A-Za-z0-9._-]{0,40}",
            code in code(),
            value in value(),
            secs in -62_135_596_800i64..253_402_300_800,
            nanos in prop_oneof![Just(0u32), (0u32..1000).prop_map(|m| m * 1_000_000), 0u32..1_000_000_000],
        ) {
            let (trial, patient) = (TrialId::parse(&trial).unwrap(), PatientId::parse(&patient).unwrap());
            let reading = VitalReading {
                reading_id: ReadingId::parse(&id).unwrap(),
                code,
                value,
                observed_at: DateTime::from_timestamp(secs, nanos).unwrap(),
            };
            let (pk, sk) = (patient_pk(&trial, &patient), reading_sk(&reading));
            let record = ReadingRecord { trial_id: &trial, patient_id: &patient, reading: &reading };
            let expected = to_record("test", "reading", &record, [("pk", pk.clone()), ("sk", sk.clone())]).unwrap();
            let built = reading_item(pk, sk, &trial, &patient, &reading);
            // NaN is not equal to itself as an f64, but its N text is "NaN" in both.
            prop_assert_eq!(built, expected);
        }
    }
}
