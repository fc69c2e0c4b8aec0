//! [`ObjectSink`] over Amazon S3 (or any S3 wire implementation).
//!
//! Every part carries a CRC-32 checksum, declared on `CreateMultipartUpload` and repeated on
//! `CompleteMultipartUpload`, so S3 verifies each part as it lands; this consistent form is accepted
//! by S3 and the local emulators alike.

use std::collections::BTreeSet;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, ServerSideEncryption,
};
use bytes::Bytes;

use crate::adapters::sdk_failure;
use crate::ports::{ObjectSink, SinkError, UploadedPart};

/// Server-side encryption applied to every object written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Encryption {
    /// The bucket's default (SSE-S3 unless the bucket says otherwise).
    #[default]
    BucketDefault,
    /// SSE-KMS with this key id or ARN.
    Kms(String),
}

/// Writes objects into one bucket.
#[derive(Debug, Clone)]
pub struct S3Sink {
    client: Client,
    bucket: String,
    encryption: Encryption,
}

impl S3Sink {
    /// A sink for `bucket` using `client`.
    pub fn new(client: Client, bucket: impl Into<String>, encryption: Encryption) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            encryption,
        }
    }

    /// The bucket written to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

/// A request the SDK refused to build (a missing required field): not worth repeating.
fn built_badly(operation: &'static str, e: &impl std::fmt::Display) -> SinkError {
    SinkError {
        operation,
        message: e.to_string(),
        retryable: false,
    }
}

fn sink_error<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> SinkError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = sdk_failure(&err);
    let retryable = match &failure.service {
        Some((status, code)) => {
            *status >= 500
                || *status == 429
                || matches!(
                    code.as_str(),
                    "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable"
                )
        }
        None => failure.transport,
    };
    SinkError {
        operation,
        message: failure.summary,
        retryable,
    }
}

impl ObjectSink for S3Sink {
    async fn begin_upload(&self, key: &str, content_type: &str) -> Result<String, SinkError> {
        let mut request = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .checksum_algorithm(ChecksumAlgorithm::Crc32);
        if let Encryption::Kms(key_id) = &self.encryption {
            request = request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(key_id);
        }
        let out = request
            .send()
            .await
            .map_err(|e| sink_error("CreateMultipartUpload", e))?;
        out.upload_id.ok_or_else(|| SinkError {
            operation: "CreateMultipartUpload",
            message: "the response had no upload id".into(),
            retryable: true,
        })
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        data: Bytes,
    ) -> Result<UploadedPart, SinkError> {
        let number = i32::try_from(part_number).map_err(|_| SinkError {
            operation: "UploadPart",
            message: "part number out of range".into(),
            retryable: false,
        })?;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| sink_error("UploadPart", e))?;
        Ok(UploadedPart {
            part_number,
            etag: out.e_tag.unwrap_or_default(),
            checksum_crc32: out.checksum_crc32,
        })
    }

    async fn complete_upload(&self, key: &str, upload_id: &str, parts: &[UploadedPart]) -> Result<(), SinkError> {
        let completed = parts
            .iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(i32::try_from(p.part_number).unwrap_or(i32::MAX))
                    .e_tag(&p.etag)
                    .set_checksum_crc32(p.checksum_crc32.clone())
                    .build()
            })
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
            .send()
            .await
            .map_err(|e| sink_error("CompleteMultipartUpload", e))?;
        Ok(())
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), SinkError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_upload() => Ok(()),
            Err(e) => Err(sink_error("AbortMultipartUpload", e)),
        }
    }

    async fn abort_uploads_under(&self, prefix: &str) -> Result<usize, SinkError> {
        let mut aborted = 0;
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .map_err(|e| sink_error("ListMultipartUploads", e))?;
            for upload in page.uploads() {
                if let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) {
                    self.abort_upload(key, id).await?;
                    aborted += 1;
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(aborted);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() && id_marker.is_none() {
                return Ok(aborted);
            }
        }
    }

    async fn delete_under(&self, prefix: &str, keep: &BTreeSet<String>) -> Result<usize, SinkError> {
        let mut deleted = 0;
        let mut token = None::<String>;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| sink_error("ListObjectsV2", e))?;
            let objects = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .filter(|key| !keep.contains(*key))
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| built_badly("DeleteObjects", &e))?;
            if !objects.is_empty() {
                let count = objects.len();
                let delete = Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .map_err(|e| built_badly("DeleteObjects", &e))?;
                let out = self
                    .client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| sink_error("DeleteObjects", e))?;
                if let Some(failed) = out.errors().first() {
                    return Err(SinkError {
                        operation: "DeleteObjects",
                        message: format!(
                            "{} of {count} objects were not deleted (first: {})",
                            out.errors().len(),
                            failed.code().unwrap_or("unknown")
                        ),
                        retryable: true,
                    });
                }
                deleted += count;
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(deleted),
            }
        }
    }

    async fn read_small(&self, key: &str, max_bytes: usize) -> Result<Bytes, SinkError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sink_error("GetObject", e))?;
        let size = out.content_length().unwrap_or(0);
        if usize::try_from(size).map_or(true, |n| n > max_bytes) {
            return Err(SinkError {
                operation: "GetObject",
                message: format!("the object is {size} bytes, more than {max_bytes}"),
                retryable: false,
            });
        }
        let body = out.body.collect().await.map_err(|e| SinkError {
            operation: "GetObject",
            message: e.to_string(),
            retryable: true,
        })?;
        Ok(body.into_bytes())
    }

    async fn put_object(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), SinkError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body));
        if let Encryption::Kms(key_id) = &self.encryption {
            request = request
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(key_id);
        }
        request.send().await.map_err(|e| sink_error("PutObject", e))?;
        Ok(())
    }
}
