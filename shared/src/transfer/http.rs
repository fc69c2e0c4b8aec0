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

/// Waits before opening a download again after a transient failure (a 5xx or 429, a network error, a
/// body cut off): a budget of its own for each document, spent inside the step (about 15 s in all),
/// so that one bad document does not spend a retry of the whole step, and the bytes already received
/// are not fetched again.
pub const RESUME_BACKOFFS: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
];

/// Opens the download and returns its body. A transient failure, when the download opens or while
/// its body streams, is met by opening it again after each of `backoffs` (the transfer's default is
/// [`RESUME_BACKOFFS`]), from the first byte not yet received: with `Range: bytes={n}-` (a `206` whose `Content-Range` starts there), or,
/// from a server that ignores ranges, the whole body with its first `n` bytes skipped. What the
/// caller reads is the document's bytes, in order, each once. A 403 is [`TransferError::UrlExpired`]
/// at once: that is how S3 answers an expired pre-signed URL.
pub async fn open_download(
    client: &reqwest::Client,
    url: &DownloadUrl,
    backoffs: &[Duration],
) -> Result<BodyStream, TransferError> {
    let mut state = Resuming {
        client: client.clone(),
        url: url.clone(),
        received: 0,
        backoffs: backoffs.iter().copied().collect(),
        body: None,
    };
    // The first open is made here, so that a refusal (an expired URL, a 404) is the caller's at once.
    state.reopen().await?;
    Ok(Box::pin(futures_util::stream::unfold(
        Some(state),
        |state| async move {
            let mut state = state?;
            match state.next_chunk().await {
                Some(Ok(chunk)) => Some((Ok(chunk), Some(state))),
                Some(Err(e)) => Some((Err(e), None)),
                None => None,
            }
        },
    )))
}

/// A download that resumes where it stopped.
struct Resuming {
    client: reqwest::Client,
    url: DownloadUrl,
    received: u64,
    backoffs: std::collections::VecDeque<Duration>,
    body: Option<BodyStream>,
}

impl Resuming {
    /// Opens the download from the first byte not received, waiting out transient failures while the
    /// budget lasts.
    async fn reopen(&mut self) -> Result<(), TransferError> {
        loop {
            match open_at(&self.client, &self.url, self.received).await {
                Ok(body) => {
                    self.body = Some(body);
                    return Ok(());
                }
                Err(e) => self.wait_after(e).await?,
            }
        }
    }

    /// Waits the next backoff after `e` when it is transient and the budget lasts; `e` otherwise.
    async fn wait_after(&mut self, e: TransferError) -> Result<(), TransferError> {
        if !resumable(&e) {
            return Err(e);
        }
        let Some(wait) = self.backoffs.pop_front() else {
            return Err(e);
        };
        tracing::warn!(error = %e, received = self.received, wait_s = wait.as_secs(), "the download failed; opening it again from where it stopped");
        tokio::time::sleep(wait).await;
        Ok(())
    }

    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransferError>> {
        loop {
            let body = self.body.as_mut()?;
            match body.next().await {
                Some(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    return Some(Ok(chunk));
                }
                Some(Err(e)) => {
                    self.body = None;
                    if let Err(e) = self.wait_after(e).await {
                        return Some(Err(e));
                    }
                    if let Err(e) = self.reopen().await {
                        return Some(Err(e));
                    }
                }
                None => return None,
            }
        }
    }
}

/// Whether a failed download may succeed when opened again: a 5xx or 429, a network error, a body cut
/// off before its end.
fn resumable(e: &TransferError) -> bool {
    match e {
        TransferError::Http { status } => *status >= 500 || *status == 429,
        TransferError::Network(_) => true,
        TransferError::Decode(DecodeError::Truncated(_)) => true,
        _ => false,
    }
}

/// Sends the GET for the body from byte `from` and checks the status.
async fn open_at(client: &reqwest::Client, url: &DownloadUrl, from: u64) -> Result<BodyStream, TransferError> {
    let mut request = client.get(url.expose());
    if from > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={from}-"));
    }
    let response = request
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
    // A 206 must start where it was asked to; a 200 is the whole body, whose first bytes were read.
    let skip = match status {
        reqwest::StatusCode::PARTIAL_CONTENT => {
            let starts = response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if starts != Some(from) {
                return Err(TransferError::Decode(DecodeError::Truncated(
                    "the resumed download did not start where the first one stopped",
                )));
            }
            0
        }
        _ => from,
    };
    let chunks = response.bytes_stream().map(|chunk| {
        chunk.map_err(|e| {
            if e.is_body() || e.is_decode() {
                TransferError::Decode(DecodeError::Truncated(
                    "the download ended before the whole document arrived",
                ))
            } else {
                TransferError::Network(e.without_url().to_string())
            }
        })
    });
    Ok(Box::pin(skip_bytes(chunks, skip)))
}

/// `chunks` without their first `skip` bytes.
fn skip_bytes(
    chunks: impl Stream<Item = Result<Bytes, TransferError>> + Send + 'static,
    skip: u64,
) -> impl Stream<Item = Result<Bytes, TransferError>> + Send + 'static {
    chunks
        .scan(skip, |left, chunk| {
            let out = chunk.map(|mut bytes| {
                let drop = usize::try_from(*left).unwrap_or(usize::MAX).min(bytes.len());
                *left -= drop as u64;
                bytes.split_off(drop)
            });
            futures_util::future::ready(Some(out))
        })
        .filter(|chunk| futures_util::future::ready(!matches!(chunk, Ok(bytes) if bytes.is_empty())))
}
