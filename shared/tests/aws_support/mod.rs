//! Shared setup of the adapter integration tests: a private copy of the
//! template's resources on the emulator, clients that count requests, and
//! domain fixtures.
#![allow(dead_code)] // each test crate uses a different part

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use chrono::{DateTime, Utc};
use trialwatch::audit::chain::{link_all, ChainId};
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::aws::DynamoStore;
use trialwatch::submission::StoredSubmission;
use trialwatch::{PatientId, SiteId, TrialId};
use trialwatch_provision::{emulator_sdk_config, provision_all, template_path, unique_prefix, Provisioned};

/// A test's own resources. Provisioning under a unique prefix lets tests run
/// in parallel on one emulator without seeing each other's items or messages.
pub struct Emulator {
    pub sdk: SdkConfig,
    pub provisioned: Provisioned,
}

impl Emulator {
    /// Panics (never skips) when the emulator is not configured: these tests
    /// are part of `make test`, which starts it and exports AWS_ENDPOINT_URL.
    pub async fn provision(label: &str) -> Self {
        if std::env::var("AWS_ENDPOINT_URL").map_or(true, |v| v.trim().is_empty()) {
            panic!("AWS_ENDPOINT_URL is not set: run the adapter integration tests with `make test`, which starts the emulator");
        }
        let sdk = emulator_sdk_config().await;
        let provisioned = provision_all(&sdk, &template_path(), &unique_prefix(label))
            .await
            .unwrap_or_else(|e| panic!("provisioning the emulator failed (is it running? `make test` starts it): {e}"));
        Self { sdk, provisioned }
    }

    pub fn table(&self) -> &str {
        &self.provisioned.resources.table_name
    }

    pub fn audit_table(&self) -> &str {
        &self.provisioned.resources.audit_table_name
    }

    pub fn raw_dynamo(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(&self.sdk, self.table(), self.audit_table())
    }

    /// A store whose client counts every HTTP request it sends, by operation.
    pub fn counted_store(&self) -> (DynamoStore, RequestCounter) {
        let counter = RequestCounter::default();
        let config = aws_sdk_dynamodb::config::Builder::from(&self.sdk).interceptor(counter.clone()).build();
        (DynamoStore::with_client(aws_sdk_dynamodb::Client::from_conf(config), self.table(), self.audit_table()), counter)
    }

    pub fn counted_sqs(&self) -> (aws_sdk_sqs::Client, RequestCounter) {
        let counter = RequestCounter::default();
        let config = aws_sdk_sqs::config::Builder::from(&self.sdk).interceptor(counter.clone()).build();
        (aws_sdk_sqs::Client::from_conf(config), counter)
    }

    /// Every item of one partition, straight from the data table.
    pub async fn partition(&self, pk: &str) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.partition_of(self.table(), pk).await
    }

    /// One chain's entries as stored, in seq order (one Query on its partition).
    pub async fn chain(&self, chain: &ChainId) -> Vec<AuditEntry> {
        self.audit_partition(&trialwatch::aws::chain_pk(&trial(), chain))
            .await
            .into_iter()
            .map(|mut item| {
                for key in ["pk", "sk", "gsi1pk", "gsi1sk"] {
                    item.remove(key);
                }
                serde_dynamo::from_item(item).expect("an audit entry")
            })
            .collect()
    }

    /// Every item of one partition of the audit table.
    pub async fn audit_partition(&self, pk: &str) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        self.partition_of(self.audit_table(), pk).await
    }

    async fn partition_of(&self, table: &str, pk: &str) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .raw_dynamo()
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.to_owned()))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .expect("query partition");
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }
}

/// Counts requests as they go on the wire (after retries are decided, so a
/// retried call counts twice), keyed by the `X-Amz-Target` operation name.
#[derive(Clone, Debug, Default)]
pub struct RequestCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl RequestCounter {
    /// Requests whose target ends with `.operation`, e.g. `BatchWriteItem`.
    pub fn get(&self, operation: &str) -> u64 {
        let suffix = format!(".{operation}");
        self.0.lock().unwrap().iter().filter(|(k, _)| k.ends_with(&suffix)).map(|(_, v)| *v).sum()
    }
    pub fn total(&self) -> u64 {
        self.0.lock().unwrap().values().sum()
    }
    pub fn reset(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("unknown.unknown").to_owned();
        *self.0.lock().unwrap().entry(target).or_default() += 1;
        Ok(())
    }
}

pub fn trial() -> TrialId {
    TrialId::parse("tw-heart-01").unwrap()
}

pub fn patient(id: &str) -> PatientId {
    PatientId::parse(id).unwrap()
}

pub fn site(id: &str) -> SiteId {
    SiteId::parse(id).unwrap()
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().unwrap()
}

/// `entry` linked into the submission's patient chain after the head on the
/// patient's enrolment, as the API links from the enrolment it holds.
pub async fn linked_to(store: &DynamoStore, sub: &StoredSubmission, entry: AuditEntry) -> Vec<AuditEntry> {
    use trialwatch::ports::EnrolmentStore;
    let head = store.get_enrolment_consistent(&sub.trial_id, &sub.patient_id).await.unwrap().map(|e| e.audit_head).unwrap_or_default();
    let mut entries = vec![entry];
    link_all(entries.iter_mut(), &ChainId::Patient(sub.patient_id.clone()), &head);
    entries
}

/// An entry about patient P-1's alert: its `patientId` puts it in P-1's chain.
pub fn alert_audit(entity: &str, action: &str, when: &str) -> AuditEntry {
    audit(entity, action, when).with_detail("patientId", "P-1")
}

/// Enrols `p` at s1: the enrolment holds the head of the patient's chain,
/// which every append to that chain moves.
pub async fn enrol_patient(store: &DynamoStore, p: &PatientId) {
    use trialwatch::enrolment::{Enrolment, EnrolmentStatus};
    use trialwatch::ports::EnrolmentStore;
    let e = Enrolment {
        trial_id: trial(),
        patient_id: p.clone(),
        site_id: site("s1"),
        status: EnrolmentStatus::Enrolled,
        hypercapnic: false,
        enrolled_at: "2026-11-01T09:00:00.000Z".into(),
        updated_at: "2026-11-01T09:00:00.000Z".into(),
        submission_count: 0,
        last_submission_at: None,
        withdrawn_at: None,
        audit_head: Default::default(),
    };
    store.put_enrolment(&e, &audit(&format!("patient/{p}"), "enrolment.created", "2026-11-01T09:00:00Z"), &[]).await.unwrap();
}

pub fn audit(entity: &str, action: &str, when: &str) -> AuditEntry {
    AuditEntry::new(trial(), entity, action, Actor { role: "site_staff".into(), subject: Some("nurse-7".into()) }, at(when))
}
