//! The Amazon sources: what a job asks of each, and each one's rules. One module per source owns its
//! request (the job's `source` object), its validation and its policy — the longest window one request
//! may cover, how status checks back off, which shared quota a create takes, whether it reads
//! incrementally — each constant once:
//!
//! | module | `type` in a job | window limit | shared quota of a create | status checks |
//! |---|---|---|---|---|
//! | [`sp_reports`] | `spReports` | 30 days | token bucket per seller (0.0167/s, burst 15) | 15 s → 5 min |
//! | [`ads_reports`] | `adsReports` | 31 days | none (Amazon answers a repeat with 425) | 30 s → 5 min |
//! | [`amc`] | `amc` | none | a running slot of the instance's 10 | 1 → 15 min |
//! | [`slate`] | `slate` | none (incremental from a watermark) | none | 5 s → 1 min |
//!
//! **The registration point** is [`SourceSpec`] with its one `match` in [`SourceSpec::rules`]: the
//! only place in the domain that lists the sources. Everything else asks a source through
//! [`SourceRules`]. (The application layer has one more `match`, `steps::bind`, which picks the API
//! client that serves each source; adapters are plain HTTP clients of Amazon's APIs.)

pub mod ads_reports;
pub mod amc;
pub mod slate;
pub mod sp_reports;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::check_id;
use crate::domain::credentials::TokenHost;
use crate::domain::finality::FinalityPolicy;

pub use ads_reports::AdsReportRequest;
pub use amc::AmcRequest;
pub use slate::SlateRequest;
pub use sp_reports::SpReportRequest;

/// The source and its parameters; `type` selects the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SourceSpec {
    /// SP-API Reports 2021-06-30.
    SpReports(SpReportRequest),
    /// Amazon Ads reporting v3.
    AdsReports(AdsReportRequest),
    /// Amazon Marketing Cloud workflow executions.
    Amc(AmcRequest),
    /// Prime Video Slate datasets (incremental: only files newer than the job's watermark).
    Slate(SlateRequest),
}

impl SourceSpec {
    /// The source's rules. **The one place that lists the sources.**
    pub fn rules(&self) -> &dyn SourceRules {
        match self {
            Self::SpReports(r) => r,
            Self::AdsReports(r) => r,
            Self::Amc(r) => r,
            Self::Slate(r) => r,
        }
    }

    /// The short name used in S3 keys, logs and quota names.
    pub fn kind(&self) -> &'static str {
        self.rules().kind()
    }

    /// The account partition of the S3 layout: marketplace(s), profile, instance, or Slate account.
    pub fn account(&self) -> String {
        self.rules().account()
    }

    /// The report partition of the S3 layout: report type, workflow id (or `adhoc`), dataset.
    pub fn report(&self) -> String {
        self.rules().report()
    }

    /// The longest window the source accepts in one request, in days (`None`: no limit).
    pub fn max_window_days(&self) -> Option<u32> {
        self.rules().max_window_days()
    }
}

/// What each source decides for itself. Implemented by each source's request type.
pub trait SourceRules: Send + Sync {
    /// The short name used in S3 keys, logs and quota names (`sp-reports`, `ads-reports`, `amc`, `slate`).
    fn kind(&self) -> &'static str;

    /// The account partition of the S3 layout.
    fn account(&self) -> String;

    /// The report partition of the S3 layout.
    fn report(&self) -> String;

    /// The longest window one request may cover, in days; `None` for no limit. Longer windows are
    /// sliced, and a `sliceDays` beyond it is refused.
    fn max_window_days(&self) -> Option<u32> {
        None
    }

    /// Checks what Amazon would refuse, before anything is called; the error names the field.
    fn validate(&self) -> Result<(), InvalidSource>;

    /// How status checks of a request back off.
    fn poll_backoff(&self) -> PollBackoff;

    /// The quota shared by every Lambda that a create of this request takes (`credentials` names the
    /// credential set, for quotas per seller); `None` when it takes none.
    fn create_quota(&self, credentials: &str) -> Option<Quota> {
        let _ = credentials;
        None
    }

    /// Whether runs read incrementally from the job's watermark (and so are not backfilled by window).
    fn incremental(&self) -> bool {
        false
    }

    /// The most runs of one job that may usefully run at once (AMC: its running executions).
    fn max_parallel_runs(&self) -> Option<u32> {
        None
    }

    /// Where the source's credentials get their access tokens, unless the credential set says.
    fn token_host(&self) -> TokenHost {
        TokenHost::Regional
    }

    /// The types the source publishes for the report's columns, by their names in the data (for
    /// Parquet output); a column not in it is a string.
    fn column_kinds(&self) -> std::collections::BTreeMap<String, crate::domain::document::ColumnKind> {
        std::collections::BTreeMap::new()
    }

    /// Whether the report is an append-only changelog whose current state a view shows (Slate's
    /// datasets), and of which columns.
    fn changelog(&self) -> Option<Changelog> {
        None
    }

    /// When the report's days are final and when they are pulled again (see
    /// [`crate::domain::finality`]); `attribution_days` is the job's, for a source whose figures
    /// depend on it (Ads). Default: final when stored.
    fn finality(&self, attribution_days: Option<u32>) -> FinalityPolicy {
        let _ = attribution_days;
        FinalityPolicy::final_on_arrival("no restatement published: final when stored")
    }

    /// The most Amazon requests one firing may make for the job (Ads: 2 per profile and report type
    /// per day, as Amazon recommends); `None` for no such limit.
    fn max_requests_per_firing(&self) -> Option<u32> {
        None
    }

    /// The oldest day age the source still serves (its retention); `None` when unpublished.
    fn max_pull_age(&self) -> Option<u32> {
        None
    }

    /// How long after a day its data is complete, in hours: a scheduled window never ends later than
    /// this before the scheduled time (AMC: 48).
    fn settle_hours(&self) -> u32 {
        0
    }

    /// The column that dates each row, when the report is split by data day (see
    /// [`crate::transfer::split`]); `None` when its window is the unit of what is current.
    fn day_column(&self) -> Option<DayColumn> {
        None
    }
}

/// The column whose value is a row's data day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayColumn {
    /// Its name in the data (the header, or the JSON key).
    pub name: String,
    /// [`crate::domain::document::ColumnKind::Date`]: the day is the value's first ten characters
    /// (`YYYY-MM-DD`); [`crate::domain::document::ColumnKind::Timestamp`]: an RFC 3339 time, whose UTC
    /// day it is (the day a UTC window holds it in).
    pub kind: crate::domain::document::ColumnKind,
}

/// An append-only changelog: rows restate a key, the latest by `updated` is current, and `deleted` =
/// `1` removes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changelog {
    /// The key column (as the data names it).
    pub key: String,
    /// The column whose greatest value is the current row.
    pub updated: String,
    /// The column that is `1` for a deleted row.
    pub deleted: String,
}

/// A source request that cannot be used: the field (relative to the job's `source`, `None` for the
/// source as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSource {
    /// The field at fault (`profileId`), or `None`.
    pub field: Option<&'static str>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl InvalidSource {
    /// A problem of the request as a whole.
    pub fn whole(message: String) -> Self {
        Self { field: None, message }
    }

    /// Checks that the identifier in `field` can be sent as one URL path segment.
    pub fn check_id(field: &'static str, value: &str) -> Result<(), Self> {
        check_id(value).map(|_| ()).map_err(|message| Self {
            field: Some(field),
            message,
        })
    }
}

/// How a source's status checks back off: exponential from `base`, doubling per check, up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollBackoff {
    /// The wait before the first check.
    pub base: Duration,
    /// The longest wait between two checks.
    pub cap: Duration,
}

impl PollBackoff {
    /// The wait before check number `polls + 1`, at most `max_wait` (the deployment's ceiling).
    pub fn wait(&self, polls: u32, max_wait: Duration) -> Duration {
        self.base.saturating_mul(1 << polls.min(10)).min(self.cap).min(max_wait)
    }
}

/// A quota a create takes for the request's life, shared by every Lambda, kept in the job table.
/// (Usage plans of HTTP operations are charged per attempt by the API clients instead.)
#[derive(Debug, Clone, PartialEq)]
pub enum Quota {
    /// One of `max` slots held for the request's life (AMC running executions per instance).
    Slot {
        /// The counter's name in the job table.
        name: String,
        /// How many slots.
        max: u32,
        /// How long a slot is held without renewal.
        lease: Duration,
        /// How long a run without a slot waits before asking again.
        wait: Duration,
    },
}
