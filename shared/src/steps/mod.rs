//! The four steps of the state machine, as plain async functions over [`Services`]; the Lambda
//! binaries under `functions/` only wire them to the runtime.
//!
//! ```text
//! refresh-token → create-request → (Wait → poll-status)* → download-decrypt
//! ```
//!
//! Every step takes the same event, the state machine's input (the job and the scheduled time), and
//! reads everything else from the job table, so no token, secret or URL ever travels through the
//! state machine:
//!
//! ```json
//! { "job": { "name": "sp-orders-daily", … }, "scheduledTime": "2026-11-23T06:00:00Z", "slice": 0 }
//! ```
//!
//! `slice` picks one slice of a window longer than the source accepts (see
//! [`crate::domain::job::Job::windows`]); refresh-token lists them.
//!
//! S3 layout of a run (Hive-style partitions; the manifest is written last and marks the run complete):
//!
//! ```text
//! {prefix}/source={kind}/account={account}/report={report}/dt={window start date}/run={run id}/00000.csv
//!                                                                                         …/_manifest.json
//! ```

mod create;
mod download;
mod error;
mod poll;
mod refresh;
mod services;
mod source;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::adapters::dynamo::TableKey;
use crate::domain::TimeWindow;
use crate::domain::job::{InvalidJob, Job, SourceSpec};
use crate::domain::run::{RunKey, RunRecord, RunStatus, RunUpdate};
use crate::ports::{JobStore, ObjectSink, Quotas, SecretStore, TokenCache};

pub use create::{CreateOutcome, CreateOutput, create_request};
pub use download::{DownloadOutput, download_decrypt};
pub use error::StepError;
pub use poll::{PollOutput, PollState, poll_status};
pub use refresh::{TokenOutput, refresh_token};
pub use services::{AwsServices, Clients, Endpoints, Services, Session, Settings};
pub use source::BoundSource;

/// SP-API `createReport`: 0.0167 requests per second per seller, burst 15 (shared by every Lambda).
pub const SP_CREATE_RATE: f64 = 0.0167;
/// SP-API `createReport` burst.
pub const SP_CREATE_BURST: u32 = 15;
/// AMC runs at most this many executions per instance at once.
pub const AMC_MAX_RUNNING: u32 = 10;
/// How long a run waits for a free AMC slot before trying again.
pub const AMC_SLOT_WAIT: Duration = Duration::from_secs(300);
/// How long an AMC running slot is held without renewal. Each status check renews it (checks are at
/// most `AMZPIPE_MAX_WAIT_SECONDS` apart); a slot whose run died without giving it back frees itself
/// after this long.
pub const AMC_SLOT_LEASE: Duration = Duration::from_secs(2 * 3600);

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
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    job: Option<serde_json::Value>,
    scheduled_time: Option<serde_json::Value>,
    #[serde(default)]
    slice: Option<serde_json::Value>,
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
            Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| invalid("scheduledTime", "is not an RFC 3339 time (2026-11-23T06:00:00Z)"))?,
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
        })
    }

    /// The run's S3 prefix (no trailing `/`); see the module docs for the layout.
    pub fn run_prefix(&self) -> String {
        let source = &self.job.source;
        let mut parts = Vec::new();
        if !self.job.output.prefix.is_empty() {
            parts.push(self.job.output.prefix.clone());
        }
        parts.push(format!("source={}", source.kind()));
        parts.push(format!("account={}", key_segment(&source.account())));
        parts.push(format!("report={}", key_segment(&source.report())));
        parts.push(format!("dt={}", self.window.start.date_naive()));
        parts.push(format!("run={}", self.key.run_id()));
        parts.join("/")
    }
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

/// When the Lambda invocation must have returned.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline (tests, local runs).
    pub fn none() -> Self {
        Self(None)
    }

    /// A deadline `after` from now.
    pub fn after(after: Duration) -> Self {
        Self(Some(Instant::now() + after))
    }

    /// The Lambda context's deadline, in milliseconds since the Unix epoch.
    ///
    /// A value too small to be such a time (before 2001) is read as the time left itself: `cargo lambda
    /// watch` sends the function's timeout (`600000`) in `Lambda-Runtime-Deadline-Ms`.
    pub fn from_epoch_millis(millis: u64) -> Self {
        const PLAUSIBLE_EPOCH_MILLIS: u64 = 1_000_000_000_000;
        if millis < PLAUSIBLE_EPOCH_MILLIS {
            return Self::after(Duration::from_millis(millis));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let left = Duration::from_millis(millis).saturating_sub(now);
        Self::after(left)
    }

    /// Time left before the deadline, less `margin`; `None` without a deadline.
    pub fn remaining(&self, margin: Duration) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()).saturating_sub(margin))
    }
}

/// How long to wait before status check number `polls + 1`: exponential from a per-source base to a
/// per-source cap (AMC: minutes; SP-API: seconds to minutes), capped by the configured maximum.
pub fn poll_wait(source: &SourceSpec, polls: u32, max_wait: Duration) -> Duration {
    let (base, cap) = match source {
        SourceSpec::Amc(_) => (60, 900),
        SourceSpec::SpReports(_) => (15, 300),
        SourceSpec::AdsReports(_) => (30, 300),
        SourceSpec::Slate(_) => (5, 60),
    };
    let secs = (base as u64).saturating_mul(1 << polls.min(10)).min(cap);
    Duration::from_secs(secs).min(max_wait)
}

/// The shared quota a create call of this job needs.
enum Quota {
    /// A token bucket (SP-API createReport per seller).
    Bucket { name: String, rate: f64, burst: u32 },
    /// A slot of a counter (AMC running executions per instance).
    Slot { name: String, max: u32 },
}

fn quota_of(job: &Job) -> Option<Quota> {
    match &job.source {
        SourceSpec::SpReports(_) => Some(Quota::Bucket {
            name: format!("sp.createReport#{}", job.credentials),
            rate: SP_CREATE_RATE,
            burst: SP_CREATE_BURST,
        }),
        SourceSpec::Amc(r) => Some(Quota::Slot {
            name: format!("amc.running#{}", r.instance_id),
            max: AMC_MAX_RUNNING,
        }),
        SourceSpec::AdsReports(_) | SourceSpec::Slate(_) => None,
    }
}

/// Takes the job's shared quota for one create; `Some(wait)` when there is none left.
async fn take_quota<St: Quotas>(store: &St, ctx: &RunContext) -> Result<Option<Duration>, StepError> {
    match quota_of(&ctx.job) {
        None => Ok(None),
        Some(Quota::Bucket { name, rate, burst }) => Ok(store.take_token(&name, rate, burst, Utc::now()).await?),
        Some(Quota::Slot { name, max }) => {
            let got = store
                .acquire_slot(&name, &ctx.key.run_id(), max, Utc::now(), AMC_SLOT_LEASE)
                .await?;
            Ok((!got).then_some(AMC_SLOT_WAIT))
        }
    }
}

/// Renews the lease of the run's slot while its Amazon request runs (a no-op for bucket quotas).
async fn renew_quota<St: Quotas>(store: &St, ctx: &RunContext) {
    if let Some(Quota::Slot { name, max }) = quota_of(&ctx.job) {
        match store
            .acquire_slot(&name, &ctx.key.run_id(), max, Utc::now(), AMC_SLOT_LEASE)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(quota = %name, "the run's slot lease had run out and the slots are full"),
            Err(e) => tracing::warn!(error = %e, quota = %name, "could not renew a quota slot"),
        }
    }
}

/// Gives back the run's slot when its Amazon request has ended (a no-op for bucket quotas).
async fn release_quota<St: Quotas>(store: &St, ctx: &RunContext) {
    if let Some(Quota::Slot { name, .. }) = quota_of(&ctx.job)
        && let Err(e) = store.release_slot(&name, &ctx.key.run_id()).await
    {
        tracing::warn!(error = %e, quota = %name, "could not release a quota slot");
    }
}

/// Records a failure on the run (from any unfinished status) and releases its quota; the error is
/// returned for the state machine.
async fn fail_run<St: JobStore + Quotas>(store: &St, ctx: &RunContext, error: StepError) -> StepError {
    let update = RunUpdate {
        failure_reason: Some(format!("{}: {error}", error.error_type())),
        ..RunUpdate::default()
    };
    let from = [RunStatus::Claimed, RunStatus::Requested, RunStatus::Ready];
    match store
        .transition(&ctx.key, &from, RunStatus::Failed, update, Utc::now())
        .await
    {
        Ok(_) => tracing::warn!(error_type = error.error_type(), error = %error, "run failed"),
        Err(e) => tracing::error!(error = %e, "could not record the failure on the run"),
    }
    release_quota(store, ctx).await;
    error
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

/// Forgets the session when its credentials were refused, then passes the error on.
async fn note_refusal<St, Se, Si>(services: &Services<St, Se, Si>, secret_id: &str, error: StepError) -> StepError
where
    St: JobStore + Quotas + TokenCache,
    Se: SecretStore,
    Si: ObjectSink,
{
    if matches!(error, StepError::CredentialsRefused(_)) {
        services.forget_session(secret_id).await;
    }
    error
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
    fn a_deadline_is_read_as_epoch_millis_or_as_time_left_from_a_local_emulator() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64;
        let left = Deadline::from_epoch_millis(now + 60_000)
            .remaining(Duration::ZERO)
            .expect("some");
        assert!(left > Duration::from_secs(55) && left <= Duration::from_secs(60));
        let local = Deadline::from_epoch_millis(600_000)
            .remaining(Duration::ZERO)
            .expect("some");
        assert!(local > Duration::from_secs(590));
        assert_eq!(
            Deadline::from_epoch_millis(now - 1).remaining(Duration::ZERO),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn polls_back_off_per_source_up_to_the_configured_maximum() {
        let ctx = RunContext::from_event(event(ads_job())).expect("context");
        let long = Duration::from_secs(3600);
        assert_eq!(poll_wait(&ctx.job.source, 0, long), Duration::from_secs(30));
        assert_eq!(poll_wait(&ctx.job.source, 1, long), Duration::from_secs(60));
        assert_eq!(poll_wait(&ctx.job.source, 9, long), Duration::from_secs(300));
        assert_eq!(
            poll_wait(&ctx.job.source, 9, Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}
