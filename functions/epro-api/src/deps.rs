//! What the handler needs, built once per execution environment: the store,
//! the vitals queue, the alert queue, the clock, and the caches that keep a warm submission to one
//! DynamoDB request.
//!
//! Budget of a warm `POST …/submissions`: the trial comes from the config
//! cache (TTL `CONFIG_TTL_SECONDS`), the patient's enrolment (for its site,
//! the counter key) from a short-lived enrolment cache, so the only DynamoDB
//! request is the TransactWriteItems, plus at most one SQS SendMessageBatch
//! when a PRO rule fires. Trusting a cached enrolment is safe because the
//! transaction's condition enforces "enrolled" atomically; only positive
//! answers are trusted: an absent or non-enrolled cached entry is re-read
//! before a request is refused, so a patient enrolled a moment ago in another
//! execution environment is never turned away.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use trialwatch::audit::chain::ChainHead;
use trialwatch::config_cache::ConfigCache;
use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
use trialwatch::ports::{EnrolmentStore, StorageError, TrialConfig};
use trialwatch::trial::Trial;
use trialwatch::{Error, PatientId, TrialId};

use crate::Config;

/// How long a positive enrolment answer is trusted on the submission and
/// vitals paths. Short, because a site transfer moves the counter key.
pub const ENROLMENT_TTL: Duration = Duration::from_secs(30);

/// `S` is the store (one adapter serves every store port), `V` the vitals
/// queue, `A` the alert queue, `C` the clock; each route asks of them only the
/// ports it uses.
pub struct Deps<S, V, A, C> {
    pub(crate) store: Arc<S>,
    pub(crate) vitals_queue: Arc<V>,
    pub(crate) alert_queue: Arc<A>,
    pub(crate) clock: C,
    /// The store's trials through the config cache: the `TrialConfig` the use cases read.
    pub(crate) trials: CachedTrials<S>,
    enrolments: Arc<ConfigCache<(TrialId, PatientId), Enrolment>>,
    pub(crate) egress: trialwatch::egress::EgressPolicy,
    /// Where committed changes are announced ([`trialwatch::domain_event`]).
    pub(crate) event_bus: Arc<dyn trialwatch::ports::EventPublisher>,
}

impl<S, V, A, C> Deps<S, V, A, C> {
    pub fn new(store: S, vitals_queue: V, alert_queue: A, clock: C, config_ttl: Duration) -> Self {
        Self::from_shared(Arc::new(store), Arc::new(vitals_queue), Arc::new(alert_queue), clock, config_ttl)
    }

    /// For callers (tests, the local runner) that keep a handle on the adapters.
    pub fn from_shared(store: Arc<S>, vitals_queue: Arc<V>, alert_queue: Arc<A>, clock: C, config_ttl: Duration) -> Self {
        Self {
            trials: CachedTrials { store: store.clone(), cache: ConfigCache::new(config_ttl) },
            store,
            vitals_queue,
            alert_queue,
            clock,
            enrolments: Arc::new(ConfigCache::new(ENROLMENT_TTL.min(config_ttl))),
            egress: trialwatch::egress::EgressPolicy::DEPLOYED,
            event_bus: Arc::new(trialwatch::domain_event::Unpublished),
        }
    }

    /// Publishes domain events on `bus` (default: none, so they wait for the sweep).
    pub fn with_event_bus(mut self, bus: Arc<dyn trialwatch::ports::EventPublisher>) -> Self {
        self.event_bus = bus;
        self
    }

    /// The webhook egress rules trial writes are checked against (default
    /// [`EgressPolicy::DEPLOYED`](trialwatch::egress::EgressPolicy::DEPLOYED)).
    pub fn with_egress(mut self, egress: trialwatch::egress::EgressPolicy) -> Self {
        self.egress = egress;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn vitals_queue(&self) -> &V {
        &self.vitals_queue
    }

    pub fn alert_queue(&self) -> &A {
        &self.alert_queue
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Where the use cases announce what they committed, settling the store's pending events.
    pub(crate) fn announcer(&self) -> trialwatch::domain_event::Announcer<'_>
    where
        S: trialwatch::ports::PendingEvents + 'static,
    {
        trialwatch::domain_event::Announcer { bus: self.event_bus.as_ref(), pending: self.store.as_ref() }
    }

    pub(crate) fn forget_trial(&self, id: &TrialId) {
        self.trials.cache.invalidate(id);
    }

    /// After a commit that moved the patient's audit chain: the cached
    /// enrolment carries the new head, so this process's next submission
    /// links from it without a read. Never moves a cached head backwards (a
    /// concurrent request of this process may have committed after us).
    pub(crate) fn remember_head(&self, trial: &TrialId, patient: &PatientId, head: &ChainHead) {
        self.enrolments.amend(&(trial.clone(), patient.clone()), |e| {
            if e.audit_head.seq < head.seq {
                e.audit_head = head.clone();
            }
        });
    }

    pub(crate) fn forget_enrolment(&self, trial: &TrialId, patient: &PatientId) {
        self.enrolments.invalidate(&(trial.clone(), patient.clone()));
    }
}

/// The `TrialConfig` port as epro-api reads it: through the config cache
/// (TTL `CONFIG_TTL_SECONDS`), handing out the cached copy. An absent answer
/// is re-read, so a trial created a moment ago elsewhere is found.
pub struct CachedTrials<S> {
    store: Arc<S>,
    cache: ConfigCache<TrialId, Arc<Trial>>,
}

#[async_trait]
impl<S: TrialConfig + 'static> TrialConfig for CachedTrials<S> {
    async fn get_trial(&self, id: &TrialId) -> Result<Option<Trial>, StorageError> {
        Ok(self.get_trial_shared(id).await?.map(|t| Trial::clone(&t)))
    }

    async fn get_trial_consistent(&self, id: &TrialId) -> Result<Option<Trial>, StorageError> {
        self.store.get_trial_consistent(id).await
    }

    async fn get_trial_shared(&self, id: &TrialId) -> Result<Option<Arc<Trial>>, StorageError> {
        let store = self.store.clone();
        let key = id.clone();
        let cached = self.cache.get(id, move || async move { Ok(store.get_trial(&key).await?.map(Arc::new)) }).await?;
        if let Some(trial) = cached.as_ref() {
            return Ok(Some(trial.clone()));
        }
        let fresh = self.store.get_trial(id).await?;
        if fresh.is_some() {
            self.cache.invalidate(id);
        }
        Ok(fresh.map(Arc::new))
    }
}

impl<S: EnrolmentStore + 'static, V, A, C> Deps<S, V, A, C> {
    /// The enrolment through the short-lived cache; anything but "enrolled"
    /// is confirmed with a fresh read before it refuses a request.
    pub(crate) async fn enrolment_cached(&self, trial: &TrialId, patient: &PatientId) -> Result<Option<Enrolment>, Error> {
        let store = self.store.clone();
        let key = (trial.clone(), patient.clone());
        let (t, p) = key.clone();
        let cached = self.enrolments.get(&key, move || async move { store.get_enrolment(&t, &p).await }).await?;
        if let Some(e) = cached.as_ref() {
            if e.status == EnrolmentStatus::Enrolled {
                return Ok(Some(e.clone()));
            }
        }
        self.enrolments.invalidate(&key);
        Ok(self.store.get_enrolment(trial, patient).await?)
    }
}

pub type AwsDeps =
    Deps<trialwatch::aws::DynamoStore, trialwatch::aws::SqsVitalsQueue, trialwatch::aws::SqsAlertQueue, trialwatch::clock::SystemClock>;

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
        // One SQS client for both queues: each client construction costs init time.
        let sqs = trialwatch::aws::sqs_client(sdk);
        let vitals = trialwatch::aws::SqsVitalsQueue::with_client(sqs.clone(), config.vitals_queue_url.clone());
        let alerts = trialwatch::aws::SqsAlertQueue::with_client(sqs, config.alert_queue_url.clone());
        let deps = Deps::new(store, vitals, alerts, trialwatch::clock::SystemClock, config.config_ttl).with_egress(config.egress);
        match &config.event_bus_name {
            Some(bus) => deps.with_event_bus(Arc::new(trialwatch::aws::EventBridgePublisher::new(sdk, bus.clone()))),
            None => deps,
        }
    }
}
