//! The state machine's input as every step reads it ([`RunContext`]), the S3 layout of a run, and
//! the fields every step's output shares ([`RunRef`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::TimeWindow;
use crate::domain::job::{InvalidJob, Job};
use crate::domain::run::{RunKey, RunRecord, RunStatus};
use crate::ports::TableKey;
use crate::steps::StepError;

/// The state machine's input, parsed and checked: the job, the scheduled time, the slice, and the
/// run they identify.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The validated job.
    pub job: Job,
    /// The time the schedule fired for (EventBridge's scheduled time, not the clock).
    pub scheduled: DateTime<Utc>,
    /// Which slice of the window.
    pub slice: usize,
    /// The slice's window.
    pub window: TimeWindow,
    /// The run's key.
    pub key: RunKey,
    /// Who runs the step: the state machine's execution name (every retry of one execution is the
    /// same owner); [`UNOWNED`] for a caller that names none.
    pub owner: String,
    /// When the state machine's execution started (`startedAt`, its `$$.Execution.StartTime`), so that
    /// a run can be kept from outliving it; `None` for a caller that names none.
    pub started_at: Option<DateTime<Utc>>,
}

/// The owner of a step whose caller names none (tests, direct invocations): all such callers count
/// as one.
pub const UNOWNED: &str = "-";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    job: Option<serde_json::Value>,
    scheduled_time: Option<serde_json::Value>,
    #[serde(default)]
    slice: Option<serde_json::Value>,
    #[serde(default)]
    owner: Option<serde_json::Value>,
    #[serde(default)]
    started_at: Option<serde_json::Value>,
}

impl RunContext {
    /// Parses a step's event; any problem is [`StepError::InvalidJob`] naming the field.
    pub fn from_event(event: serde_json::Value) -> Result<Self, StepError> {
        let invalid = |field: &str, message: &str| {
            StepError::from(InvalidJob {
                field: field.to_owned(),
                message: message.to_owned(),
            })
        };
        let raw: RawEvent = serde_json::from_value(event)
            .map_err(|_| invalid(".", "the event must be an object with `job` and `scheduledTime`"))?;
        let job = Job::from_value(raw.job.ok_or_else(|| invalid("job", "is missing"))?).map_err(|mut e| {
            e.field = if e.field == "." {
                "job".into()
            } else {
                format!("job.{}", e.field)
            };
            StepError::from(e)
        })?;
        let scheduled = match raw.scheduled_time {
            Some(serde_json::Value::String(s)) => utc_time(&s)
                .ok_or_else(|| invalid("scheduledTime", "is not an RFC 3339 time (2026-11-23T06:00:00Z)"))?,
            Some(_) => return Err(invalid("scheduledTime", "must be an RFC 3339 time string")),
            None => {
                return Err(invalid(
                    "scheduledTime",
                    "is missing (EventBridge's <aws.scheduler.scheduled-time>)",
                ));
            }
        };
        let slice = match raw.slice {
            None | Some(serde_json::Value::Null) => 0,
            Some(value) => value
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| invalid("slice", "must be a whole number from 0"))?,
        };
        let owner = match raw.owner {
            None | Some(serde_json::Value::Null) => UNOWNED.to_owned(),
            Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= 256 => s,
            Some(_) => return Err(invalid("owner", "must be a string of 1 to 256 characters")),
        };
        let started_at = match raw.started_at {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => {
                Some(utc_time(&s).ok_or_else(|| invalid("startedAt", "is not an RFC 3339 time"))?)
            }
            Some(_) => return Err(invalid("startedAt", "must be an RFC 3339 time string")),
        };
        let window = job.slice(scheduled, slice)?;
        let key = RunKey {
            job: job.name.clone(),
            window,
        };
        Ok(Self {
            job,
            scheduled,
            slice,
            window,
            key,
            owner,
            started_at,
        })
    }

    /// When the execution that runs this step must have finished everything it still has to do for
    /// the run: its start plus `timeout`, less [`crate::steps::budget::FINISH_RESERVE`] for the
    /// download and the failure record. `None` without a start time or a timeout.
    pub fn execution_deadline(&self, timeout: Option<Duration>) -> Option<DateTime<Utc>> {
        let finish = timeout?.checked_sub(crate::steps::budget::FINISH_RESERVE)?;
        Some(self.started_at? + chrono::Duration::from_std(finish).ok()?)
    }

    /// How long to wait before status check number `polls + 1`: the source's backoff
    /// ([`crate::domain::source::SourceRules::poll_backoff`]), at most `max_wait`.
    pub fn poll_wait(&self, polls: u32, max_wait: Duration) -> Duration {
        self.job.source.rules().poll_backoff().wait(polls, max_wait)
    }

    /// The run's S3 prefix (no trailing `/`); see the module docs for the layout.
    pub fn run_prefix(&self) -> String {
        let dt = self.window.start.date_naive().to_string();
        format!(
            "{}/run={}",
            self.partition("", &self.account_segment(), &dt),
            self.key.run_id()
        )
    }
}

impl RunContext {
    /// Where the job's table lies: the prefix every partition lies under (`s3://bucket/{prefix}/source={kind}/`)
    /// and one partition's location with `${account}` and `${dt}` in it — the run prefix's layout
    /// (see [`RunContext::run_prefix`]) above its `run=` folder.
    pub fn table_location(&self, bucket: &str) -> (String, String) {
        self.location(bucket, "")
    }

    /// Where the job's current rows are pointed at (see [`crate::steps::current`]): as
    /// [`RunContext::table_location`], under `_current/`; each partition holds one `symlink.txt`.
    pub fn current_location(&self, bucket: &str) -> (String, String) {
        self.location(bucket, "_current/")
    }

    /// The key of the pointer to the current rows of `day` (see [`crate::steps::current`]).
    pub fn current_key(&self, day: chrono::NaiveDate) -> String {
        let partition = self.partition("_current/", &self.account_segment(), &day.to_string());
        format!("{partition}/{}", crate::steps::current::SYMLINK_FILE)
    }

    /// The job's table in the catalog ([`table_name`] of its source and report).
    pub fn table(&self) -> String {
        table_name(self.job.source.kind(), &self.job.source.report())
    }

    /// Whether the job's table shows current rows (see [`crate::steps::current`]): every source's but
    /// an incremental one's (Slate stores each file once, whichever window lists it), whose table
    /// reads its objects directly.
    pub fn shows_current_rows(&self) -> bool {
        !self.job.source.rules().incremental()
    }

    /// Where the job's day status objects lie (see [`crate::steps::days`]): as
    /// [`RunContext::table_location`], under `_day_status/`.
    pub fn day_status_location(&self, bucket: &str) -> (String, String) {
        self.location(bucket, "_day_status/")
    }

    /// The key of `day`'s status object (see [`crate::steps::days`]).
    pub fn day_status_key(&self, day: chrono::NaiveDate) -> String {
        let partition = self.partition("_day_status/", &self.account_segment(), &day.to_string());
        format!("{partition}/{}", crate::steps::days::STATUS_FILE)
    }

    /// Where the job's pulls are recorded (see [`crate::steps::days`]): as
    /// [`RunContext::table_location`], under `_pulls/`.
    pub fn pulls_location(&self, bucket: &str) -> (String, String) {
        self.location(bucket, "_pulls/")
    }

    /// The key of the pulls object of claim `claims` of the run (its window starting on `dt`).
    pub fn pulls_key(&self, dt: chrono::NaiveDate, claims: u32) -> String {
        let partition = self.partition("_pulls/", &self.account_segment(), &dt.to_string());
        format!("{partition}/{}-{claims}.jsonl", self.key.run_id())
    }

    fn location(&self, bucket: &str, folder: &str) -> (String, String) {
        let root = format!(
            "s3://{bucket}/{}{folder}source={}/",
            self.output_prefix(),
            self.job.source.kind()
        );
        let template = format!("s3://{bucket}/{}/", self.partition(folder, "${account}", "${dt}"));
        (root, template)
    }

    /// One partition of the layout under `folder` (`""`, `_current/`, `_day_status/` or `_pulls/`), no leading or trailing `/`:
    /// `{prefix}/{folder}source={kind}/account={account}/report={report}/dt={dt}`.
    fn partition(&self, folder: &str, account: &str, dt: &str) -> String {
        format!(
            "{}{folder}source={}/account={account}/report={}/dt={dt}",
            self.output_prefix(),
            self.job.source.kind(),
            key_segment(&self.job.source.report())
        )
    }

    /// The job's output prefix with its `/`, or nothing.
    fn output_prefix(&self) -> String {
        match self.job.output.prefix.as_str() {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        }
    }

    /// The job's account as its partition value (`account=` of the layout).
    pub fn account_segment(&self) -> String {
        key_segment(&self.job.source.account())
    }
}

/// A table name: `{source}_{report}`, lower case, anything but letters and digits `_`.
pub fn table_name(kind: &str, report: &str) -> String {
    let mut name = crate::transfer::header::identifier(&format!("{kind}_{report}"));
    name.truncate(255);
    name
}

/// An RFC 3339 time in UTC.
pub(crate) fn utc_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Keeps a value safe as one S3 key segment: letters, digits, `.`, `_`, `+`, `-`; anything else `_`.
fn key_segment(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The fields every step's output shares, for the state machine and the logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    /// The run id.
    pub run_id: String,
    /// The run's status after the step.
    pub status: RunStatus,
    /// The slice's window.
    pub window: TimeWindow,
    /// The run's key in the job table, for the state machine's failure handler.
    pub table_key: TableKey,
}

impl From<&RunRecord> for RunRef {
    fn from(run: &RunRecord) -> Self {
        Self {
            run_id: run.run_id.clone(),
            status: run.status,
            window: run.key.window,
            table_key: TableKey::of_run(&run.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(job: serde_json::Value) -> serde_json::Value {
        serde_json::json!({ "job": job, "scheduledTime": "2026-11-23T06:00:00Z" })
    }

    fn ads_job() -> serde_json::Value {
        serde_json::json!({
            "name": "ads-daily", "credentials": "amzpipe/advertiser",
            "source": { "type": "adsReports", "profileId": "3312", "adProduct": "SPONSORED_PRODUCTS",
                        "reportTypeId": "spCampaigns", "columns": ["date"], "groupBy": ["campaign"] },
            "window": { "rule": "yesterday" }
        })
    }

    #[test]
    fn the_event_names_the_field_of_the_job_at_fault() {
        let mut job = ads_job();
        job["window"]["rule"] = "someday".into();
        let err = RunContext::from_event(event(job)).expect_err("refused");
        assert_eq!(err.error_type(), "InvalidJob");
        assert!(err.to_string().contains("job.window"), "{err}");
        let err = RunContext::from_event(serde_json::json!({ "job": ads_job() })).expect_err("refused");
        assert!(err.to_string().contains("scheduledTime"), "{err}");
    }

    #[test]
    fn the_run_prefix_is_hive_style_and_deterministic() {
        let ctx = RunContext::from_event(event(ads_job())).expect("context");
        assert_eq!(
            ctx.run_prefix(),
            "amazon/source=ads-reports/account=3312/report=spCampaigns/dt=2026-11-22/run=ads-daily_20261122T0000Z_20261123T0000Z"
        );
    }

    #[test]
    fn the_tables_locations_and_a_days_pointer_follow_the_same_layout_with_or_without_a_prefix() {
        let mut ctx = RunContext::from_event(event(ads_job())).expect("context");
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).expect("a day");
        assert_eq!(
            ctx.table_location("b"),
            (
                "s3://b/amazon/source=ads-reports/".to_owned(),
                "s3://b/amazon/source=ads-reports/account=${account}/report=spCampaigns/dt=${dt}/".to_owned()
            )
        );
        assert_eq!(
            ctx.current_location("b").1,
            "s3://b/amazon/_current/source=ads-reports/account=${account}/report=spCampaigns/dt=${dt}/"
        );
        assert_eq!(
            ctx.current_key(day),
            "amazon/_current/source=ads-reports/account=3312/report=spCampaigns/dt=2026-11-21/symlink.txt"
        );
        ctx.job.output.prefix.clear();
        assert_eq!(ctx.current_location("b").0, "s3://b/_current/source=ads-reports/");
        assert_eq!(
            ctx.current_key(day),
            "_current/source=ads-reports/account=3312/report=spCampaigns/dt=2026-11-21/symlink.txt"
        );
    }

    #[test]
    fn polls_back_off_per_source_up_to_the_configured_maximum() {
        let ctx = RunContext::from_event(event(ads_job())).expect("context");
        let long = Duration::from_secs(3600);
        assert_eq!(ctx.poll_wait(0, long), Duration::from_secs(30));
        assert_eq!(ctx.poll_wait(1, long), Duration::from_secs(60));
        assert_eq!(ctx.poll_wait(9, long), Duration::from_secs(300));
        assert_eq!(ctx.poll_wait(9, Duration::from_secs(1)), Duration::from_secs(1));
    }
}
