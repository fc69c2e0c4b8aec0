//! What is known of one data day of a table and account: its state (final, provisional, missing,
//! failed, no data, overdue), why, and how its figures moved from pull to pull.
//!
//! **The record.** [`DayRecord`] holds the facts the pipeline stores per table × account × day (on
//! the day's current-run item, see [`crate::ports::JobStore::claim_current`]): the current pull (the
//! run whose rows the table returns, how old the day was when it was pulled, whether that pull was
//! final, its rows), how many pulls became current, the rows of the one before (the drift), and the
//! last attempt that failed or found no data. [`DayRecord::state`] derives the state at a given day;
//! nothing else decides it, so the command line, the `{table}_day_status` objects and the metrics
//! agree.
//!
//! **The states.** At day `today`:
//! - `final`: the current pull was made at or after the day's final age
//!   ([`crate::domain::finality`]); nothing later changes it.
//! - `failed` / `no_data`: the latest attempt, made after the current pull's request (or with none
//!   current), failed or found no data; `cause` says why. The day is pulled again at its next age.
//! - `provisional`: the current pull is not final, and its final pull is not late yet.
//! - `overdue`: not final, and `today` is past [`DayRecord::final_due`] (the day on which the final pull
//!   was due): its final pull failed (`cause` from that attempt), or never came (`no_final_pull`).
//! - `missing`: no attempt is recorded for a day that is due (at least a day old): never pulled
//!   (`never_pulled`).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The state of a data day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayStatus {
    /// The current pull was made at or after the final age.
    Final,
    /// Current rows that Amazon may still restate.
    Provisional,
    /// Past the day its final pull was due, and not final.
    Overdue,
    /// The latest attempt failed.
    Failed,
    /// The latest attempt found no data.
    NoData,
    /// Never pulled.
    Missing,
}

impl DayStatus {
    /// The stored and printed spelling (`final`, `no_data`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Final => "final",
            Self::Provisional => "provisional",
            Self::Overdue => "overdue",
            Self::Failed => "failed",
            Self::NoData => "no_data",
            Self::Missing => "missing",
        }
    }

    /// Every state, in the order a summary lists them.
    pub const ALL: [Self; 6] = [
        Self::Final,
        Self::Provisional,
        Self::Overdue,
        Self::Failed,
        Self::NoData,
        Self::Missing,
    ];
}

impl fmt::Display for DayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a day is not final: a code a person can act on, with [`Cause::hint`] saying how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Amazon ended the request `FATAL` (SP-API, Data Kiosk) or `FAILED` (Ads, AMC).
    AmazonFatal,
    /// Amazon cancelled the request.
    AmazonCancelled,
    /// Amazon never finished the request within the job's limits.
    AmazonStuck,
    /// Login with Amazon or the API refused the credentials.
    CredentialsRefused,
    /// An access token kept being refused as expired.
    TokenExpired,
    /// Amazon's or the pipeline's quota said to wait, past every retry.
    QuotaExhausted,
    /// Amazon did not have the data yet.
    NotYetAvailable,
    /// The document failed an integrity check (truncated, tampered, malformed).
    DownloadCorrupt,
    /// The job definition or its request is wrong.
    JobInvalid,
    /// The deployment is wrong (permissions, a missing resource).
    Misconfigured,
    /// Amazon or AWS kept failing (5xx, network) past every retry.
    Unavailable,
    /// A step or the execution ran out of time.
    TimedOut,
    /// The execution was stopped by hand.
    Stopped,
    /// Amazon had no data for the window.
    NoData,
    /// The final pull was due and none is recorded.
    NoFinalPull,
    /// The day was never pulled.
    NeverPulled,
}

impl Cause {
    /// The stored spelling (`amazon_fatal`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AmazonFatal => "amazon_fatal",
            Self::AmazonCancelled => "amazon_cancelled",
            Self::AmazonStuck => "amazon_stuck",
            Self::CredentialsRefused => "credentials_refused",
            Self::TokenExpired => "token_expired",
            Self::QuotaExhausted => "quota_exhausted",
            Self::NotYetAvailable => "not_yet_available",
            Self::DownloadCorrupt => "download_corrupt",
            Self::JobInvalid => "job_invalid",
            Self::Misconfigured => "misconfigured",
            Self::Unavailable => "unavailable",
            Self::TimedOut => "timed_out",
            Self::Stopped => "stopped",
            Self::NoData => "no_data",
            Self::NoFinalPull => "no_final_pull",
            Self::NeverPulled => "never_pulled",
        }
    }

    /// What a person does about it.
    pub fn hint(self) -> &'static str {
        match self {
            Self::AmazonFatal | Self::AmazonCancelled => {
                "Amazon failed the report; it is asked again at the day's next pull age (amzpipectl backfill to ask now)"
            }
            Self::AmazonStuck => "Amazon did not finish the report in time; raise limits.maxPolls or ask again",
            Self::CredentialsRefused => "re-authorise the account (amzpipectl onboard) or fix the job's account id",
            Self::TokenExpired => "the access token kept expiring: check the credentials secret and the clock",
            Self::QuotaExhausted => "Amazon's quota was spent: spread the schedules or lower the jobs' concurrency",
            Self::NotYetAvailable => "Amazon did not have the day yet; it is asked again at the next pull age",
            Self::DownloadCorrupt => "the document failed its integrity check; it is downloaded again on the next pull",
            Self::JobInvalid => "fix the job definition (the failure reason names the field)",
            Self::Misconfigured => "fix the deployment (permissions, resources): see the run's failure reason",
            Self::Unavailable => "Amazon or AWS kept failing; the day is asked again at its next pull age",
            Self::TimedOut => "a step ran out of time: raise the function's timeout or memory",
            Self::Stopped => "the execution was stopped by hand; the day is asked again at its next pull age",
            Self::NoData => "Amazon reported no data for the day",
            Self::NoFinalPull => "the final pull did not happen: is the job's schedule running? (amzpipectl plan)",
            Self::NeverPulled => "no run covered the day: backfill it (amzpipectl backfill)",
        }
    }

    /// The cause of a failure the state machine or a step named `error_type` (a step's `errorType`,
    /// or a `States.*` error), Amazon's last status word being `amazon_status`.
    pub fn of_failure(error_type: &str, amazon_status: Option<&str>) -> Self {
        match (error_type, amazon_status) {
            ("SourceFailed", Some("CANCELLED")) => Self::AmazonCancelled,
            ("SourceFailed", Some("FATAL" | "FAILED")) => Self::AmazonFatal,
            ("SourceFailed", _) => Self::AmazonStuck,
            ("CredentialsRefused", _) => Self::CredentialsRefused,
            ("AuthExpired", _) => Self::TokenExpired,
            ("Throttled", _) => Self::QuotaExhausted,
            ("NotReady", _) => Self::NotYetAvailable,
            ("IntegrityFailed", _) => Self::DownloadCorrupt,
            ("InvalidJob", _) => Self::JobInvalid,
            ("Misconfigured", _) => Self::Misconfigured,
            ("States.Timeout" | "Sandbox.Timedout" | "GivenUp", _) => Self::TimedOut,
            ("Aborted", _) => Self::Stopped,
            _ => Self::Unavailable,
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Cause {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| format!("unknown cause {s:?}"))
    }
}

/// The pull whose rows are a day's current ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DayPull {
    /// The run.
    pub run_id: String,
    /// When its Amazon request was made.
    pub requested_at: DateTime<Utc>,
    /// The day's age at the firing that pulled it (1: the day after).
    pub age: i64,
    /// Whether its figures are final (its age was at least the final age).
    pub is_final: bool,
    /// The day's rows in it, where counted.
    pub rows: Option<u64>,
}

/// An attempt at a day that ended without making it current: it failed, or Amazon had no data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DayAttempt {
    /// The run.
    pub run_id: String,
    /// When its Amazon request was made (its claim, when none was made).
    pub requested_at: DateTime<Utc>,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// Why ([`Cause::NoData`] for an attempt that found no data).
    pub cause: Cause,
    /// The run's failure reason, as a person reads it.
    pub reason: String,
}

/// The facts stored for one table × account × day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DayRecord {
    /// The data day.
    pub day: NaiveDate,
    /// The job whose run wrote the record last.
    pub job: String,
    /// The day on which the day's final pull is due (its firing's day), by the policy of that job.
    pub final_due: NaiveDate,
    /// The current pull, once one succeeded.
    pub current: Option<DayPull>,
    /// How many pulls have become current.
    pub pulls: u32,
    /// The rows of the pull current before this one, where there was one.
    pub previous_rows: Option<u64>,
    /// The last attempt that failed or found no data, if any.
    pub attempt: Option<DayAttempt>,
}

/// A day's state with its cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayState {
    /// The state.
    pub status: DayStatus,
    /// Why it is not final; `None` for a final or provisional day.
    pub cause: Option<Cause>,
}

impl DayRecord {
    /// The day's state at `today` (see the module docs).
    pub fn state(&self, today: NaiveDate) -> DayState {
        if self.current.as_ref().is_some_and(|c| c.is_final) {
            return DayState {
                status: DayStatus::Final,
                cause: None,
            };
        }
        let latest_attempt = self
            .attempt
            .as_ref()
            .filter(|a| self.current.as_ref().is_none_or(|c| a.requested_at > c.requested_at));
        if today > self.final_due {
            return DayState {
                status: DayStatus::Overdue,
                cause: Some(latest_attempt.map_or(Cause::NoFinalPull, |a| a.cause)),
            };
        }
        match latest_attempt {
            Some(a) => DayState {
                status: if a.cause == Cause::NoData {
                    DayStatus::NoData
                } else {
                    DayStatus::Failed
                },
                cause: Some(a.cause),
            },
            None if self.current.is_some() => DayState {
                status: DayStatus::Provisional,
                cause: None,
            },
            None => DayState {
                status: DayStatus::Missing,
                cause: Some(Cause::NeverPulled),
            },
        }
    }

    /// The failure reason behind `state`: the last attempt's, when its cause is the state's.
    pub fn reason(&self, state: DayState) -> Option<&str> {
        self.attempt
            .as_ref()
            .filter(|a| state.cause == Some(a.cause))
            .map(|a| a.reason.as_str())
    }

    /// How the current pull's rows differ from the previous current pull's: `(rows - previous,
    /// (rows - previous) / previous)`; `None` without both counts (the share is `None` from 0 rows).
    pub fn row_drift(&self) -> Option<(i64, Option<f64>)> {
        let rows = self.current.as_ref()?.rows?;
        let previous = self.previous_rows?;
        let delta = i64::try_from(rows).ok()? - i64::try_from(previous).ok()?;
        let share = (previous > 0).then(|| delta as f64 / previous as f64);
        Some((delta, share))
    }
}

/// The state of a day with no record: `missing` once due (a day old), else nothing to say.
pub fn unrecorded_state(day: NaiveDate, today: NaiveDate) -> Option<DayState> {
    (day < today).then_some(DayState {
        status: DayStatus::Missing,
        cause: Some(Cause::NeverPulled),
    })
}

/// One row of the `{table}_day_status` table: a day's record and its state when it was written,
/// every value a string or null (a JSON Lines table of strings, as the catalog keeps them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayStatusRow {
    /// The table whose day it is.
    pub table_name: String,
    /// The day (`dt`, the partition, says it too).
    pub data_day: String,
    /// The state when written.
    pub status: String,
    /// Why it is not final.
    pub cause: Option<String>,
    /// What to do about it.
    pub hint: Option<String>,
    /// The latest failure's reason, when the day is failed or overdue after a failure.
    pub reason: Option<String>,
    /// The job that wrote it.
    pub job: String,
    /// The current run.
    pub current_run: Option<String>,
    /// When the current run's request was made (RFC 3339): `{table}_history` as of then reads it.
    pub requested_at: Option<String>,
    /// The day's age at the current pull.
    pub pull_age: Option<String>,
    /// How many pulls became current.
    pub pulls: String,
    /// The current pull's rows.
    pub row_count: Option<String>,
    /// The rows of the previous current pull.
    pub previous_row_count: Option<String>,
    /// `row_count - previous_row_count`.
    pub row_drift: Option<String>,
    /// `(row_count - previous_row_count) / previous_row_count`.
    pub row_drift_share: Option<String>,
    /// The day the final pull is due.
    pub final_due: String,
    /// When this row was written (RFC 3339).
    pub updated_at: String,
}

impl DayStatusRow {
    /// The row of `record` in `table`, its state at `now`'s day.
    pub fn of(table: &str, record: &DayRecord, now: DateTime<Utc>) -> Self {
        let state = record.state(now.date_naive());
        let drift = record.row_drift();
        let reason = record.reason(state).map(str::to_owned);
        Self {
            table_name: table.to_owned(),
            data_day: record.day.to_string(),
            status: state.status.as_str().to_owned(),
            cause: state.cause.map(|c| c.as_str().to_owned()),
            hint: state.cause.map(|c| c.hint().to_owned()),
            reason,
            job: record.job.clone(),
            current_run: record.current.as_ref().map(|c| c.run_id.clone()),
            requested_at: record.current.as_ref().map(|c| crate::domain::iso(c.requested_at)),
            pull_age: record.current.as_ref().map(|c| c.age.to_string()),
            pulls: record.pulls.to_string(),
            row_count: record.current.as_ref().and_then(|c| c.rows).map(|r| r.to_string()),
            previous_row_count: record.previous_rows.map(|r| r.to_string()),
            row_drift: drift.map(|(d, _)| d.to_string()),
            row_drift_share: drift.and_then(|(_, s)| s).map(|s| format!("{s:.4}")),
            final_due: record.final_due.to_string(),
            updated_at: crate::domain::iso(now),
        }
    }

    /// The columns of the table, in order (the row's field names).
    pub const COLUMNS: [&'static str; 17] = [
        "table_name",
        "data_day",
        "status",
        "cause",
        "hint",
        "reason",
        "job",
        "current_run",
        "requested_at",
        "pull_age",
        "pulls",
        "row_count",
        "previous_row_count",
        "row_drift",
        "row_drift_share",
        "final_due",
        "updated_at",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("a time")
    }

    fn pull(requested: &str, age: i64, is_final: bool, rows: u64) -> DayPull {
        DayPull {
            run_id: format!("run-{requested}"),
            requested_at: at(requested),
            age,
            is_final,
            rows: Some(rows),
        }
    }

    fn attempt(requested: &str, cause: Cause) -> DayAttempt {
        DayAttempt {
            run_id: format!("run-{requested}"),
            requested_at: at(requested),
            at: at(requested),
            cause,
            reason: format!("{cause}: what Amazon said"),
        }
    }

    fn record(current: Option<DayPull>, attempt: Option<DayAttempt>) -> DayRecord {
        DayRecord {
            day: day("2026-11-01"),
            job: "ads".into(),
            final_due: day("2026-12-14"),
            current,
            pulls: 1,
            previous_rows: None,
            attempt,
        }
    }

    #[test]
    fn a_pull_made_at_the_final_age_makes_the_day_final_whatever_failed_after_it() {
        let r = record(
            Some(pull("2026-12-14T06:00:00Z", 43, true, 10)),
            Some(attempt("2026-12-20T06:00:00Z", Cause::AmazonFatal)),
        );
        assert_eq!(r.state(day("2027-01-30")).status, DayStatus::Final);
    }

    #[test]
    fn a_provisional_day_becomes_overdue_the_day_after_its_final_pull_was_due() {
        let r = record(Some(pull("2026-11-09T06:00:00Z", 8, false, 10)), None);
        assert_eq!(r.state(day("2026-12-14")).status, DayStatus::Provisional);
        let late = r.state(day("2026-12-15"));
        assert_eq!(
            (late.status, late.cause),
            (DayStatus::Overdue, Some(Cause::NoFinalPull))
        );
    }

    #[test]
    fn a_failure_after_the_current_pull_shows_failed_with_its_cause_and_one_before_it_does_not() {
        let later = record(
            Some(pull("2026-11-02T06:00:00Z", 1, false, 10)),
            Some(attempt("2026-11-05T06:00:00Z", Cause::AmazonFatal)),
        );
        let state = later.state(day("2026-11-06"));
        assert_eq!(
            (state.status, state.cause),
            (DayStatus::Failed, Some(Cause::AmazonFatal))
        );
        let earlier = record(
            Some(pull("2026-11-05T06:00:00Z", 4, false, 10)),
            Some(attempt("2026-11-02T06:00:00Z", Cause::AmazonFatal)),
        );
        assert_eq!(earlier.state(day("2026-11-06")).status, DayStatus::Provisional);
        let overdue = later.state(day("2026-12-20"));
        assert_eq!(
            (overdue.status, overdue.cause),
            (DayStatus::Overdue, Some(Cause::AmazonFatal)),
            "an overdue day keeps the cause of its last failure"
        );
    }

    #[test]
    fn no_data_and_never_pulled_days_have_states_of_their_own() {
        let empty = record(None, Some(attempt("2026-11-02T06:00:00Z", Cause::NoData)));
        assert_eq!(empty.state(day("2026-11-03")).status, DayStatus::NoData);
        assert_eq!(
            unrecorded_state(day("2026-11-01"), day("2026-11-02")).map(|s| s.status),
            Some(DayStatus::Missing)
        );
        assert_eq!(
            unrecorded_state(day("2026-11-02"), day("2026-11-02")),
            None,
            "today is not due"
        );
    }

    #[test]
    fn drift_compares_the_current_pull_with_the_one_before() {
        let mut r = record(Some(pull("2026-11-05T06:00:00Z", 4, false, 6)), None);
        assert_eq!(r.row_drift(), None);
        r.previous_rows = Some(10);
        assert_eq!(r.row_drift(), Some((-4, Some(-0.4))));
        let row = DayStatusRow::of("ads_reports_spcampaigns", &r, at("2026-11-06T00:00:00Z"));
        assert_eq!(row.row_drift_share.as_deref(), Some("-0.4000"));
        let json = serde_json::to_value(&row).expect("json");
        let mut keys: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut columns = DayStatusRow::COLUMNS.to_vec();
        columns.sort_unstable();
        assert_eq!(keys, columns, "the table's columns are the row's fields");
    }

    #[test]
    fn every_step_error_name_has_a_cause_and_causes_read_back_from_their_spelling() {
        for (error, status, cause) in [
            ("SourceFailed", Some("FATAL"), Cause::AmazonFatal),
            ("SourceFailed", Some("CANCELLED"), Cause::AmazonCancelled),
            ("SourceFailed", Some("IN_PROGRESS"), Cause::AmazonStuck),
            ("CredentialsRefused", None, Cause::CredentialsRefused),
            ("Throttled", None, Cause::QuotaExhausted),
            ("States.Timeout", None, Cause::TimedOut),
            ("Transient", None, Cause::Unavailable),
        ] {
            assert_eq!(Cause::of_failure(error, status), cause, "{error}");
            assert_eq!(cause.as_str().parse::<Cause>(), Ok(cause));
        }
    }
}
