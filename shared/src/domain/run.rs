//! Runs: one job over one window, from the claim to the manifest.
//!
//! ```text
//!            claim            request id known        poll: done            manifest written
//! (none) ──────────▶ CLAIMED ─────────────────▶ REQUESTED ─────────▶ READY ─────────────────▶ SUCCEEDED
//!                       ▲                           │  poll: no data                      
//!                       │ a later schedule fire     ├────────────────▶ NO_DATA             
//!                       │ re-claims a failed run    │  poll: Amazon failed / stuck        
//!                       └──────────────────────── FAILED ◀─────────────────────────────────
//! ```
//!
//! Every transition is guarded by the status it leaves (a conditional write), so a retried or
//! duplicated step either repeats a transition that already happened (and finds the same result) or
//! is refused as stale; it never moves a run backwards.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::TimeWindow;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Claimed by a schedule fire; no Amazon request id recorded yet.
    Claimed,
    /// The Amazon request exists and its id is recorded.
    Requested,
    /// Amazon finished the request; documents can be downloaded.
    Ready,
    /// Every document is stored and the manifest written.
    Succeeded,
    /// Amazon finished without data (a cancelled SP-API report, a Slate window without files).
    NoData,
    /// Amazon failed the request, or the run was given up; `failure_reason` says why.
    Failed,
}

impl RunStatus {
    /// The stored spelling (`CLAIMED`, `REQUESTED`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "CLAIMED",
            Self::Requested => "REQUESTED",
            Self::Ready => "READY",
            Self::Succeeded => "SUCCEEDED",
            Self::NoData => "NO_DATA",
            Self::Failed => "FAILED",
        }
    }

    /// Whether the run has ended (a finished run carries a TTL).
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::NoData | Self::Failed)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "CLAIMED" => Self::Claimed,
            "REQUESTED" => Self::Requested,
            "READY" => Self::Ready,
            "SUCCEEDED" => Self::Succeeded,
            "NO_DATA" => Self::NoData,
            "FAILED" => Self::Failed,
            other => return Err(format!("unknown run status {other:?}")),
        })
    }
}

/// What identifies a run: the job and the window. Two schedule fires for the same scheduled time
/// compute the same key, which is what makes them one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunKey {
    /// The job's name.
    pub job: String,
    /// The slice of data this run asks for.
    pub window: TimeWindow,
}

impl RunKey {
    /// The run id: `{job}_{start}_{end}` with compact UTC times (`sp-orders_20261122T0000Z_20261123T0000Z`).
    /// Deterministic, so a retried download writes to the same keys; safe in S3 keys and DynamoDB keys.
    pub fn run_id(&self) -> String {
        format!(
            "{}_{}_{}",
            self.job,
            compact(self.window.start),
            compact(self.window.end)
        )
    }
}

fn compact(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%MZ").to_string()
}

/// Step Functions' quota on one execution's history: an execution that reaches it fails outside every
/// `Catch` (its failure path never runs).
pub const HISTORY_EVENTS_LIMIT: u32 = 25_000;

/// The most events one call of a looping step (create-request, poll-status, download-decrypt) can add
/// to its slice's execution history, retries its count does not see included: the task's five events,
/// the Wait and Choice that lead back to it (four), and three for each retry the definition allows on
/// one entry of the task. `tests/tests/state_machine.rs` holds it to the definition.
pub const EVENTS_PER_STEP_CALL: u32 = 75;

/// Events of a slice's execution outside its loops: its start and end, the failure path with its
/// retries, the states passed once.
pub const FIXED_EVENTS: u32 = 300;

/// The most calls of its looping steps one claim of a run may make (the count is kept on the run, so
/// no retry resets it): the bound of every wait loop, chosen so that a slice's execution stays within
/// [`HISTORY_EVENTS_LIMIT`] whatever its steps answer. A run that reaches it ends `FAILED` with the
/// last answer, before Step Functions would end its execution without a trace.
pub const MAX_STEP_CALLS: u32 = (HISTORY_EVENTS_LIMIT - FIXED_EVENTS) / EVENTS_PER_STEP_CALL;

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Job and window.
    pub key: RunKey,
    /// [`RunKey::run_id`].
    pub run_id: String,
    /// The source kind (`sp-reports`, `ads-reports`, `amc`, `slate`).
    pub source: String,
    /// Where the run is.
    pub status: RunStatus,
    /// The Amazon request id (report id, execution id), once known.
    pub request_id: Option<String>,
    /// Amazon's own last status word (`IN_QUEUE`, `RUNNING`, …).
    pub amazon_status: Option<String>,
    /// How many times the run was claimed (1, plus one per re-run after a failure).
    pub claims: u32,
    /// Status checks so far in this claim.
    pub polls: u32,
    /// When a create call was first attempted in this claim: a retry looks for a request made since.
    pub create_started_at: Option<DateTime<Utc>>,
    /// When the run was first claimed.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Why it failed (Amazon's reason, or ours).
    pub failure_reason: Option<String>,
    /// The manifest's key in the output bucket, once written.
    pub manifest_key: Option<String>,
    /// How the run's columns differ from its table's, when they drifted (see
    /// [`crate::ports::SchemaChange::Drifted`]); the manifest says it too.
    pub schema_note: Option<String>,
    /// How many documents this claim has stored, in order (a retried download resumes after them).
    /// Their records are kept apart from the run ([`crate::ports::JobStore::documents`]), so that a run
    /// of thousands of files stays within the store's item size.
    pub document_count: usize,
    /// Bytes stored by those documents.
    pub bytes_out: u64,
    /// Data rows in them, where counted.
    pub rows: Option<u64>,
    /// The executions that took this claim's create and download leases (the state machine's execution
    /// names), once taken.
    pub owners: Vec<String>,
    /// The lease of the step the run is on: the download's once taken, else the create's.
    #[serde(default)]
    pub lease: Option<RunLease>,
}

/// An execution's lease on a step of a run: while it lasts, no other execution acts on that step,
/// nor ends the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunLease {
    /// The execution holding it (the state machine's execution name).
    pub owner: String,
    /// When it runs out, unless renewed.
    pub until: DateTime<Utc>,
}

impl RunLease {
    /// Whether `owner` may act on the run at `now`: it holds the lease, or the lease has run out.
    pub fn admits(&self, owner: &str, now: DateTime<Utc>) -> bool {
        self.owner == owner || self.until <= now
    }
}

impl RunRecord {
    /// A freshly claimed run.
    pub fn claimed(key: RunKey, source: &str, now: DateTime<Utc>) -> Self {
        Self {
            run_id: key.run_id(),
            key,
            source: source.to_owned(),
            status: RunStatus::Claimed,
            request_id: None,
            amazon_status: None,
            claims: 1,
            polls: 0,
            create_started_at: None,
            created_at: now,
            updated_at: now,
            failure_reason: None,
            manifest_key: None,
            schema_note: None,
            document_count: 0,
            bytes_out: 0,
            rows: None,
            owners: Vec::new(),
            lease: None,
        }
    }
}

/// A job the pipeline refused before it could have a run (a malformed definition, a hostile id): kept
/// where `amzpipectl status` shows runs, so that a refusal is not visible only in one child execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedJob {
    /// The job's name as the definition gave it (cut to 128 characters, control characters
    /// removed), or `(unnamed)`.
    pub job: String,
    /// Why it was refused (the field at fault and what is wrong with it).
    pub reason: String,
    /// The scheduled time of the firing that carried it, as given.
    pub scheduled_time: Option<String>,
    /// The execution that met it.
    pub execution: Option<String>,
    /// When it was refused.
    pub at: DateTime<Utc>,
}

impl RefusedJob {
    /// The refusal of the job in a step's `event` for `reason`, at `at`.
    pub fn of_event(event: &serde_json::Value, reason: String, at: DateTime<Utc>) -> Self {
        let text = |v: &serde_json::Value| {
            v.as_str()
                .map(|s| s.chars().filter(|c| !c.is_control()).take(128).collect::<String>())
                .filter(|s| !s.is_empty())
        };
        Self {
            job: text(&event["job"]["name"]).unwrap_or_else(|| "(unnamed)".to_owned()),
            reason,
            scheduled_time: text(&event["scheduledTime"]),
            execution: text(&event["owner"]),
            at,
        }
    }
}

/// Fields a guarded transition sets besides the status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunUpdate {
    /// Why the run failed.
    pub failure_reason: Option<String>,
    /// Where the manifest is.
    pub manifest_key: Option<String>,
    /// How the run's columns drifted from its table's.
    pub schema_note: Option<String>,
    /// Amazon's last status word.
    pub amazon_status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_id_is_the_job_and_the_window_in_compact_utc() {
        let key = RunKey {
            job: "sp-orders".into(),
            window: TimeWindow::new(
                DateTime::from_timestamp(1_795_305_600, 0).expect("t"),
                DateTime::from_timestamp(1_795_392_000, 0).expect("t"),
            )
            .expect("window"),
        };
        assert_eq!(key.run_id(), "sp-orders_20261122T0000Z_20261123T0000Z");
    }

    #[test]
    fn statuses_round_trip_through_their_stored_spelling() {
        for s in [
            RunStatus::Claimed,
            RunStatus::Requested,
            RunStatus::Ready,
            RunStatus::Succeeded,
            RunStatus::NoData,
            RunStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse::<RunStatus>(), Ok(s));
        }
        assert!("DONE".parse::<RunStatus>().is_err());
    }
}
