//! Anchors in S3 under Object Lock (compliance mode): a locked version can be
//! neither deleted nor overwritten by anyone until its retain-until date. A
//! later PutObject of the same key only adds a version, so the reader checks
//! every version.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime as S3DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectLockMode};
use chrono::{DateTime, Utc};

use super::errors::from_sdk;
use crate::audit::anchor::Anchor;
use crate::ids::TrialId;
use crate::ports::StorageError;
use crate::ports::{AnchorReader, AnchorStore, StoredAnchor};

#[derive(Clone, Debug)]
pub struct S3Anchors {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Anchors {
    pub fn new(config: &SdkConfig, bucket: impl Into<String>) -> Self {
        Self::with_client(super::s3_client(config), bucket)
    }

    /// Shares `client` (see [`super::s3_client`]) with the function's other S3 adapters.
    pub fn with_client(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

#[async_trait]
impl AnchorStore for S3Anchors {
    async fn put_anchor(&self, anchor: &Anchor, retain_until: DateTime<Utc>) -> Result<(), StorageError> {
        const OP: &str = "s3.PutObject(anchor)";
        let body = serde_json::to_vec(anchor).map_err(|_| StorageError::Corrupt(format!("{OP}: encoding")))?;
        // Encryption is the bucket's default (SSE-KMS with the stack key). S3
        // refuses an Object Lock put without an integrity checksum.
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(anchor.key())
            .content_type("application/json")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(S3DateTime::from_millis(retain_until.timestamp_millis()))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| from_sdk(OP, &e))?;
        Ok(())
    }
}

#[async_trait]
impl AnchorReader for S3Anchors {
    async fn anchors(&self, trial: &TrialId) -> Result<Vec<StoredAnchor>, StorageError> {
        const LIST: &str = "s3.ListObjectVersions(anchors)";
        const GET: &str = "s3.GetObject(anchor)";
        let mut versions = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let out = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(Anchor::prefix(trial))
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| from_sdk(LIST, &e))?;
            // Delete markers are not listed here: they hide a version from a
            // plain GET but remove nothing, and every version is read below.
            for v in out.versions() {
                if let Some(key) = v.key() {
                    versions.push((key.to_owned(), v.version_id().map(str::to_owned)));
                }
            }
            if out.is_truncated() != Some(true) {
                break;
            }
            key_marker = out.next_key_marker;
            version_marker = out.next_version_id_marker;
            if key_marker.is_none() {
                break;
            }
        }
        let mut anchors = Vec::with_capacity(versions.len());
        for (key, version) in versions {
            let out = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .set_version_id(version.clone())
                .send()
                .await
                .map_err(|e| from_sdk(GET, &e))?;
            let body = out.body.collect().await.map_err(|_| StorageError::Unavailable(format!("{GET}: body")))?.into_bytes().to_vec();
            let name = match version {
                Some(v) if v != "null" => format!("{key}?versionId={v}"),
                _ => key,
            };
            anchors.push(StoredAnchor { name, body });
        }
        Ok(anchors)
    }
}
