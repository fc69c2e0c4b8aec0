//! The synchronous heart of the transfer: ciphertext in, parts of output objects out.
//!
//! [`run_transform`] chains `io::Read` adapters — byte counting → decryption → gzip / zip / nothing —
//! and cuts what comes out into parts handed to a [`PartOutput`]. It runs on a blocking thread (it is
//! CPU-bound: inflate is the limit), fed by the HTTP body through a bounded channel, so memory is a
//! few part buffers whatever the document size.
//!
//! Contract: parts and object boundaries are emitted as they are produced, **before** the document is
//! verified. The document is verified (CBC padding, GCM tag, gzip and zip CRCs, size ceiling) only
//! when `run_transform` returns `Ok`; a caller must not make any output visible before that.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use chrono::NaiveDate;
use flate2::bufread::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::columnar::{ColumnKinds, Encoded, PARQUET_CONTENT_TYPE, ParquetEncoder, RowFormat};
use super::conform::{ColumnOrder, ColumnsFound, Conform};
use super::crypto::{CbcDecryptReader, GcmDecryptReader};
use super::error::{DecodeError, TransferError};
use super::header::HeaderCapture;
use super::jsonl::{JsonArrayLines, JsonStrings};
use super::split::{DayRecords, SPLIT_BUFFER_BYTES};
use super::unzip::{EntryReader, ZipStream};
pub use crate::domain::document::{
    Compression, ContentFormat, EXPANSION_CHECK_FLOOR, Encryption, MAX_ZIP_ENTRIES, OutputMode,
};
use crate::domain::source::DayColumn;

/// S3's smallest allowed part (all parts but the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// S3's largest allowed part.
pub const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;
/// S3's limit on the number of parts of one multipart upload.
pub const MAX_PARTS: u32 = 10_000;
/// Every this many parts, the part size doubles (see [`part_size_for`]).
pub const PARTS_PER_SIZE_STEP: u32 = 1_000;
const READ_BUFFER: usize = 256 * 1024;

/// What is stored for one output object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredAs {
    /// Decompressed (or never compressed) content of this format.
    Content(ContentFormat),
    /// The gzip stream as delivered, of content in this format.
    Gzip(ContentFormat),
    /// The ZIP archive as delivered.
    Zip,
    /// The rows of TSV, CSV or JSON content, as Parquet (see [`crate::transfer::columnar`]).
    Parquet,
}

impl StoredAs {
    /// The MIME type stored with the object.
    pub fn content_type(self) -> &'static str {
        match self {
            StoredAs::Content(f) => f.content_type(),
            StoredAs::Gzip(_) => "application/gzip",
            StoredAs::Zip => "application/zip",
            StoredAs::Parquet => PARQUET_CONTENT_TYPE,
        }
    }
}

/// Everything the transform needs to know about one document.
#[derive(Debug)]
pub struct TransformSpec {
    /// Encryption applied by the source.
    pub encryption: Encryption,
    /// Compression applied by the source.
    pub compression: Compression,
    /// Format of the content once decompressed.
    pub format: ContentFormat,
    /// Decompress, keep the compressed stream, or store rows as Parquet.
    pub output: OutputMode,
    /// The types of the report's columns, for Parquet.
    pub column_kinds: ColumnKinds,
    /// The column order a TSV or CSV document of its format is stored in (see
    /// [`crate::transfer::conform`]); `None` stores it as it is.
    pub column_order: Option<ColumnOrder>,
    /// The column that dates each row of a TSV or JSON document, whose days are then stored apart
    /// (see [`crate::transfer::split`]); `None` stores it whole.
    pub split_by_day: Option<DayColumn>,
}

/// Size limits of the transform.
#[derive(Debug, Clone, Copy)]
pub struct TransformLimits {
    /// Size of the first parts; grows per [`part_size_for`].
    pub part_size: usize,
    /// Ceiling on all decompressed output of one document (protection against gzip and zip bombs).
    pub max_output_bytes: u64,
    /// Ceiling on decompressed output per compressed byte read, checked past
    /// [`EXPANSION_CHECK_FLOOR`] of output; applied to a kept-compressed gzip stream too (it is
    /// inflated on the side to be measured and verified).
    pub max_expansion_ratio: u32,
}

/// The size of part `part_number` (1-based) for a base size: doubles every
/// [`PARTS_PER_SIZE_STEP`] parts, capped at [`MAX_PART_SIZE`]. With the 8 MiB default, 1,000 parts
/// carry 8 GiB and 10,000 parts reach S3's 5 TiB object limit, while documents under 8 GiB keep
/// 8 MiB buffers.
pub fn part_size_for(base: usize, part_number: u32) -> usize {
    let doublings = (part_number.saturating_sub(1) / PARTS_PER_SIZE_STEP).min(20);
    base.saturating_mul(1usize << doublings).min(MAX_PART_SIZE)
}

/// The start of one output object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStart {
    /// The ZIP entry name for archive entries; `None` for a whole document.
    pub entry_name: Option<String>,
    /// What the object holds.
    pub stored_as: StoredAs,
    /// Which of the files one entry's rows are split into this object is, from 0 (Parquet closes a
    /// file every [`crate::transfer::columnar::ROW_GROUPS_PER_FILE`] row groups; a report split by
    /// day numbers its objects across its days); 0 for the rest.
    pub file: u32,
    /// The data day of every row in the object, for a report split by day (see
    /// [`crate::transfer::split`]).
    pub day: Option<NaiveDate>,
}

impl ObjectStart {
    /// The start of an object that holds a whole entry (or document).
    pub fn whole(entry_name: Option<String>, stored_as: StoredAs) -> Self {
        Self {
            entry_name,
            stored_as,
            file: 0,
            day: None,
        }
    }
}

/// What was produced for one output object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStats {
    /// Bytes stored.
    pub bytes: u64,
    /// SHA-256 of the bytes stored, lowercase hex.
    pub sha256: String,
    /// Data rows (header excluded) for row-oriented text formats.
    pub rows: Option<u64>,
    /// Number of parts emitted.
    pub parts: u32,
    /// The column names of a TSV, CSV or JSON Lines object: its header, or its first row's keys.
    pub columns: Option<Vec<String>>,
    /// Values of a Parquet object stored as null because their type refused them (see
    /// [`crate::transfer::columnar`]).
    pub bad_values: Option<u64>,
    /// The document's own columns, when it was stored in another order (see
    /// [`crate::transfer::conform`]).
    pub document_columns: Option<Vec<String>>,
}

/// Receives the transform's output in order: `begin`, zero or more `part`s, `end`, per object.
pub trait PartOutput {
    /// A new object starts.
    fn begin(&mut self, start: ObjectStart) -> Result<(), TransferError>;
    /// The next part of the current object (never empty).
    fn part(&mut self, data: Bytes) -> Result<(), TransferError>;
    /// The current object is complete (but the document is not yet verified).
    fn end(&mut self, stats: ObjectStats) -> Result<(), TransferError>;
}

/// What a successful transform reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformSummary {
    /// Bytes read from the source (the encrypted, compressed document).
    pub bytes_in: u64,
    /// Bytes emitted over all objects.
    pub bytes_out: u64,
}

/// Counts the bytes flowing through it into a shared cell.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Counts records: newlines, optionally ignoring those inside RFC 4180 double quotes.
struct RowCounter {
    quoted: bool,
    in_quotes: bool,
    newlines: u64,
    last: Option<u8>,
}

impl RowCounter {
    fn new(quoted: bool) -> Self {
        Self {
            quoted,
            in_quotes: false,
            newlines: 0,
            last: None,
        }
    }

    fn update(&mut self, data: &[u8]) {
        let Some(&last) = data.last() else { return };
        self.last = Some(last);
        if !self.quoted {
            self.newlines += memchr::memchr_iter(b'\n', data).count() as u64;
            return;
        }
        for i in memchr::memchr2_iter(b'"', b'\n', data) {
            if data[i] == b'"' {
                self.in_quotes = !self.in_quotes;
            } else if !self.in_quotes {
                self.newlines += 1;
            }
        }
    }

    fn records(&self) -> u64 {
        match self.last {
            None => 0,
            Some(b'\n') => self.newlines,
            Some(_) => self.newlines + 1,
        }
    }
}

/// Counts the elements of a JSON document's top-level array (Ads reports are one array of row
/// objects), in a stream: brackets and commas inside strings are skipped. A document whose top
/// level is not an array has no row count.
#[derive(Default)]
struct JsonArrayCounter {
    started: bool,
    not_an_array: bool,
    depth: u32,
    strings: JsonStrings,
    expecting: bool,
    elements: u64,
}

impl JsonArrayCounter {
    fn update(&mut self, data: &[u8]) {
        for &b in data {
            if self.not_an_array {
                return;
            }
            if self.strings.inside(b) {
                continue;
            }
            if b.is_ascii_whitespace() {
                continue;
            }
            if !self.started {
                self.started = true;
                if b == b'[' {
                    self.depth = 1;
                    self.expecting = true;
                } else {
                    self.not_an_array = true;
                }
                continue;
            }
            if self.depth == 1 {
                match b {
                    b',' => {
                        self.expecting = true;
                        continue;
                    }
                    b']' => {
                        self.depth = 0;
                        continue;
                    }
                    _ if self.expecting => {
                        self.elements += 1;
                        self.expecting = false;
                    }
                    _ => {}
                }
            }
            match b {
                b'"' => self.strings.open(),
                b'[' | b'{' => self.depth += 1,
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    fn elements(&self) -> Option<u64> {
        (!self.not_an_array).then_some(self.elements)
    }
}

/// How an object's rows are counted.
enum Rows {
    /// Records of a line-oriented format, less the header line if it has one.
    Lines(RowCounter, bool),
    /// Elements of a JSON document's top-level array.
    JsonArray(JsonArrayCounter),
}

/// Bytes, hash and rows of the object being produced.
struct ObjectMeter {
    bytes: u64,
    sha: Sha256,
    rows: Option<Rows>,
    header: Option<HeaderCapture>,
    parts: u32,
}

impl ObjectMeter {
    fn new(stored_as: StoredAs) -> Self {
        let rows = match stored_as {
            StoredAs::Content(f @ (ContentFormat::Tsv | ContentFormat::Csv | ContentFormat::JsonLines)) => {
                Some(Rows::Lines(RowCounter::new(f == ContentFormat::Csv), f.has_header()))
            }
            StoredAs::Content(ContentFormat::Json) => Some(Rows::JsonArray(JsonArrayCounter::default())),
            _ => None,
        };
        let header = match stored_as {
            StoredAs::Content(format) => HeaderCapture::for_format(format),
            _ => None,
        };
        Self {
            bytes: 0,
            sha: Sha256::new(),
            rows,
            header,
            parts: 0,
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        self.sha.update(data);
        if let Some(header) = self.header.as_mut() {
            header.update(data);
        }
        match self.rows.as_mut() {
            Some(Rows::Lines(counter, _)) => counter.update(data),
            Some(Rows::JsonArray(counter)) => counter.update(data),
            None => {}
        }
    }

    fn finish(self) -> ObjectStats {
        ObjectStats {
            bytes: self.bytes,
            sha256: hex::encode(self.sha.finalize()),
            rows: match self.rows {
                Some(Rows::Lines(c, header)) => Some(c.records().saturating_sub(u64::from(header))),
                Some(Rows::JsonArray(c)) => c.elements(),
                None => None,
            },
            parts: self.parts,
            columns: self.header.and_then(HeaderCapture::columns),
            bad_values: None,
            document_columns: None,
        }
    }
}

/// Runs the transform over `input` (the raw document bytes), emitting objects into `out`.
///
/// Returns only after the whole input has been read and verified. See the module docs for the
/// visibility contract.
pub fn run_transform<R: Read, O: PartOutput>(
    input: R,
    spec: TransformSpec,
    limits: &TransformLimits,
    out: &mut O,
) -> Result<TransformSummary, TransferError> {
    if limits.part_size < MIN_PART_SIZE || limits.part_size > MAX_PART_SIZE {
        return Err(TransferError::Invalid(format!(
            "part size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes"
        )));
    }
    let count = Rc::new(Cell::new(0));
    let counted = Counting {
        inner: input,
        count: Rc::clone(&count),
    };
    let plain: Box<dyn Read + '_> = match spec.encryption {
        Encryption::None => Box::new(counted),
        Encryption::AesCbc { key, iv } => Box::new(CbcDecryptReader::new(counted, &key, &iv)?),
        Encryption::AesGcm { key, nonce, aad, tag } => {
            Box::new(GcmDecryptReader::new(counted, &key, &nonce, &aad, tag)?)
        }
    };
    let expansion = Expansion {
        read: Rc::clone(&count),
        ratio: limits.max_expansion_ratio.max(1),
    };
    let mut emitter = Emitter {
        out,
        limits,
        ceiling: match spec.output {
            OutputMode::Decompress | OutputMode::Parquet => limits.max_output_bytes,
            OutputMode::KeepCompressed => u64::MAX,
        },
        expansion: match spec.output {
            OutputMode::Decompress | OutputMode::Parquet => Some(expansion.clone()),
            OutputMode::KeepCompressed => None,
        },
        total_out: 0,
        parquet: (spec.output == OutputMode::Parquet).then(|| spec.column_kinds.clone()),
        column_order: spec.column_order,
        split_by_day: spec.split_by_day,
        split_files: 0,
    };
    match (spec.compression, spec.output) {
        (Compression::None, _) => {
            emitter.content(plain, None, spec.format, false)?;
        }
        (Compression::Gzip, OutputMode::KeepCompressed) => {
            // Stored as delivered, but inflated on the side: the bomb bounds and the gzip CRC hold
            // for a kept stream too.
            // Its header is read on the inflated side too, for its table's columns.
            let columns = ColumnsFound::default();
            let measured = InflateAlongside {
                inner: plain,
                inflater: Some(flate2::write::MultiGzDecoder::new(InflatedMeter {
                    bytes: 0,
                    ceiling: limits.max_output_bytes,
                    expansion,
                    header: HeaderCapture::for_format(spec.format),
                })),
                columns: Rc::clone(&columns),
            };
            emitter.object_then(
                measured,
                ObjectStart::whole(None, StoredAs::Gzip(spec.format)),
                true,
                |stats| {
                    stats.columns = columns.borrow_mut().take();
                },
            )?;
        }
        (Compression::Zip, OutputMode::KeepCompressed) => {
            emitter.object(plain, None, StoredAs::Zip, false)?;
        }
        (Compression::Gzip, OutputMode::Decompress | OutputMode::Parquet) => {
            let gz = MultiGzDecoder::new(BufReader::with_capacity(READ_BUFFER, plain));
            emitter.content(gz, None, spec.format, true)?;
        }
        (Compression::Zip, OutputMode::Decompress | OutputMode::Parquet) => {
            let mut zip = ZipStream::new(BufReader::with_capacity(READ_BUFFER, plain));
            let mut entries: u32 = 0;
            while let Some(entry) = zip.next_entry().map_err(|e| TransferError::from_io(e, false))? {
                entries += 1;
                if entries > MAX_ZIP_ENTRIES {
                    return Err(DecodeError::TooManyEntries { limit: MAX_ZIP_ENTRIES }.into());
                }
                if entry.is_dir {
                    continue;
                }
                emitter.content(EntryReader(&mut zip), Some(entry.name), spec.format, false)?;
            }
            // The central directory and anything after it: read to the end so that decryption
            // verifies padding or tag over the whole document.
            io::copy(&mut zip.into_inner(), &mut io::sink()).map_err(|e| TransferError::from_io(e, false))?;
        }
    }
    Ok(TransformSummary {
        bytes_in: count.get(),
        bytes_out: emitter.total_out,
    })
}

/// The expansion bound: output may not exceed `ratio` times the compressed bytes read so far, once
/// it passes [`EXPANSION_CHECK_FLOOR`].
#[derive(Clone)]
struct Expansion {
    read: Rc<Cell<u64>>,
    ratio: u32,
}

impl Expansion {
    fn check(&self, bytes_out: u64) -> Result<(), DecodeError> {
        let bytes_in = self.read.get().max(1);
        if bytes_out > EXPANSION_CHECK_FLOOR && bytes_out / bytes_in >= u64::from(self.ratio) {
            return Err(DecodeError::Expansion {
                bytes_in,
                bytes_out,
                ratio: self.ratio,
            });
        }
        Ok(())
    }
}

/// Where a kept-compressed gzip stream is inflated to: counts, bounds, reads the header, discards.
struct InflatedMeter {
    bytes: u64,
    ceiling: u64,
    expansion: Expansion,
    header: Option<HeaderCapture>,
}

impl io::Write for InflatedMeter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(header) = self.header.as_mut() {
            header.update(buf);
        }
        self.bytes += buf.len() as u64;
        if self.bytes > self.ceiling {
            return Err(io::Error::other(DecodeError::TooLarge { limit: self.ceiling }));
        }
        self.expansion.check(self.bytes).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Passes the compressed bytes through unchanged while inflating them into an [`InflatedMeter`];
/// at the end, checks that the gzip stream was complete (trailer and CRC), and leaves the column
/// names its header gave in `columns`.
struct InflateAlongside<R> {
    inner: R,
    inflater: Option<flate2::write::MultiGzDecoder<InflatedMeter>>,
    columns: ColumnsFound,
}

impl<R: Read> Read for InflateAlongside<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            if !buf.is_empty()
                && let Some(inflater) = self.inflater.take()
            {
                let meter = inflater.finish()?;
                *self.columns.borrow_mut() = meter.header.and_then(HeaderCapture::columns);
            }
        } else if let Some(inflater) = self.inflater.as_mut() {
            io::Write::write_all(inflater, &buf[..n])?;
        }
        Ok(n)
    }
}

/// Holds the output ceiling and the expansion bound over the bytes read through it (a content that is
/// converted before it is emitted).
struct Bounded<R> {
    inner: R,
    bytes: u64,
    ceiling: u64,
    expansion: Option<Expansion>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        if self.bytes > self.ceiling {
            return Err(io::Error::other(DecodeError::TooLarge { limit: self.ceiling }));
        }
        if let Some(expansion) = &self.expansion {
            expansion.check(self.bytes).map_err(io::Error::other)?;
        }
        Ok(n)
    }
}

struct Emitter<'a, O> {
    out: &'a mut O,
    limits: &'a TransformLimits,
    ceiling: u64,
    expansion: Option<Expansion>,
    total_out: u64,
    /// Rows are stored as Parquet, typed so.
    parquet: Option<ColumnKinds>,
    /// The order TSV or CSV content of its format is stored in.
    column_order: Option<ColumnOrder>,
    /// The column whose day a row of a whole TSV or JSON document is stored under.
    split_by_day: Option<DayColumn>,
    /// Objects the day split has started.
    split_files: u32,
}

impl<O: PartOutput> Emitter<'_, O> {
    /// Streams one object of decompressed content in `format`: a JSON array of rows is stored as
    /// JSON Lines (see [`JsonArrayLines`]), TSV or CSV in the column order asked for (see
    /// [`Conform`]), anything else as it is.
    fn content<R: Read>(
        &mut self,
        reader: R,
        entry_name: Option<String>,
        format: ContentFormat,
        gzip: bool,
    ) -> Result<(), TransferError> {
        if let Some(column) = self.split_by_day.clone()
            && entry_name.is_none()
            && matches!(
                format,
                ContentFormat::Tsv | ContentFormat::JsonLines | ContentFormat::JsonArray
            )
        {
            return self.split_content(reader, format, column, gzip);
        }
        let rows = match format {
            ContentFormat::Tsv => Some(RowFormat::Tsv),
            ContentFormat::Csv => Some(RowFormat::Csv),
            ContentFormat::JsonLines | ContentFormat::JsonArray => Some(RowFormat::JsonLines),
            _ => None,
        };
        match (self.parquet.clone(), rows) {
            (Some(kinds), Some(rows)) if format == ContentFormat::JsonArray => {
                let input = JsonArrayLines::new(self.bounded(reader));
                let start = ObjectStart::whole(entry_name, StoredAs::Parquet);
                self.parquet_object(input, rows, kinds, start, gzip).map(drop)
            }
            (Some(kinds), Some(rows)) => {
                let input = self.bounded(reader);
                let start = ObjectStart::whole(entry_name, StoredAs::Parquet);
                self.parquet_object(input, rows, kinds, start, gzip).map(drop)
            }
            (_, _) if format == ContentFormat::JsonArray => self.object(
                JsonArrayLines::new(self.bounded(reader)),
                entry_name,
                StoredAs::Content(ContentFormat::JsonLines),
                gzip,
            ),
            (_, _) => match self.column_order.as_ref().filter(|o| o.format == format) {
                Some(order) => {
                    let rewritten = ColumnsFound::default();
                    let input = Conform::new(
                        BufReader::with_capacity(READ_BUFFER, reader),
                        format,
                        order.columns.clone(),
                        Rc::clone(&rewritten),
                    );
                    let start = ObjectStart::whole(entry_name, StoredAs::Content(format));
                    self.object_then(input, start, gzip, |stats| {
                        stats.document_columns = rewritten.borrow_mut().take();
                    })
                }
                None => self.object(reader, entry_name, StoredAs::Content(format), gzip),
            },
        }
    }

    /// `reader` with the output ceiling and the expansion bound held over what it yields: for content
    /// that is converted before it is emitted (whitespace a conversion drops, rows Parquet compresses,
    /// would otherwise inflate unseen).
    fn bounded<R: Read>(&self, reader: R) -> Bounded<R> {
        Bounded {
            inner: reader,
            bytes: self.total_out,
            ceiling: self.ceiling,
            expansion: self.expansion.clone(),
        }
    }

    /// Splits whole TSV or JSON content by the day of each row (see [`crate::transfer::split`]):
    /// JSON arrays become lines first, and TSV takes its table's column order first.
    fn split_content<R: Read>(
        &mut self,
        reader: R,
        format: ContentFormat,
        column: DayColumn,
        gzip: bool,
    ) -> Result<(), TransferError> {
        let found = ColumnsFound::default();
        if format == ContentFormat::JsonArray {
            let lines = JsonArrayLines::new(self.bounded(reader));
            return self.split_rows(lines, ContentFormat::JsonLines, column, &found, gzip);
        }
        match self.column_order.as_ref().filter(|o| o.format == format) {
            Some(order) => {
                let input = Conform::new(
                    BufReader::with_capacity(READ_BUFFER, self.bounded(reader)),
                    format,
                    order.columns.clone(),
                    Rc::clone(&found),
                );
                self.split_rows(input, format, column, &found, gzip)
            }
            // Bounded as it is read: rows are held before they are emitted, and blank lines never are.
            None => {
                let input = self.bounded(reader);
                self.split_rows(input, format, column, &found, gzip)
            }
        }
    }

    /// Gathers `text`'s rows per day, writing a day's rows as an object of their own when the days
    /// held reach [`SPLIT_BUFFER_BYTES`] (the largest first), and every day left at the end.
    fn split_rows<T: Read>(
        &mut self,
        text: T,
        format: ContentFormat,
        column: DayColumn,
        found: &ColumnsFound,
        gzip: bool,
    ) -> Result<(), TransferError> {
        let io_error = |e| TransferError::from_io(e, gzip);
        let mut records =
            DayRecords::new(BufReader::with_capacity(READ_BUFFER, text), format, column).map_err(io_error)?;
        let header = records.header().to_vec();
        let mut days: BTreeMap<NaiveDate, Vec<u8>> = BTreeMap::new();
        let mut held = 0;
        while let Some((day, record)) = records.next_record().map_err(io_error)? {
            held += record.len();
            days.entry(day)
                .or_insert_with(|| header.clone())
                .extend_from_slice(record);
            if held >= SPLIT_BUFFER_BYTES {
                let largest = days.iter().max_by_key(|(_, rows)| rows.len()).map(|(day, _)| *day);
                if let Some((day, rows)) = largest.and_then(|day| days.remove_entry(&day)) {
                    held -= rows.len() - header.len();
                    self.day_object(day, rows, format, found, gzip)?;
                }
            }
        }
        for (day, rows) in days {
            self.day_object(day, rows, format, found, gzip)?;
        }
        Ok(())
    }

    /// Stores one day's rows (`rows`, TSV with its header or JSON Lines) as an object, or as Parquet.
    fn day_object(
        &mut self,
        day: NaiveDate,
        rows: Vec<u8>,
        format: ContentFormat,
        found: &ColumnsFound,
        gzip: bool,
    ) -> Result<(), TransferError> {
        let input = io::Cursor::new(rows);
        let start = |stored_as| ObjectStart {
            entry_name: None,
            stored_as,
            file: self.split_files,
            day: Some(day),
        };
        match self.parquet.clone() {
            Some(kinds) => {
                let rows = if format == ContentFormat::Tsv {
                    RowFormat::Tsv
                } else {
                    RowFormat::JsonLines
                };
                let start = start(StoredAs::Parquet);
                self.split_files += self.parquet_object(input, rows, kinds, start, gzip)?;
            }
            None => {
                let start = start(StoredAs::Content(format));
                self.split_files += 1;
                self.object_then(input, start, gzip, |stats| {
                    stats.document_columns = found.borrow().clone();
                })?;
            }
        }
        Ok(())
    }

    /// Streams the rows `input` holds as Parquet: one object per file the encoder closes (see
    /// [`crate::transfer::columnar::ROW_GROUPS_PER_FILE`]), each with its own rows' counts, numbered
    /// from `first`'s `file`; returns how many.
    fn parquet_object<R: Read>(
        &mut self,
        input: R,
        rows: RowFormat,
        kinds: ColumnKinds,
        first: ObjectStart,
        gzip: bool,
    ) -> Result<u32, TransferError> {
        let report = Arc::new(Mutex::new(Encoded::default()));
        let mut encoder = ParquetEncoder::new(input, rows, kinds, Arc::clone(&report));
        let mut files = 0;
        loop {
            let start = ObjectStart {
                file: first.file + files,
                ..first.clone()
            };
            files += 1;
            self.object_then(&mut encoder, start, gzip, |stats| {
                let mut encoded = report.lock().unwrap_or_else(PoisonError::into_inner);
                stats.rows = Some(std::mem::take(&mut encoded.rows));
                stats.columns = (!encoded.columns.is_empty()).then(|| encoded.columns.clone());
                stats.bad_values = Some(std::mem::take(&mut encoded.bad_values));
            })?;
            if !encoder.next_file().map_err(|e| TransferError::from_io(e, gzip))? {
                return Ok(files);
            }
        }
    }

    /// Streams one object from `reader` until its end.
    fn object<R: Read>(
        &mut self,
        reader: R,
        entry_name: Option<String>,
        stored_as: StoredAs,
        gzip: bool,
    ) -> Result<(), TransferError> {
        self.object_then(reader, ObjectStart::whole(entry_name, stored_as), gzip, |_| {})
    }

    /// Streams one object from `reader` until its end; `complete` adds to its stats what the reader
    /// found.
    fn object_then<R: Read>(
        &mut self,
        mut reader: R,
        start: ObjectStart,
        gzip: bool,
        complete: impl FnOnce(&mut ObjectStats),
    ) -> Result<(), TransferError> {
        let stored_as = start.stored_as;
        self.out.begin(start)?;
        let mut meter = ObjectMeter::new(stored_as);
        loop {
            let size = part_size_for(self.limits.part_size, meter.parts + 1);
            // Capacity, not zeroed memory: a small object (a ZIP entry of a few rows) touches only
            // the pages it fills.
            let mut buf = Vec::with_capacity(size);
            let filled = (&mut reader)
                .take(size as u64)
                .read_to_end(&mut buf)
                .map_err(|e| TransferError::from_io(e, gzip))?;
            self.total_out += filled as u64;
            if self.total_out > self.ceiling {
                return Err(DecodeError::TooLarge { limit: self.ceiling }.into());
            }
            if let Some(expansion) = &self.expansion {
                expansion.check(self.total_out)?;
            }
            if filled > 0 {
                if meter.parts >= MAX_PARTS {
                    return Err(TransferError::Invalid(format!(
                        "the object needs more than {MAX_PARTS} parts"
                    )));
                }
                meter.update(&buf);
                meter.parts += 1;
                self.out.part(Bytes::from(buf))?;
            }
            // Fewer bytes than asked for: the reader is at its end.
            if filled < size {
                break;
            }
        }
        let mut stats = meter.finish();
        complete(&mut stats);
        self.out.end(stats)
    }
}

/// A [`PartOutput`] that discards everything (for measuring the transform alone).
#[derive(Debug, Default)]
pub struct NullOutput {
    /// Objects seen, with their stats.
    pub objects: Vec<(ObjectStart, Option<ObjectStats>)>,
}

impl PartOutput for NullOutput {
    fn begin(&mut self, start: ObjectStart) -> Result<(), TransferError> {
        self.objects.push((start, None));
        Ok(())
    }

    fn part(&mut self, _data: Bytes) -> Result<(), TransferError> {
        Ok(())
    }

    fn end(&mut self, stats: ObjectStats) -> Result<(), TransferError> {
        if let Some(last) = self.objects.last_mut() {
            last.1 = Some(stats);
        }
        Ok(())
    }
}
