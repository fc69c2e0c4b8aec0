//! Pre-signed downloads: the documents every API points at, served as S3 serves them.
#![allow(clippy::result_large_err)]

use std::io::Write;

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::{FileBody, Sim, SimFile};
use crate::fixtures::{CbcEncryptWriter, SpApiOrdersReport};

use super::common::*;

pub(super) fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

/// Writes into a channel as a download body, in chunks of 64 KiB.
pub(super) struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 << 10 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// The generated orders report of a document: its purchase dates on its window's days.
pub(super) fn orders_report(bytes: u64, seed: u64, days: Option<(chrono::NaiveDate, u32)>) -> SpApiOrdersReport {
    let report = SpApiOrdersReport::new(bytes, seed);
    match days {
        Some((first, days)) => report.on_days(first, days),
        None => report,
    }
}

pub(super) fn generated_report(
    bytes: u64,
    seed: u64,
    key: Option<([u8; 32], [u8; 16])>,
    days: Option<(chrono::NaiveDate, u32)>,
) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let out = ChannelWriter { tx, buf: Vec::new() };
        let result = (|| -> std::io::Result<()> {
            let mut report = orders_report(bytes, seed, days);
            match key {
                Some((k, iv)) => {
                    let mut gz =
                        flate2::write::GzEncoder::new(CbcEncryptWriter::new(out, &k, &iv), flate2::Compression::new(6));
                    std::io::copy(&mut report, &mut gz)?;
                    gz.finish()?.finish()?.flush()
                }
                None => {
                    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::new(6));
                    std::io::copy(&mut report, &mut gz)?;
                    gz.finish()?.flush()
                }
            }
        })();
        if let Err(e) = result {
            tracing::debug!(error = %e, "generated download ended early");
        }
    });
    Body::from_stream(tokio_stream_from(rx))
}

pub(super) fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A body fault of a download: cut off after some bytes, or one byte flipped.
#[derive(Clone, Copy)]
enum BodyFault {
    Cut(u64),
    Tamper,
}

pub async fn download(AxState(sim): AxState<Sim>, Path(id): Path<String>, call: Call) -> Response {
    let mut found: Option<SimFile> = None;
    // Body faults are taken here; `run` answers only status faults.
    let body_fault = sim.lock().take_body_fault("file.download").map(|f| match f.cut_after {
        Some(n) => BodyFault::Cut(n),
        None => BodyFault::Tamper,
    });
    let response = run(&sim, "file.download", &call, |state, _| match state.files.get(&id) {
        None => s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist."),
        Some(f) if f.expires_at < state.now() => s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired"),
        Some(f) => {
            found = Some(f.clone());
            if body_fault.is_none() {
                state.downloaded.insert(id.clone());
            }
            StatusCode::OK.into_response()
        }
    });
    let Some(file) = found.filter(|_| response.status() == StatusCode::OK) else {
        return response;
    };
    let body = match file.body {
        FileBody::Bytes(b) => Body::from(b),
        FileBody::SpReport { bytes, seed, key, days } => generated_report(bytes, seed, key, days),
    };
    let body = match body_fault {
        None => body,
        Some(fault) => faulty(body, fault),
    };
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(enc) = file.content_encoding {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    response
}

/// `body` with `fault` applied: cut off (the connection reset) after some bytes, or one byte flipped.
fn faulty(body: Body, fault: BodyFault) -> Body {
    use futures_util::StreamExt as _;
    let mut sent: u64 = 0;
    let stream = body.into_data_stream().map(move |chunk| {
        let mut chunk = chunk.map_err(std::io::Error::other)?;
        let start = sent;
        sent += chunk.len() as u64;
        match fault {
            BodyFault::Cut(limit) if sent > limit => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "simulated connection reset",
            )),
            BodyFault::Tamper if start <= 100 && sent > 100 => {
                let mut bytes = chunk.to_vec();
                let at = usize::try_from(100 - start).unwrap_or(0).min(bytes.len() - 1);
                bytes[at] ^= 0x5a;
                chunk = Bytes::from(bytes);
                Ok(chunk)
            }
            _ => Ok(chunk),
        }
    });
    Body::from_stream(stream)
}
