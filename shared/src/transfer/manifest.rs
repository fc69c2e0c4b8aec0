//! The manifest: one JSON object per run, written next to the data, last.
//!
//! It is the commit marker. Readers (Athena jobs, downstream loaders) should treat a run's objects
//! as present only once its manifest exists; a failed or retried run may have left objects that no
//! manifest lists (a retry overwrites them at the same keys).

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::document::DocumentRecord;
use crate::ports::{ObjectSink, SinkError, TableRecord};

/// The version of the manifest layout; bumped on incompatible change.
pub const MANIFEST_VERSION: u32 = 1;
/// The name of the manifest file inside a run's prefix.
pub const MANIFEST_FILE_NAME: &str = "_manifest.json";

/// The record of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub manifest_version: u32,
    /// Identifiers of the run and its source: job, run id, source, account, report type, Amazon ids.
    pub context: BTreeMap<String, String>,
    /// One record per document transferred, in order.
    pub documents: Vec<DocumentRecord>,
    /// Sums over the documents.
    pub totals: Totals,
    /// The catalog table the run's data was registered in, and what the run changed in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableRecord>,
    /// When the manifest was written.
    pub written_at: DateTime<Utc>,
}

/// Sums over all documents of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Documents transferred.
    pub documents: u64,
    /// Objects stored.
    pub objects: u64,
    /// Bytes downloaded.
    pub bytes_in: u64,
    /// Bytes stored.
    pub bytes_out: u64,
    /// Data rows, over the objects that have a row count.
    pub rows: u64,
}

impl Totals {
    /// Sums over the records of a run's documents.
    pub fn of(documents: &[DocumentRecord]) -> Self {
        Self {
            documents: documents.len() as u64,
            objects: documents.iter().map(|d| d.objects.len() as u64).sum(),
            bytes_in: documents.iter().map(|d| d.bytes_in).sum(),
            bytes_out: documents.iter().map(|d| d.bytes_out).sum(),
            rows: documents.iter().flat_map(|d| &d.objects).filter_map(|o| o.rows).sum(),
        }
    }
}

impl Manifest {
    /// Builds a manifest from the records of a run.
    pub fn new(context: BTreeMap<String, String>, documents: Vec<DocumentRecord>) -> Self {
        let totals = Totals::of(&documents);
        Self {
            manifest_version: MANIFEST_VERSION,
            context,
            documents,
            totals,
            table: None,
            written_at: Utc::now(),
        }
    }

    /// Writes the manifest as pretty JSON at `key`. Call it after every document of the run is
    /// stored: its presence is what marks the run complete.
    pub async fn write<S: ObjectSink>(&self, sink: &S, key: &str) -> Result<(), SinkError> {
        let body = serde_json::to_vec_pretty(self).map_err(|e| SinkError {
            operation: "PutObject",
            message: format!("serialising the manifest: {e}"),
            retryable: false,
        })?;
        sink.put_object(key, Bytes::from(body), "application/json").await
    }
}
