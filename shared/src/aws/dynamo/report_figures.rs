//! `ReportFigures` on the DynamoStore: each figure is read where its entity lives
//! (enrolments, submissions, alerts, vitals); this joins them into the one
//! port report-generator asks for.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::DynamoStore;
use crate::alert::AlertRecord;
use crate::enrolment::EnrolmentCount;
use crate::ids::TrialId;
use crate::news2::RiskLevel;
use crate::ports::{ReportFigures, StorageError};
use crate::submission::DailySiteCount;

#[async_trait]
impl ReportFigures for DynamoStore {
    async fn enrolment_counts(&self, trial: &TrialId) -> Result<Vec<EnrolmentCount>, StorageError> {
        DynamoStore::read_enrolment_counts(self, trial).await
    }
    async fn daily_counts(&self, trial: &TrialId, from: NaiveDate, to: NaiveDate) -> Result<Vec<DailySiteCount>, StorageError> {
        DynamoStore::read_daily_counts(self, trial, from, to).await
    }
    async fn alerts_between(&self, trial: &TrialId, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<AlertRecord>, StorageError> {
        DynamoStore::read_alerts_between(self, trial, from, to).await
    }
    async fn risk_level_counts(&self, trial: &TrialId) -> Result<Vec<(RiskLevel, u64)>, StorageError> {
        DynamoStore::read_risk_level_counts(self, trial).await
    }
}
