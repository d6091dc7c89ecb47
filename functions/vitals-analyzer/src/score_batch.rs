//! The analyzer's use case: score one batch of readings, already decoded,
//! re-validated and grouped per patient, and record what it raises. It knows
//! nothing of SQS: it answers per patient, with its own error, and the edge
//! ([`crate::handle`]) decides what each error means for the patient's records
//! (parked for good, or left for a redelivery).
//!
//! The phases, and why they have barriers between them, are in the crate doc:
//! one consistent read for the batch, a plan per patient, one packed readings
//! write and one alert send for the batch, then a state write per patient.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;

use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use tracing::Instrument;
use trialwatch::alert::Alert;
use trialwatch::config_cache::ConfigCache;
use trialwatch::ports::{
    AlertQueue, BatchRead, BatchReader, EnrolmentStore, EventPublisher, PatientReadings, PendingEvents, StorageError, VitalsStore,
};
use trialwatch::telemetry::metrics;
use trialwatch::trial::Trial;
use trialwatch::{PatientId, TrialId};

use crate::escalation::Escalation;
use crate::patient::{self, PatientBatch, Plan};

/// One batch to score.
#[derive(Debug)]
pub struct ScoreBatch {
    /// The time the batch is scored at (read once per batch).
    pub now: DateTime<Utc>,
    /// The valid records' readings, one entry per patient, in batch order
    /// (records that failed to decode never reach the use case: the edge
    /// keeps their failures).
    pub patients: Vec<PatientBatch>,
}

/// The use case's ports, passed down its phases together.
struct Scoring<'a, S, Q> {
    store: &'a S,
    alerts: &'a Q,
    event_bus: &'a dyn EventPublisher,
    trials: &'a ConfigCache<TrialId, Trial>,
    concurrency: usize,
}

/// Why one patient's readings were not scored and recorded. Permanent or
/// not is the edge's call; [`ScoreBatchError::code`] is what is logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScoreBatchError {
    /// Absent even on a consistent read (never concluded from a stale one).
    #[error("the trial is not configured")]
    UnknownTrial,
    /// Absent even on a consistent read (never concluded from a stale one).
    #[error("the patient is not enrolled in the trial")]
    NotEnrolled,
    /// The batch's one read failed: every patient of the batch fails with it.
    #[error("the batch read failed: {0}")]
    Read(StorageError),
    /// The batch's one readings write failed: every planned patient fails with it.
    #[error("the readings write failed: {0}")]
    ReadingsWrite(StorageError),
    /// The alert was not sent, so the state that would record it is not written.
    #[error("the alert send failed: {0}")]
    AlertSend(StorageError),
    /// The state write (or a re-read it needed) failed.
    #[error("the state write failed: {0}")]
    StateWrite(StorageError),
    /// Other writers kept winning the state item's version check
    /// ([`patient::STATE_RETRIES`]).
    #[error("the state item stayed contended")]
    StateContention,
    /// A bug of ours while working on the patient; the other patients go on.
    #[error("processing panicked")]
    Panicked,
}

impl ScoreBatchError {
    /// Short machine code for logs: never a value.
    pub fn code(&self) -> &'static str {
        match self {
            ScoreBatchError::UnknownTrial => "unknown-trial",
            ScoreBatchError::NotEnrolled => "patient-not-enrolled",
            ScoreBatchError::Read(e)
            | ScoreBatchError::ReadingsWrite(e)
            | ScoreBatchError::AlertSend(e)
            | ScoreBatchError::StateWrite(e) => e.code(),
            ScoreBatchError::StateContention => "state-contention",
            ScoreBatchError::Panicked => "panicked",
        }
    }
}

/// One patient's answer: the escalation its state write recorded, if any
/// (`Ok(None)`: scored without a new alert, or nothing left to score).
pub type PatientResult = Result<Option<Escalation>, ScoreBatchError>;

/// The answer for each patient of the command, in its order.
#[derive(Debug)]
pub struct BatchScored {
    pub patients: Vec<PatientScored>,
}

#[derive(Debug)]
pub struct PatientScored {
    /// The positions of the patient's records in the batch ([`PatientBatch::records`]).
    pub records: Vec<usize>,
    pub result: PatientResult,
}

impl BatchScored {
    /// Escalations recorded in state (each an alert sent).
    pub fn alerts_recorded(&self) -> usize {
        self.patients.iter().filter(|p| matches!(p.result, Ok(Some(_)))).count()
    }
}

/// Scores the batch: see the crate doc for the phases and the request budget.
///
/// - `store`: the batch read, the readings and state writes, the enrolment
///   re-read when an audit chain head moved, and the pending domain events;
/// - `alerts`: where escalations are sent;
/// - `event_bus`: where risk-level changes and NEWS2 alerts are announced;
/// - `trials`: the trial configuration cache in front of the batch read;
/// - `concurrency`: state writes in flight at once.
pub async fn score_batch<S, Q>(
    store: &S,
    alerts: &Q,
    event_bus: &dyn EventPublisher,
    trials: &ConfigCache<TrialId, Trial>,
    concurrency: usize,
    cmd: ScoreBatch,
) -> BatchScored
where
    S: BatchReader + VitalsStore + EnrolmentStore + PendingEvents,
    Q: AlertQueue,
{
    let ports = Scoring { store, alerts, event_bus, trials, concurrency };
    let ScoreBatch { now, patients } = cmd;
    let mut results: Vec<PatientResult> = vec![Ok(None); patients.len()];
    run(&ports, &patients, now, &mut results).await;
    BatchScored { patients: patients.into_iter().zip(results).map(|(b, result)| PatientScored { records: b.records, result }).collect() }
}

/// Runs `f` inside its own panic boundary: a panic fails what `f` covers only.
async fn isolated<T>(f: impl Future<Output = Result<T, ScoreBatchError>>) -> Result<T, ScoreBatchError> {
    AssertUnwindSafe(f).catch_unwind().await.unwrap_or(Err(ScoreBatchError::Panicked))
}

/// The three phases; each patient's failure is written into `results`.
async fn run<S, Q>(ports: &Scoring<'_, S, Q>, batches: &[PatientBatch], now: DateTime<Utc>, results: &mut [PatientResult])
where
    S: BatchReader + VitalsStore + EnrolmentStore + PendingEvents,
    Q: AlertQueue,
{
    // Phase 1: one read for the batch, then a plan per patient.
    let read = match read_batch(ports, batches).await {
        Ok(read) => read,
        Err(f) => {
            tracing::warn!(patients = batches.len(), reason = f.code(), "batch read failed; failing every patient of the batch");
            results.fill(Err(f));
            return;
        }
    };
    let Loaded { trials, read: BatchRead { mut enrolments, mut states, .. } } = read;
    let mut plans: Vec<(usize, Plan)> = Vec::with_capacity(batches.len());
    for (i, b) in batches.iter().enumerate() {
        let key = (b.trial.clone(), b.patient.clone());
        let (enrolment, state) = (enrolments.remove(&key), states.remove(&key));
        let trial = trials.get(&b.trial).and_then(|t| t.as_ref().as_ref());
        // The panic boundary of the patient's plan: a panic fails its records only.
        let planned = std::panic::catch_unwind(AssertUnwindSafe(|| b.span().in_scope(|| patient::plan(b, trial, enrolment, state, now))))
            .unwrap_or(Err(ScoreBatchError::Panicked));
        match planned {
            Ok(Some(p)) => plans.push((i, p)),
            Ok(None) => {}
            Err(f) => {
                b.span()
                    .in_scope(|| tracing::warn!(trial_id = %b.trial, patient_id = %b.patient, reason = f.code(), "patient not processed"));
                results[i] = Err(f);
            }
        }
    }
    plans.sort_by_key(|(i, _)| *i);

    // Phase 2: every reading in one packed write, every alert in one send.
    let writes: Vec<PatientReadings<'_>> = plans
        .iter()
        .map(|(i, p)| PatientReadings { trial: &batches[*i].trial, patient: &batches[*i].patient, readings: &p.readings })
        .collect();
    let alerts: Vec<(usize, Alert)> = plans.iter().filter_map(|(i, p)| p.alert(&batches[*i]).map(|a| (*i, a))).collect();
    let alert_bodies: Vec<Alert> = alerts.iter().map(|(_, a)| a.clone()).collect();
    let (written, sent) = futures::join!(
        isolated(async {
            if writes.is_empty() {
                return Ok(());
            }
            ports.store.put_readings_batch(&writes).await.map_err(ScoreBatchError::ReadingsWrite)
        }),
        isolated(async {
            if alert_bodies.is_empty() {
                return Ok(());
            }
            ports.alerts.enqueue(&alert_bodies).await.map_err(ScoreBatchError::AlertSend)
        }),
    );
    if let Err(f) = written {
        tracing::warn!(patients = plans.len(), reason = f.code(), "readings write failed; failing every patient of the batch");
        for (i, _) in &plans {
            results[*i] = Err(f.clone());
        }
        return;
    }
    match sent {
        Ok(()) if !alerts.is_empty() => tracing::info!(alerts = alerts.len(), "alerts enqueued"),
        Ok(()) => {}
        Err(f) => {
            tracing::warn!(alerts = alerts.len(), reason = f.code(), "alert send failed; those patients' state is not written");
            let with_alert: HashSet<usize> = alerts.iter().map(|(i, _)| *i).collect();
            plans.retain(|(i, _)| {
                let keep = !with_alert.contains(i);
                if !keep {
                    results[*i] = Err(f.clone());
                }
                keep
            });
        }
    }

    // Phase 3: record the state (and with it the alert).
    let committed: Vec<(usize, PatientResult)> = futures::stream::iter(plans)
        .map(|(i, p)| async move {
            let b = &batches[i];
            // Boxed where it is made: the commit's state machine is large, and every
            // wrapper below would otherwise copy it again.
            let commit = Box::pin(patient::commit(ports.store, ports.alerts, ports.event_bus, b, p, now));
            (i, isolated(commit).instrument(b.span()).await)
        })
        .buffer_unordered(ports.concurrency.max(1))
        .collect()
        .await;
    for (i, c) in committed {
        let b = &batches[i];
        let _span = b.span().entered();
        match &c {
            Ok(Some(e)) => {
                metrics::alert_raised(e.level, metrics::since(e.at, now));
                tracing::info!(trial_id = %b.trial, patient_id = %b.patient, alert_id = %e.alert_id, level = e.level.as_str(), "escalation recorded");
            }
            Ok(None) => {}
            Err(f) => tracing::warn!(trial_id = %b.trial, patient_id = %b.patient, reason = f.code(), "state not written"),
        }
        results[i] = c;
    }
}

/// What phase 1 plans from: every trial of the batch (`None`: not found)
/// and each patient's enrolment and state as read.
struct Loaded {
    trials: HashMap<TrialId, std::sync::Arc<Option<Trial>>>,
    read: BatchRead,
}

/// The batch's trials, enrolments and states: a trial from the config cache
/// while fresh, everything else in one consistent
/// [`BatchReader::read_batch`]. A cached absence is not trusted (it would
/// park records for good) and is read again with the rest; a trial found is
/// cached for the next batches.
async fn read_batch<S: BatchReader, Q>(ports: &Scoring<'_, S, Q>, batches: &[PatientBatch]) -> Result<Loaded, ScoreBatchError> {
    let mut trials: HashMap<TrialId, std::sync::Arc<Option<Trial>>> = HashMap::new();
    let mut misses: Vec<&TrialId> = Vec::new();
    for b in batches {
        if trials.contains_key(&b.trial) || misses.contains(&&b.trial) {
            continue;
        }
        match ports.trials.fresh(&b.trial) {
            Some(t) if t.is_some() => {
                trials.insert(b.trial.clone(), t);
            }
            _ => misses.push(&b.trial),
        }
    }
    let patients: Vec<(&TrialId, &PatientId)> = batches.iter().map(|b| (&b.trial, &b.patient)).collect();
    let mut read = isolated(async { ports.store.read_batch(&misses, &patients).await.map_err(ScoreBatchError::Read) }).await?;
    for id in misses {
        let trial = read.trials.remove(id);
        let cached = if trial.is_some() { ports.trials.store(id.clone(), trial) } else { std::sync::Arc::new(None) };
        trials.insert(id.clone(), cached);
    }
    Ok(Loaded { trials, read })
}

#[cfg(test)]
mod tests;
