//! Rows split by data day, in the stream: a report whose rows carry their day (Ads `DAILY` reports'
//! `date`, the SP-API orders reports' `purchase-date`; see
//! [`crate::domain::source::SourceRules::day_column`]) is stored as objects that each hold one day's
//! rows, so that each day's current rows can be pointed at on their own (see
//! [`crate::steps::current`]).
//!
//! [`DayRecords`] reads the records of TSV or JSON Lines content and dates each one; the transform
//! gathers them per day and writes a day's rows as an object of their own whenever the days held
//! reach [`SPLIT_BUFFER_BYTES`] (the largest day first), and every day left at the end: memory
//! holds at most that much, whatever the report's size or the order of its rows. A TSV object
//! starts with the document's header line; a JSON Lines object is lines only.
//!
//! A TSV document whose header lacks the day column (a report Amazon changed), or a row whose day
//! column is missing or holds no day, fails the document ([`DecodeError::Undated`], an integrity
//! failure): a row that cannot be dated cannot be made current, and is not dropped silently; nor is
//! a document stored whole among a table's day objects, where its days would be read twice. A record
//! longer than [`MAX_RECORD_BYTES`] fails it too, as in [`crate::transfer::conform`].

use std::io::{self, BufRead, Read};

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::document::{ColumnKind, ContentFormat, DecodeError};
use crate::domain::source::DayColumn;
use crate::transfer::conform::{MAX_RECORD_BYTES, split_ending, too_long};
use crate::transfer::header::HeaderCapture;

/// Bytes of rows held across the days before the largest day's are written out.
pub const SPLIT_BUFFER_BYTES: usize = 8 << 20;

/// The day a value of a day column names: the first ten characters as `YYYY-MM-DD` for a `date`
/// column; for a `timestamp` column, the UTC day of an RFC 3339 time (or a bare day).
pub fn day_of(value: &str, kind: ColumnKind) -> Option<NaiveDate> {
    let value = value.trim();
    let bare = || {
        value
            .get(..10)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    };
    match kind {
        ColumnKind::Timestamp => DateTime::parse_from_rfc3339(value)
            .ok()
            .map(|t| t.with_timezone(&Utc).date_naive())
            .or_else(|| (value.len() == 10).then(bare).flatten()),
        _ => bare(),
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The records of TSV or JSON Lines content, each with its day.
pub struct DayRecords<R> {
    reader: R,
    column: DayColumn,
    /// The TSV header line (with its line end); empty for JSON Lines.
    header: Vec<u8>,
    /// Where a record's day is.
    dating: Dating,
    record: Vec<u8>,
    row: u64,
}

impl<R: BufRead> DayRecords<R> {
    /// Reads the header of TSV content (JSON Lines has none). Errors: a TSV header without the day
    /// column ([`DecodeError::Undated`]), a format other than TSV or JSON Lines (`InvalidData`).
    pub fn new(mut reader: R, format: ContentFormat, column: DayColumn) -> io::Result<Self> {
        let mut header = Vec::new();
        let dating = match format {
            ContentFormat::Tsv => {
                read_record(&mut reader, &mut header)?;
                // The header as the catalog reads it (a byte-order mark and a `\r` left out).
                let names = HeaderCapture::columns_of(format, &header).unwrap_or_default();
                match names.iter().position(|name| *name == column.name) {
                    Some(index) => Dating::Field(index),
                    None if header.is_empty() => Dating::Field(0),
                    None => {
                        return Err(io::Error::other(DecodeError::Undated(format!(
                            "the report has no `{}` column to date its rows by",
                            column.name
                        ))));
                    }
                }
            }
            ContentFormat::JsonLines => Dating::Key,
            other => {
                return Err(invalid(format!(
                    "{} content is not split by day (TSV or JSON Lines only)",
                    other.extension()
                )));
            }
        };
        Ok(Self {
            reader,
            column,
            header,
            dating,
            record: Vec::new(),
            row: 0,
        })
    }

    /// The header line every TSV object starts with (with its line end); empty for JSON Lines.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The next record (with its line end) and its day; `None` at the end. Blank lines are skipped.
    /// Errors ([`DecodeError`]): a record longer than [`MAX_RECORD_BYTES`], or one without a day.
    pub fn next_record(&mut self) -> io::Result<Option<(NaiveDate, &[u8])>> {
        loop {
            self.record.clear();
            if read_record(&mut self.reader, &mut self.record)? == 0 {
                return Ok(None);
            }
            let (line, _) = split_ending(&self.record);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.row += 1;
            let value = match self.dating {
                Dating::Field(index) => line
                    .split(|b| *b == b'\t')
                    .nth(index)
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
                Dating::Key => json_value(&self.record, &self.column.name),
            };
            let day = value.as_deref().and_then(|v| day_of(v, self.column.kind));
            let Some(day) = day else {
                return Err(io::Error::other(DecodeError::Undated(format!(
                    "row {} has no day in `{}` ({}): its rows cannot be split by day",
                    self.row,
                    self.column.name,
                    value.map_or_else(
                        || "missing".to_owned(),
                        |v| format!("`{}`", v.chars().take(40).collect::<String>())
                    )
                ))));
            };
            return Ok(Some((day, &self.record)));
        }
    }
}

/// Where a record's day is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dating {
    /// The TSV field at this place.
    Field(usize),
    /// The JSON Lines key named after the column.
    Key,
}

/// The value of `key` in a JSON Lines record: a string as it is, a number or another value as its
/// JSON text; `None` when the line lacks it or is not an object.
fn json_value(line: &[u8], key: &str) -> Option<String> {
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line)
        .ok()?
        .remove(key)?
    {
        serde_json::Value::String(text) => Some(text),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Reads one line (with its end) into `into`, at most [`MAX_RECORD_BYTES`]; returns its length.
fn read_record<R: BufRead>(reader: &mut R, into: &mut Vec<u8>) -> io::Result<usize> {
    let n = reader.take(MAX_RECORD_BYTES + 1).read_until(b'\n', into)?;
    if n as u64 > MAX_RECORD_BYTES {
        return Err(too_long());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(format: ContentFormat, text: &str, column: &str, kind: ColumnKind) -> io::Result<Vec<(String, String)>> {
        let column = DayColumn {
            name: column.into(),
            kind,
        };
        let mut records = DayRecords::new(text.as_bytes(), format, column)?;
        let mut out = Vec::new();
        while let Some((day, record)) = records.next_record()? {
            out.push((day.to_string(), String::from_utf8_lossy(record).into_owned()));
        }
        Ok(out)
    }

    #[test]
    fn a_tsv_records_day_is_its_day_columns_utc_day() {
        let text = "id\tpurchase-date\n1\t2026-11-21T23:30:00-08:00\n2\t2026-11-22T00:10:00+00:00\r\n";
        let rows = days(ContentFormat::Tsv, text, "purchase-date", ColumnKind::Timestamp).expect("dated");
        assert_eq!(
            rows,
            [
                ("2026-11-22".to_owned(), "1\t2026-11-21T23:30:00-08:00\n".to_owned()),
                ("2026-11-22".to_owned(), "2\t2026-11-22T00:10:00+00:00\r\n".to_owned()),
            ],
            "23:30 at -08:00 is the next UTC day; records keep their bytes"
        );
    }

    #[test]
    fn a_byte_order_mark_before_the_header_does_not_hide_the_day_column() {
        let text = "\u{feff}purchase-date\tid\r\n2026-11-21T10:00:00Z\t1\r\n";
        let rows = days(ContentFormat::Tsv, text, "purchase-date", ColumnKind::Timestamp).expect("dated");
        assert_eq!(rows[0].0, "2026-11-21");
    }

    #[test]
    fn a_json_lines_records_day_is_its_keys_value_and_blank_lines_are_skipped() {
        let text = "{\"date\":\"2026-11-20\",\"clicks\":1}\n\n{\"clicks\":2,\"date\":\"2026-11-21\"}\n";
        let rows = days(ContentFormat::JsonLines, text, "date", ColumnKind::Date).expect("dated");
        let days: Vec<&str> = rows.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(days, ["2026-11-20", "2026-11-21"]);
    }

    #[test]
    fn a_row_without_a_day_or_a_header_without_the_column_is_refused_not_dropped() {
        let missing = days(
            ContentFormat::JsonLines,
            "{\"date\":\"soon\"}\n",
            "date",
            ColumnKind::Date,
        );
        let error = missing.expect_err("refused").to_string();
        assert!(error.contains("row 1") && error.contains("`soon`"), "{error}");
        let no_column = days(ContentFormat::Tsv, "id\tday\n1\t2026-11-21\n", "date", ColumnKind::Date);
        assert!(no_column.expect_err("refused").to_string().contains("no `date` column"));
    }
}
