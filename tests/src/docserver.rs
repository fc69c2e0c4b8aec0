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

/// A running document server. Stops when dropped.
pub struct DocServer {
    base: String,
    docs: Docs,
    _stop: oneshot::Sender<()>,
}

impl DocServer {
    /// Starts on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let docs: Docs = Arc::default();
        let app = Router::new()
            .route("/docs/{name}", axum::routing::get(serve))
            .with_state(Arc::clone(&docs));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        Ok(Self {
            base,
            docs,
            _stop: crate::serve_until_dropped(listener, app),
        })
    }

    /// Registers a document and returns its URL (with a fake signature query, like S3's).
    pub fn add(&self, name: &str, served: Served) -> String {
        if let Ok(mut docs) = self.docs.lock() {
            docs.insert(name.to_owned(), served);
        }
        format!("{}/docs/{name}?X-Amz-Signature=not-a-real-signature", self.base)
    }
}

async fn serve(State(docs): State<Docs>, Path(name): Path<String>) -> Response {
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
            Some(Served::FailThen { failures, status, .. }) if *failures > 0 => {
                *failures -= 1;
                let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (code, s3_error("InternalError", "We encountered an internal error.")).into_response();
            }
            Some(s) => s.clone(),
        }
    };
    match served {
        Served::Bytes(b) | Served::FailThen { body: b, .. } => {
            ([(header::CONTENT_TYPE, "binary/octet-stream")], b).into_response()
        }
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
        Served::Truncated { full, sent } => {
            let head = full.slice(..sent.min(full.len()));
            let stream = futures_util::stream::iter(vec![
                Ok::<Bytes, std::io::Error>(head),
                Err(std::io::Error::other("connection dropped")),
            ]);
            let mut response = Body::from_stream(stream).into_response();
            if let Ok(v) = HeaderValue::from_str(&full.len().to_string()) {
                response.headers_mut().insert(header::CONTENT_LENGTH, v);
            }
            response
        }
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
