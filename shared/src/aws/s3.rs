//! Report PDFs in S3 (SSE-KMS) with their metadata record in DynamoDB, and
//! presigned GET URLs so a browser downloads without AWS credentials.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use super::errors::from_sdk;
use super::DynamoStore;
use crate::domain_event::DomainEvent;
use crate::ids::{ReportId, TrialId};
use crate::ports::ReportStore;
use crate::ports::StorageError;
use crate::report::ReportMeta;

#[derive(Clone, Debug)]
pub struct S3ReportStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    kms_key_id: Option<String>,
    meta: DynamoStore,
}

impl S3ReportStore {
    /// `kms_key_id`: the customer key for SSE-KMS; `None` uses the bucket's
    /// default `aws:kms` key.
    pub fn new(config: &SdkConfig, bucket: impl Into<String>, kms_key_id: Option<String>, meta: DynamoStore) -> Self {
        Self::with_client(super::s3_client(config), bucket, kms_key_id, meta)
    }

    /// Shares `client` (see [`super::s3_client`]) with the function's other S3 adapters.
    pub fn with_client(client: aws_sdk_s3::Client, bucket: impl Into<String>, kms_key_id: Option<String>, meta: DynamoStore) -> Self {
        Self { client, bucket: bucket.into(), kms_key_id, meta }
    }
}

#[async_trait]
impl ReportStore for S3ReportStore {
    async fn put_report(&self, meta: &ReportMeta, pdf: Vec<u8>, events: &[DomainEvent]) -> Result<(), StorageError> {
        const OP: &str = "s3.PutObject(report)";
        // Object first, record second: a record never points at a missing
        // object, and a retry overwrites the same key.
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&meta.object_key)
            .content_type("application/pdf")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_ssekms_key_id(self.kms_key_id.clone())
            .metadata("trial-id", meta.trial_id.as_str())
            .metadata("report-id", meta.report_id.as_str())
            .metadata("from", meta.from.to_string())
            .metadata("to", meta.to.to_string())
            .body(ByteStream::from(pdf))
            .send()
            .await
            .map_err(|e| from_sdk(OP, &e))?;
        self.meta.put_report_meta(meta, events).await
    }

    async fn get_report(&self, trial: &TrialId, id: &ReportId) -> Result<Option<ReportMeta>, StorageError> {
        self.meta.get_report_meta(trial, id).await
    }

    async fn presign(&self, object_key: &str, ttl: std::time::Duration) -> Result<String, StorageError> {
        const OP: &str = "s3.GetObject(presign)";
        let config = PresigningConfig::expires_in(ttl).map_err(|_| StorageError::Corrupt(format!("{OP}: ttl out of range")))?;
        let req = self.client.get_object().bucket(&self.bucket).key(object_key).presigned(config).await.map_err(|e| from_sdk(OP, &e))?;
        Ok(req.uri().to_owned())
    }
}
