//! Typed failures of the streaming transfer.
//!
//! Two layers: [`DecodeError`] is what the synchronous readers (decryption, decompression, unzip)
//! raise inside `io::Error`; [`TransferError`] is what a whole transfer returns. No variant carries a
//! URL, a key or any document content, so every error is safe to log and to return to Step Functions.

use std::io;

pub use crate::domain::document::DecodeError;

/// Why a transfer failed. [`TransferError::class`] groups the variants for retry decisions.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The pre-signed URL was refused with 403, which is how S3 answers an expired URL.
    /// Fetch a fresh URL from the source API and start again.
    #[error("the download URL was refused (HTTP 403): it has probably expired")]
    UrlExpired,
    /// The document server answered with another non-success status.
    #[error("the download failed with HTTP status {status}")]
    Http {
        /// The HTTP status code.
        status: u16,
    },
    /// The connection failed or timed out before or while reading the body.
    #[error("network error while downloading: {0}")]
    Network(String),
    /// The bytes could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Writing to the object store failed.
    #[error("object store error: {0}")]
    Sink(#[from] crate::ports::SinkError),
    /// The transfer was misconfigured (a caller bug, not a data problem).
    #[error("invalid transfer request: {0}")]
    Invalid(String),
    /// An internal task died (panic or cancellation).
    #[error("transfer task failed: {0}")]
    Internal(String),
}

/// How a failed transfer should be treated by whoever retries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Worth retrying as is: network trouble, 5xx, throttling by S3, a truncated download.
    Transient,
    /// The URL expired: get a fresh one from the source API, then retry.
    UrlExpired,
    /// The data failed an integrity check (padding, tag, CRC, size ceiling). Retrying the same
    /// document will fail the same way; it needs a human or a fresh copy from the source.
    Integrity,
    /// A bug or bad configuration on our side.
    Invalid,
}

impl TransferError {
    /// Classifies the error for retry decisions.
    pub fn class(&self) -> ErrorClass {
        match self {
            TransferError::UrlExpired => ErrorClass::UrlExpired,
            TransferError::Http { status } if *status == 429 || *status >= 500 => ErrorClass::Transient,
            TransferError::Http { .. } => ErrorClass::Invalid,
            TransferError::Network(_) | TransferError::Internal(_) => ErrorClass::Transient,
            TransferError::Sink(e) if e.retryable => ErrorClass::Transient,
            TransferError::Sink(_) => ErrorClass::Invalid,
            TransferError::Decode(DecodeError::Truncated(_)) => ErrorClass::Transient,
            TransferError::Decode(
                DecodeError::KeyLength { .. } | DecodeError::IvLength { .. } | DecodeError::KeyMaterial(_),
            ) => ErrorClass::Invalid,
            TransferError::Decode(_) => ErrorClass::Integrity,
            TransferError::Invalid(_) => ErrorClass::Invalid,
        }
    }

    /// Recovers the typed error carried inside an `io::Error` raised by the reader chain; errors
    /// that the decompressor raised itself become [`DecodeError::CorruptGzip`] (`in_gzip`) or
    /// [`DecodeError::Truncated`].
    pub(crate) fn from_io(err: io::Error, in_gzip: bool) -> Self {
        if err.get_ref().is_some_and(|e| e.is::<TransferError>()) {
            if let Some(inner) = err.into_inner()
                && let Ok(t) = inner.downcast::<TransferError>()
            {
                return *t;
            }
            return TransferError::Internal("lost error".into());
        }
        if err.get_ref().is_some_and(|e| e.is::<DecodeError>()) {
            if let Some(inner) = err.into_inner()
                && let Ok(d) = inner.downcast::<DecodeError>()
            {
                return TransferError::Decode(*d);
            }
            return TransferError::Internal("lost error".into());
        }
        match err.kind() {
            io::ErrorKind::UnexpectedEof => {
                TransferError::Decode(DecodeError::Truncated("the compressed stream ended early"))
            }
            _ if in_gzip => TransferError::Decode(DecodeError::CorruptGzip(err.to_string())),
            _ => TransferError::Internal(err.to_string()),
        }
    }
}
