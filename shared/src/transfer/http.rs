//! Downloads from pre-signed URLs.
//!
//! The client never decompresses on its own (no `gzip` feature): SP-API can label a gzip document
//! `Content-Encoding: gzip` or `identity`, and the transfer decides from the document metadata. Errors
//! are stripped of the URL before they leave this module.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::domain::document::{DecodeError, DownloadUrl};
use crate::transfer::TransferError;

/// A download body: chunks in order, or the error that ended it.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, TransferError>> + Send>>;

/// An HTTP client configured for document downloads: 10 s to connect, 60 s without a byte before a
/// read times out, no overall deadline (multi-GB documents take minutes), HTTPS through rustls.
pub fn download_client() -> Result<reqwest::Client, TransferError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("amzpipe/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| TransferError::Internal(format!("building the HTTP client: {}", e.without_url())))
}

/// Sends the GET and checks the status. A 403 is [`TransferError::UrlExpired`]: that is how S3
/// answers an expired pre-signed URL.
pub async fn open_download(client: &reqwest::Client, url: &DownloadUrl) -> Result<BodyStream, TransferError> {
    let response = client
        .get(url.expose())
        .send()
        .await
        .map_err(|e| TransferError::Network(e.without_url().to_string()))?;
    let status = response.status();
    if status == reqwest::StatusCode::FORBIDDEN {
        return Err(TransferError::UrlExpired);
    }
    if !status.is_success() {
        return Err(TransferError::Http {
            status: status.as_u16(),
        });
    }
    Ok(Box::pin(response.bytes_stream().map(|chunk| {
        chunk.map_err(|e| {
            if e.is_body() || e.is_decode() {
                TransferError::Decode(DecodeError::Truncated(
                    "the download ended before the whole document arrived",
                ))
            } else {
                TransferError::Network(e.without_url().to_string())
            }
        })
    })))
}
