//! A positional file (TSV, CSV) stored in its table's column order, in the stream.
//!
//! A catalog table reads TSV and CSV by position, so a document whose columns moved, went missing or
//! were inserted would be read misaligned. Given the table's columns ([`ColumnOrder`]), [`Conform`]
//! reads the document's header and:
//! - if the document has exactly the table's columns, in its order (the usual case), passes every
//!   byte through unchanged;
//! - otherwise rewrites every record: the table's columns first, in the table's order (a column the
//!   document lacks is left empty), then the document's columns the table lacks, in the document's
//!   order — which the catalog then appends to the table. Fields are moved as they are, quotes and
//!   all; a record with more fields than the header keeps them, after the rest; a blank line stays
//!   blank. The stored header names the stored order.
//!
//! Columns are matched by name, a repeated name with the next of the same name. Since a table only
//! ever gains columns at its end, a file stored in the order of any version of the table is read
//! correctly by every later version.

use std::cell::RefCell;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

use crate::domain::document::{ContentFormat, DecodeError};

/// The longest record a rewritten file may hold (a row of a report is a few KiB at most); it bounds
/// the memory a rewrite takes.
pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;
/// ColumnsFound bytes gathered per fill of the output.
const FILL_BYTES: usize = 64 * 1024;

/// The column order a positional document is stored in: its table's columns, as the data names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnOrder {
    /// The format of the table's files ([`ContentFormat::Tsv`] or [`ContentFormat::Csv`]); a document
    /// of another format is not touched.
    pub format: ContentFormat,
    /// The table's columns, in its order.
    pub columns: Vec<String>,
}

/// Column names a reader found on the way, left for its object's stats: [`Conform`] leaves the
/// document's own columns there when it stored them in another order.
pub(crate) type ColumnsFound = Rc<RefCell<Option<Vec<String>>>>;

enum Mode {
    Header,
    Pass,
    /// For each stored column, the document's field it takes (`None`: left empty).
    Rewrite(Vec<Option<usize>>),
}

/// Reads a TSV or CSV document from `inner` and yields it in a [`ColumnOrder`] (see the module docs).
pub(crate) struct Conform<R> {
    inner: R,
    order: Vec<String>,
    delimiter: u8,
    quoted: bool,
    mode: Mode,
    record: Vec<u8>,
    output: Vec<u8>,
    served: usize,
    rewritten: ColumnsFound,
}

pub(crate) fn too_long() -> io::Error {
    io::Error::other(DecodeError::NotAsDeclared {
        expected: "records of a delimited file",
        problem: "a record longer than 1 MiB",
    })
}

impl<R: BufRead> Conform<R> {
    /// Conforms the `format` document `inner` yields to `order`; what it rewrote goes to `rewritten`.
    pub(crate) fn new(inner: R, format: ContentFormat, order: Vec<String>, rewritten: ColumnsFound) -> Self {
        Self {
            inner,
            order,
            delimiter: if format == ContentFormat::Csv { b',' } else { b'\t' },
            quoted: format == ContentFormat::Csv,
            mode: Mode::Header,
            record: Vec::new(),
            output: Vec::new(),
            served: 0,
            rewritten,
        }
    }

    /// Reads the next record (a CSV record spans lines while a quote is open) into `self.record`;
    /// `false` at the end of the input.
    fn next_record(&mut self) -> io::Result<bool> {
        self.record.clear();
        loop {
            let room = MAX_RECORD_BYTES.saturating_sub(self.record.len() as u64);
            let read = (&mut self.inner).take(room).read_until(b'\n', &mut self.record)?;
            if read == 0 {
                return Ok(!self.record.is_empty());
            }
            if self.record.last() != Some(&b'\n') {
                if self.record.len() as u64 >= MAX_RECORD_BYTES {
                    return Err(too_long());
                }
                continue;
            }
            let quotes = memchr::memchr_iter(b'"', &self.record).count();
            if !self.quoted || quotes.is_multiple_of(2) {
                return Ok(true);
            }
        }
    }

    /// Decides the mode from the header record, and writes the stored header.
    fn header(&mut self) {
        let (body, ending) = split_ending(&self.record);
        let mut fields = self.fields(body);
        if let Some(first) = fields.first_mut()
            && first.starts_with("\u{feff}".as_bytes())
        {
            *first = &first[3..];
        }
        let names: Vec<String> = fields.iter().map(|f| unquote(f, self.quoted)).collect();
        let mut used = vec![false; names.len()];
        let mut positions: Vec<Option<usize>> = Vec::with_capacity(self.order.len() + names.len());
        let mut stored: Vec<String> = Vec::with_capacity(positions.capacity());
        for column in &self.order {
            let found = (0..names.len()).find(|&i| !used[i] && &names[i] == column);
            if let Some(i) = found {
                used[i] = true;
            }
            positions.push(found);
            stored.push(column.clone());
        }
        for (i, name) in names.iter().enumerate().filter(|(i, _)| !used[*i]) {
            positions.push(Some(i));
            stored.push(name.clone());
        }
        let unchanged = positions.len() == names.len() && positions.iter().enumerate().all(|(i, p)| *p == Some(i));
        if body.is_empty() || unchanged {
            self.output.extend_from_slice(&self.record);
            self.mode = Mode::Pass;
            return;
        }
        let delimiter = [self.delimiter];
        for (i, name) in stored.iter().enumerate() {
            if i > 0 {
                self.output.extend_from_slice(&delimiter);
            }
            self.output.extend_from_slice(&quote(name, self.quoted));
        }
        self.output
            .extend_from_slice(if ending.is_empty() { b"\n" } else { ending });
        *self.rewritten.borrow_mut() = Some(names);
        self.mode = Mode::Rewrite(positions);
    }

    /// The raw fields of one record (quotes kept).
    fn fields<'a>(&self, body: &'a [u8]) -> Vec<&'a [u8]> {
        let mut fields = Vec::new();
        let mut start = 0;
        let mut in_quotes = false;
        for (i, &b) in body.iter().enumerate() {
            if self.quoted && b == b'"' {
                in_quotes = !in_quotes;
            } else if b == self.delimiter && !in_quotes {
                fields.push(&body[start..i]);
                start = i + 1;
            }
        }
        fields.push(&body[start..]);
        fields
    }

    /// Writes the current record in the stored order.
    fn rewrite(&mut self, positions: &[Option<usize>]) {
        let (body, ending) = split_ending(&self.record);
        if body.is_empty() {
            self.output.extend_from_slice(ending);
            return;
        }
        let fields = self.fields(body);
        let width = positions.iter().flatten().count();
        let taken = positions
            .iter()
            .map(|p| p.and_then(|i| fields.get(i).copied()).unwrap_or(b""));
        let beyond = fields.iter().skip(width).copied();
        for (i, field) in taken.chain(beyond).enumerate() {
            if i > 0 {
                self.output.push(self.delimiter);
            }
            self.output.extend_from_slice(field);
        }
        self.output
            .extend_from_slice(if ending.is_empty() { b"\n" } else { ending });
    }

    /// Fills `self.output` with the next stored bytes; leaves it empty at the end.
    fn fill(&mut self) -> io::Result<()> {
        self.output.clear();
        self.served = 0;
        match &self.mode {
            Mode::Header => {
                self.mode = Mode::Pass;
                if self.next_record()? {
                    self.header();
                }
            }
            // `read` takes the input itself once the header is served.
            Mode::Pass => {}
            Mode::Rewrite(positions) => {
                let positions = positions.clone();
                // A few records per fill, so that reads are not one short record each.
                while self.output.len() < FILL_BYTES && self.next_record()? {
                    self.rewrite(&positions);
                }
            }
        }
        Ok(())
    }
}

impl<R: BufRead> Read for Conform<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.served == self.output.len() {
            if matches!(self.mode, Mode::Pass) {
                // The header served: the rest goes straight through, with no copy of ours.
                return self.inner.read(buf);
            }
            self.fill()?;
        }
        Ok(super::serve(&self.output, &mut self.served, buf))
    }
}

/// A record's content and its line ending (`\r\n`, `\n`, or nothing at the end of the input).
pub(crate) fn split_ending(record: &[u8]) -> (&[u8], &[u8]) {
    let body = record.strip_suffix(b"\n").unwrap_or(record);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    (body, &record[body.len()..])
}

/// A header field's name: for CSV, its quotes removed and doubled quotes made single.
fn unquote(field: &[u8], quoted: bool) -> String {
    let text = String::from_utf8_lossy(field);
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if quoted => inner.replace("\"\"", "\""),
        _ => text.into_owned(),
    }
}

/// A name as a CSV field (quoted when it must be) or a TSV one.
fn quote(name: &str, quoted: bool) -> Vec<u8> {
    if quoted && name.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", name.replace('"', "\"\"")).into_bytes()
    } else {
        name.as_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conform(format: ContentFormat, order: &[&str], input: &str) -> (String, Option<Vec<String>>) {
        let rewritten = ColumnsFound::default();
        let order = order.iter().map(|c| (*c).to_owned()).collect();
        // A tiny buffer: records and the header cross reads.
        let reader = io::BufReader::with_capacity(3, input.as_bytes());
        let mut out = String::new();
        Conform::new(reader, format, order, Rc::clone(&rewritten))
            .read_to_string(&mut out)
            .expect("conformed");
        let found = rewritten.borrow().clone();
        (out, found)
    }

    #[test]
    fn a_file_in_the_tables_order_passes_through_byte_for_byte() {
        let input = "\u{feff}a\tb\r\n1\t2\r\n3\t4";
        assert_eq!(
            conform(ContentFormat::Tsv, &["a", "b"], input),
            (input.to_owned(), None)
        );
    }

    #[test]
    fn moved_columns_are_put_back_in_the_tables_order() {
        let (out, found) = conform(ContentFormat::Tsv, &["a", "b", "c"], "b\ta\tc\n2\t1\t3\n5\t4\t6\n");
        assert_eq!(out, "a\tb\tc\n1\t2\t3\n4\t5\t6\n");
        assert_eq!(found, Some(vec!["b".into(), "a".into(), "c".into()]));
    }

    #[test]
    fn a_missing_column_is_left_empty_and_a_new_one_goes_after_the_tables() {
        let (out, _) = conform(ContentFormat::Tsv, &["a", "b", "c"], "\u{feff}new\ta\tc\r\nx\t1\t3\r\n");
        assert_eq!(out, "a\tb\tc\tnew\r\n1\t\t3\tx\r\n");
    }

    #[test]
    fn csv_fields_move_with_their_quotes_commas_and_line_breaks() {
        let input = "\"b, the second\",a\n\"say \"\"hi\"\",\nthere\",1\n,2\n";
        let (out, found) = conform(ContentFormat::Csv, &["a", "b, the second"], input);
        assert_eq!(out, "a,\"b, the second\"\n1,\"say \"\"hi\"\",\nthere\"\n2,\n");
        assert_eq!(found, Some(vec!["b, the second".into(), "a".into()]));
    }

    #[test]
    fn a_record_with_more_fields_than_the_header_keeps_them_and_a_blank_line_stays_blank() {
        let (out, _) = conform(ContentFormat::Tsv, &["a", "b"], "b\ta\n2\t1\textra\n\n3\n");
        assert_eq!(out, "a\tb\n1\t2\textra\n\n\t3\n");
    }

    #[test]
    fn repeated_names_match_in_turn_and_an_empty_document_stays_empty() {
        let (out, _) = conform(ContentFormat::Tsv, &["x", "a", "x"], "a\tx\tx\n1\t2\t3\n");
        assert_eq!(out, "x\ta\tx\n2\t1\t3\n");
        assert_eq!(conform(ContentFormat::Csv, &["a"], ""), (String::new(), None));
        assert_eq!(
            conform(ContentFormat::Csv, &["a"], "b"),
            ("a,b\n".to_owned(), Some(vec!["b".into()]))
        );
    }

    #[test]
    fn a_record_longer_than_the_bound_is_refused() {
        let long = format!("b\ta\n{}\n", "x".repeat(MAX_RECORD_BYTES as usize + 1));
        let mut conform = Conform::new(
            io::BufReader::new(long.as_bytes()),
            ContentFormat::Tsv,
            vec!["a".into(), "b".into()],
            ColumnsFound::default(),
        );
        let error = io::copy(&mut conform, &mut io::sink()).expect_err("too long");
        assert!(error.to_string().contains("1 MiB"), "{error}");
    }
}
