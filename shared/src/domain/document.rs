//! What a document is: how a source delivers it (URL, encryption, compression, format) and what the
//! transfer made of it (the objects stored, their sizes and hashes). Plain descriptions; the
//! streaming that acts on them is [`crate::transfer`].
//!
//! Pre-signed URLs and keys are credentials: [`DownloadUrl`] and [`AesKey`] never print them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::{Deserialize, Serialize};

/// Length of an AES-256 key in bytes.
pub const AES256_KEY_LEN: usize = 32;
/// Length of a GCM authentication tag in bytes (only full-length tags are accepted).
pub const GCM_TAG_LEN: usize = 16;

/// Default ceiling on the decompressed size of one document (gzip/zip bomb protection).
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 64 * 1024 * 1024 * 1024;

/// Default ceiling on how many times its compressed size a document may expand to. Real reports
/// compress about 4–15:1 (TSV flat files, JSON analytics reports) and seldom beyond 30:1; a gzip bomb
/// of zeros expands about 1,000:1. 100:1 leaves real reports a wide margin and stops a bomb after
/// [`EXPANSION_CHECK_FLOOR`] of output.
pub const DEFAULT_MAX_EXPANSION_RATIO: u32 = 100;

/// The expansion ratio is checked only once a document's output passes this size, so that a small,
/// very repetitive document (a few rows of the same values) is never refused.
pub const EXPANSION_CHECK_FLOOR: u64 = 64 * 1024 * 1024;

/// The most entries one ZIP archive may hold (zip bomb protection; a Slate export has a handful).
pub const MAX_ZIP_ENTRIES: u32 = 10_000;

/// A failure while decoding the document bytes: crypto, compression or archive structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The key is not 32 bytes (AES-256 only).
    #[error("wrong key length: expected {expected} bytes, got {actual}")]
    KeyLength {
        /// Required length in bytes.
        expected: usize,
        /// Length that was supplied.
        actual: usize,
    },
    /// The initialisation vector or nonce has the wrong length.
    #[error("wrong initialisation vector length: expected {expected} bytes, got {actual}")]
    IvLength {
        /// Required length in bytes.
        expected: usize,
        /// Length that was supplied.
        actual: usize,
    },
    /// Key or IV material could not be decoded (for example, not base64).
    #[error("invalid key material: {0}")]
    KeyMaterial(&'static str),
    /// The last CBC block does not end in valid PKCS#7 padding: wrong key or IV, or tampered data.
    #[error("bad PKCS#7 padding: wrong key or IV, or the document was altered")]
    BadPadding,
    /// AES-GCM authentication failed: wrong key or nonce, or the document was altered.
    #[error("AES-GCM authentication tag mismatch: wrong key or nonce, or the document was altered")]
    TagMismatch,
    /// The input ended before the format said it would.
    #[error("truncated document: {0}")]
    Truncated(&'static str),
    /// The gzip stream is malformed or fails its CRC check.
    #[error("corrupt gzip stream: {0}")]
    CorruptGzip(String),
    /// The ZIP archive is malformed, uses an unsupported feature, or fails an entry CRC check.
    #[error("corrupt zip archive: {0}")]
    CorruptZip(String),
    /// More bytes came out of decompression than the configured ceiling allows.
    #[error("decompressed size exceeds the configured ceiling of {limit} bytes")]
    TooLarge {
        /// The ceiling in bytes.
        limit: u64,
    },
    /// Decompression expanded the document beyond the ratio allowed: a decompression bomb, or a
    /// document unlike any report.
    #[error(
        "decompression expanded {bytes_in} bytes into more than {bytes_out} bytes, over the ceiling of \
         {ratio}:1 (a decompression bomb, or a corrupt document)"
    )]
    Expansion {
        /// Compressed bytes read so far.
        bytes_in: u64,
        /// Decompressed bytes produced so far.
        bytes_out: u64,
        /// The ratio allowed.
        ratio: u32,
    },
    /// A ZIP archive holds more entries than allowed.
    #[error("the zip archive holds more than {limit} entries")]
    TooManyEntries {
        /// The most entries allowed.
        limit: u32,
    },
    /// The content is not in the format the source documents (a JSON array of rows that is not one).
    #[error("the document is not {expected}: {problem}")]
    NotAsDeclared {
        /// The format the source documents.
        expected: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A row of a report split by data day holds no day (see [`crate::transfer::split`]).
    #[error("a row cannot be dated: {0}")]
    Undated(String),
}

/// An AES-256 key that never prints and is zeroed on drop.
pub struct AesKey(SecretBox<[u8; AES256_KEY_LEN]>);

impl AesKey {
    /// Accepts exactly 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let key: [u8; AES256_KEY_LEN] = bytes.try_into().map_err(|_| DecodeError::KeyLength {
            expected: AES256_KEY_LEN,
            actual: bytes.len(),
        })?;
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    /// Accepts the standard base64 form Amazon puts in `encryptionDetails.key`.
    pub fn from_base64(text: &str) -> Result<Self, DecodeError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| DecodeError::KeyMaterial("the key is not valid base64"))?;
        Self::from_bytes(&bytes)
    }

    /// The raw key, for the decryptor only.
    pub(crate) fn expose_bytes(&self) -> &[u8; AES256_KEY_LEN] {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

/// Decodes a base64 initialisation vector, checking its length when `expected` is given.
pub fn iv_from_base64(text: &str, expected: Option<usize>) -> Result<Vec<u8>, DecodeError> {
    let iv = BASE64
        .decode(text.trim())
        .map_err(|_| DecodeError::KeyMaterial("the initialisation vector is not valid base64"))?;
    match expected {
        Some(len) if iv.len() != len => Err(DecodeError::IvLength {
            expected: len,
            actual: iv.len(),
        }),
        _ if iv.is_empty() => Err(DecodeError::KeyMaterial("the initialisation vector is empty")),
        _ => Ok(iv),
    }
}

/// Where the 16-byte GCM authentication tag comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcmTag {
    /// The last 16 bytes of the stream are the tag (the layout `aes-gcm`, OpenSSL and Java produce).
    Appended,
    /// The tag was delivered separately, e.g. in the document's metadata.
    Detached([u8; GCM_TAG_LEN]),
}

/// How a document is encrypted by its source.
pub enum Encryption {
    /// Plain bytes (every current Amazon source).
    None,
    /// AES-256-CBC with PKCS#7 padding (SP-API Reports 2020-09-04 documents).
    AesCbc {
        /// The 32-byte key.
        key: AesKey,
        /// The 16-byte initialisation vector.
        iv: Vec<u8>,
    },
    /// AES-256-GCM.
    AesGcm {
        /// The 32-byte key.
        key: AesKey,
        /// The nonce (normally 12 bytes).
        nonce: Vec<u8>,
        /// Additional authenticated data, usually empty.
        aad: Vec<u8>,
        /// Where the tag is.
        tag: GcmTag,
    },
}

impl Encryption {
    /// A short label for logs and manifests.
    pub fn label(&self) -> &'static str {
        match self {
            Encryption::None => "none",
            Encryption::AesCbc { .. } => "AES-256-CBC",
            Encryption::AesGcm { .. } => "AES-256-GCM",
        }
    }
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// How a document is compressed by its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Not compressed.
    None,
    /// gzip; several concatenated members are read as one stream.
    Gzip,
    /// A ZIP archive; each file entry becomes its own object.
    Zip,
}

/// What the user wants stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputMode {
    /// Store the decompressed content (the default).
    #[default]
    Decompress,
    /// Store the (decrypted) compressed stream exactly as it came: far less CPU and storage, and
    /// Athena reads gzip. No row count and no decompressed-size ceiling apply.
    KeepCompressed,
    /// Store the rows of a TSV, CSV or JSON document as Parquet, typed where the source publishes
    /// the types (see `transfer::columnar`); other formats are stored decompressed.
    Parquet,
}

/// The type of a column, as its source publishes it; `string` for a column it does not type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// Text.
    String,
    /// A whole number.
    BigInt,
    /// A decimal number.
    Double,
    /// A calendar day.
    Date,
    /// An instant, to the millisecond, in UTC.
    Timestamp,
}

impl ColumnKind {
    /// The type's name in the catalog (Athena's DDL).
    pub fn catalog_type(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::BigInt => "bigint",
            Self::Double => "double",
            Self::Date => "date",
            Self::Timestamp => "timestamp",
        }
    }

    /// The Trino type of a column of this kind as an Athena view's query returns it, which the view
    /// must declare (a Parquet `timestamp` reads as `timestamp(3)`).
    pub fn view_type(self) -> &'static str {
        match self {
            Self::String => "varchar",
            Self::BigInt => "bigint",
            Self::Double => "double",
            Self::Date => "date",
            Self::Timestamp => "timestamp(3)",
        }
    }

    /// The kind of a catalog type name; `string` for any other.
    pub fn from_catalog_type(name: &str) -> Self {
        match name {
            "bigint" => Self::BigInt,
            "double" => Self::Double,
            "date" => Self::Date,
            "timestamp" => Self::Timestamp,
            _ => Self::String,
        }
    }
}

/// The format of the decompressed content; decides the row count and the content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentFormat {
    /// Tab-separated values with a header line (SP-API flat files).
    Tsv,
    /// RFC 4180 comma-separated values with a header line (AMC, Slate); quoted newlines are
    /// not counted as rows.
    Csv,
    /// One JSON document (SP-API JSON reports: an object); no row count.
    Json,
    /// One JSON array of row objects (Ads v3 reports). Stored as [`ContentFormat::JsonLines`], an
    /// element per line, which query engines read as rows.
    JsonArray,
    /// One JSON value per line.
    JsonLines,
    /// An XML document (the SP-API XML reports); no row count.
    Xml,
    /// Anything else; no row count.
    Binary,
}

impl ContentFormat {
    /// The MIME type stored with objects of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ContentFormat::Tsv => "text/tab-separated-values",
            ContentFormat::Csv => "text/csv",
            ContentFormat::Json | ContentFormat::JsonArray => "application/json",
            ContentFormat::JsonLines => "application/x-ndjson",
            ContentFormat::Xml => "application/xml",
            ContentFormat::Binary => "application/octet-stream",
        }
    }

    /// The file extension (without dot) for objects of this format.
    pub fn extension(self) -> &'static str {
        match self {
            ContentFormat::Tsv => "tsv",
            ContentFormat::Csv => "csv",
            ContentFormat::Json | ContentFormat::JsonArray => "json",
            ContentFormat::JsonLines => "jsonl",
            ContentFormat::Xml => "xml",
            ContentFormat::Binary => "bin",
        }
    }

    /// Whether the first line is a header (not counted as a row).
    pub fn has_header(self) -> bool {
        matches!(self, ContentFormat::Tsv | ContentFormat::Csv)
    }
}

/// A pre-signed download URL. `Debug` shows only the scheme and host; the full URL is exposed only
/// to the HTTP call that needs it.
#[derive(Clone)]
pub struct DownloadUrl(SecretString);

impl DownloadUrl {
    /// Wraps a URL. Only `https` URLs are accepted; `http` to a loopback host only when
    /// `loopback_http` says so (the local stack, the demo and the tests turn it on through
    /// `AMZPIPE_ALLOW_LOOPBACK_HTTP`; a deployed function never does).
    pub fn parse(url: impl Into<String>, loopback_http: bool) -> Result<Self, InvalidUrl> {
        let url: String = url.into();
        let parsed = reqwest::Url::parse(&url).map_err(|_| InvalidUrl("not a valid URL"))?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        match parsed.scheme() {
            "https" => {}
            "http" if loopback && loopback_http => {}
            _ => return Err(InvalidUrl("download URLs must use https")),
        }
        Ok(Self(SecretString::from(url)))
    }

    /// The full URL, for the request itself only.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// `scheme://host` — safe to log.
    pub fn redacted(&self) -> String {
        reqwest::Url::parse(self.expose())
            .ok()
            .and_then(|u| u.host_str().map(|h| format!("{}://{h}/…", u.scheme())))
            .unwrap_or_else(|| "<url>".into())
    }
}

impl std::fmt::Debug for DownloadUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DownloadUrl({})", self.redacted())
    }
}

/// A URL that cannot be used for a download.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid download URL: {0}")]
pub struct InvalidUrl(&'static str);

/// One document to fetch from a source.
#[derive(Debug)]
pub struct Document {
    /// The source's id for it (report document id, execution id + file index, file id).
    pub source_id: String,
    /// The pre-signed download URL.
    pub url: DownloadUrl,
    /// How the source encrypted it.
    pub encryption: Encryption,
    /// How the source compressed it.
    pub compression: Compression,
    /// The content format once decompressed.
    pub format: ContentFormat,
}

/// One object stored by a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// The S3 key.
    pub key: String,
    /// The ZIP entry it came from, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_name: Option<String>,
    /// Bytes stored.
    pub bytes: u64,
    /// SHA-256 of the bytes stored, lowercase hex.
    pub sha256: String,
    /// Data rows (header excluded) for TSV, CSV and JSON Lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Values of a Parquet object stored as null because their type refused them (never a row
    /// dropped); absent when there were none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_values: Option<u64>,
    /// The content type stored with the object.
    pub content_type: String,
    /// Parts uploaded (0 for an empty object, stored with a single put).
    pub parts: u32,
    /// The data day every row of the object has, for a report split by day (see
    /// [`crate::transfer::split`]); absent for an object that holds its window whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<chrono::NaiveDate>,
}

/// What a transfer did with one document: the manifest's record of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRecord {
    /// The source's id for the document.
    pub source_id: String,
    /// `none`, `AES-256-CBC` or `AES-256-GCM`.
    pub encryption: String,
    /// How the source compressed it.
    pub compression: Compression,
    /// Decompressed, or kept compressed.
    pub output: OutputMode,
    /// Bytes downloaded.
    pub bytes_in: u64,
    /// Bytes stored over all objects.
    pub bytes_out: u64,
    /// The objects stored.
    pub objects: Vec<StoredObject>,
    /// The column names of its first object that has them (a TSV or CSV header, a JSON Lines row's
    /// keys): what the catalog's table is built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// The document's own columns, when it was stored in its table's order instead (see
    /// `transfer::conform`): its columns had moved, gone or been inserted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_columns: Option<Vec<String>>,
    /// When the download started.
    pub started_at: DateTime<Utc>,
    /// When the last object was completed.
    pub finished_at: DateTime<Utc>,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_document_urls_are_refused_unless_loopback_http_is_turned_on_and_the_host_is_loopback() {
        let local = "http://127.0.0.1:4566/files/f1?X-Amz-Signature=s";
        assert!(
            DownloadUrl::parse(local, false).is_err(),
            "a deployed function refuses it"
        );
        assert!(DownloadUrl::parse(local, true).is_ok(), "the local stack takes it");
        assert!(DownloadUrl::parse("http://example.com/f?X-Amz-Signature=s", true).is_err());
        for loopback_http in [false, true] {
            assert!(DownloadUrl::parse("https://bucket.s3.amazonaws.com/f?X-Amz-Signature=s", loopback_http).is_ok());
        }
    }
}
