//! Serves documents over HTTP the way pre-signed S3 URLs do, with scripted faults.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How one path answers.
#[derive(Debug, Clone)]
pub enum Served {
    /// The bytes, with their `Content-Length`.
    Bytes(Bytes),
    /// A file streamed from disk (benchmark fixtures).
    File(PathBuf),
    /// 403 with S3's XML for an expired pre-signed URL.
    Expired,
    /// Announces the full length, sends only the first `sent` bytes, then drops the connection.
    Truncated {
        /// The full document.
        full: Bytes,
        /// How many bytes to send.
        sent: usize,
    },
    /// Sends only the first `sent` bytes of what was asked for (the whole body, or the `Range` asked)
    /// then drops the connection, this many more times; then serves the bytes, honouring `Range`.
    CutThen {
        /// Cuts left.
        cuts: u32,
        /// Bytes sent before each cut.
        sent: usize,
        /// The document.
        body: Bytes,
    },
    /// Answers `status` this many more times, then serves the bytes.
    FailThen {
        /// Failures left.
        failures: u32,
        /// The status to fail with.
        status: u16,
        /// The document once failures are used up.
        body: Bytes,
    },
}

type Docs = Arc<Mutex<HashMap<String, Served>>>;
/// Each request's document name and the `Range` it asked for.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A running document server. Stops when dropped.
pub struct DocServer {
    base: String,
    docs: Docs,
    log: Log,
    _stop: oneshot::Sender<()>,
}

impl DocServer {
    /// Starts on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let docs: Docs = Arc::default();
        let log: Log = Arc::default();
        let app = Router::new()
            .route("/docs/{name}", axum::routing::get(serve))
            .with_state((Arc::clone(&docs), Arc::clone(&log)));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        Ok(Self {
            base,
            docs,
            log,
            _stop: crate::serve_until_dropped(listener, app),
        })
    }

    /// The `Range` header of each request for `name`, in order (`None`: the whole document).
    pub fn ranges(&self, name: &str) -> Vec<Option<String>> {
        self.log
            .lock()
            .map(|log| log.iter().filter(|(n, _)| n == name).map(|(_, r)| r.clone()).collect())
            .unwrap_or_default()
    }

    /// Registers a document and returns its URL (with a fake signature query, like S3's).
    pub fn add(&self, name: &str, served: Served) -> String {
        if let Ok(mut docs) = self.docs.lock() {
            docs.insert(name.to_owned(), served);
        }
        format!("{}/docs/{name}?X-Amz-Signature=not-a-real-signature", self.base)
    }
}

/// The first byte of a `Range: bytes={n}-` header.
fn range_start(headers: &axum::http::HeaderMap) -> Option<usize> {
    headers
        .get(header::RANGE)?
        .to_str()
        .ok()?
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

/// `body` from `start` as S3 answers a range: 206 with its `Content-Range`, or the whole body.
fn ranged(body: Bytes, start: Option<usize>) -> Response {
    match start {
        Some(from) if from < body.len() => {
            let len = body.len();
            let mut response = (StatusCode::PARTIAL_CONTENT, body.slice(from..)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {from}-{}/{len}", len - 1)) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            response
        }
        _ => ([(header::CONTENT_TYPE, "binary/octet-stream")], body).into_response(),
    }
}

/// Announces `full`'s length, sends its first `sent` bytes, then drops the connection.
fn cut(full: Bytes, sent: usize, status: StatusCode) -> Response {
    let head = full.slice(..sent.min(full.len()));
    // The drop comes a moment after the bytes sent, so that the client receives them first.
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::iter(vec![Ok::<Bytes, std::io::Error>(head)]),
        futures_util::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Err(std::io::Error::other("connection dropped"))
        }),
    );
    let mut response = Body::from_stream(stream).into_response();
    *response.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&full.len().to_string()) {
        response.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    response
}

async fn serve(
    State((docs, log)): State<(Docs, Log)>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let start = range_start(&headers);
    if let Ok(mut log) = log.lock() {
        log.push((
            name.clone(),
            headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ));
    }
    let served = {
        let Ok(mut docs) = docs.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        match docs.get_mut(&name) {
            None => {
                return (
                    StatusCode::NOT_FOUND,
                    s3_error("NoSuchKey", "The specified key does not exist."),
                )
                    .into_response();
            }
            Some(Served::CutThen { cuts, sent, body }) if *cuts > 0 => {
                *cuts -= 1;
                let from = start.filter(|s| *s < body.len()).unwrap_or(0);
                let status = if from > 0 {
                    StatusCode::PARTIAL_CONTENT
                } else {
                    StatusCode::OK
                };
                let mut response = cut(body.slice(from..), *sent, status);
                if from > 0
                    && let Ok(v) = HeaderValue::from_str(&format!("bytes {from}-{}/{}", body.len() - 1, body.len()))
                {
                    response.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return response;
            }
            Some(Served::FailThen { failures, status, .. }) if *failures > 0 => {
                *failures -= 1;
                let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (code, s3_error("InternalError", "We encountered an internal error.")).into_response();
            }
            Some(s) => s.clone(),
        }
    };
    match served {
        Served::Bytes(b) | Served::FailThen { body: b, .. } | Served::CutThen { body: b, .. } => ranged(b, start),
        Served::File(path) => match tokio::fs::File::open(&path).await {
            Ok(file) => {
                let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
                let mut response =
                    Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)).into_response();
                if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
                    response.headers_mut().insert(header::CONTENT_LENGTH, v);
                }
                response
            }
            Err(_) => StatusCode::NOT_FOUND.into_response(),
        },
        Served::Expired => (StatusCode::FORBIDDEN, s3_error("AccessDenied", "Request has expired")).into_response(),
        // A document cut off whatever is asked: every answer, ranged or not, is the whole body cut.
        Served::Truncated { full, sent } => cut(full, sent, StatusCode::OK),
    }
}

fn s3_error(code: &str, message: &str) -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(header::CONTENT_TYPE, "application/xml")],
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ),
    )
}
