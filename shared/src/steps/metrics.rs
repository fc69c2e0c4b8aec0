//! The metrics the functions publish themselves, as CloudWatch Embedded Metric Format lines on
//! standard output (Lambda hands them to CloudWatch Logs, which turns them into metrics; no
//! `PutMetricData` call, no permission).
//!
//! Namespace [`NAMESPACE`]; every metric is published with the dimension [`DIMENSION`] = the stack's
//! name (the series the template's alarms watch; `infra/policies.py alarms` and a test hold the two to
//! each other) and with [`DIMENSION`] and [`SOURCE_DIMENSION`] (a series per source, for dashboards).
//! The job and the run ride along as properties, not dimensions, so a thousand jobs are not a
//! thousand series.
//!
//! - [`RUNS_FAILED`]: one for each run that ends `FAILED`, whichever step or failure path ended it.
//! - [`RUNS_SUCCEEDED`], [`ROWS`], [`BYTES`]: one, and the rows and bytes stored, for each run that
//!   ends `SUCCEEDED`.
//! - [`THROTTLES`]: one for each call of a looping step that Amazon (a 429) or a shared quota of the
//!   job table told to wait.
//! - [`DAYS_OVERDUE`], [`DAYS_FAILED`], [`NEWEST_FINAL_DAY_AGE`], [`NEWEST_PROVISIONAL_DAY_AGE`],
//!   [`ROWS_DROPPED_SHARE`]: the state of a job's days (see [`crate::domain::day_state`]) after each
//!   successful run: how many of its recent days are overdue and failed, the age in days of its
//!   newest final and newest provisional day (freshness), and the largest share of its rows a day of
//!   the run lost against the pull it replaced (0 when none lost rows).

use chrono::{DateTime, Utc};

/// The namespace of the functions' own metrics.
pub const NAMESPACE: &str = "amzpipe";
/// The dimension every metric carries: the stack's name (`AMZPIPE_STACK_NAME`).
pub const DIMENSION: &str = "Stack";
/// The dimension of the per-source series: the source kind (`ads-reports`, …).
pub const SOURCE_DIMENSION: &str = "Source";
/// Runs that ended `FAILED`.
pub const RUNS_FAILED: &str = "RunsFailed";
/// Runs that ended `SUCCEEDED`.
pub const RUNS_SUCCEEDED: &str = "RunsSucceeded";
/// Step calls that Amazon (a 429) or a shared quota of the job table told to wait.
pub const THROTTLES: &str = "Throttles";
/// Data rows a successful run stored.
pub const ROWS: &str = "Rows";
/// Bytes a successful run stored.
pub const BYTES: &str = "Bytes";
/// A job's recent days that are overdue (not final past the day their final pull was due).
pub const DAYS_OVERDUE: &str = "DaysOverdue";
/// A job's recent days whose latest attempt failed.
pub const DAYS_FAILED: &str = "DaysFailed";
/// Age in days of a job's newest final day.
pub const NEWEST_FINAL_DAY_AGE: &str = "NewestFinalDayAge";
/// Age in days of a job's newest provisional day.
pub const NEWEST_PROVISIONAL_DAY_AGE: &str = "NewestProvisionalDayAge";
/// The largest share of its rows a day lost on a re-pull (0 to 1).
pub const ROWS_DROPPED_SHARE: &str = "RowsDroppedShare";

/// Every metric the functions publish, with its unit: what the template's alarms and dashboard may
/// name.
pub const ALL: [(&str, &str); 10] = [
    (RUNS_FAILED, "Count"),
    (THROTTLES, "Count"),
    (RUNS_SUCCEEDED, "Count"),
    (ROWS, "Count"),
    (BYTES, "Bytes"),
    (DAYS_OVERDUE, "Count"),
    (DAYS_FAILED, "Count"),
    (NEWEST_FINAL_DAY_AGE, "None"),
    (NEWEST_PROVISIONAL_DAY_AGE, "None"),
    (ROWS_DROPPED_SHARE, "None"),
];

/// One EMF line of `values` (metric name and value) for `stack` and `source` at `at`, with
/// `properties` beside them.
fn line(stack: &str, source: &str, at: DateTime<Utc>, values: &[(&str, f64)], properties: &[(&str, &str)]) -> String {
    let unit = |name: &str| ALL.iter().find(|(n, _)| *n == name).map_or("None", |(_, u)| *u);
    let mut object = serde_json::json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION], [DIMENSION, SOURCE_DIMENSION]],
                "Metrics": values
                    .iter()
                    .map(|(name, _)| serde_json::json!({ "Name": name, "Unit": unit(name) }))
                    .collect::<Vec<_>>(),
            }],
        },
        DIMENSION: stack,
        SOURCE_DIMENSION: source,
    });
    for (name, value) in values {
        object[*name] = serde_json::json!(value);
    }
    for (name, value) in properties {
        object[*name] = serde_json::json!(value);
    }
    object.to_string()
}

/// The stack's name, when the function knows it (`AMZPIPE_STACK_NAME`; the template sets it).
fn stack() -> Option<String> {
    std::env::var("AMZPIPE_STACK_NAME").ok().filter(|s| !s.is_empty())
}

/// The EMF line of one successful run of `job` that stored `rows` rows and `bytes` bytes.
pub fn run_succeeded_line(stack: &str, source: &str, job: &str, rows: u64, bytes: u64, at: DateTime<Utc>) -> String {
    let values = [(RUNS_SUCCEEDED, 1.0), (ROWS, rows as f64), (BYTES, bytes as f64)];
    line(stack, source, at, &values, &[("job", job)])
}

/// Publishes one successful run (see [`run_succeeded_line`]).
pub fn run_succeeded(source: &str, job: &str, rows: u64, bytes: u64) {
    if let Some(stack) = stack() {
        println!("{}", run_succeeded_line(&stack, source, job, rows, bytes, Utc::now()));
    }
}

/// The EMF line of one step call of `job` that was told to wait (`step`: create-request,
/// poll-status, download-decrypt).
pub fn throttled_line(stack: &str, source: &str, job: &str, step: &str, at: DateTime<Utc>) -> String {
    line(stack, source, at, &[(THROTTLES, 1.0)], &[("job", job), ("step", step)])
}

/// Publishes one throttled step call (see [`throttled_line`]).
pub fn throttled(source: &str, job: &str, step: &str) {
    if let Some(stack) = stack() {
        println!("{}", throttled_line(&stack, source, job, step, Utc::now()));
    }
}

/// What a job's recent days are, as its metrics count them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DaysSummary {
    /// Days overdue.
    pub overdue: u32,
    /// Days whose latest attempt failed.
    pub failed: u32,
    /// Age of the newest final day, if any is final.
    pub newest_final_age: Option<i64>,
    /// Age of the newest provisional day, if any.
    pub newest_provisional_age: Option<i64>,
    /// The largest share of its rows a day of the run lost on its re-pull (0 when none lost rows).
    pub rows_dropped_share: f64,
}

/// The EMF line of the state of `job`'s days.
pub fn days_line(stack: &str, source: &str, job: &str, days: &DaysSummary, at: DateTime<Utc>) -> String {
    let mut values = vec![
        (DAYS_OVERDUE, f64::from(days.overdue)),
        (DAYS_FAILED, f64::from(days.failed)),
        (ROWS_DROPPED_SHARE, days.rows_dropped_share),
    ];
    if let Some(age) = days.newest_final_age {
        values.push((NEWEST_FINAL_DAY_AGE, age as f64));
    }
    if let Some(age) = days.newest_provisional_age {
        values.push((NEWEST_PROVISIONAL_DAY_AGE, age as f64));
    }
    line(stack, source, at, &values, &[("job", job)])
}

/// Publishes the state of `job`'s days (see [`days_line`]).
pub fn days(source: &str, job: &str, summary: &DaysSummary) {
    if let Some(stack) = stack() {
        println!("{}", days_line(&stack, source, job, summary, Utc::now()));
    }
}

/// The EMF line counting one failed run of `job` for `stack` at `at` (the job and the error type ride
/// along as properties, not dimensions, so that the metric has one series per stack).
pub fn run_failed_line(stack: &str, source: &str, job: &str, error_type: &str, at: DateTime<Utc>) -> String {
    line(
        stack,
        source,
        at,
        &[(RUNS_FAILED, 1.0)],
        &[("job", job), ("errorType", error_type)],
    )
}

/// Publishes one failed run, when the function knows its stack (`AMZPIPE_STACK_NAME`; the template
/// sets it): prints the EMF line on standard output.
pub fn run_failed(source: &str, job: &str, error_type: &str) {
    if let Some(stack) = stack() {
        println!("{}", run_failed_line(&stack, source, job, error_type, Utc::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_is_one_count_of_runs_failed_in_the_stacks_series_as_cloudwatch_reads_emf() {
        let at = DateTime::from_timestamp(1_795_305_600, 0).expect("a time");
        let line: serde_json::Value = serde_json::from_str(&run_failed_line(
            "amzpipe-prod",
            "sp-reports",
            "sp-orders",
            "SourceFailed",
            at,
        ))
        .expect("JSON");
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], 1_795_305_600_000_i64);
        assert_eq!(directive["Namespace"], "amzpipe");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["Stack"], ["Stack", "Source"]])
        );
        assert_eq!(line["Source"], "sp-reports");
        assert_eq!(directive["Metrics"][0]["Name"], "RunsFailed");
        // Every dimension and metric the directive names is a member of the line, as EMF requires.
        assert_eq!(line["Stack"], "amzpipe-prod");
        assert_eq!(line["RunsFailed"], 1.0);
    }

    #[test]
    fn every_metric_a_line_names_is_a_member_of_it_with_a_number_and_a_declared_unit() {
        let at = DateTime::from_timestamp(1_795_305_600, 0).expect("a time");
        let summary = DaysSummary {
            overdue: 2,
            failed: 1,
            newest_final_age: Some(44),
            newest_provisional_age: None,
            rows_dropped_share: 0.5,
        };
        for text in [
            run_succeeded_line("s", "ads-reports", "j", 10, 2048, at),
            days_line("s", "ads-reports", "j", &summary, at),
            throttled_line("s", "ads-reports", "j", "poll-status", at),
        ] {
            let line: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let metrics = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .expect("metrics");
            assert!(!metrics.is_empty());
            for metric in metrics {
                let name = metric["Name"].as_str().expect("a name");
                assert!(line[name].is_number(), "{name} in {text}");
                assert!(ALL.iter().any(|(n, u)| *n == name && metric["Unit"] == *u), "{name}");
            }
        }
        let days: serde_json::Value =
            serde_json::from_str(&days_line("s", "ads-reports", "j", &summary, at)).expect("JSON");
        assert_eq!(days["DaysOverdue"], 2.0);
        assert!(
            days.get("NewestProvisionalDayAge").is_none(),
            "no provisional day, no value"
        );
    }
}
