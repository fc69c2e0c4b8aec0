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

/// An Amazon request's progress as one status check sees it. "Not ready yet" is a status, not an error:
/// the state machine waits and asks again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RequestStatus {
    /// Queued or running; `state` is Amazon's own status word (`IN_QUEUE`, `PROCESSING`, …).
    InProgress {
        /// Amazon's status.
        state: String,
    },
    /// Done: the documents can be listed and downloaded.
    Ready,
    /// Finished without data (SP-API `CANCELLED`, a Slate window without files). Not a failure.
    NoData {
        /// Why, as far as Amazon said.
        reason: String,
    },
    /// Amazon gave up on the request (SP-API `FATAL`, Ads/AMC `FAILED`): `reason` is Amazon's own.
    Failed {
        /// Amazon's reason (the FATAL error document, `failureReason`, `statusReason`).
        reason: String,
    },
}

/// One document a ready request produced.
#[derive(Debug)]
pub struct SourceDocument {
    /// What the transfer needs: URL, encryption, compression, format, source id.
    pub document: crate::transfer::Document,
    /// When the pre-signed URL stops working, when the source says.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the source produced it (Slate: the file timestamp that becomes the watermark).
    pub produced_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its size in bytes, when the source says.
    pub size: Option<u64>,
}

/// Why a call to a source failed, classified for the state machine's Retry/Catch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    /// Amazon or a shared quota says to wait: retry after `retry_after` (the state machine waits).
    #[error("throttled; retry after {} s", retry_after.as_secs())]
    Throttled {
        /// How long to wait.
        retry_after: std::time::Duration,
    },
    /// The access token was refused even after a refresh: retry with a fresh token.
    #[error("authorisation failed: {0}")]
    AuthExpired(String),
    /// The refresh token or the application was refused by Login with Amazon: a person must
    /// re-authorise; retrying does not help.
    #[error("credentials refused: {0}")]
    CredentialsRefused(String),
    /// Network trouble, 5xx, an unreadable answer: retry.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Amazon (or our client-side validation) refused the request as asked: fix the job.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request or document does not exist (any more).
    #[error("not found: {0}")]
    NotFound(String),
}

/// A source of Amazon reports: create a request for a window, check its status, list its documents.
///
/// Contract:
/// - [`ReportSource::create`] never makes a second Amazon request for one call, even when it retries
///   internally: an ambiguous failure is resolved by looking for the request it may have made (or by
///   the API's own duplicate detection). The caller persists the returned id before anything else.
/// - [`ReportSource::status`] is one check; it never waits.
/// - [`ReportSource::documents`] may be called again (e.g. after a URL expired) and returns fresh URLs.
pub trait ReportSource: Send + Sync {
    /// What the job asks this source for (report type and marketplaces, SQL, ad product and columns…).
    type Request: Send + Sync;

    /// Creates (or finds) the Amazon request for `window`; returns its id.
    fn create(
        &self,
        request: &Self::Request,
        window: &crate::domain::TimeWindow,
    ) -> impl Future<Output = Result<String, SourceError>> + Send;

    /// Checks the request's status once.
    fn status(
        &self,
        request: &Self::Request,
        id: &str,
    ) -> impl Future<Output = Result<RequestStatus, SourceError>> + Send;

    /// Lists the documents of a ready request, with fresh download URLs.
    fn documents(
        &self,
        request: &Self::Request,
        id: &str,
    ) -> impl Future<Output = Result<Vec<SourceDocument>, SourceError>> + Send;
}
