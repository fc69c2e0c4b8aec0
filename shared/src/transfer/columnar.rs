//! Text rows → Parquet, in a stream: a TSV, CSV or JSON Lines object becomes Parquet files whose
//! row groups are written as they fill ([`ROW_GROUP_BYTES`] of values each), so memory holds one row
//! group whatever the object's size, and the file's bytes go on as parts as they come. A file's footer
//! describes every row group in it and is held until the file ends, so a file closes after
//! [`ROW_GROUPS_PER_FILE`] row groups and the rows go on in the next one
//! ([`ParquetEncoder::next_file`]): memory stays flat however many rows an object has.
//!
//! Columns are named as the catalog names them ([`column_names`]), every one optional, each of the
//! type its source publishes for it ([`ColumnKind`]; `string` for the rest). The parse rule of each
//! type:
//!
//! | kind | Parquet | a value it accepts | an empty value |
//! |---|---|---|---|
//! | `string` | `BYTE_ARRAY` (`STRING`) | anything, as written (invalid UTF-8 replaced, and counted) | `""` |
//! | `bigint` | `INT64` | an optional sign and digits; blanks around it ignored | null |
//! | `double` | `DOUBLE` | a decimal number (`12.5`, `-3`, `1e3`); blanks around it ignored | null |
//! | `date` | `INT32` (`DATE`) | `YYYY-MM-DD`, or the day of an RFC 3339 time | null |
//! | `timestamp` | `INT64` (`TIMESTAMP(MILLIS, UTC)`) | an RFC 3339 time, or a `YYYY-MM-DD` day (its midnight UTC) | null |
//!
//! A value its type does not accept is stored as null **and counted** (`bad_values`, in the
//! manifest); the row is always kept. A row with fewer fields than the header has nulls for the
//! rest; a field beyond the header, or a JSON key the first row did not have, is counted too.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, NaiveDate};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

pub use crate::domain::document::ColumnKind;
use crate::transfer::header::column_names;

/// The content type of a Parquet object.
pub const PARQUET_CONTENT_TYPE: &str = "application/vnd.apache.parquet";

/// Bytes of text values buffered before a row group is written.
pub const ROW_GROUP_BYTES: usize = 2 << 20;

/// Row groups per Parquet file: about 512 MiB of text, 160 MiB of Parquet for a typical report. The
/// writer holds each row group's metadata (about 20 KiB for 19 columns) until its file closes, which
/// made a 2 GiB report's peak 20 MiB above a 1 GiB one's before files were capped.
pub const ROW_GROUPS_PER_FILE: usize = 256;

/// The types of a report's columns, by their names in the data; a column not in it is a `string`.
pub type ColumnKinds = Arc<BTreeMap<String, ColumnKind>>;

/// What the encoder found in an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    /// The columns as the data names them (the header, or the first JSON row's keys).
    pub columns: Vec<String>,
    /// Rows written.
    pub rows: u64,
    /// Values stored as null because their type did not accept them, and fields beyond the columns.
    pub bad_values: u64,
}

/// How an object's rows are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// Tab-separated, a header first, no quoting.
    Tsv,
    /// RFC 4180, a header first.
    Csv,
    /// A JSON object per line.
    JsonLines,
}

enum Rows<R: Read> {
    Delimited(csv::Reader<R>),
    Json(io::BufReader<R>),
}

/// One column's values of the row group being filled, in one buffer (a `String` per value would
/// cost several times the text).
#[derive(Default)]
struct ColumnBuffer {
    data: Vec<u8>,
    ends: Vec<u32>,
    present: Vec<bool>,
}

impl ColumnBuffer {
    fn push(&mut self, value: Option<&str>) {
        if let Some(value) = value {
            self.data.extend_from_slice(value.as_bytes());
        }
        self.present.push(value.is_some());
        self.ends.push(u32::try_from(self.data.len()).unwrap_or(u32::MAX));
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Each value's byte range, or `None` for a missing one; the buffer emptied.
    fn take(&mut self) -> (bytes::Bytes, Vec<Option<std::ops::Range<usize>>>) {
        let mut start = 0;
        let ranges = self
            .ends
            .iter()
            .zip(&self.present)
            .map(|(end, present)| {
                let range = start..*end as usize;
                start = *end as usize;
                present.then_some(range)
            })
            .collect();
        self.ends.clear();
        self.present.clear();
        (bytes::Bytes::from(std::mem::take(&mut self.data)), ranges)
    }
}

/// Where the Parquet writer writes: the bytes of the file not handed on yet.
#[derive(Clone, Default)]
struct Written(Arc<Mutex<Vec<u8>>>);

impl Written {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl io::Write for Written {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Columns {
    kinds: Vec<ColumnKind>,
    sources: Vec<String>,
    values: Vec<ColumnBuffer>,
    buffered: usize,
}

impl Columns {
    /// Adds a delimited row; returns how many of its values are bad (invalid UTF-8, beyond the header).
    fn push_fields(&mut self, record: &csv::ByteRecord) -> u64 {
        let mut bad = record.len().saturating_sub(self.values.len()) as u64;
        let mut fields = record.iter();
        for buffer in &mut self.values {
            match fields.next() {
                None => buffer.push(None),
                Some(field) => match std::str::from_utf8(field) {
                    Ok(text) => buffer.push(Some(text)),
                    Err(_) => {
                        bad += 1;
                        buffer.push(Some(&String::from_utf8_lossy(field)));
                    }
                },
            }
            self.buffered += field_cost(buffer);
        }
        bad
    }

    /// Adds a JSON row; returns how many of its keys are not columns.
    fn push_json(&mut self, mut row: serde_json::Map<String, serde_json::Value>) -> u64 {
        for (source, buffer) in self.sources.iter().zip(&mut self.values) {
            match row.remove(source) {
                None | Some(serde_json::Value::Null) => buffer.push(None),
                Some(serde_json::Value::String(text)) => buffer.push(Some(&text)),
                Some(other) => buffer.push(Some(&other.to_string())),
            }
            self.buffered += field_cost(buffer);
        }
        row.len() as u64
    }
}

/// What the last value pushed costs the row group: its bytes and its bookkeeping.
fn field_cost(buffer: &ColumnBuffer) -> usize {
    let end = buffer.ends.last().copied().unwrap_or(0) as usize;
    let start = buffer.ends.len().checked_sub(2).map_or(0, |i| buffer.ends[i] as usize);
    end - start + 5
}

/// Reads text rows, yields the bytes of a Parquet file of them; rows beyond
/// [`ROW_GROUPS_PER_FILE`] row groups go on in the next file (see [`ParquetEncoder::next_file`]).
pub struct ParquetEncoder<R: Read> {
    rows: Rows<R>,
    record: csv::ByteRecord,
    kinds: ColumnKinds,
    columns: Option<Columns>,
    /// The schema and properties every file of the object is written with.
    layout: Option<(Arc<parquet::schema::types::Type>, Arc<WriterProperties>)>,
    writer: Option<SerializedFileWriter<Written>>,
    /// Row groups written in the current file, and how many a file takes.
    groups: usize,
    groups_per_file: usize,
    written: Written,
    out: Vec<u8>,
    served: usize,
    /// The current file is closed (its footer written); more rows may follow.
    file_closed: bool,
    /// The input has ended and the last file is closed.
    done: bool,
    report: Arc<Mutex<Encoded>>,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn parquet_error(e: parquet::errors::ParquetError) -> io::Error {
    io::Error::other(format!("writing Parquet failed: {e}"))
}

impl<R: Read> ParquetEncoder<R> {
    /// An encoder of the rows `inner` holds in `format`, typed by `kinds`; `report` receives what it
    /// found, complete once the encoder has been read to its end.
    pub fn new(inner: R, format: RowFormat, kinds: ColumnKinds, report: Arc<Mutex<Encoded>>) -> Self {
        let delimited = |delimiter: u8, quoting: bool, inner: R| {
            csv::ReaderBuilder::new()
                .delimiter(delimiter)
                .quoting(quoting)
                .flexible(true)
                .has_headers(false)
                .from_reader(inner)
        };
        let rows = match format {
            RowFormat::Tsv => Rows::Delimited(delimited(b'\t', false, inner)),
            RowFormat::Csv => Rows::Delimited(delimited(b',', true, inner)),
            RowFormat::JsonLines => Rows::Json(io::BufReader::new(inner)),
        };
        Self {
            rows,
            record: csv::ByteRecord::new(),
            kinds,
            columns: None,
            layout: None,
            writer: None,
            groups: 0,
            groups_per_file: ROW_GROUPS_PER_FILE,
            written: Written::default(),
            out: Vec::new(),
            served: 0,
            file_closed: false,
            done: false,
            report,
        }
    }

    /// The same encoder, closing each file after `groups` row groups (at least 1) instead of
    /// [`ROW_GROUPS_PER_FILE`].
    #[must_use]
    pub fn with_row_groups_per_file(mut self, groups: usize) -> Self {
        self.groups_per_file = groups.max(1);
        self
    }

    /// Once this encoder has been read to its end (`read` answered 0): whether the rows go on in
    /// another file, whose bytes reading yields next. `false` once the input is exhausted; no file is
    /// ever started without a row. The report then counts the next file's rows and bad values only
    /// if the caller has reset them.
    pub fn next_file(&mut self) -> io::Result<bool> {
        if self.done || !self.file_closed {
            return Ok(false);
        }
        let Some(row) = self.next_row()? else {
            self.done = true;
            return Ok(false);
        };
        self.open_file()?;
        self.file_closed = false;
        self.push(row)?;
        Ok(true)
    }

    /// Starts a file with the object's schema.
    fn open_file(&mut self) -> io::Result<()> {
        let (schema, properties) = self
            .layout
            .clone()
            .ok_or_else(|| io::Error::other("a Parquet file was opened before its schema was known"))?;
        self.writer = Some(SerializedFileWriter::new(self.written.clone(), schema, properties).map_err(parquet_error)?);
        self.groups = 0;
        Ok(())
    }

    /// Buffers a row read by [`Self::next_row`] (the header, if it is the first delimited one),
    /// counting it.
    fn push(&mut self, row: Option<serde_json::Map<String, serde_json::Value>>) -> io::Result<()> {
        let bad = match (self.columns.as_mut(), row) {
            (None, None) => {
                let header = self
                    .record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                return self.start(header);
            }
            (None, Some(row)) => {
                self.start(row.keys().cloned().collect())?;
                self.columns.as_mut().map_or(0, |c| c.push_json(row))
            }
            (Some(columns), None) => columns.push_fields(&self.record),
            (Some(columns), Some(row)) => columns.push_json(row),
        };
        self.count(bad);
        Ok(())
    }

    fn report(&self) -> std::sync::MutexGuard<'_, Encoded> {
        self.report.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the next row: `Some(None)` for a delimited row (in `self.record`), `Some(Some(row))` for a
    /// JSON one, `None` at the end.
    fn next_row(&mut self) -> io::Result<Option<Option<serde_json::Map<String, serde_json::Value>>>> {
        match &mut self.rows {
            Rows::Delimited(reader) => match reader.read_byte_record(&mut self.record) {
                Ok(false) => Ok(None),
                Ok(true) => Ok(Some(None)),
                Err(e) => match e.into_kind() {
                    csv::ErrorKind::Io(e) => Err(e),
                    other => Err(invalid(format!("a row could not be read: {other:?}"))),
                },
            },
            Rows::Json(reader) => loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(None);
                }
                if line.trim().is_empty() {
                    continue;
                }
                return match serde_json::from_str(&line) {
                    Ok(serde_json::Value::Object(row)) => Ok(Some(Some(row))),
                    _ => Err(invalid("a JSON Lines row is not a JSON object".into())),
                };
            },
        }
    }

    fn start(&mut self, sources: Vec<String>) -> io::Result<()> {
        let kinds: Vec<ColumnKind> = sources
            .iter()
            .map(|s| self.kinds.get(s).copied().unwrap_or(ColumnKind::String))
            .collect();
        let names = column_names(&sources);
        let fields: String = names
            .iter()
            .zip(&kinds)
            .map(|(name, kind)| {
                let (physical, annotation) = match kind {
                    ColumnKind::String => ("BYTE_ARRAY", " (STRING)"),
                    ColumnKind::BigInt => ("INT64", ""),
                    ColumnKind::Double => ("DOUBLE", ""),
                    ColumnKind::Date => ("INT32", " (DATE)"),
                    ColumnKind::Timestamp => ("INT64", " (TIMESTAMP(MILLIS,true))"),
                };
                format!("  OPTIONAL {physical} {name}{annotation};\n")
            })
            .collect();
        let schema = parse_message_type(&format!("message schema {{\n{fields}}}")).map_err(parquet_error)?;
        // Small pages and dictionaries keep the encoder's own buffers to a few hundred KiB per column.
        // The footer is held until the file ends, so what it gathers per row group must stay small:
        // statistics per column chunk only and no offset index (page indexes, whose entries grow with
        // every page), their values cut to 64 bytes.
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_data_page_size_limit(256 << 10)
            .set_dictionary_page_size_limit(256 << 10)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_statistics_truncate_length(Some(64))
            .set_offset_index_disabled(true)
            .build();
        self.layout = Some((Arc::new(schema), Arc::new(properties)));
        self.open_file()?;
        self.report().columns = sources.clone();
        self.columns = Some(Columns {
            values: sources.iter().map(|_| ColumnBuffer::default()).collect(),
            kinds,
            sources,
            buffered: 0,
        });
        Ok(())
    }

    fn count(&self, bad: u64) {
        let mut report = self.report();
        report.rows += 1;
        report.bad_values += bad;
    }

    /// Writes the buffered rows as a row group.
    fn flush(&mut self) -> io::Result<()> {
        let (Some(columns), Some(writer)) = (self.columns.as_mut(), self.writer.as_mut()) else {
            return Ok(());
        };
        if columns.values.first().is_none_or(ColumnBuffer::is_empty) {
            return Ok(());
        }
        let mut bad = 0;
        let mut group = writer.next_row_group().map_err(parquet_error)?;
        for (buffer, kind) in columns.values.iter_mut().zip(&columns.kinds) {
            let (data, ranges) = buffer.take();
            // Every value was pushed as text, so each range is valid UTF-8.
            let text = |range: &Option<std::ops::Range<usize>>| -> Option<&str> {
                range.as_ref().and_then(|r| std::str::from_utf8(&data[r.clone()]).ok())
            };
            let mut column = group
                .next_column()
                .map_err(parquet_error)?
                .ok_or_else(|| io::Error::other("the Parquet schema has fewer columns than the header"))?;
            let mut levels = Vec::with_capacity(ranges.len());
            let written = match kind {
                ColumnKind::String => {
                    let values: Vec<ByteArray> = ranges
                        .iter()
                        .filter_map(|r| level(&mut levels, r.clone().map(|r| ByteArray::from(data.slice(r)))))
                        .collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&values, Some(&levels), None)
                }
                ColumnKind::BigInt => {
                    let values: Vec<i64> = ranges
                        .iter()
                        .filter_map(|r| level(&mut levels, parse(text(r), &mut bad, |s| s.parse::<i64>().ok())))
                        .collect();
                    column.typed::<Int64Type>().write_batch(&values, Some(&levels), None)
                }
                ColumnKind::Double => {
                    let values: Vec<f64> = ranges
                        .iter()
                        .filter_map(|r| {
                            level(
                                &mut levels,
                                parse(text(r), &mut bad, |s| s.parse::<f64>().ok().filter(|f| f.is_finite())),
                            )
                        })
                        .collect();
                    column.typed::<DoubleType>().write_batch(&values, Some(&levels), None)
                }
                ColumnKind::Date => {
                    let values: Vec<i32> = ranges
                        .iter()
                        .filter_map(|r| level(&mut levels, parse(text(r), &mut bad, epoch_day)))
                        .collect();
                    column.typed::<Int32Type>().write_batch(&values, Some(&levels), None)
                }
                ColumnKind::Timestamp => {
                    let values: Vec<i64> = ranges
                        .iter()
                        .filter_map(|r| level(&mut levels, parse(text(r), &mut bad, epoch_millis)))
                        .collect();
                    column.typed::<Int64Type>().write_batch(&values, Some(&levels), None)
                }
            };
            written.map_err(parquet_error)?;
            column.close().map_err(parquet_error)?;
        }
        group.close().map_err(parquet_error)?;
        columns.buffered = 0;
        self.groups += 1;
        self.report().bad_values += bad;
        Ok(())
    }

    /// Writes the current file's footer.
    fn close_file(&mut self) -> io::Result<()> {
        if let Some(writer) = self.writer.take() {
            writer.close().map_err(parquet_error)?;
        }
        self.file_closed = true;
        Ok(())
    }

    /// Reads rows until a row group is written (the file closed after its last one) or the input
    /// ends (the file then closed).
    fn fill(&mut self) -> io::Result<()> {
        loop {
            let Some(row) = self.next_row()? else {
                self.flush()?;
                self.close_file()?;
                self.done = true;
                return Ok(());
            };
            self.push(row)?;
            if self.columns.as_ref().is_some_and(|c| c.buffered >= ROW_GROUP_BYTES) {
                self.flush()?;
                if self.groups >= self.groups_per_file {
                    self.close_file()?;
                }
                return Ok(());
            }
        }
    }
}

/// Records whether a value is present (its definition level) and passes it on.
fn level<T>(levels: &mut Vec<i16>, value: Option<T>) -> Option<T> {
    levels.push(i16::from(value.is_some()));
    value
}

/// A value parsed by `accept`: `None` for an empty value, `None` and counted for one it refuses.
fn parse<T>(value: Option<&str>, bad: &mut u64, accept: impl Fn(&str) -> Option<T>) -> Option<T> {
    let text = value?.trim();
    if text.is_empty() {
        return None;
    }
    let parsed = accept(text);
    if parsed.is_none() {
        *bad += 1;
    }
    parsed
}

fn day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn epoch_day(text: &str) -> Option<i32> {
    let date = day(text).or_else(|| DateTime::parse_from_rfc3339(text).ok().map(|t| t.date_naive()))?;
    i32::try_from((date - NaiveDate::default()).num_days()).ok()
}

fn epoch_millis(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
        .or_else(|| {
            day(text)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_millis())
        })
}

impl<R: Read> Read for ParquetEncoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.served == self.out.len() {
            if self.file_closed {
                return Ok(0);
            }
            self.fill()?;
            self.out = self.written.take();
            self.served = 0;
        }
        Ok(super::serve(&self.out, &mut self.served, buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(format: RowFormat, text: &str, kinds: &[(&str, ColumnKind)]) -> (Vec<u8>, Encoded) {
        let kinds = Arc::new(kinds.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect());
        let report = Arc::new(Mutex::new(Encoded::default()));
        let mut out = Vec::new();
        ParquetEncoder::new(text.as_bytes(), format, kinds, Arc::clone(&report))
            .read_to_end(&mut out)
            .expect("encoded");
        let report = report.lock().expect("report").clone();
        (out, report)
    }

    #[test]
    fn a_tsv_becomes_a_parquet_file_of_its_rows_typed_as_published_and_bad_values_counted_not_dropped() {
        let (bytes, report) = encode(
            RowFormat::Tsv,
            "order-id\tpurchase-date\titem-price\tquantity\n1\t2026-11-23T01:00:00+00:00\t10.50\t2\n2\tyesterday\tN/A\t\n3\t2026-11-23\t\t1\textra\n",
            &[
                ("purchase-date", ColumnKind::Timestamp),
                ("item-price", ColumnKind::Double),
                ("quantity", ColumnKind::BigInt),
            ],
        );
        assert_eq!(&bytes[..4], b"PAR1");
        assert_eq!(&bytes[bytes.len() - 4..], b"PAR1");
        assert_eq!(report.columns, ["order-id", "purchase-date", "item-price", "quantity"]);
        assert_eq!(report.rows, 3, "every row is kept");
        assert_eq!(
            report.bad_values, 3,
            "`yesterday`, `N/A` and the field beyond the header"
        );
    }

    #[test]
    fn json_lines_take_their_columns_from_the_first_row_and_count_keys_it_lacked() {
        let (_, report) = encode(
            RowFormat::JsonLines,
            "{\"date\":\"2026-11-22\",\"clicks\":3}\n\n{\"date\":\"2026-11-23\",\"clicks\":\"x\",\"new\":1}\n",
            &[("date", ColumnKind::Date), ("clicks", ColumnKind::BigInt)],
        );
        assert_eq!(report.rows, 2);
        assert_eq!(report.bad_values, 2, "`x` for clicks, and the key `new`");
    }

    #[test]
    fn a_header_only_file_is_a_parquet_file_of_no_rows() {
        let (bytes, report) = encode(RowFormat::Csv, "a,b\n", &[]);
        assert_eq!(report.rows, 0);
        assert_eq!(&bytes[..4], b"PAR1");
    }

    /// Every file the encoder yields for `text`, split after `groups` row groups.
    fn encode_files(text: &str, groups: usize) -> (Vec<Vec<u8>>, Vec<u64>) {
        let report = Arc::new(Mutex::new(Encoded::default()));
        let mut encoder = ParquetEncoder::new(
            text.as_bytes(),
            RowFormat::Tsv,
            ColumnKinds::default(),
            Arc::clone(&report),
        )
        .with_row_groups_per_file(groups);
        let (mut files, mut rows) = (Vec::new(), Vec::new());
        loop {
            let mut file = Vec::new();
            encoder.read_to_end(&mut file).expect("encoded");
            files.push(file);
            rows.push(std::mem::take(&mut report.lock().expect("report").rows));
            if !encoder.next_file().expect("read") {
                return (files, rows);
            }
        }
    }

    #[test]
    fn rows_beyond_a_files_row_groups_go_on_in_further_complete_files_and_none_is_empty() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        // Five row groups' worth of rows, two groups per file; a row costs its 1,000 bytes of values
        // and 5 bytes of bookkeeping per value.
        let row = format!("{}\t{}\n", "a".repeat(500), "b".repeat(500));
        let per_group = ROW_GROUP_BYTES.div_ceil(1010);
        let rows = 5 * per_group;
        let text = format!("left\tright\n{}", row.repeat(rows));
        let (files, counted) = encode_files(&text, 2);
        assert_eq!(files.len(), 3, "5 row groups in files of 2");
        let mut total = 0;
        for (file, counted) in files.into_iter().zip(counted) {
            let reader = SerializedFileReader::new(bytes::Bytes::from(file)).expect("a complete Parquet file");
            let stored: i64 = reader.metadata().row_groups().iter().map(|g| g.num_rows()).sum();
            assert!(stored > 0, "no file is empty");
            assert_eq!(stored as u64, counted, "the report counts each file's own rows");
            assert_eq!(reader.metadata().file_metadata().schema_descr().num_columns(), 2);
            total += stored as usize;
        }
        assert_eq!(total, rows, "every row is stored once");
        let (exact, _) = encode_files(&format!("left\tright\n{}", row.repeat(2 * per_group)), 2);
        assert_eq!(
            exact.len(),
            1,
            "input ending as a file fills opens no empty file after it"
        );
    }

    #[test]
    fn the_parse_rules_hold() {
        assert_eq!(epoch_day("1970-01-02"), Some(1));
        assert_eq!(
            epoch_day("2026-11-23T23:59:59-08:00"),
            Some(epoch_day("2026-11-23").expect("a day"))
        );
        assert_eq!(epoch_millis("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(epoch_millis("1970-01-02"), Some(86_400_000));
        let mut bad = 0;
        assert_eq!(parse(Some(" 42 "), &mut bad, |s| s.parse::<i64>().ok()), Some(42));
        assert_eq!(parse(Some(""), &mut bad, |s| s.parse::<i64>().ok()), None);
        assert_eq!(bad, 0, "an empty value is null, not bad");
        assert_eq!(parse(Some("4,2"), &mut bad, |s| s.parse::<f64>().ok()), None);
        assert_eq!(bad, 1);
    }
}
