//! Job definitions: what one schedule asks for, validated before anything is called.
//!
//! A job is JSON (the input of an EventBridge schedule, or a file for the operator's tools):
//!
//! ```json
//! {
//!   "name": "sp-orders-daily",
//!   "credentials": "amzpipe/seller-eu",
//!   "source": { "type": "spReports", "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
//!               "marketplaceIds": ["A1PA6795UKMFR9"] },
//!   "window": { "rule": "yesterday", "lookbackDays": 2 },
//!   "output": { "prefix": "amazon", "keepCompressed": false },
//!   "limits": { "maxPolls": 120 }
//! }
//! ```
//!
//! [`Job::parse`] refuses unknown fields and names the field at fault (`source.reportType: …`).
//! Windows come from the **scheduled time** EventBridge passes in, never from the clock, so a re-run
//! of the same schedule asks for the same data: see [`WindowRule`] and [`Job::windows`].

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::domain::TimeWindow;
use crate::domain::document::ColumnKind;
use crate::domain::finality::{FinalityOverride, FinalityPolicy, PlannedWindow};
use crate::domain::run::{HISTORY_EVENTS_LIMIT, MAX_STEP_CALLS};
pub use crate::domain::source::SourceSpec;

/// Longest accepted job name (it is part of DynamoDB keys and S3 keys).
pub const MAX_NAME_LEN: usize = 64;
/// Most slices one run of a job may be split into.
pub const MAX_SLICES: usize = 400;

/// A validated job definition. Build it with [`Job::parse`] (or deserialize and call [`Job::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Job {
    /// Unique name: lower-case letters, digits, `-` and `_`, at most [`MAX_NAME_LEN`] characters.
    pub name: String,
    /// The Secrets Manager secret (id or ARN) holding the credential set; never the credentials themselves.
    pub credentials: String,
    /// What to ask Amazon for.
    pub source: SourceSpec,
    /// Which data window a scheduled run covers.
    pub window: WindowSpec,
    /// Overrides of the source's finality policy (see [`crate::domain::finality`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finality: Option<FinalityOverride>,
    /// Where and how the data lands in S3.
    #[serde(default)]
    pub output: OutputSpec,
    /// Guards against runs that never end or grow without bound.
    #[serde(default)]
    pub limits: Limits,
}

/// The window rule plus how a long window is cut into requests.
///
/// In JSON the rule and its options sit side by side:
/// `{"rule": "lastDays", "days": 7, "lookbackDays": 2, "sliceDays": 7}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawWindow", into = "RawWindow")]
pub struct WindowSpec {
    /// The base window relative to the scheduled time.
    pub rule: WindowRule,
    /// Extra whole days before the base window, to pick up Amazon's late restatements (0–90).
    pub lookback_days: u32,
    /// Longest slice in days; the window is cut into consecutive slices, one Amazon request each.
    /// Defaults to the source's own limit (Ads v3: 31 days, SP-API: 30 days, AMC and Slate: none).
    pub slice_days: Option<u32>,
}

/// Which data a run covers, computed from the scheduled time in UTC; whole days unless explicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowRule {
    /// `"yesterday"`: the UTC day before the scheduled time's day.
    Yesterday,
    /// `"lastDays"`: the `days` whole UTC days before the scheduled time's day.
    LastDays {
        /// How many days (1–3650).
        days: u32,
    },
    /// `"previousHour"`: the hour before the scheduled time's hour (for hourly schedules).
    PreviousHour,
    /// `"repull"`: yesterday, plus every day due for a re-pull under the job's finality policy,
    /// merged into as few requests as the source allows ([`crate::domain::finality`]).
    Repull,
    /// `"explicit"`: a fixed window, whatever the scheduled time (backfills, one-off runs).
    Explicit {
        /// First instant included.
        start: DateTime<Utc>,
        /// First instant excluded.
        end: DateTime<Utc>,
    },
}

/// The JSON shape of [`WindowSpec`]: one flat object, unknown fields refused.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawWindow {
    rule: RuleName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<DateTime<Utc>>,
    #[serde(default)]
    lookback_days: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slice_days: Option<u32>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum RuleName {
    Yesterday,
    Repull,
    LastDays,
    PreviousHour,
    Explicit,
}

impl TryFrom<RawWindow> for WindowSpec {
    type Error = String;

    fn try_from(raw: RawWindow) -> Result<Self, String> {
        let unexpected = |field: &str, rule: &str| format!("`{field}` does not apply to rule {rule:?}");
        let rule = match (raw.rule, raw.days, raw.start, raw.end) {
            (RuleName::Yesterday, None, None, None) => WindowRule::Yesterday,
            (RuleName::Repull, None, None, None) => WindowRule::Repull,
            (RuleName::PreviousHour, None, None, None) => WindowRule::PreviousHour,
            (RuleName::LastDays, Some(days), None, None) => WindowRule::LastDays { days },
            (RuleName::LastDays, None, _, _) => return Err("rule \"lastDays\" needs `days`".into()),
            (RuleName::Explicit, None, Some(start), Some(end)) => WindowRule::Explicit { start, end },
            (RuleName::Explicit, None, _, _) => {
                return Err("rule \"explicit\" needs `start` and `end` (RFC 3339 times)".into());
            }
            (rule, days, _, _) => {
                let name = match rule {
                    RuleName::Yesterday => "yesterday",
                    RuleName::Repull => "repull",
                    RuleName::LastDays => "lastDays",
                    RuleName::PreviousHour => "previousHour",
                    RuleName::Explicit => "explicit",
                };
                let field = if days.is_some() { "days" } else { "start`/`end" };
                return Err(unexpected(field, name));
            }
        };
        Ok(Self {
            rule,
            lookback_days: raw.lookback_days,
            slice_days: raw.slice_days,
        })
    }
}

impl From<WindowSpec> for RawWindow {
    fn from(w: WindowSpec) -> Self {
        let (rule, days, start, end) = match w.rule {
            WindowRule::Yesterday => (RuleName::Yesterday, None, None, None),
            WindowRule::Repull => (RuleName::Repull, None, None, None),
            WindowRule::LastDays { days } => (RuleName::LastDays, Some(days), None, None),
            WindowRule::PreviousHour => (RuleName::PreviousHour, None, None, None),
            WindowRule::Explicit { start, end } => (RuleName::Explicit, None, Some(start), Some(end)),
        };
        Self {
            rule,
            days,
            start,
            end,
            lookback_days: w.lookback_days,
            slice_days: w.slice_days,
        }
    }
}

/// Where the data lands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutputSpec {
    /// Key prefix inside the bucket (no leading or trailing `/`); empty for the bucket root.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Keep gzip documents compressed as delivered instead of storing them decompressed.
    #[serde(default)]
    pub keep_compressed: bool,
    /// How rows are stored: `text` as delivered (the default), or `parquet`, typed where the source
    /// publishes the types.
    #[serde(default)]
    pub format: OutputFormat,
    /// For `parquet`: the types of columns, by the data's column name, where the source publishes
    /// none or the job knows better — an AMC query's output columns, as its SQL computes them. They
    /// take precedence over the source's types; a column typed by neither is a string.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub column_types: BTreeMap<String, ColumnKind>,
}

/// The most column types a job may declare.
pub const MAX_COLUMN_TYPES: usize = 1_000;

/// How a job's rows are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The text the source delivers (TSV, CSV, JSON Lines).
    #[default]
    Text,
    /// Parquet (see `transfer::columnar` for the types and their parse rules).
    Parquet,
}

fn default_prefix() -> String {
    "amazon".into()
}

impl Default for OutputSpec {
    fn default() -> Self {
        Self {
            prefix: default_prefix(),
            keep_compressed: false,
            format: OutputFormat::Text,
            column_types: BTreeMap::new(),
        }
    }
}

/// Bounds on one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Status checks before the run is given up as stuck (1 to [`MAX_STEP_CALLS`]).
    #[serde(default = "default_max_polls")]
    pub max_polls: u32,
    /// Calls of the run's looping steps (creates while there is no capacity, status checks, download
    /// continuations) before it is given up, whatever they answered (1 to [`MAX_STEP_CALLS`], the
    /// default: what keeps a slice's execution within Step Functions' history quota).
    #[serde(default = "default_max_step_calls")]
    pub max_step_calls: u32,
    /// Ceiling on the decompressed size of one document, in bytes (bomb protection).
    #[serde(default = "default_max_document_bytes")]
    pub max_document_bytes: u64,
    /// Ceiling on how many times its compressed size a document may expand to (bomb protection;
    /// checked past the first 64 MiB of output), at least 1.
    #[serde(default = "default_max_expansion_ratio")]
    pub max_expansion_ratio: u32,
}

fn default_max_expansion_ratio() -> u32 {
    crate::domain::document::DEFAULT_MAX_EXPANSION_RATIO
}

fn default_max_polls() -> u32 {
    240
}

fn default_max_step_calls() -> u32 {
    MAX_STEP_CALLS
}

fn default_max_document_bytes() -> u64 {
    crate::domain::document::DEFAULT_MAX_OUTPUT_BYTES
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_polls: default_max_polls(),
            max_step_calls: default_max_step_calls(),
            max_document_bytes: default_max_document_bytes(),
            max_expansion_ratio: default_max_expansion_ratio(),
        }
    }
}

/// A job definition that cannot be used, with the path of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job definition: {field}: {message}")]
pub struct InvalidJob {
    /// The JSON path of the bad field (`source.reportType`, `window.days`), or `.` for the whole job.
    pub field: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl InvalidJob {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl Job {
    /// Parses and validates a job definition from JSON.
    pub fn parse(json: &str) -> Result<Self, InvalidJob> {
        let mut de = serde_json::Deserializer::from_str(json);
        Self::from_deserializer(&mut de)
    }

    /// Parses and validates a job definition from an already-parsed JSON value (a Lambda event).
    pub fn from_value(value: serde_json::Value) -> Result<Self, InvalidJob> {
        Self::from_deserializer(value)
    }

    fn from_deserializer<'de, D>(de: D) -> Result<Self, InvalidJob>
    where
        D: serde::Deserializer<'de, Error: std::fmt::Display>,
    {
        let job: Job = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            InvalidJob::new(&path, e.into_inner().to_string())
        })?;
        job.validate()?;
        Ok(job)
    }

    /// Checks what serde cannot: name syntax, ranges, the source's own rules, an explicit window's order.
    pub fn validate(&self) -> Result<(), InvalidJob> {
        if self.name.is_empty()
            || self.name.len() > MAX_NAME_LEN
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(InvalidJob::new(
                "name",
                format!(
                    "{:?} must be 1–{MAX_NAME_LEN} lower-case letters, digits, '-' or '_'",
                    self.name
                ),
            ));
        }
        if self.credentials.trim().is_empty() || self.credentials.len() > 2048 {
            return Err(InvalidJob::new(
                "credentials",
                "must name a Secrets Manager secret (id or ARN)",
            ));
        }
        self.validate_source()?;
        self.validate_finality()?;
        if self.output.keep_compressed && self.output.format == OutputFormat::Parquet {
            return Err(InvalidJob::new(
                "output.format",
                "parquet stores decoded rows; it cannot be combined with keepCompressed",
            ));
        }
        if !self.output.column_types.is_empty() && self.output.format != OutputFormat::Parquet {
            return Err(InvalidJob::new(
                "output.columnTypes",
                "column types apply to parquet output only (text is stored as delivered)",
            ));
        }
        if self.output.column_types.len() > MAX_COLUMN_TYPES
            || self.output.column_types.keys().any(|c| c.is_empty() || c.len() > 255)
        {
            return Err(InvalidJob::new(
                "output.columnTypes",
                format!("at most {MAX_COLUMN_TYPES} columns, each named in 1–255 characters"),
            ));
        }
        match &self.window.rule {
            WindowRule::LastDays { days } if !(1..=3650).contains(days) => {
                return Err(InvalidJob::new(
                    "window.days",
                    format!("{days} is not between 1 and 3650"),
                ));
            }
            WindowRule::Explicit { start, end } if end <= start => {
                return Err(InvalidJob::new(
                    "window.end",
                    format!("the window ends ({end}) before it starts ({start})"),
                ));
            }
            _ => {}
        }
        if self.window.lookback_days > 90 {
            return Err(InvalidJob::new(
                "window.lookbackDays",
                format!("{} is more than 90", self.window.lookback_days),
            ));
        }
        if let Some(slice) = self.window.slice_days {
            if slice == 0 {
                return Err(InvalidJob::new("window.sliceDays", "must be at least 1"));
            }
            if let Some(max) = self.source.max_window_days()
                && slice > max
            {
                return Err(InvalidJob::new(
                    "window.sliceDays",
                    format!("{slice} exceeds the {max}-day limit of {}", self.source.kind()),
                ));
            }
        }
        let prefix = &self.output.prefix;
        if prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") || prefix.len() > 256 {
            return Err(InvalidJob::new(
                "output.prefix",
                format!("{prefix:?} must not start or end with '/', nor contain '//' (at most 256 bytes)"),
            ));
        }
        let bound = format!(
            "must be between 1 and {MAX_STEP_CALLS} (what keeps a slice's execution within Step Functions' \
             {HISTORY_EVENTS_LIMIT} history events)"
        );
        if !(1..=MAX_STEP_CALLS).contains(&self.limits.max_polls) {
            return Err(InvalidJob::new("limits.maxPolls", bound.clone()));
        }
        if !(1..=MAX_STEP_CALLS).contains(&self.limits.max_step_calls) {
            return Err(InvalidJob::new("limits.maxStepCalls", bound));
        }
        if self.limits.max_expansion_ratio == 0 {
            return Err(InvalidJob::new("limits.maxExpansionRatio", "must be at least 1"));
        }
        Ok(())
    }

    fn validate_source(&self) -> Result<(), InvalidJob> {
        self.source.rules().validate().map_err(|e| {
            let field = e.field.map_or_else(|| "source".to_owned(), |f| format!("source.{f}"));
            InvalidJob::new(&field, e.message)
        })
    }

    /// The job's finality policy: its source's, with the job's `finality` over it (validated by
    /// [`Job::validate`]).
    pub fn finality(&self) -> Result<FinalityPolicy, InvalidJob> {
        let over = self.finality.clone().unwrap_or_default();
        self.source
            .rules()
            .finality(over.attribution_days)
            .with_override(&over)
            .map_err(|(field, message)| InvalidJob::new(&format!("finality.{field}"), message))
    }

    /// The requests a `repull` firing at `scheduled` makes (see [`crate::domain::finality`]): the
    /// days due, merged into windows of at most the source's (or `sliceDays`') length.
    pub fn repull_plan(&self, scheduled: DateTime<Utc>) -> Result<Vec<PlannedWindow>, InvalidJob> {
        let max_days = self.window.slice_days.or(self.source.max_window_days());
        Ok(self.finality()?.plan(self.firing_day(scheduled), max_days))
    }

    /// The age of `day` at a firing at `scheduled`, as the finality policy counts it: days from `day`
    /// to the firing's (settled) day, so that yesterday has age 1. Counted from the scheduled time,
    /// not the clock, so that a retried or late step gives a day the age its firing planned.
    pub fn pull_age(&self, scheduled: DateTime<Utc>, day: NaiveDate) -> i64 {
        (self.firing_day(scheduled) - day).num_days()
    }

    /// The day a firing at `scheduled` counts ages from: the UTC day of its settled time (AMC's is
    /// 48 hours earlier; see [`Job::repull_plan`]).
    pub fn firing_day(&self, scheduled: DateTime<Utc>) -> NaiveDate {
        self.settled(scheduled).date_naive()
    }

    /// The scheduled time as the window rules see it: `settle_hours` earlier for a source whose data
    /// is complete only that long after the fact (AMC: 48 hours), so no window ends within them.
    fn settled(&self, scheduled: DateTime<Utc>) -> DateTime<Utc> {
        scheduled - Duration::hours(i64::from(self.source.rules().settle_hours()))
    }

    /// Checks the finality policy against what the source allows: its retention, and the requests
    /// one firing may make.
    fn validate_finality(&self) -> Result<(), InvalidJob> {
        if let Some(over) = &self.finality
            && over.attribution_days.is_some()
            && self.source.kind() != "ads-reports"
        {
            return Err(InvalidJob::new(
                "finality.attributionDays",
                "applies to Ads reports only (conversions are reported on the day of the ad interaction)",
            ));
        }
        if let Some(days) = self.finality.as_ref().and_then(|f| f.attribution_days)
            && !(1..=30).contains(&days)
        {
            return Err(InvalidJob::new(
                "finality.attributionDays",
                format!("{days} is not between 1 and 30"),
            ));
        }
        let policy = self.finality()?;
        if let (Some(&oldest), Some(retention)) = (policy.pull_ages.last(), self.source.rules().max_pull_age())
            && oldest > retention
        {
            return Err(InvalidJob::new(
                "finality.repullDays",
                format!(
                    "a re-pull at age {oldest} is beyond the {retention} days {} keeps this report",
                    self.source.kind()
                ),
            ));
        }
        if self.window.rule == WindowRule::Repull {
            if self.source.rules().incremental() {
                return Err(InvalidJob::new(
                    "window.rule",
                    format!(
                        "{} reads incrementally (each file once, final on arrival): use \"yesterday\"",
                        self.source.kind()
                    ),
                ));
            }
            if self.window.lookback_days > 0 {
                return Err(InvalidJob::new(
                    "window.lookbackDays",
                    "the repull rule pulls days again by its finality policy: drop lookbackDays",
                ));
            }
            // The plan's shape is the same whatever the firing's day: any day counts its requests.
            let requests = self.repull_plan(DateTime::UNIX_EPOCH + Duration::days(1000))?.len();
            if let Some(max) = self.source.rules().max_requests_per_firing()
                && requests > max as usize
            {
                return Err(InvalidJob::new(
                    "finality.repullDays",
                    format!(
                        "the re-pulls need {requests} requests a day; {} allows {max} per day and report type \
                         (space the ages so that they fit {max} windows of {} days)",
                        self.source.kind(),
                        self.source.max_window_days().unwrap_or(0)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The whole window a run scheduled at `scheduled` covers, lookback included (for `repull`,
    /// from the oldest day due to the newest).
    pub fn window_at(&self, scheduled: DateTime<Utc>) -> Result<TimeWindow, InvalidJob> {
        let settled = self.settled(scheduled);
        let midnight = settled.date_naive().and_time(NaiveTime::MIN).and_utc();
        let (start, end) = match &self.window.rule {
            WindowRule::Yesterday => (midnight - Duration::days(1), midnight),
            WindowRule::Repull => {
                let plan = self.repull_plan(scheduled)?;
                match (plan.first(), plan.last()) {
                    (Some(first), Some(last)) => (first.window().start, last.window().end),
                    _ => (midnight - Duration::days(1), midnight),
                }
            }
            WindowRule::LastDays { days } => (midnight - Duration::days(i64::from(*days)), midnight),
            WindowRule::PreviousHour => {
                let hour = midnight + Duration::hours(i64::from(chrono::Timelike::hour(&settled)));
                (hour - Duration::hours(1), hour)
            }
            WindowRule::Explicit { start, end } => (*start, *end),
        };
        let start = start - Duration::days(i64::from(self.window.lookback_days));
        TimeWindow::new(start, end).map_err(|e| InvalidJob::new("window", e))
    }

    /// The run's window cut into the slices one Amazon request each may ask for, in order.
    pub fn windows(&self, scheduled: DateTime<Utc>) -> Result<Vec<TimeWindow>, InvalidJob> {
        if self.window.rule == WindowRule::Repull {
            return Ok(self.repull_plan(scheduled)?.iter().map(PlannedWindow::window).collect());
        }
        let whole = self.window_at(scheduled)?;
        let settle = self.source.rules().settle_hours();
        if settle > 0 && whole.end > self.settled(scheduled) {
            return Err(InvalidJob::new(
                "window",
                format!(
                    "the window ends at {}, within {settle} hours of the scheduled time {scheduled}: {} data \
                     is complete only {settle} hours after the fact",
                    whole.end,
                    self.source.kind()
                ),
            ));
        }
        let Some(days) = self.window.slice_days.or(self.source.max_window_days()) else {
            return Ok(vec![whole]);
        };
        let step = Duration::days(i64::from(days));
        let mut slices = Vec::new();
        let mut start = whole.start;
        while start < whole.end {
            let end = (start + step).min(whole.end);
            slices.push(TimeWindow { start, end });
            if slices.len() > MAX_SLICES {
                return Err(InvalidJob::new(
                    "window.sliceDays",
                    format!("the window would need more than {MAX_SLICES} requests"),
                ));
            }
            start = end;
        }
        Ok(slices)
    }

    /// The slice `index` of the run scheduled at `scheduled`.
    pub fn slice(&self, scheduled: DateTime<Utc>, index: usize) -> Result<TimeWindow, InvalidJob> {
        let windows = self.windows(scheduled)?;
        let count = windows.len();
        windows.into_iter().nth(index).ok_or_else(|| {
            InvalidJob::new(
                "slice",
                format!("{index} is out of range: the window has {count} slices"),
            )
        })
    }
}

/// One window of a backfill: the window and the job that asks for exactly it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillWindow {
    /// The window; its run is the one a schedule asking for the same window would make.
    pub window: TimeWindow,
    /// The job with an explicit window of one slice, no lookback.
    pub job: Job,
}

impl Job {
    /// The types of the job's columns for Parquet: the source's, with the job's `columnTypes` over
    /// them; a column in neither is a string.
    pub fn column_kinds(&self) -> BTreeMap<String, ColumnKind> {
        let mut kinds = self.source.rules().column_kinds();
        kinds.extend(self.output.column_types.iter().map(|(c, k)| (c.clone(), *k)));
        kinds
    }

    /// The days one backfill window covers by default: the job's own window length for the day
    /// rules (a daily job is backfilled day by day, so its runs are the ones its schedule makes),
    /// capped by `sliceDays` and the source's limit.
    pub fn backfill_window_days(&self) -> Option<u32> {
        let natural = match self.window.rule {
            WindowRule::Yesterday | WindowRule::PreviousHour => Some(1),
            WindowRule::LastDays { days } => Some(days),
            WindowRule::Explicit { .. } | WindowRule::Repull => None,
        };
        [natural, self.window.slice_days, self.source.max_window_days()]
            .into_iter()
            .flatten()
            .min()
    }

    /// The runs a backfill of the days `from` to `to` (both included, UTC) makes, each with the job
    /// that asks for exactly its window.
    ///
    /// Without `window_days`, they are **the runs the job's schedule makes**: for every firing whose
    /// own window (yesterday, the last N days, the previous hour) lies in the range, the slices that
    /// firing asks for, lookback and `sliceDays` included, each once. So a backfill over days the
    /// schedule already ran finds the same runs (and skips the ones that ended well), and a schedule
    /// over days a backfill ran does the same. A remainder of the range shorter than the job's window
    /// (a `lastDays` job) gets a window of its own. With `window_days` (or an explicit window) the
    /// range is cut into windows of that many days instead (the last may be shorter). A window longer
    /// than the source accepts is refused naming the limit.
    pub fn backfill(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        window_days: Option<u32>,
    ) -> Result<Vec<BackfillWindow>, InvalidJob> {
        if to < from {
            return Err(InvalidJob::new(
                "backfill",
                format!("the range ends ({to}) before it starts ({from})"),
            ));
        }
        let start = from.and_time(NaiveTime::MIN).and_utc();
        let end = to.and_time(NaiveTime::MIN).and_utc() + Duration::days(1);
        let period = match (&self.window.rule, window_days) {
            // A backfill of a repull job asks for each day once, in the longest windows the source
            // allows: the days already past their final age are final on that pull, and the schedule
            // re-pulls the others at their ages.
            (_, Some(_)) | (WindowRule::Explicit { .. } | WindowRule::Repull, None) => None,
            (WindowRule::Yesterday, None) => Some(Duration::days(1)),
            (WindowRule::LastDays { days }, None) => Some(Duration::days(i64::from(*days))),
            (WindowRule::PreviousHour, None) => Some(Duration::hours(1)),
        };
        let mut windows = Vec::new();
        let mut covered = start;
        if let Some(period) = period {
            // The schedule's firings, one per period: each asks for its own window and its lookback.
            let mut fire = start + period;
            while fire <= end {
                for window in self.windows(fire)? {
                    if !windows.contains(&window) {
                        windows.push(window);
                    }
                }
                covered = fire;
                fire += period;
                if windows.len() > MAX_SLICES {
                    return Err(too_many_windows());
                }
            }
        }
        let days = match window_days.or(self.backfill_window_days()) {
            Some(0) => return Err(InvalidJob::new("backfill", "a window of 0 days")),
            Some(days) => days,
            None => u32::try_from((end - start).num_days()).unwrap_or(u32::MAX),
        };
        if let Some(max) = self.source.max_window_days()
            && days > max
        {
            return Err(InvalidJob::new(
                "backfill",
                format!(
                    "{} accepts at most {max} days per request; a {days}-day window is refused",
                    self.source.kind()
                ),
            ));
        }
        // What the firings left (all of it when cut by `window_days`): windows of `days`.
        while covered < end {
            let window_end = (covered + Duration::days(i64::from(days))).min(end);
            windows.push(TimeWindow {
                start: covered,
                end: window_end,
            });
            if windows.len() > MAX_SLICES {
                return Err(too_many_windows());
            }
            covered = window_end;
        }
        windows
            .into_iter()
            .map(|window| {
                let mut job = self.clone();
                job.window = WindowSpec {
                    rule: WindowRule::Explicit {
                        start: window.start,
                        end: window.end,
                    },
                    lookback_days: 0,
                    slice_days: None,
                };
                job.validate()?;
                Ok(BackfillWindow { window, job })
            })
            .collect()
    }
}

fn too_many_windows() -> InvalidJob {
    InvalidJob::new(
        "backfill",
        format!("the range would need more than {MAX_SLICES} windows; backfill it in parts"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .expect("valid time")
    }

    fn sp_job(window: &str) -> String {
        format!(
            r#"{{"name": "sp-orders", "credentials": "amzpipe/seller",
                "source": {{"type": "spReports", "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
                           "marketplaceIds": ["ATVPDKIKX0DER"]}},
                "window": {window}}}"#
        )
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn with_output(output: &str) -> String {
        let job = sp_job(r#"{"rule": "yesterday"}"#);
        let open = job.trim_end().strip_suffix('}').expect("a JSON object");
        format!("{open}, \"output\": {output}}}")
    }

    #[test]
    fn a_jobs_column_types_go_over_the_sources_and_apply_to_parquet_only() {
        let job = Job::parse(&with_output(
            r#"{"format": "parquet", "columnTypes": {"quantity": "double", "reach": "bigint"}}"#,
        ))
        .expect("job");
        let kinds = job.column_kinds();
        assert_eq!(
            kinds.get("quantity"),
            Some(&ColumnKind::Double),
            "the job's over the source's"
        );
        assert_eq!(kinds.get("reach"), Some(&ColumnKind::BigInt));
        assert_eq!(
            kinds.get("purchase-date"),
            Some(&ColumnKind::Timestamp),
            "the source's kept"
        );
        let text = Job::parse(&with_output(r#"{"columnTypes": {"reach": "bigint"}}"#)).expect_err("text");
        assert_eq!(text.field, "output.columnTypes");
        let unknown = Job::parse(&with_output(
            r#"{"format": "parquet", "columnTypes": {"reach": "int128"}}"#,
        ));
        assert!(unknown.is_err_and(|e| e.field.starts_with("output.columnTypes")));
    }

    #[test]
    fn a_daily_job_is_backfilled_day_by_day_with_the_runs_its_schedule_makes() {
        let job = Job::parse(&sp_job(r#"{"rule": "yesterday"}"#)).expect("job");
        let windows = job
            .backfill(day("2026-10-01"), day("2026-10-03"), None)
            .expect("windows");
        assert_eq!(windows.len(), 3);
        let scheduled = at("2026-10-02T06:00:00Z");
        assert_eq!(windows[0].window, job.window_at(scheduled).expect("window"));
        assert_eq!(
            windows[0].job.windows(scheduled).expect("slices"),
            vec![windows[0].window]
        );
        assert_eq!(windows[2].window.end, at("2026-10-04T00:00:00Z"));
    }

    #[test]
    fn a_backfill_makes_exactly_the_runs_the_schedule_makes_lookback_and_slices_included() {
        // An unsliced daily job with a lookback: each firing asks for three days in one run.
        let job = Job::parse(&sp_job(r#"{"rule": "yesterday", "lookbackDays": 2}"#)).expect("job");
        let windows: Vec<TimeWindow> = job
            .backfill(day("2026-10-01"), day("2026-10-03"), None)
            .expect("windows")
            .into_iter()
            .map(|w| w.window)
            .collect();
        let scheduled: Vec<TimeWindow> = ["2026-10-02T06:00:00Z", "2026-10-03T06:00:00Z", "2026-10-04T06:00:00Z"]
            .into_iter()
            .flat_map(|t| job.windows(at(t)).expect("slices"))
            .collect();
        assert_eq!(windows, scheduled);
        assert_eq!(windows[0].start, at("2026-09-29T00:00:00Z"));
        // Sliced by day, the firings' slices overlap: each day is one run, once.
        let sliced = Job::parse(&sp_job(r#"{"rule": "yesterday", "lookbackDays": 2, "sliceDays": 1}"#)).expect("job");
        let days: Vec<TimeWindow> = sliced
            .backfill(day("2026-10-01"), day("2026-10-03"), None)
            .expect("windows")
            .into_iter()
            .map(|w| w.window)
            .collect();
        assert_eq!(days.len(), 5, "2026-09-29 to 2026-10-03: {days:?}");
        assert!(days.windows(2).all(|w| w[0].end == w[1].start));
        // Each backfill job asks for exactly its run's window, whenever it is started.
        for w in job
            .backfill(day("2026-10-01"), day("2026-10-03"), None)
            .expect("windows")
        {
            assert_eq!(
                w.job.windows(at("2026-11-26T09:00:00Z")).expect("slices"),
                vec![w.window]
            );
        }
    }

    #[test]
    fn a_backfill_of_a_weekly_job_covers_a_short_remainder_with_a_window_of_its_own() {
        let job = Job::parse(&sp_job(r#"{"rule": "lastDays", "days": 7}"#)).expect("job");
        let windows = job
            .backfill(day("2026-10-01"), day("2026-10-10"), None)
            .expect("windows");
        assert_eq!(windows.len(), 2);
        assert_eq!(
            windows[0].window,
            job.window_at(at("2026-10-08T08:00:00Z")).expect("window")
        );
        assert_eq!(windows[1].window.start, at("2026-10-08T00:00:00Z"));
        assert_eq!(windows[1].window.end, at("2026-10-11T00:00:00Z"));
    }

    #[test]
    fn a_backfill_window_longer_than_the_source_accepts_is_refused_naming_the_limit() {
        let job = Job::parse(&sp_job(r#"{"rule": "yesterday"}"#)).expect("job");
        let err = job
            .backfill(day("2026-01-01"), day("2026-03-31"), Some(45))
            .expect_err("refused");
        assert!(err.to_string().contains("at most 30 days"), "{err}");
        let windows = job
            .backfill(day("2026-01-01"), day("2026-03-31"), Some(30))
            .expect("windows");
        assert_eq!(windows.len(), 3);
        assert_eq!(windows[2].window.start, at("2026-03-02T00:00:00Z"));
        assert_eq!(windows[2].window.end, at("2026-04-01T00:00:00Z"));
        assert!(job.backfill(day("2026-02-01"), day("2026-01-01"), None).is_err());
    }

    #[test]
    fn yesterday_is_the_utc_day_before_the_scheduled_day_whatever_the_hour() {
        let job = Job::parse(&sp_job(r#"{"rule": "yesterday"}"#)).expect("job");
        for scheduled in ["2026-11-23T00:00:00Z", "2026-11-23T23:59:59Z"] {
            let w = job.window_at(at(scheduled)).expect("window");
            assert_eq!(
                (w.start, w.end),
                (at("2026-11-22T00:00:00Z"), at("2026-11-23T00:00:00Z"))
            );
        }
    }

    #[test]
    fn lookback_days_extend_the_window_backwards() {
        let job = Job::parse(&sp_job(r#"{"rule": "lastDays", "days": 7, "lookbackDays": 3}"#)).expect("job");
        let w = job.window_at(at("2026-11-23T06:00:00Z")).expect("window");
        assert_eq!(
            (w.start, w.end),
            (at("2026-11-13T00:00:00Z"), at("2026-11-23T00:00:00Z"))
        );
    }

    #[test]
    fn a_long_window_is_sliced_into_consecutive_requests_the_source_accepts() {
        let job = Job::parse(&sp_job(
            r#"{"rule": "explicit", "start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z", "sliceDays": 25}"#,
        ))
        .expect("job");
        let slices = job.windows(at("2030-01-01T00:00:00Z")).expect("slices");
        assert_eq!(slices.len(), 3);
        assert_eq!(slices[0].start, at("2026-01-01T00:00:00Z"));
        assert_eq!(slices[1].start, slices[0].end);
        assert_eq!(slices[2].end, at("2026-03-01T00:00:00Z"));
        assert!(job.slice(at("2030-01-01T00:00:00Z"), 3).is_err());
    }

    #[test]
    fn the_previous_hour_rule_covers_the_hour_before_the_scheduled_hour() {
        let job = Job::parse(&sp_job(r#"{"rule": "previousHour"}"#)).expect("job");
        let w = job.window_at(at("2026-11-23T00:10:00Z")).expect("window");
        assert_eq!(
            (w.start, w.end),
            (at("2026-11-22T23:00:00Z"), at("2026-11-23T00:00:00Z"))
        );
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_path() {
        let json =
            sp_job(r#"{"rule": "yesterday"}"#).replace("\"marketplaceIds\"", "\"reportTypo\": 1, \"marketplaceIds\"");
        let err = Job::parse(&json).expect_err("refused");
        assert_eq!(err.field, "source");
        assert!(err.message.contains("reportTypo"), "{err}");
    }

    #[test]
    fn a_wrongly_typed_field_is_named() {
        let err = Job::parse(&sp_job(r#"{"rule": "lastDays", "days": "seven"}"#)).expect_err("refused");
        assert_eq!(err.field, "window.days");
        assert!(err.message.contains("seven"), "{err}");
    }

    #[test]
    fn an_unknown_source_type_is_refused_naming_the_known_ones() {
        let json = sp_job(r#"{"rule": "yesterday"}"#).replace("spReports", "vendorReports");
        let err = Job::parse(&json).expect_err("refused");
        assert_eq!(err.field, "source.type");
        assert!(
            err.message.contains("vendorReports") && err.message.contains("adsReports"),
            "{err}"
        );
    }

    #[test]
    fn hostile_names_and_ids_are_refused() {
        let json = sp_job(r#"{"rule": "yesterday"}"#).replace("sp-orders", "../../etc");
        assert_eq!(Job::parse(&json).expect_err("refused").field, "name");
        let ads = r#"{"name": "ads", "credentials": "c", "window": {"rule": "yesterday"},
            "source": {"type": "adsReports", "profileId": "1/../2", "adProduct": "SPONSORED_PRODUCTS",
                       "reportTypeId": "spCampaigns", "columns": ["date"], "groupBy": ["campaign"]}}"#;
        assert_eq!(Job::parse(ads).expect_err("refused").field, "source.profileId");
    }

    #[test]
    fn a_slice_longer_than_the_source_accepts_is_refused() {
        let ads = r#"{"name": "ads", "credentials": "c", "window": {"rule": "lastDays", "days": 60, "sliceDays": 45},
            "source": {"type": "adsReports", "profileId": "123", "adProduct": "SPONSORED_PRODUCTS",
                       "reportTypeId": "spCampaigns", "columns": ["date"], "groupBy": ["campaign"]}}"#;
        let err = Job::parse(ads).expect_err("refused");
        assert_eq!(err.field, "window.sliceDays");
        let ok = ads.replace("\"sliceDays\": 45", "\"lookbackDays\": 1");
        let job = Job::parse(&ok).expect("job");
        let slices = job.windows(at("2026-11-23T00:00:00Z")).expect("slices");
        assert_eq!(slices.len(), 2, "61 days in 31-day slices");
        assert!(slices.iter().all(|w| w.days() <= 31));
    }

    #[test]
    fn an_explicit_window_that_ends_before_it_starts_is_refused() {
        let err = Job::parse(&sp_job(
            r#"{"rule": "explicit", "start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}"#,
        ))
        .expect_err("refused");
        assert_eq!(err.field, "window.end");
    }

    #[test]
    fn defaults_fill_output_and_limits() {
        let job = Job::parse(&sp_job(r#"{"rule": "yesterday"}"#)).expect("job");
        assert_eq!(job.output.prefix, "amazon");
        assert!(!job.output.keep_compressed);
        assert_eq!(job.limits.max_polls, 240);
        let back: Job = serde_json::from_value(serde_json::to_value(&job).expect("json")).expect("round trip");
        assert_eq!(back, job);
    }

    #[test]
    fn limits_past_what_a_slices_execution_history_holds_are_refused_naming_the_field() {
        for (field, value) in [
            ("maxPolls", 10_000),
            ("maxStepCalls", MAX_STEP_CALLS + 1),
            ("maxStepCalls", 0),
        ] {
            let mut job = serde_json::json!({
                "name": "sp-orders", "credentials": "amzpipe/x",
                "source": { "type": "spReports", "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
                            "marketplaceIds": ["ATVPDKIKX0DER"] },
                "window": { "rule": "yesterday" }
            });
            job["limits"] = serde_json::json!({ field: value });
            let err = Job::parse(&job.to_string()).expect_err("refused");
            assert_eq!(err.field, format!("limits.{field}"), "{err}");
        }
    }

    fn ads_job(window: &str, finality: &str) -> String {
        format!(
            r#"{{"name": "ads", "credentials": "c", "window": {window}{finality},
                "source": {{"type": "adsReports", "profileId": "123", "adProduct": "SPONSORED_PRODUCTS",
                           "reportTypeId": "spCampaigns", "columns": ["date", "clicks"], "groupBy": ["campaign"]}}}}"#
        )
    }

    fn amc_job(window: &str) -> String {
        format!(
            r#"{{"name": "amc", "credentials": "c", "window": {window},
                "source": {{"type": "amc", "instanceId": "amc1", "advertiserId": "A1", "marketplaceId": "ATVPDKIKX0DER",
                           "query": {{"sql": "SELECT 1"}}}}}}"#
        )
    }

    fn days_of(windows: &[TimeWindow]) -> Vec<(String, String)> {
        windows
            .iter()
            .map(|w| {
                (
                    w.start.date_naive().to_string(),
                    (w.end - Duration::days(1)).date_naive().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn a_repull_ads_job_asks_for_yesterday_and_each_day_due_again_in_two_requests() {
        let job = Job::parse(&ads_job(r#"{"rule": "repull"}"#, "")).expect("job");
        let windows = job.windows(at("2026-12-04T06:00:00Z")).expect("windows");
        // Ages 43 and 29 in one window, 8, 4 and 1 in the other (the FAQ's restatements, §11).
        assert_eq!(
            days_of(&windows),
            [
                ("2026-10-22".into(), "2026-11-05".into()),
                ("2026-11-26".into(), "2026-12-03".into())
            ]
        );
        assert_eq!(job.finality().expect("policy").final_after_days, 43);
    }

    #[test]
    fn the_attribution_window_moves_the_ads_final_age_and_is_refused_for_other_sources() {
        let job = Job::parse(&ads_job(
            r#"{"rule": "repull"}"#,
            r#", "finality": {"attributionDays": 7}"#,
        ))
        .expect("job");
        assert_eq!(job.finality().expect("policy").final_after_days, 36);
        let sp = sp_job(r#"{"rule": "repull"}, "finality": {"attributionDays": 7}"#);
        assert_eq!(Job::parse(&sp).expect_err("refused").field, "finality.attributionDays");
    }

    #[test]
    fn re_pulls_that_need_more_than_two_ads_requests_a_day_are_refused_naming_the_budget() {
        let over = r#", "finality": {"repullDays": [20, 45, 80], "finalAfterDays": 80}"#;
        let err = Job::parse(&ads_job(r#"{"rule": "repull"}"#, over)).expect_err("refused");
        assert_eq!(err.field, "finality.repullDays", "{err}");
        assert!(err.message.contains("3 requests"), "{err}");
    }

    #[test]
    fn a_re_pull_beyond_the_reports_retention_is_refused() {
        // Sponsored Brands keeps 60 days (reference §11).
        let job = ads_job(
            r#"{"rule": "repull"}"#,
            r#", "finality": {"repullDays": [30, 61], "finalAfterDays": 61}"#,
        )
        .replace("SPONSORED_PRODUCTS", "SPONSORED_BRANDS")
        .replace("spCampaigns", "sbCampaigns");
        let err = Job::parse(&job).expect_err("refused");
        assert_eq!(err.field, "finality.repullDays", "{err}");
        assert!(err.message.contains("60 days"), "{err}");
    }

    #[test]
    fn sp_api_families_have_their_own_finality() {
        let policy = |report_type: &str| {
            Job::parse(
                &sp_job(r#"{"rule": "repull"}"#)
                    .replace("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", report_type),
            )
            .expect("job")
            .finality()
            .expect("policy")
        };
        assert_eq!(policy("GET_SALES_AND_TRAFFIC_REPORT").pull_ages, [1, 4]);
        assert_eq!(policy("GET_FBA_REIMBURSEMENTS_DATA").pull_ages, [1, 7, 35]);
        assert_eq!(
            policy("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL").pull_ages,
            [1]
        );
        // Returns re-pulled at 35 days need two requests of at most 30 days.
        let job = Job::parse(&sp_job(r#"{"rule": "repull"}"#).replace(
            "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
            "GET_FBA_REIMBURSEMENTS_DATA",
        ))
        .expect("job");
        assert_eq!(job.windows(at("2026-12-04T06:00:00Z")).expect("windows").len(), 2);
    }

    #[test]
    fn amc_windows_never_end_within_48_hours_of_the_scheduled_time() {
        let scheduled = at("2026-11-23T06:00:00Z");
        for rule in [
            r#"{"rule": "yesterday"}"#,
            r#"{"rule": "lastDays", "days": 7}"#,
            r#"{"rule": "previousHour"}"#,
        ] {
            let job = Job::parse(&amc_job(rule)).expect("job");
            for window in job.windows(scheduled).expect("windows") {
                assert!(window.end <= scheduled - Duration::hours(48), "{rule}: {window:?}");
            }
        }
        // An explicit window that does is refused, saying why.
        let recent = r#"{"rule": "explicit", "start": "2026-11-20T00:00:00Z", "end": "2026-11-22T00:00:00Z"}"#;
        let err = Job::parse(&amc_job(recent))
            .expect("job")
            .windows(scheduled)
            .expect_err("refused");
        assert!(err.message.contains("48 hours"), "{err}");
    }

    #[test]
    fn an_incremental_source_or_a_lookback_cannot_be_combined_with_the_repull_rule() {
        let job = ads_job(r#"{"rule": "repull", "lookbackDays": 2}"#, "");
        assert_eq!(Job::parse(&job).expect_err("refused").field, "window.lookbackDays");
    }
}
