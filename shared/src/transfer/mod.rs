//! The streaming transfer: one pre-signed URL in, verified objects and a manifest in S3 out.
//!
//! ```text
//! HTTP body → [AES-256-CBC | AES-256-GCM | none] → [gzip | zip | none] → [decompress | keep] → S3 multipart
//! ```
//!
//! Decompressed content may be converted on the way: a JSON array to JSON Lines (`jsonl`), TSV or
//! CSV into its table's column order ([`conform`]), rows to Parquet ([`columnar`]).
//!
//! - [`transfer_document`] moves one document; see [`pipeline`] for its memory bound and its
//!   visibility guarantee (nothing at a final key until the whole document is verified).
//! - [`run_transform`] is the synchronous core, usable on its own (the benchmark measures it alone).
//! - [`Manifest`] records a run and, written last, commits it.

pub mod columnar;
pub mod conform;
pub mod crypto;
mod error;
pub mod header;
pub mod http;
mod jsonl;
pub mod manifest;
pub mod pipeline;
pub mod split;
pub mod transform;
pub mod unzip;

pub use crate::domain::document::{DownloadUrl, InvalidUrl};
pub use crypto::{AesKey, GcmTag, iv_from_base64};
pub use error::{DecodeError, ErrorClass, TransferError};
pub use http::download_client;
pub use manifest::{MANIFEST_FILE_NAME, Manifest, Totals};
pub use pipeline::{Destination, Document, DocumentRecord, StoredObject, TransferOptions, transfer_document};
pub use transform::{
    Compression, ContentFormat, Encryption, NullOutput, OutputMode, PartOutput, TransformLimits, TransformSpec,
    run_transform,
};

/// Copies into `buf` what `output` holds past `served`, and moves `served` on; returns the bytes
/// copied. The read half of the converting readers (JSON Lines, column order, Parquet), each of which
/// fills an output buffer and serves it.
pub(crate) fn serve(output: &[u8], served: &mut usize, buf: &mut [u8]) -> usize {
    let n = buf.len().min(output.len() - *served);
    buf[..n].copy_from_slice(&output[*served..*served + n]);
    *served += n;
    n
}
