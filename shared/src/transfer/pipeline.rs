//! The asynchronous transfer of one document: HTTP body → blocking transform → S3 multipart.
//!
//! Three activities overlap, joined by bounded channels:
//!
//! ```text
//!  body pump (async)  --[≤ 16 chunks]-->  transform (blocking thread)  --[≤ 1 part]-->  uploader (async,
//!                                                                                     ≤ N parts in flight)
//! ```
//!
//! Peak memory is therefore about `(max_parts_in_flight + 2) × part_size` plus a few hundred KiB of
//! decoder buffers, whatever the document size. Nothing touches local disk.
//!
//! Visibility: multipart uploads are completed only after the transform has returned `Ok` — that is,
//! after the whole document has been read and verified (CBC padding, GCM tag, gzip/zip CRCs, size
//! ceiling). On any error every upload this transfer opened is aborted, so no partial or
//! unauthenticated object ever appears at a final key.

use std::io::{self, Read};
use std::time::Instant;

use bytes::{Buf, Bytes};
use chrono::Utc;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::columnar::ColumnKinds;
use super::conform::ColumnOrder;
use super::error::TransferError;
use super::http::{BodyStream, open_download};
use super::transform::{
    MIN_PART_SIZE, ObjectStart, ObjectStats, OutputMode, PartOutput, StoredAs, TransformLimits, TransformSpec,
    run_transform,
};
pub use crate::domain::document::{
    DEFAULT_MAX_EXPANSION_RATIO, DEFAULT_MAX_OUTPUT_BYTES, Document, DocumentRecord, StoredObject,
};
use crate::domain::source::DayColumn;
use crate::ports::{ObjectSink, SinkError, UploadedPart};

/// Default size of each part buffer.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// Default number of parts uploading at once.
pub const DEFAULT_PARTS_IN_FLIGHT: usize = 2;
const BODY_CHANNEL_CHUNKS: usize = 16;

/// Tuning of one transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransferOptions {
    /// Bytes per part for the first 1,000 parts (S3 minimum 5 MiB); grows for huge documents.
    pub part_size: usize,
    /// Parts uploading concurrently (at least 1).
    pub max_parts_in_flight: usize,
    /// Ceiling on decompressed bytes per document.
    pub max_output_bytes: u64,
    /// Ceiling on decompressed bytes per compressed byte (see [`DEFAULT_MAX_EXPANSION_RATIO`]).
    pub max_expansion_ratio: u32,
    /// Decompress, keep the compressed stream as delivered, or store rows as Parquet.
    pub output: OutputMode,
    /// The types of the report's columns (for Parquet; a column not in it is a string).
    #[serde(skip)]
    pub column_kinds: ColumnKinds,
    /// The column order TSV or CSV content of its format is stored in: its table's (see
    /// [`crate::transfer::conform`]); `None` stores the content as it is.
    #[serde(skip)]
    pub column_order: Option<ColumnOrder>,
    /// The column that dates each row of TSV or JSON content, to store each day's rows apart (see
    /// [`crate::transfer::split`]); `None` stores a document whole.
    #[serde(skip)]
    pub split_by_day: Option<DayColumn>,
    /// Waits before opening the download again after a transient failure, resuming where it stopped
    /// (see [`crate::transfer::http::RESUME_BACKOFFS`], the default): the document's own retry budget.
    #[serde(skip)]
    pub resume_backoffs: Vec<std::time::Duration>,
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self {
            part_size: DEFAULT_PART_SIZE,
            max_parts_in_flight: DEFAULT_PARTS_IN_FLIGHT,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_expansion_ratio: DEFAULT_MAX_EXPANSION_RATIO,
            output: OutputMode::Decompress,
            column_kinds: ColumnKinds::default(),
            column_order: None,
            split_by_day: None,
            resume_backoffs: super::http::RESUME_BACKOFFS.to_vec(),
        }
    }
}

/// Where a document's objects go: a key stem to which the transfer adds an extension, or under
/// which it places ZIP entries (`{stem}/{entry name}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// e.g. `sp-api/seller=A1/report_type=GET_X/dt=2026-11-22/run=abc/GET_X` — no leading `/`.
    pub key_stem: String,
}

/// Events from the transform thread to the uploader.
enum Event {
    Begin(ObjectStart),
    Part(Bytes),
    End(ObjectStats),
}

/// Feeds the transform thread from the body channel.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, TransferError>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        self.current.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

/// Sends the transform's events to the uploader, blocking while the uploader is busy.
struct ChannelOutput(mpsc::Sender<Event>);

impl ChannelOutput {
    fn send(&self, event: Event) -> Result<(), TransferError> {
        self.0
            .blocking_send(event)
            .map_err(|_| TransferError::Internal("the uploader stopped".into()))
    }
}

impl PartOutput for ChannelOutput {
    fn begin(&mut self, start: ObjectStart) -> Result<(), TransferError> {
        self.send(Event::Begin(start))
    }
    fn part(&mut self, data: Bytes) -> Result<(), TransferError> {
        self.send(Event::Part(data))
    }
    fn end(&mut self, stats: ObjectStats) -> Result<(), TransferError> {
        self.send(Event::End(stats))
    }
}

/// An object being uploaded.
struct OpenObject {
    key: String,
    entry_name: Option<String>,
    content_type: &'static str,
    upload_id: Option<String>,
    parts_sent: u32,
    parts: Vec<UploadedPart>,
    stats: Option<ObjectStats>,
    day: Option<chrono::NaiveDate>,
}

/// Moves one document from its URL into the sink. See the module docs for the guarantees.
///
/// Retrying a failed transfer with the same destination is safe: the same keys are written again
/// and nothing from the failed attempt is visible.
pub async fn transfer_document<S: ObjectSink>(
    http: &reqwest::Client,
    sink: &S,
    document: Document,
    destination: &Destination,
    options: &TransferOptions,
) -> Result<DocumentRecord, TransferError> {
    validate(destination, options)?;
    let started_at = Utc::now();
    let clock = Instant::now();
    let Document {
        source_id,
        url,
        encryption,
        compression,
        format,
    } = document;
    let encryption_label = encryption.label().to_owned();
    let body = open_download(http, &url, &options.resume_backoffs).await?;
    tracing::info!(source_id, encryption = %encryption_label, ?compression, "download started");

    let (body_tx, body_rx) = mpsc::channel(BODY_CHANNEL_CHUNKS);
    let (event_tx, event_rx) = mpsc::channel(1);
    let spec = TransformSpec {
        encryption,
        compression,
        format,
        output: options.output,
        column_kinds: options.column_kinds.clone(),
        column_order: options.column_order.clone(),
        split_by_day: options.split_by_day.clone(),
    };
    let limits = TransformLimits {
        // Parquet is about a third of the text it encodes, and its encoder holds a row group: S3's
        // smallest parts keep the whole within the same bound as text.
        part_size: match options.output {
            OutputMode::Parquet => options.part_size.min(MIN_PART_SIZE),
            _ => options.part_size,
        },
        max_output_bytes: options.max_output_bytes,
        max_expansion_ratio: options.max_expansion_ratio,
    };
    // Parquet's encoding, not its upload, is the limit (a third of the text's bytes at half its
    // speed): one part uploading while the next fills keeps pace, and leaves room for the encoder.
    let in_flight = match options.output {
        OutputMode::Parquet => 1,
        _ => options.max_parts_in_flight,
    };
    let transform = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx: body_rx,
            current: Bytes::new(),
        };
        run_transform(reader, spec, &limits, &mut ChannelOutput(event_tx))
    });

    let mut objects = Vec::new();
    let (_, transformed, uploaded) = tokio::join!(
        pump(body, body_tx),
        transform,
        upload(sink, destination, in_flight, event_rx, &mut objects),
    );
    let transformed = transformed
        .map_err(|e| TransferError::Internal(format!("transform task: {e}")))
        .and_then(|r| r);

    let outcome = match (transformed, uploaded) {
        // A document whose every object counted zero rows (a header only, an empty JSON array) is
        // data of nothing: none of it is stored, and the record lists no object.
        (Ok(summary), Ok(())) if holds_no_rows(&objects) => {
            tracing::info!(source_id, "the document holds no data rows; nothing is stored");
            abort_all(sink, &objects).await;
            objects.clear();
            Ok(summary)
        }
        (Ok(summary), Ok(())) => complete_all(sink, &objects).await.map(|()| summary),
        (_, Err(e)) | (Err(e), Ok(())) => Err(e),
    };
    match outcome {
        Ok(summary) => {
            let finished_at = Utc::now();
            let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
            let columns = objects
                .iter()
                .find_map(|o| o.stats.as_ref().and_then(|s| s.columns.clone()));
            let document_columns = objects
                .iter()
                .find_map(|o| o.stats.as_ref().and_then(|s| s.document_columns.clone()));
            let stored: Vec<StoredObject> = objects.into_iter().map(stored_object).collect();
            tracing::info!(
                source_id,
                bytes_in = summary.bytes_in,
                bytes_out = summary.bytes_out,
                objects = stored.len(),
                duration_ms,
                "document stored"
            );
            Ok(DocumentRecord {
                source_id,
                encryption: encryption_label,
                compression,
                output: options.output,
                bytes_in: summary.bytes_in,
                bytes_out: summary.bytes_out,
                objects: stored,
                columns,
                document_columns,
                started_at,
                finished_at,
                duration_ms,
            })
        }
        Err(e) => {
            tracing::warn!(source_id, error = %e, "transfer failed; aborting its uploads");
            abort_all(sink, &objects).await;
            Err(e)
        }
    }
}

fn validate(destination: &Destination, options: &TransferOptions) -> Result<(), TransferError> {
    let stem = &destination.key_stem;
    if stem.is_empty() || stem.starts_with('/') || stem.ends_with('/') || stem.len() > 900 {
        return Err(TransferError::Invalid(
            "the key stem must be 1–900 bytes, without a leading or trailing '/'".into(),
        ));
    }
    if options.max_parts_in_flight == 0 {
        return Err(TransferError::Invalid("max_parts_in_flight must be at least 1".into()));
    }
    Ok(())
}

/// Copies the HTTP body into the transform's channel. Stops early when the transform has stopped
/// reading (its error is the one reported).
async fn pump(mut body: BodyStream, tx: mpsc::Sender<Result<Bytes, TransferError>>) {
    while let Some(chunk) = body.next().await {
        let failed = chunk.is_err();
        if tx.send(chunk).await.is_err() || failed {
            return;
        }
    }
}

/// Receives the transform's events and uploads parts, at most `max_in_flight` at a time.
/// Everything it opens is recorded in `objects`, so the caller can complete or abort it.
async fn upload<S: ObjectSink>(
    sink: &S,
    destination: &Destination,
    max_in_flight: usize,
    mut rx: mpsc::Receiver<Event>,
    objects: &mut Vec<OpenObject>,
) -> Result<(), TransferError> {
    let mut in_flight = FuturesUnordered::new();
    let mut receiving = true;
    // The document's columns are its first object's: later objects (a report's days, a ZIP's
    // entries) do not keep theirs, so that a document of thousands of objects holds them once.
    let (mut have_columns, mut have_document_columns) = (false, false);
    while receiving || !in_flight.is_empty() {
        tokio::select! {
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                let (index, part): (usize, UploadedPart) = done?;
                objects[index].parts.push(part);
            }
            event = rx.recv(), if receiving && in_flight.len() < max_in_flight => match event {
                None => receiving = false,
                Some(Event::Begin(start)) => {
                    let key = object_key(destination, &start, objects);
                    objects.push(OpenObject {
                        key,
                        entry_name: start.entry_name,
                        content_type: start.stored_as.content_type(),
                        upload_id: None,
                        parts_sent: 0,
                        parts: Vec::new(),
                        stats: None,
                        day: start.day,
                    });
                }
                Some(Event::Part(data)) => {
                    let index = objects.len().checked_sub(1).ok_or_else(|| {
                        TransferError::Internal("a part arrived before its object".into())
                    })?;
                    let object = &mut objects[index];
                    let upload_id = match &object.upload_id {
                        Some(id) => id.clone(),
                        None => {
                            let id = sink.begin_upload(&object.key, object.content_type).await?;
                            object.upload_id = Some(id.clone());
                            id
                        }
                    };
                    object.parts_sent += 1;
                    let (key, number) = (object.key.clone(), object.parts_sent);
                    tracing::debug!(key, part = number, bytes = data.len(), "uploading part");
                    in_flight.push(async move {
                        let part = upload_part_retrying(sink, &key, &upload_id, number, data).await?;
                        Ok::<_, TransferError>((index, part))
                    });
                }
                Some(Event::End(mut stats)) => {
                    if have_columns {
                        stats.columns = None;
                    }
                    if have_document_columns {
                        stats.document_columns = None;
                    }
                    have_columns |= stats.columns.is_some();
                    have_document_columns |= stats.document_columns.is_some();
                    if let Some(object) = objects.last_mut() {
                        object.stats = Some(stats);
                    }
                }
            },
        }
    }
    Ok(())
}

/// Waits before sending a part again after the SDK's own retries failed it (S3's `SlowDown`, a 5xx,
/// a reset connection): a part is retried here, a few times with backoff, instead of the whole
/// document being aborted and downloaded again from its first byte.
const PART_RETRY_BACKOFFS: [std::time::Duration; 4] = [
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(2),
    std::time::Duration::from_secs(4),
    std::time::Duration::from_secs(8),
];

/// Uploads one part, sending it again after each of [`PART_RETRY_BACKOFFS`] while S3 answers with a
/// retryable error; any other error, or the last, is returned.
async fn upload_part_retrying<S: ObjectSink>(
    sink: &S,
    key: &str,
    upload_id: &str,
    number: u32,
    data: Bytes,
) -> Result<UploadedPart, SinkError> {
    let mut backoffs = PART_RETRY_BACKOFFS.iter();
    loop {
        match sink.upload_part(key, upload_id, number, data.clone()).await {
            Err(e) if e.retryable => match backoffs.next() {
                Some(wait) => {
                    tracing::warn!(key, part = number, error = %e, wait_s = wait.as_secs(), "a part failed; sending it again");
                    tokio::time::sleep(*wait).await;
                }
                None => return Err(e),
            },
            other => return other,
        }
    }
}

/// The key for a new object: the stem plus an extension, or `{stem}/{entry}` for ZIP entries.
/// Entry names are untrusted: `..`, `.`, empty segments and control characters are removed, and a
/// name that collides with an earlier one gets a numeric suffix.
fn object_key(destination: &Destination, start: &ObjectStart, earlier: &[OpenObject]) -> String {
    let stem = &destination.key_stem;
    let base = match (&start.entry_name, start.stored_as) {
        (Some(name), stored_as) => {
            let clean = sanitize_entry_name(name);
            let clean = if clean.is_empty() {
                format!("entry-{:05}", earlier.len() + 1)
            } else {
                clean
            };
            if stored_as == StoredAs::Parquet {
                // An entry's rows stored as Parquet: its text extension gives way to `.parquet`.
                let text = [".csv", ".tsv", ".txt", ".json", ".jsonl"];
                let bare = text.iter().find_map(|ext| clean.strip_suffix(ext)).unwrap_or(&clean);
                format!("{stem}/{bare}{}.parquet", file_suffix(start.file))
            } else {
                format!("{stem}/{clean}")
            }
        }
        (None, stored_as) if let Some(day) = start.day => {
            let extension = match stored_as {
                StoredAs::Parquet => "parquet",
                StoredAs::Content(format) | StoredAs::Gzip(format) => format.extension(),
                StoredAs::Zip => "zip",
            };
            format!("{stem}-{day}-{:03}.{extension}", start.file + 1)
        }
        (None, StoredAs::Content(format)) => format!("{stem}.{}", format.extension()),
        (None, StoredAs::Gzip(format)) => format!("{stem}.{}.gz", format.extension()),
        (None, StoredAs::Zip) => format!("{stem}.zip"),
        (None, StoredAs::Parquet) => format!("{stem}{}.parquet", file_suffix(start.file)),
    };
    let mut key = base.clone();
    let mut n = 1;
    while earlier.iter().any(|o| o.key == key) {
        n += 1;
        key = format!("{base}~{n}");
    }
    key
}

/// What tells the files of one entry apart: nothing for the first, `-2`, `-3`… for the next.
fn file_suffix(file: u32) -> String {
    if file == 0 {
        String::new()
    } else {
        format!("-{}", file + 1)
    }
}

/// Turns an untrusted archive entry name into a safe relative key suffix.
pub fn sanitize_entry_name(name: &str) -> String {
    name.replace('\\', "/")
        .split('/')
        .filter(|seg| !seg.is_empty() && *seg != "." && *seg != "..")
        .map(|seg| seg.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|seg| !seg.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether the document produced objects and every one counted zero rows.
fn holds_no_rows(objects: &[OpenObject]) -> bool {
    !objects.is_empty()
        && objects
            .iter()
            .all(|o| o.stats.as_ref().is_some_and(|s| s.rows == Some(0)))
}

/// Makes every object visible: completes multipart uploads, puts empty objects.
async fn complete_all<S: ObjectSink>(sink: &S, objects: &[OpenObject]) -> Result<(), TransferError> {
    for object in objects {
        match &object.upload_id {
            Some(upload_id) => {
                let mut parts = object.parts.clone();
                parts.sort_by_key(|p| p.part_number);
                sink.complete_upload(&object.key, upload_id, &parts).await?;
            }
            None => sink.put_object(&object.key, Bytes::new(), object.content_type).await?,
        }
    }
    Ok(())
}

/// Aborts every upload still open. Failures are logged, not returned: the bucket's lifecycle rule
/// for incomplete multipart uploads is the backstop.
async fn abort_all<S: ObjectSink>(sink: &S, objects: &[OpenObject]) {
    for object in objects {
        if let Some(upload_id) = &object.upload_id
            && let Err(e) = sink.abort_upload(&object.key, upload_id).await
        {
            tracing::error!(key = object.key, error = %e, "could not abort a multipart upload");
        }
    }
}

fn stored_object(object: OpenObject) -> StoredObject {
    let stats = object.stats.unwrap_or(ObjectStats {
        bytes: 0,
        sha256: String::new(),
        rows: None,
        parts: 0,
        columns: None,
        bad_values: None,
        document_columns: None,
    });
    StoredObject {
        key: object.key,
        entry_name: object.entry_name,
        bytes: stats.bytes,
        sha256: stats.sha256,
        rows: stats.rows,
        bad_values: stats.bad_values.filter(|n| *n > 0),
        content_type: object.content_type.to_owned(),
        parts: stats.parts,
        day: object.day,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(entry_name: Option<&str>, stored_as: StoredAs, file: u32) -> String {
        let destination = Destination {
            key_stem: "sp/run=r/00000".into(),
        };
        let start = ObjectStart {
            entry_name: entry_name.map(str::to_owned),
            stored_as,
            file,
            day: None,
        };
        object_key(&destination, &start, &[])
    }

    #[test]
    fn the_files_one_entrys_parquet_rows_are_split_into_are_told_apart_by_a_suffix_after_the_first() {
        assert_eq!(key(None, StoredAs::Parquet, 0), "sp/run=r/00000.parquet");
        assert_eq!(key(None, StoredAs::Parquet, 1), "sp/run=r/00000-2.parquet");
        assert_eq!(
            key(Some("a/rows.csv"), StoredAs::Parquet, 0),
            "sp/run=r/00000/a/rows.parquet"
        );
        assert_eq!(
            key(Some("a/rows.csv"), StoredAs::Parquet, 2),
            "sp/run=r/00000/a/rows-3.parquet"
        );
    }

    #[test]
    fn a_days_objects_are_named_after_their_day_and_their_place_among_the_documents_objects() {
        let destination = Destination {
            key_stem: "ads/run=r/00000".into(),
        };
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 21);
        let start = |stored_as, file| ObjectStart {
            entry_name: None,
            stored_as,
            file,
            day,
        };
        let text = StoredAs::Content(crate::domain::document::ContentFormat::JsonLines);
        assert_eq!(
            object_key(&destination, &start(text, 0), &[]),
            "ads/run=r/00000-2026-11-21-001.jsonl"
        );
        assert_eq!(
            object_key(&destination, &start(StoredAs::Parquet, 4), &[]),
            "ads/run=r/00000-2026-11-21-005.parquet"
        );
    }
}
