//! DynamoDB single-table adapter.
use async_trait::async_trait;
use aws_config::SdkConfig;
use chrono::{DateTime, NaiveDate, Utc};

use crate::alert::{Alert, AlertRecord, AlertStatus, Claim, DeliveryAttempt};
use crate::audit::{Actor, AuditEntry};
use crate::enrolment::{Enrolment, EnrolmentCount};
use crate::error::Error;
use crate::ids::{AlertId, PatientId, ReportId, SubmissionId, TrialId};
use crate::news2::RiskLevel;
use crate::page::{Page, PageRequest};
use crate::ports::*;
use crate::report::ReportMeta;
use crate::submission::{DailySiteCount, StoredSubmission};
use crate::trial::Trial;
use crate::vitals::{VitalReading, VitalsState};

/// Day counters are spread over this many partitions.
pub const COUNTER_SHARDS: u32 = 32;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoStore {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        Self { client: aws_sdk_dynamodb::Client::new(config), table: table.into() }
    }
    pub(crate) async fn put_report_meta(&self, _meta: &ReportMeta) -> Result<(), Error> {
        todo!()
    }
    pub(crate) async fn get_report_meta(&self, _t: &TrialId, _id: &ReportId) -> Result<Option<ReportMeta>, Error> {
        todo!()
    }
}

#[async_trait]
impl TrialStore for DynamoStore {
    async fn get_trial(&self, _id: &TrialId) -> Result<Option<Trial>, Error> {
        todo!()
    }
    async fn put_trial(&self, _trial: &Trial, _audit: &AuditEntry) -> Result<Upsert, Error> {
        todo!()
    }
    async fn list_trial_ids(&self) -> Result<Vec<TrialId>, Error> {
        todo!()
    }
}

#[async_trait]
impl EnrolmentStore for DynamoStore {
    async fn get_enrolment(&self, _t: &TrialId, _p: &PatientId) -> Result<Option<Enrolment>, Error> {
        todo!()
    }
    async fn put_enrolment(&self, _e: &Enrolment, _a: &AuditEntry) -> Result<Upsert, Error> {
        todo!()
    }
    async fn enrolment_counts(&self, _t: &TrialId) -> Result<Vec<EnrolmentCount>, Error> {
        todo!()
    }
}

#[async_trait]
impl SubmissionStore for DynamoStore {
    async fn record_submission(&self, _s: &StoredSubmission, _day: &str, _a: &AuditEntry) -> Result<RecordOutcome, Error> {
        todo!()
    }
    async fn get_submission(&self, _id: &SubmissionId) -> Result<Option<StoredSubmission>, Error> {
        todo!()
    }
    async fn list_submissions(&self, _t: &TrialId, _p: &PatientId, _page: &PageRequest) -> Result<Page<StoredSubmission>, Error> {
        todo!()
    }
    async fn daily_counts(&self, _t: &TrialId, _from: NaiveDate, _to: NaiveDate) -> Result<Vec<DailySiteCount>, Error> {
        todo!()
    }
}

#[async_trait]
impl VitalsStore for DynamoStore {
    async fn put_readings(&self, _t: &TrialId, _p: &PatientId, _r: &[VitalReading]) -> Result<(), Error> {
        todo!()
    }
    async fn get_state(&self, _t: &TrialId, _p: &PatientId) -> Result<Option<VitalsState>, Error> {
        todo!()
    }
    async fn put_state(&self, _s: &VitalsState) -> Result<StateWrite, Error> {
        todo!()
    }
    async fn risk_level_counts(&self, _t: &TrialId) -> Result<Vec<(RiskLevel, u64)>, Error> {
        todo!()
    }
}

#[async_trait]
impl AlertStore for DynamoStore {
    async fn claim(&self, _a: &Alert, _now: DateTime<Utc>, _lease: DateTime<Utc>) -> Result<Claim, Error> {
        todo!()
    }
    async fn record_attempt(&self, _t: &TrialId, _id: &AlertId, _a: &DeliveryAttempt) -> Result<(), Error> {
        todo!()
    }
    async fn finish(&self, _t: &TrialId, _id: &AlertId, _s: AlertStatus, _at: DateTime<Utc>, _a: &AuditEntry) -> Result<(), Error> {
        todo!()
    }
    async fn release(&self, _t: &TrialId, _id: &AlertId) -> Result<(), Error> {
        todo!()
    }
    async fn get_alert(&self, _t: &TrialId, _id: &AlertId) -> Result<Option<AlertRecord>, Error> {
        todo!()
    }
    async fn list_alerts(&self, _t: &TrialId, _p: &PatientId, _page: &PageRequest) -> Result<Page<AlertRecord>, Error> {
        todo!()
    }
    async fn alerts_between(&self, _t: &TrialId, _from: DateTime<Utc>, _to: DateTime<Utc>) -> Result<Vec<AlertRecord>, Error> {
        todo!()
    }
    async fn acknowledge(
        &self,
        _t: &TrialId,
        _id: &AlertId,
        _by: &Actor,
        _note: Option<&str>,
        _at: DateTime<Utc>,
        _a: &AuditEntry,
    ) -> Result<AlertRecord, Error> {
        todo!()
    }
}

#[async_trait]
impl AuditLog for DynamoStore {
    async fn append(&self, _e: &AuditEntry) -> Result<(), Error> {
        todo!()
    }
}
