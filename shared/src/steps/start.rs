//! The start of a schedule's firing: one execution of the state machine per schedule and scheduled
//! time, named after both, so that a firing delivered twice — EventBridge Scheduler's retries, Lambda's
//! retries of an asynchronous invocation — never runs twice.
//!
//! EventBridge Scheduler cannot name the executions it starts, and its scheduled time
//! (`<aws.scheduler.scheduled-time>`, `2026-11-23T06:00:00Z`) holds `:`, which execution names may not,
//! so the schedules invoke refresh-token with the execution's input and the schedule's ARN:
//!
//! ```json
//! { "schedule": "<aws.scheduler.schedule-arn>", "scheduledTime": "<aws.scheduler.scheduled-time>", "jobs": [ … ] }
//! ```
//!
//! and it starts the execution named `{schedule}-{yyyymmddThhmmssZ}` on the same event without
//! `schedule` (jobs inline, or a `jobsFile`).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::execution::scheduled_execution_name;
use crate::ports::{Executions, StartOutcome, WorkflowError};
use crate::steps::context::utc_time;
use crate::steps::{Ports, Services, StepError};

/// The event field that makes an event a schedule's firing (the schedule's ARN).
pub const SCHEDULE_FIELD: &str = "schedule";

/// What the start of a firing returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartOutput {
    /// The execution's name, the same for every delivery of the firing.
    pub execution_name: String,
    /// The execution's ARN when this call started it (or found it running on the same input).
    pub execution_arn: Option<String>,
    /// False when an execution of that name existed already and nothing was started.
    pub started: bool,
}

/// The refresh-token function's entry: an event with a `schedule` is a schedule's firing, whose
/// execution it starts ([`start_scheduled_execution`]); any other is the first step of a run
/// ([`crate::steps::refresh_token`]).
pub async fn refresh_token_or_start_execution<P: Ports>(
    services: &Services<P>,
    event: Value,
) -> Result<Value, StepError> {
    // Each branch is boxed, as poll-status's are: side by side their futures are deep enough to
    // overflow rustc's query depth when a release build lays out the function's future.
    let output = if event.get(SCHEDULE_FIELD).is_some() {
        serde_json::to_value(Box::pin(start_scheduled_execution(services, event)).await?)
    } else {
        serde_json::to_value(Box::pin(crate::steps::refresh_token(services, event)).await?)
    };
    output.map_err(|e| StepError::Transient(format!("the output could not be written: {e}")))
}

/// Starts the execution of a schedule's firing (see the module docs), or nothing if it was started
/// already. Errors: `InvalidJob` (the event is not a firing: no schedule, a bad `scheduledTime`, neither
/// `jobs` nor `jobsFile`), `Misconfigured` (this function has no state machine to start, or may not
/// start it), `Transient` (Step Functions throttled or failed: the invocation is retried).
pub async fn start_scheduled_execution<P: Ports>(
    services: &Services<P>,
    event: Value,
) -> Result<StartOutput, StepError> {
    let executions = services.executions.as_ref().ok_or_else(|| {
        StepError::Misconfigured(
            "this function starts no executions: AMZPIPE_STATE_MACHINE_ARN is not set (the schedules must invoke refresh-token)"
                .into(),
        )
    })?;
    let (name, input) = firing(event)?;
    let input = serde_json::to_string(&input)
        .map_err(|e| StepError::Transient(format!("the execution's input could not be written: {e}")))?;
    let outcome = executions.start(&name, &input).await.map_err(|e| match e {
        WorkflowError::Unavailable(_) => StepError::Transient(e.to_string()),
        WorkflowError::Misconfigured(_) => StepError::Misconfigured(e.to_string()),
    })?;
    Ok(match outcome {
        StartOutcome::Started { execution_arn } => {
            tracing::info!(execution = %name, "execution started");
            StartOutput {
                execution_name: name,
                execution_arn: Some(execution_arn),
                started: true,
            }
        }
        StartOutcome::AlreadyExists => {
            tracing::info!(execution = %name, "this firing's execution exists already; nothing started");
            StartOutput {
                execution_name: name,
                execution_arn: None,
                started: false,
            }
        }
    })
}

/// The execution name and input of a firing.
fn firing(event: Value) -> Result<(String, Map<String, Value>), StepError> {
    let invalid = |field: &str, problem: &str| StepError::InvalidJob(format!("{field}: {problem}"));
    let Value::Object(mut input) = event else {
        return Err(invalid(".", "a schedule's firing must be a JSON object"));
    };
    let schedule = match input.remove(SCHEDULE_FIELD) {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        _ => {
            return Err(invalid(
                SCHEDULE_FIELD,
                "must be the schedule's ARN (<aws.scheduler.schedule-arn>) or name",
            ));
        }
    };
    let scheduled = input
        .get("scheduledTime")
        .and_then(Value::as_str)
        .and_then(utc_time)
        .ok_or_else(|| {
            invalid(
                "scheduledTime",
                "must be an RFC 3339 time (EventBridge's <aws.scheduler.scheduled-time>)",
            )
        })?;
    match (input.get("jobs"), input.get("jobsFile")) {
        (Some(Value::Array(_)), None) | (None, Some(Value::Object(_))) => {}
        _ => {
            return Err(invalid(
                "jobs",
                "a firing carries either `jobs` (an array) or `jobsFile` ({\"bucket\", \"key\"})",
            ));
        }
    }
    Ok((scheduled_execution_name(&schedule, scheduled), input))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_firing_becomes_the_schedules_input_under_a_name_of_the_schedule_and_its_time() {
        let (name, input) = firing(json!({
            "schedule": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/sp-daily",
            "scheduledTime": "2026-11-23T06:00:00Z",
            "jobs": [{"name": "sp-orders-daily"}]
        }))
        .expect("a firing");
        assert_eq!(name, "sp-daily-20261123T060000Z");
        assert_eq!(
            Value::Object(input),
            json!({"scheduledTime": "2026-11-23T06:00:00Z", "jobs": [{"name": "sp-orders-daily"}]})
        );
    }

    #[test]
    fn a_firing_without_its_schedule_time_or_jobs_is_an_invalid_job() {
        for event in [
            json!({"scheduledTime": "2026-11-23T06:00:00Z", "jobs": []}),
            json!({"schedule": "s", "scheduledTime": "<aws.scheduler.scheduled-time>", "jobs": []}),
            json!({"schedule": "s", "scheduledTime": "2026-11-23T06:00:00Z"}),
            json!({"schedule": "s", "scheduledTime": "2026-11-23T06:00:00Z", "jobs": [], "jobsFile": {}}),
            json!(["not", "an", "object"]),
        ] {
            let err = firing(event.clone()).expect_err("not a firing");
            assert_eq!(err.error_type(), "InvalidJob", "{event}: {err}");
        }
    }
}
