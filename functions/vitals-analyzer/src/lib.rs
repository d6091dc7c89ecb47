//! vitals-analyzer: the FIFO vitals queue (MessageGroupId = trial#patient) ->
//! NEWS2 -> readings and latest-vitals state stored -> escalation alerts enqueued.
//!
//! # One batch, step by step
//! 1. The batch goes through the shared runner ([`trialwatch::edge::sqs`])
//!    under its per-group FIFO rule ([`FailurePolicy::FifoGroup`]): it owns
//!    the panic boundaries, the message-id policy, parking and the response.
//! 2. Each body is parsed and re-validated inside its own boundary. A bad
//!    body (malformed, not a vitals message, implausible) is a permanent
//!    failure: it holds back nothing, and is parked in step 7. So is a
//!    record whose `MessageGroupId` is not the body's `trialId#patientId`
//!    (`group-id-mismatch`), or whose sender is a direct integrator not
//!    allowed the body's trial (`sender-not-allowed-for-trial`, [`senders`]).
//! 3. The valid records are grouped by patient, in batch order: the command
//!    of the use case, [`score_batch`], which runs steps 4-6 knowing nothing
//!    of SQS and answers per patient (an escalation recorded, or a
//!    [`ScoreBatchError`]). The edge maps each error once
//!    (`From<ScoreBatchError> for RecordFailure`): park or redeliver.
//! 4. **Read, then plan**: ONE strongly consistent BatchGetItem loads every
//!    patient's enrolment and state, and each trial the config cache does not
//!    hold ([`BatchReader`]); then per patient, readings merged, NEWS2 scored,
//!    escalation decided ([`escalation`]). Nothing is written. A trial or
//!    enrolment not found fails the patient's records as
//!    unknown-trial/not-enrolled (permanent): the read was consistent, so a
//!    replica that has not yet seen a new enrolment cannot park good readings.
//!    A failed read fails every patient of the batch (transient).
//! 5. **Send** (batch-wide): all readings in ONE `put_readings_batch` (25 per
//!    BatchWriteItem across patients) and, concurrently, all alerts in ONE
//!    `enqueue` (10 per SendMessageBatch).
//! 6. **Record** (per patient, bounded): the state item with `version + 1`;
//!    a stale version reloads, re-assesses and retries ([`patient::STATE_RETRIES`]).
//! 7. **Park**: each permanently failed record is sent to the vitals DLQ
//!    (one SendMessage each, reason code as the `trialwatch.reason`
//!    attribute, its group id, its message id as the dedup id) and
//!    acknowledged. If that send fails, the record is reported instead.
//! 8. `batchItemFailures`: each transient failure (a dependency, a contended
//!    state item, a panic) and the later records of *its own message group*;
//!    every other patient's records were processed in this invocation. A
//!    record without a message id fails the invocation only if it must be
//!    reported (see [`trialwatch::edge::sqs::Batch::respond`]).
//!
//! | `RecordFailure`                                  | disposition | what happens            |
//! |--------------------------------------------------|-------------|-------------------------|
//! | missing body, malformed JSON, not a vitals message, implausible reading | permanent | parked, acknowledged |
//! | unknown trial, not enrolled (after a consistent read) | permanent | parked, acknowledged |
//! | dependency, state contention, panic               | transient   | reported with its group's later records |
//!
//! # Why phases with barriers
//! The budget per batch of N readings from P patients is 1 BatchGetItem
//! (ceil(keys/100), keys = 2P + trials missed by the cache) + ceil(N/25)
//! BatchWriteItem + P state writes (each escalation's audit entry inside its
//! state's TransactWriteItems) + ceil(alerts/10) SendMessageBatch, plus one
//! SendMessage per parked record. Reads, readings and alerts can meet it only
//! if they are done for the whole batch at once, which needs every patient's
//! plan first. The price: one failed read or readings write (after the
//! adapter's own retries of unprocessed keys and items) fails every patient
//! of the batch rather than one. That is cheap: a batch is at most 10
//! records, and every step is idempotent, so a redelivery converges.
//!
//! # Order of effects (ARCHITECTURE, reliability rules)
//! Alerts are sent before the state write that records `lastAlertLevel`: if
//! the send fails, the state is not written and the retry alerts again; if
//! the state write fails after the send, the retry recomputes the *same*
//! alert id (the escalation sequence of the same stored state, see
//! [`escalation`]) and the dispatcher
//! delivers it once. A redelivery after everything succeeded finds the alert
//! recorded in the state and sends nothing.
//!
//! # Logs and metrics
//! Ids, codes and counts only: trial, patient and message ids, risk level,
//! reason codes, counts. Never a body or a vital value. Each patient's work
//! runs in a span carrying the correlation id of its latest record (the
//! `trialwatch.correlationId` attribute, or the message id for a direct
//! integrator's message that has none), and its alert carries the same id.
//! Metrics: readings scored, risk-level transitions, alerts raised and the
//! latency from the reading to the alert ([`trialwatch::telemetry::metrics`]).

mod config;
pub mod escalation;
pub mod patient;
pub mod record;
pub mod score_batch;
pub mod senders;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use trialwatch::config_cache::ConfigCache;
use trialwatch::correlation::{self, CorrelationId};
use trialwatch::edge::sqs::{group_id, Batch, FailurePolicy, Outcomes};
use trialwatch::ports::{AlertQueue, BatchReader, Clock, DeadLetters, EnrolmentStore, PendingEvents, VitalsStore};
use trialwatch::trial::Trial;
use trialwatch::vitals::{VitalReading, VitalsMessage};
use trialwatch::TrialId;

pub use crate::config::{Config, CONCURRENCY_VAR, DEFAULT_CONCURRENCY, DLQ_URL_VAR};
use crate::patient::PatientBatch;
use crate::record::RecordFailure;
pub use crate::score_batch::{score_batch, BatchScored, ScoreBatch, ScoreBatchError};
use crate::senders::{Integrators, SENDER_ID};

/// Everything the handler needs, built once per execution environment.
pub struct Deps<S, Q, C, D> {
    pub store: Arc<S>,
    pub alerts: Q,
    pub clock: C,
    /// The vitals DLQ, for records that failed for good.
    pub dead_letters: D,
    trials: Arc<ConfigCache<TrialId, Trial>>,
    concurrency: usize,
    integrators: Integrators,
    /// Where risk-level changes and NEWS2 alerts are announced ([`trialwatch::domain_event`]).
    pub event_bus: Arc<dyn trialwatch::ports::EventPublisher>,
}

pub type AwsDeps =
    Deps<trialwatch::aws::DynamoStore, trialwatch::aws::SqsAlertQueue, trialwatch::clock::SystemClock, trialwatch::aws::SqsDeadLetters>;

impl<S, Q, C, D> Deps<S, Q, C, D>
where
    S: VitalsStore + EnrolmentStore + BatchReader + PendingEvents + 'static,
    Q: AlertQueue,
    C: Clock,
    D: DeadLetters,
{
    pub fn new(store: Arc<S>, alerts: Q, clock: C, dead_letters: D, config_ttl: std::time::Duration, concurrency: usize) -> Self {
        Self {
            store,
            alerts,
            clock,
            dead_letters,
            trials: Arc::new(ConfigCache::new(config_ttl)),
            concurrency: concurrency.max(1),
            integrators: Integrators::default(),
            event_bus: Arc::new(trialwatch::domain_event::Unpublished),
        }
    }

    /// Publishes domain events on `bus` (default: none, so they wait for the sweep).
    pub fn with_event_bus(mut self, bus: Arc<dyn trialwatch::ports::EventPublisher>) -> Self {
        self.event_bus = bus;
        self
    }

    /// The direct integrators and the trials each may send for ([`senders`]).
    pub fn with_integrators(mut self, integrators: Integrators) -> Self {
        self.integrators = integrators;
        self
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }
}

impl AwsDeps {
    /// The production adapters, built once in init from the function's
    /// configuration and one SDK configuration.
    pub fn from_config(config: &Config, sdk: &aws_config::SdkConfig) -> Self {
        Self::with_store(config, sdk, Self::dynamo_store(config, sdk))
    }

    /// [`Self::from_config`] for `main`, with init's warm-up call: the store is built first and
    /// its call goes out while the rest is built ([`DynamoStore::warm_up_while_building`]).
    ///
    /// [`DynamoStore::warm_up_while_building`]: trialwatch::aws::DynamoStore::warm_up_while_building
    pub async fn warmed_up(config: Config, sdk: aws_config::SdkConfig) -> Self {
        Self::dynamo_store(&config, &sdk).warm_up_while_building(move |store| Self::with_store(&config, &sdk, store)).await
    }

    fn dynamo_store(config: &Config, sdk: &aws_config::SdkConfig) -> trialwatch::aws::DynamoStore {
        trialwatch::aws::DynamoStore::new(sdk, config.table_name.clone(), config.audit_table_name.clone())
    }

    fn with_store(config: &Config, sdk: &aws_config::SdkConfig, store: trialwatch::aws::DynamoStore) -> Self {
        // One SQS client for the alert queue and the dead letters: each construction costs init time.
        let sqs = trialwatch::aws::sqs_client(sdk);
        Deps::new(
            Arc::new(store),
            trialwatch::aws::SqsAlertQueue::with_client(sqs.clone(), config.alert_queue_url.clone()),
            trialwatch::clock::SystemClock,
            trialwatch::aws::SqsDeadLetters::with_client(sqs, config.dead_letter_queue_url.clone()),
            config.config_ttl,
            config.concurrency,
        )
        .with_integrators(config.integrators.clone())
        .with_event_bus(match &config.event_bus_name {
            Some(bus) => Arc::new(trialwatch::aws::EventBridgePublisher::new(sdk, bus.clone())),
            None => Arc::new(trialwatch::domain_event::Unpublished),
        })
    }
}

/// Handles one SQS batch; see the crate doc for the steps.
pub async fn handle<S, Q, C, D>(deps: &Deps<S, Q, C, D>, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, lambda_runtime::Error>
where
    S: VitalsStore + EnrolmentStore + BatchReader + PendingEvents + 'static,
    Q: AlertQueue,
    C: Clock,
    D: DeadLetters,
{
    let now = deps.clock.now();
    // FIFO queue (group trial#patient): a failure holds back only its own group.
    let batch = Batch::new(event.payload, FailurePolicy::FifoGroup);
    let (messages, mut outcomes) = batch.decode(|body| record::parse_body(body, now));
    let messages = admit(&deps.integrators, batch.records(), messages, &mut outcomes);

    let patients = group_by_patient(messages);
    let (patient_count, readings) = (patients.len(), patients.iter().map(|b| b.readings.len()).sum::<usize>());
    let command = ScoreBatch { now, patients };
    let scored = score_batch(deps.store.as_ref(), &deps.alerts, deps.event_bus.as_ref(), &deps.trials, deps.concurrency, command).await;
    for patient in &scored.patients {
        if let Err(e) = &patient.result {
            for &r in &patient.records {
                outcomes.fail(r, RecordFailure::from(e.clone()));
            }
        }
    }

    batch.park(&mut outcomes, &deps.dead_letters).await;
    let response = batch.respond(&outcomes)?;
    tracing::info!(
        records = batch.len(),
        patients = patient_count,
        readings,
        alerts = scored.alerts_recorded(),
        parked = (0..batch.len()).filter(|&i| outcomes.is_parked(i)).count(),
        failed = response.batch_item_failures.len(),
        "vitals batch handled"
    );
    Ok(response)
}

/// Checks each decoded record against what SQS says about it, and gives it
/// its correlation id. The group must be the body's `trialId#patientId` (a
/// record without one is hand-built: Lambda sets it on every FIFO record), and
/// a direct integrator must be allowed the body's trial. Both failures are
/// permanent: parked with their reason, like a bad body.
fn admit(
    integrators: &Integrators,
    records: &[SqsMessage],
    messages: Vec<(usize, VitalsMessage)>,
    outcomes: &mut Outcomes<RecordFailure>,
) -> Vec<(usize, VitalsMessage, CorrelationId)> {
    let mut admitted = Vec::with_capacity(messages.len());
    for (index, m) in messages {
        let record = &records[index];
        let correlation = record_correlation(record);
        let refused = if group_id(record).is_some_and(|g| !is_group_of(g, &m)) {
            Some(RecordFailure::GroupMismatch)
        } else if !integrators.allows(record.attributes.get(SENDER_ID).map(String::as_str), &m.trial_id) {
            Some(RecordFailure::SenderNotAllowed)
        } else {
            None
        };
        match refused {
            Some(f) => {
                correlation::span(&correlation).in_scope(|| {
                    tracing::warn!(message_id = record.message_id.as_deref(), trial_id = %m.trial_id, reason = f.code(), "record refused")
                });
                outcomes.fail(index, f);
            }
            None => admitted.push((index, m, correlation)),
        }
    }
    admitted
}

/// Whether `group` is the message's `trialId#patientId` ([`VitalsMessage::group_id`]),
/// compared in place rather than formatted for every record.
fn is_group_of(group: &str, m: &VitalsMessage) -> bool {
    let (trial, patient) = (m.trial_id.as_str(), m.patient_id.as_str());
    group.len() == trial.len() + 1 + patient.len()
        && group.starts_with(trial)
        && group.as_bytes()[trial.len()] == b'#'
        && group.ends_with(patient)
}

/// The sender's correlation id (a message attribute), or else the message id,
/// so a direct integrator's message (which carries none) can still be followed.
fn record_correlation(record: &SqsMessage) -> CorrelationId {
    record
        .message_attributes
        .get(correlation::MESSAGE_ATTRIBUTE)
        .and_then(|a| a.string_value.as_deref())
        .and_then(CorrelationId::parse)
        .unwrap_or_else(|| record.message_id.as_deref().map_or_else(CorrelationId::generate, CorrelationId::from_platform_id))
}

/// At most 10 records, so at most 10 patients: a linear search finds a
/// patient's batch without hashing or cloning its ids. A resent reading
/// (same store key) is kept once, its first occurrence in batch order: the
/// keys are sorted, not hashed, so no reading id is cloned.
fn group_by_patient(messages: Vec<(usize, VitalsMessage, CorrelationId)>) -> Vec<PatientBatch> {
    let mut batches: Vec<PatientBatch> = Vec::with_capacity(messages.len());
    for (record, m, correlation) in messages {
        let at = match batches.iter().position(|b| b.trial == m.trial_id && b.patient == m.patient_id) {
            Some(at) => at,
            None => {
                batches.push(PatientBatch {
                    trial: m.trial_id,
                    patient: m.patient_id,
                    records: Vec::new(),
                    readings: Vec::new(),
                    correlation: correlation.clone(),
                });
                batches.len() - 1
            }
        };
        let b = &mut batches[at];
        b.records.push(record);
        // The latest record's id: its readings are the newest, so it is the one an alert answers.
        b.correlation = correlation;
        b.readings.extend(m.readings);
    }
    for b in &mut batches {
        keep_first_of_each_key(&mut b.readings);
    }
    batches
}

/// Drops every reading whose store key (observed at, code, id) an earlier
/// one of the slice has: a resent reading is written once.
fn keep_first_of_each_key(readings: &mut Vec<VitalReading>) {
    fn key(r: &VitalReading) -> (chrono::DateTime<chrono::Utc>, trialwatch::vitals::VitalCode, &str) {
        (r.observed_at, r.code, r.reading_id.as_str())
    }
    let mut order: Vec<u32> = (0..readings.len() as u32).collect();
    // Stable: among equal keys the first in batch order stays first.
    order.sort_by(|&a, &b| key(&readings[a as usize]).cmp(&key(&readings[b as usize])));
    let mut repeated = vec![false; readings.len()];
    let mut any = false;
    for pair in order.windows(2) {
        if key(&readings[pair[0] as usize]) == key(&readings[pair[1] as usize]) {
            repeated[pair[1] as usize] = true;
            any = true;
        }
    }
    if any {
        let mut flags = repeated.into_iter();
        readings.retain(|_| !flags.next().unwrap_or(false));
    }
}

#[cfg(test)]
mod handler_tests;

#[cfg(test)]
mod grouping_tests {
    use super::*;
    use trialwatch::vitals::{VitalCode, VitalValue};
    use trialwatch::{PatientId, ReadingId};

    fn reading(id: &str, code: VitalCode, second: u32, value: f64) -> VitalReading {
        let observed_at = format!("2026-11-26T19:59:{second:02}Z").parse().unwrap();
        VitalReading { reading_id: ReadingId::parse(id).unwrap(), code, value: VitalValue::Number(value), observed_at }
    }

    fn message(patient: &str, readings: Vec<VitalReading>) -> VitalsMessage {
        VitalsMessage { trial_id: TrialId::parse("t1").unwrap(), patient_id: PatientId::parse(patient).unwrap(), readings }
    }

    #[test]
    fn a_group_id_matches_only_the_messages_own_trial_and_patient() {
        let m = message("p1", Vec::new());
        assert_eq!(m.group_id(), "t1#p1");
        assert!(is_group_of("t1#p1", &m));
        for other in ["t1#p2", "t1#p10", "t2#p1", "t1p1", "t1#p1#", "#t1#p1", "t1_p1", "t1##p1", "", "t1#", "#p1"] {
            assert!(!is_group_of(other, &m), "{other}");
        }
    }

    #[test]
    fn records_group_by_patient_in_batch_order_and_a_resent_reading_is_kept_once_first_as_sent() {
        // GIVEN two patients' records interleaved, p1's second record resending one reading (same key, other value)
        let hr = VitalCode::HeartRate;
        let messages = vec![
            (0, message("p1", vec![reading("r1", hr, 1, 70.0), reading("r2", hr, 2, 71.0)]), CorrelationId::from_platform_id("m0")),
            (1, message("p2", vec![reading("r1", hr, 1, 90.0)]), CorrelationId::from_platform_id("m1")),
            (
                2,
                message("p1", vec![reading("r2", hr, 2, 99.0), reading("r2", VitalCode::Spo2, 2, 97.0), reading("r0", hr, 0, 60.0)]),
                CorrelationId::from_platform_id("m2"),
            ),
        ];
        // WHEN they are grouped
        let batches = group_by_patient(messages);
        // THEN each patient has its records and its readings in batch order, each key once, the first sent kept
        assert_eq!(batches.len(), 2);
        let (p1, p2) = (&batches[0], &batches[1]);
        assert_eq!((p1.patient.as_str(), p1.records.as_slice(), p1.correlation.as_str()), ("p1", &[0, 2][..], "m2"));
        let kept: Vec<(&str, VitalCode, VitalValue)> = p1.readings.iter().map(|r| (r.reading_id.as_str(), r.code, r.value)).collect();
        assert_eq!(
            kept,
            vec![
                ("r1", hr, VitalValue::Number(70.0)),
                ("r2", hr, VitalValue::Number(71.0)),
                ("r2", VitalCode::Spo2, VitalValue::Number(97.0)),
                ("r0", hr, VitalValue::Number(60.0)),
            ]
        );
        assert_eq!((p2.patient.as_str(), p2.records.as_slice(), p2.readings.len()), ("p2", &[1][..], 1));
    }
}
