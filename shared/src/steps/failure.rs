//! How a run that failed ends: the reason recorded on the run, its quota given back, and a session
//! whose credentials were refused forgotten — by the step that failed, or, when the state machine gave
//! the step up (its retries ran out, it timed out), by [`record_failure`].

use std::collections::BTreeSet;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::domain::day_state::Cause;
use crate::domain::run::{RunRecord, RunStatus, RunUpdate};
use crate::ports::{JobStore, ObjectSink, Quotas};
use crate::steps::current::current_keys;
use crate::steps::days::record_attempt;
use crate::steps::quota::release_quota;
use crate::steps::{Ports, RunContext, RunRef, Services, StepError};
use crate::transfer::MANIFEST_FILE_NAME;

/// The longest failure reason stored on a run.
const MAX_REASON_CHARS: usize = 2_000;

/// The failure the state machine caught, as its `Catch` hands it over (`{"Error": …, "Cause": …}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CaughtError {
    /// The error name: a step's `errorType` (`Transient`, `SourceFailed`…) or a `States.*` error.
    #[serde(rename = "Error", default)]
    pub error: String,
    /// The cause: a Lambda error's JSON (`{"errorType":…,"errorMessage":…}`), or plain text.
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl CaughtError {
    /// What a person reads: `Error: message`, the message taken out of a Lambda error's JSON.
    pub fn reason(&self) -> String {
        let message = serde_json::from_str::<serde_json::Value>(&self.cause)
            .ok()
            .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| self.cause.trim().to_owned());
        let error = if self.error.is_empty() { "Failed" } else { &self.error };
        let mut reason = if message.is_empty() {
            error.to_owned()
        } else {
            format!("{error}: {message}")
        };
        if let Some((at, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
            reason.truncate(at);
        }
        reason
    }
}

/// What recording a caught failure did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureOutput {
    /// The run, when there is one (a step can fail before claiming it).
    #[serde(flatten)]
    pub run: Option<RunRef>,
    /// The reason the run now carries.
    pub failure_reason: Option<String>,
}

/// Ends the run of `event` (a step's event with the caught error as `failure`) as `FAILED` with a
/// readable reason, unless it has already ended (the step that failed may have recorded a more
/// precise reason), and gives back its quota (an AMC running slot). Called by the state machine's
/// failure path for every failure it catches, so that no run stays `CLAIMED` or `REQUESTED` and no
/// slot stays held. A job too broken to name its run has nothing to record.
pub async fn record_failure<P: Ports>(
    services: &Services<P>,
    mut event: serde_json::Value,
) -> Result<FailureOutput, StepError> {
    let caught: CaughtError = event
        .as_object_mut()
        .and_then(|o| o.remove("failure"))
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| StepError::InvalidJob(format!("failure: {e}")))?
        .unwrap_or_default();
    let Ok(ctx) = RunContext::from_event(event) else {
        tracing::warn!(error = %caught.error, "the failed job names no run; nothing to record");
        return Ok(FailureOutput {
            run: None,
            failure_reason: None,
        });
    };
    let span = tracing::info_span!("record-failure", job = %ctx.job.name, run_id = %ctx.key.run_id());
    async {
        // A run another execution holds a live lease on is that execution's to end: this one (whose
        // step was refused as NotReady, for example) ends without failing it or clearing what it stored.
        let now = Utc::now();
        let ours = |run: &RunRecord| run.lease.as_ref().is_none_or(|l| l.admits(&ctx.owner, now));
        let (run, _) = give_up(services, &ctx, &caught.error, &caught.reason(), ours).await?;
        let failure_reason = match &run {
            Some(r) if !ours(r) => {
                let holder = r.lease.as_ref().map_or("", |l| l.owner.as_str());
                tracing::warn!(%holder, error = %caught.error, "the run is held by another execution; left to it");
                Some(format!(
                    "{}; the run is left to the execution {holder}, which holds it",
                    caught.reason()
                ))
            }
            Some(r) => r.failure_reason.clone(),
            None => None,
        };
        Ok(FailureOutput {
            failure_reason,
            run: run.as_ref().map(RunRef::from),
        })
    }
    .instrument(span)
    .await
}

/// Ends the run of `ctx` as `FAILED` with `reason` if it is unfinished, gives back its quota, and
/// deletes what a failed run stored — unless `ours` says the run belongs to another execution, which
/// is then left alone. Returns the run as it now is, and whether this call ended it.
async fn give_up<P: Ports>(
    services: &Services<P>,
    ctx: &RunContext,
    error: &str,
    reason: &str,
    ours: impl Fn(&RunRecord) -> bool,
) -> Result<(Option<RunRecord>, bool), StepError> {
    let store = &services.store;
    let from = [RunStatus::Claimed, RunStatus::Requested, RunStatus::Ready];
    let update = RunUpdate {
        failure_reason: Some(reason.to_owned()),
        ..RunUpdate::default()
    };
    let (run, ended) = match store.run(&ctx.key).await? {
        Some(run) if !ours(&run) => return Ok((Some(run), false)),
        Some(run) if from.contains(&run.status) => {
            tracing::warn!(%reason, "the state machine gave the run up");
            let run = store
                .transition(&ctx.key, &from, RunStatus::Failed, update, Utc::now())
                .await?;
            crate::steps::metrics::run_failed(ctx.job.source.kind(), &ctx.key.job, "GivenUp");
            let cause = Cause::of_failure(error, run.amazon_status.as_deref());
            record_attempt(store, ctx, &run, cause, reason).await;
            (Some(run), true)
        }
        other => (other, false),
    };
    release_quota(store, ctx).await;
    if run.as_ref().is_some_and(|r| r.status == RunStatus::Failed) {
        clear_run_objects(services, ctx, &BTreeSet::new()).await?;
    }
    Ok((run, ended))
}

/// The largest jobs file read back for an execution that ended badly.
const MAX_JOBS_FILE_BYTES: usize = 64 << 20;

/// The `detail-type` of the EventBridge events Step Functions sends when an execution's status
/// changes.
pub const EXECUTION_STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// What recording an execution that ended badly did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AbandonedOutput {
    /// The execution.
    pub execution: String,
    /// The runs it left unfinished, now `FAILED`.
    pub failed_runs: Vec<String>,
}

/// Ends the runs an execution left unfinished when it timed out, was aborted or failed, from the
/// EventBridge event Step Functions sends ([`EXECUTION_STATUS_CHANGE`]): for each job and slice of its
/// input (inline, or its jobs file in the output bucket), a run still unfinished whose create or download lease this execution took is ended `FAILED`
/// with the reason, its quota (an AMC running slot) given back and what it stored deleted, as
/// [`record_failure`] does. Runs another execution holds are left to it. Events of other statuses,
/// and of an execution whose input the event leaves out (over EventBridge's 248 KB), change nothing.
pub async fn record_abandoned<P: Ports>(
    services: &Services<P>,
    event: serde_json::Value,
) -> Result<AbandonedOutput, StepError> {
    let detail = &event["detail"];
    let execution = detail["name"].as_str().unwrap_or_default().to_owned();
    let mut out = AbandonedOutput {
        execution: execution.clone(),
        failed_runs: Vec::new(),
    };
    let (error, reason) = match detail["status"].as_str() {
        Some("TIMED_OUT") => (
            "States.Timeout",
            format!("States.Timeout: the execution {execution} timed out (ExecutionTimeoutSeconds)"),
        ),
        Some("ABORTED") => ("Aborted", format!("Aborted: the execution {execution} was stopped")),
        Some("FAILED") => {
            let error = detail["error"].as_str().unwrap_or("Failed");
            (
                error,
                format!(
                    "{error}: the execution {execution} failed: {}",
                    detail["cause"].as_str().unwrap_or_default()
                ),
            )
        }
        _ => return Ok(out),
    };
    let Some(input) = detail["input"]
        .as_str()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
    else {
        tracing::warn!(%execution, "the event leaves the execution's input out; its runs are left to their next claim");
        return Ok(out);
    };
    let scheduled = &input["scheduledTime"];
    let jobs = match (&input["jobs"], &input["jobsFile"]) {
        (serde_json::Value::Array(jobs), _) => jobs.clone(),
        (_, file) if file["bucket"].as_str() == Some(services.settings.bucket.as_str()) => {
            let key = file["key"].as_str().unwrap_or_default();
            let bytes = services.sink.read_small(key, MAX_JOBS_FILE_BYTES).await?;
            serde_json::from_slice(&bytes)
                .map_err(|e| StepError::InvalidJob(format!("jobsFile s3://{}/{key}: {e}", services.settings.bucket)))?
        }
        _ => {
            tracing::warn!(%execution, "the execution's jobs are not in its input nor in the output bucket; its runs are left to their next claim");
            return Ok(out);
        }
    };
    for job in &jobs {
        let Ok(first) = RunContext::from_event(serde_json::json!({ "job": job, "scheduledTime": scheduled })) else {
            continue;
        };
        let slices = first.job.windows(first.scheduled).map_or(0, |w| w.len());
        for slice in 0..slices {
            let event = serde_json::json!({
                "job": job, "scheduledTime": scheduled, "slice": slice, "owner": execution,
            });
            let Ok(ctx) = RunContext::from_event(event) else {
                continue;
            };
            let span = tracing::info_span!("record-abandoned", job = %ctx.job.name, run_id = %ctx.key.run_id());
            let (run, ended) = give_up(services, &ctx, error, &reason, |run| run.owners.contains(&execution))
                .instrument(span)
                .await?;
            if let Some(run) = run.filter(|_| ended) {
                out.failed_runs.push(run.run_id);
            }
        }
    }
    Ok(out)
}

/// Deletes what a run stored under its prefix (documents of a run that then failed, or of an earlier
/// claim of it), so that a run is visible complete with its manifest or not at all — except the
/// objects a current pointer names, and then the manifest that lists them: a run that made itself
/// current before failing (its last transition was lost) keeps them until a later claim of it (or a
/// later run) has re-pointed those days, or the days would read nothing.
///
/// `also_keep` are further keys to keep (the objects of the claim that just succeeded, when it sweeps
/// away an earlier claim's).
pub(crate) async fn clear_run_objects<P: Ports>(
    services: &Services<P>,
    ctx: &RunContext,
    also_keep: &BTreeSet<String>,
) -> Result<(), StepError> {
    let mut keep = current_keys(services, ctx).await?;
    if !keep.is_empty() {
        tracing::info!(
            objects = keep.len(),
            "objects under the run kept: current pointers name them"
        );
    }
    keep.extend(also_keep.iter().cloned());
    let prefix = ctx.run_prefix();
    if !keep.is_empty() {
        keep.insert(format!("{prefix}/{MANIFEST_FILE_NAME}"));
    }
    let deleted = services.sink.delete_under(&format!("{prefix}/"), &keep).await?;
    if deleted > 0 {
        tracing::info!(objects = deleted, "deleted what the run had stored without finishing");
    }
    Ok(())
}

/// Keeps a run's wait loops bounded where no retry can reset the bound: when `result` means the loop
/// goes on (`goes_on` names the answer it goes on with, or the error is one the state machine retries),
/// the call is counted on the run, and at the job's `limits.maxStepCalls` the run ends `FAILED` with
/// that answer (`SourceFailed`) instead. A count the store could not make leaves `result` as it is
/// (the state machine's retries still end).
pub(crate) async fn within_step_bound<St: JobStore + Quotas, T>(
    store: &St,
    ctx: &RunContext,
    step: &str,
    result: Result<T, StepError>,
    goes_on: impl FnOnce(&T) -> Option<String>,
) -> Result<T, StepError> {
    if let Err(StepError::Throttled { .. }) = &result {
        crate::steps::metrics::throttled(ctx.job.source.kind(), &ctx.job.name, step);
    }
    let answer = match &result {
        Ok(out) => goes_on(out),
        Err(e) if e.is_retryable() => Some(format!("{}: {e}", e.error_type())),
        Err(_) => None,
    };
    let Some(answer) = answer else {
        return result;
    };
    let limit = ctx.job.limits.max_step_calls;
    match store.count_step_call(&ctx.key, Utc::now()).await {
        Ok(calls) if calls >= limit => {
            let error = StepError::SourceFailed(format!(
                "{step} gave up: the run's steps were called {calls} times without it finishing \
                 (limits.maxStepCalls, which keeps its execution within Step Functions' history quota); \
                 the last answer: {answer}"
            ));
            Err(fail_run(store, ctx, error).await)
        }
        Ok(_) => result,
        Err(e) => {
            tracing::warn!(error = %e, "the step call could not be counted on the run");
            result
        }
    }
}

/// Records a failure on the run (from any unfinished status) and releases its quota; the error is
/// returned for the state machine.
pub(crate) async fn fail_run<St: JobStore + Quotas>(store: &St, ctx: &RunContext, error: StepError) -> StepError {
    fail_run_with_status(store, ctx, error, None).await
}

/// [`fail_run`], also recording Amazon's final status word on the run (`FATAL`, `FAILED`…), so that
/// the run never shows the last in-progress status it was polled in.
pub(crate) async fn fail_run_with_status<St: JobStore + Quotas>(
    store: &St,
    ctx: &RunContext,
    error: StepError,
    amazon_status: Option<String>,
) -> StepError {
    let update = RunUpdate {
        failure_reason: Some(format!("{}: {error}", error.error_type())),
        amazon_status,
        ..RunUpdate::default()
    };
    let from = [RunStatus::Claimed, RunStatus::Requested, RunStatus::Ready];
    match store
        .transition(&ctx.key, &from, RunStatus::Failed, update, Utc::now())
        .await
    {
        Ok(run) => {
            tracing::warn!(error_type = error.error_type(), error = %error, "run failed");
            crate::steps::metrics::run_failed(ctx.job.source.kind(), &ctx.key.job, error.error_type());
            let cause = Cause::of_failure(error.error_type(), run.amazon_status.as_deref());
            let reason = run.failure_reason.as_deref().unwrap_or_default();
            record_attempt(store, ctx, &run, cause, reason).await;
        }
        Err(e) => tracing::error!(error = %e, "could not record the failure on the run"),
    }
    release_quota(store, ctx).await;
    error
}

/// Forgets the session when its credentials were refused, then passes the error on — as `AuthExpired`,
/// which the state machine retries, when the secret has changed since the session read it (a rotated
/// client secret: the retry reads the new one; see [`crate::steps::Sessions::forget_refused`]).
pub(crate) async fn note_refusal<P: Ports>(services: &Services<P>, secret_id: &str, error: StepError) -> StepError {
    match error {
        StepError::CredentialsRefused(refusal) if services.sessions.forget_refused(secret_id).await => {
            tracing::warn!(secret = %secret_id, "credentials refused, and their secret has changed since they were read: retrying with the new version");
            StepError::AuthExpired(format!(
                "{refusal}; the secret {secret_id:?} has a newer version than the one used, so the step is retried with it"
            ))
        }
        error => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_errors_json_cause_becomes_its_message_and_plain_causes_stay_as_they_are() {
        let lambda = CaughtError {
            error: "Transient".into(),
            cause: r#"{"errorType":"Transient","errorMessage":"createReport failed transiently: HTTP 503"}"#.into(),
        };
        assert_eq!(lambda.reason(), "Transient: createReport failed transiently: HTTP 503");
        let timeout = CaughtError {
            error: "States.Timeout".into(),
            cause: String::new(),
        };
        assert_eq!(timeout.reason(), "States.Timeout");
        let long = CaughtError {
            error: "SourceFailed".into(),
            cause: "x".repeat(5_000),
        };
        assert_eq!(long.reason().chars().count(), MAX_REASON_CHARS);
    }
}
