//! The metrics the functions publish themselves, as CloudWatch Embedded Metric Format lines on
//! standard output (Lambda hands them to CloudWatch Logs, which turns them into metrics; no
//! `PutMetricData` call, no permission).
//!
//! `RunsFailed` (namespace [`NAMESPACE`], dimension [`DIMENSION`] = the stack's name): one for each run
//! that ends `FAILED`, whichever step or failure path ended it. The `FailedRunsAlarm` of the template
//! watches it, so that an alarm does not depend on the metric dimensions Step Functions gives the
//! executions of a nested Distributed Map (`infra/policies.py alarms` and a test hold the two to each
//! other).

use chrono::{DateTime, Utc};

/// The namespace of the functions' own metrics.
pub const NAMESPACE: &str = "amzpipe";
/// The dimension every metric carries: the stack's name (`AMZPIPE_STACK_NAME`).
pub const DIMENSION: &str = "Stack";
/// Runs that ended `FAILED`.
pub const RUNS_FAILED: &str = "RunsFailed";

/// The EMF line counting one failed run of `job` for `stack` at `at` (the job and the error type ride
/// along as properties, not dimensions, so that the metric has one series per stack).
pub fn run_failed_line(stack: &str, job: &str, error_type: &str, at: DateTime<Utc>) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION]],
                "Metrics": [{ "Name": RUNS_FAILED, "Unit": "Count" }],
            }],
        },
        DIMENSION: stack,
        RUNS_FAILED: 1,
        "job": job,
        "errorType": error_type,
    })
    .to_string()
}

/// Publishes one failed run, when the function knows its stack (`AMZPIPE_STACK_NAME`; the template
/// sets it): prints the EMF line on standard output.
pub fn run_failed(job: &str, error_type: &str) {
    if let Some(stack) = std::env::var("AMZPIPE_STACK_NAME").ok().filter(|s| !s.is_empty()) {
        println!("{}", run_failed_line(&stack, job, error_type, Utc::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_is_one_count_of_runs_failed_in_the_stacks_series_as_cloudwatch_reads_emf() {
        let at = DateTime::from_timestamp(1_795_305_600, 0).expect("a time");
        let line: serde_json::Value =
            serde_json::from_str(&run_failed_line("amzpipe-prod", "sp-orders", "SourceFailed", at)).expect("JSON");
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], 1_795_305_600_000_i64);
        assert_eq!(directive["Namespace"], "amzpipe");
        assert_eq!(directive["Dimensions"], serde_json::json!([["Stack"]]));
        assert_eq!(directive["Metrics"][0]["Name"], "RunsFailed");
        // Every dimension and metric the directive names is a member of the line, as EMF requires.
        assert_eq!(line["Stack"], "amzpipe-prod");
        assert_eq!(line["RunsFailed"], 1);
    }
}
