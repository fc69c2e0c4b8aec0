//! Ports: the narrow traits the use cases depend on. Adapters in [`crate::adapters`] implement them.

use std::future::Future;

use bytes::Bytes;

/// A failed call to an object store, safe to log (no credentials, no URLs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct SinkError {
    /// The operation that failed, e.g. `UploadPart`.
    pub operation: &'static str,
    /// What the store said.
    pub message: String,
    /// Whether repeating the whole transfer may succeed (network trouble, throttling, 5xx).
    pub retryable: bool,
}

/// One uploaded part, as needed to complete a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    /// 1-based part number.
    pub part_number: u32,
    /// The part's ETag as returned by the store.
    pub etag: String,
    /// The part's CRC-32 checksum (base64) when the store computed one.
    pub checksum_crc32: Option<String>,
}

/// An object store that takes large objects as multipart uploads: S3 in production, a local S3
/// implementation in tests.
///
/// Contract:
/// - An object becomes visible at its key only when [`ObjectSink::complete_upload`] or
///   [`ObjectSink::put_object`] succeeds; both replace any object already at that key, so repeating a
///   transfer overwrites rather than duplicates.
/// - [`ObjectSink::abort_upload`] discards every part of an upload; it is safe to call for an upload
///   that has already been aborted.
/// - Parts of one upload may be uploaded concurrently and in any order; part numbers start at 1.
pub trait ObjectSink: Send + Sync {
    /// Starts a multipart upload for `key`; returns the upload id.
    fn begin_upload(&self, key: &str, content_type: &str) -> impl Future<Output = Result<String, SinkError>> + Send;

    /// Uploads one part (at least 5 MiB unless it is the last part).
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        data: Bytes,
    ) -> impl Future<Output = Result<UploadedPart, SinkError>> + Send;

    /// Completes an upload from its parts in part-number order, making the object visible.
    fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Aborts an upload, discarding its parts.
    fn abort_upload(&self, key: &str, upload_id: &str) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Stores a small object in one request.
    fn put_object(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}
