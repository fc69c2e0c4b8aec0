//! The column names of a stored object, read from its first line as it streams past: the header of
//! a TSV or CSV file, the keys of a JSON Lines file's first row. The catalog's tables are built from
//! them, and a change between runs is seen by comparing them.

use crate::domain::document::ContentFormat;

/// The longest first line read for column names; a longer one gives none.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Collects an object's first line, up to [`MAX_HEADER_BYTES`].
#[derive(Debug)]
pub(crate) struct HeaderCapture {
    format: ContentFormat,
    line: Vec<u8>,
    done: bool,
}

impl HeaderCapture {
    /// A capture for an object of `format`; `None` for formats without columns.
    pub(crate) fn for_format(format: ContentFormat) -> Option<Self> {
        matches!(
            format,
            ContentFormat::Tsv | ContentFormat::Csv | ContentFormat::JsonLines
        )
        .then(|| Self {
            format,
            line: Vec::new(),
            done: false,
        })
    }

    /// Takes the next bytes of the object.
    pub(crate) fn update(&mut self, data: &[u8]) {
        if self.done {
            return;
        }
        let (take, ends) = match memchr::memchr(b'\n', data) {
            Some(i) => (i, true),
            None => (data.len(), false),
        };
        if self.line.len() + take > MAX_HEADER_BYTES {
            self.line.clear();
            self.done = true;
            return;
        }
        self.line.extend_from_slice(&data[..take]);
        self.done = ends;
    }

    /// The column names a whole first line of `format` gives, as [`HeaderCapture::columns`] reads them.
    pub(crate) fn columns_of(format: ContentFormat, line: &[u8]) -> Option<Vec<String>> {
        let mut capture = Self::for_format(format)?;
        capture.update(line);
        capture.columns()
    }

    /// The column names, if the first line gave any.
    pub(crate) fn columns(self) -> Option<Vec<String>> {
        let text = std::str::from_utf8(&self.line).ok()?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text).trim_end_matches('\r');
        if text.is_empty() {
            return None;
        }
        let columns = match self.format {
            ContentFormat::Tsv => text.split('\t').map(str::to_owned).collect(),
            ContentFormat::Csv => csv_fields(text),
            ContentFormat::JsonLines => match serde_json::from_str::<serde_json::Value>(text).ok()? {
                serde_json::Value::Object(row) => row.keys().cloned().collect(),
                _ => return None,
            },
            _ => return None,
        };
        Some(columns)
    }
}

/// The catalog's (and a Parquet file's) names of columns the data names `sources`: lower case letters,
/// digits and `_` (anything else becomes `_`; `col` when nothing is left), `_2`, `_3`… on a collision.
pub fn column_names(sources: &[String]) -> Vec<String> {
    let mut taken = std::collections::BTreeSet::new();
    sources
        .iter()
        .map(|source| {
            let name = identifier(source);
            let name = if name.trim_matches('_').is_empty() {
                "col".to_owned()
            } else {
                name
            };
            let mut candidate = name.clone();
            let mut n = 2;
            while !taken.insert(candidate.clone()) {
                candidate = format!("{name}_{n}");
                n += 1;
            }
            candidate
        })
        .collect()
}

/// `text` as a catalog identifier: ASCII letters and digits in lower case, anything else `_`.
pub fn identifier(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The fields of one RFC 4180 line: `"` quotes a field, `""` inside quotes is a quote.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(format: ContentFormat, chunks: &[&str]) -> Option<Vec<String>> {
        let mut capture = HeaderCapture::for_format(format).expect("a format with columns");
        for chunk in chunks {
            capture.update(chunk.as_bytes());
        }
        capture.columns()
    }

    #[test]
    fn a_tsv_header_split_across_parts_gives_its_columns() {
        assert_eq!(
            columns(
                ContentFormat::Tsv,
                &["\u{feff}amazon-order-id\tpur", "chase-date\titem-price\r\n1\t2\t3\n"]
            ),
            Some(vec![
                "amazon-order-id".into(),
                "purchase-date".into(),
                "item-price".into()
            ])
        );
    }

    #[test]
    fn a_csv_header_honours_quotes_and_doubled_quotes() {
        assert_eq!(
            columns(ContentFormat::Csv, &["a,\"b, c\",\"say \"\"d\"\"\",\n1,2,3,4\n"]),
            Some(vec!["a".into(), "b, c".into(), "say \"d\"".into(), String::new()])
        );
    }

    #[test]
    fn a_json_lines_file_gives_the_keys_of_its_first_row() {
        let keys = columns(
            ContentFormat::JsonLines,
            &["{\"date\":\"2026-11-22\",\"clicks\":3}\n{\"x\":1}\n"],
        );
        let mut keys = keys.expect("keys");
        keys.sort();
        assert_eq!(keys, ["clicks", "date"]);
    }

    #[test]
    fn an_empty_object_or_a_first_line_over_the_limit_gives_no_columns() {
        assert_eq!(columns(ContentFormat::Csv, &[]), None);
        let long = "x".repeat(MAX_HEADER_BYTES + 1);
        assert_eq!(columns(ContentFormat::Tsv, &[&long, "\n"]), None);
        assert!(HeaderCapture::for_format(ContentFormat::Xml).is_none());
    }
}
