//! poll-status: one status check of the run's Amazon request. Never waits: the state machine does.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::domain::day_state::Cause;
use crate::domain::run::{RunStatus, RunUpdate};
use crate::ports::{JobStore, RequestStatus};
use crate::steps::days::record_attempt;
use crate::steps::failure::{
    EXECUTION_STATUS_CHANGE, fail_run, fail_run_with_status, note_refusal, record_abandoned, record_failure,
    within_step_bound,
};
use crate::steps::quota::{release_quota, renew_quota};
use crate::steps::{Ports, RunContext, RunRef, Services, StepError};

/// Where the request is, for the state machine's Choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PollState {
    /// Not done: wait `waitSeconds`, then poll again.
    InProgress,
    /// Done: download.
    Ready,
    /// Done without data: end cleanly.
    NoData,
}

/// What poll-status returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollOutput {
    /// Where the request is.
    pub state: PollState,
    /// The run.
    #[serde(flatten)]
    pub run: RunRef,
    /// Amazon's own status word (`IN_QUEUE`, `PENDING`, `RUNNING`, …), when it gave one.
    pub amazon_status: Option<String>,
    /// Status checks so far.
    pub polls: u32,
    /// Seconds to wait before the next check (0 unless `IN_PROGRESS`).
    pub wait_seconds: u64,
}

/// The poll-status function's entry: one status check ([`poll_status`]); when the event carries the
/// `failure` the state machine caught on any step of the run, that failure recorded on the run
/// ([`record_failure`]); when it is EventBridge's news of an execution that timed out, was aborted or
/// failed, the runs it left unfinished ended ([`record_abandoned`]).
pub async fn poll_status_or_record_failure<P: Ports>(
    services: &Services<P>,
    event: serde_json::Value,
) -> Result<serde_json::Value, StepError> {
    // Each branch is boxed: their futures side by side are deep enough to overflow rustc's query
    // depth when the function's future is laid out in a release build.
    let output = if event.get("failure").is_some() {
        serde_json::to_value(Box::pin(record_failure(services, event)).await?)
    } else if event["detail-type"] == EXECUTION_STATUS_CHANGE {
        serde_json::to_value(Box::pin(record_abandoned(services, event)).await?)
    } else {
        serde_json::to_value(Box::pin(poll_status(services, event)).await?)
    };
    output.map_err(|e| StepError::Transient(format!("the output could not be written: {e}")))
}

/// Checks the run's request once and records what Amazon said.
///
/// `FAILED`/`FATAL` at Amazon, or a request still running after the job's `maxPolls` or too late in
/// its execution to be checked again and downloaded ([`RunContext::execution_deadline`]), fail the run
/// with the reason stored on it and return `SourceFailed` carrying that reason. A run whose request is not
/// recorded yet is `NotReady`.
pub async fn poll_status<P: Ports>(services: &Services<P>, event: serde_json::Value) -> Result<PollOutput, StepError> {
    let ctx = RunContext::from_event(event)?;
    let span = tracing::info_span!("poll-status", job = %ctx.job.name, run_id = %ctx.key.run_id());
    async {
        let result = Box::pin(poll(services, &ctx)).await;
        within_step_bound(&services.store, &ctx, "poll-status", result, |out| {
            (out.state == PollState::InProgress).then(|| {
                format!(
                    "Amazon's status {} after {} checks",
                    out.amazon_status.as_deref().unwrap_or("unknown"),
                    out.polls
                )
            })
        })
        .await
    }
    .instrument(span)
    .await
}

async fn poll<P: Ports>(services: &Services<P>, ctx: &RunContext) -> Result<PollOutput, StepError> {
    let store = &services.store;
    let run = store
        .run(&ctx.key)
        .await?
        .ok_or_else(|| StepError::NotReady("the run has not been created yet (create-request comes first)".into()))?;
    let done = |state, run: &crate::domain::run::RunRecord| PollOutput {
        state,
        run: RunRef::from(run),
        amazon_status: run.amazon_status.clone(),
        polls: run.polls,
        wait_seconds: 0,
    };
    let request_id = match (run.status, &run.request_id) {
        (RunStatus::Requested, Some(id)) => id.clone(),
        (RunStatus::Ready | RunStatus::Succeeded, _) => return Ok(done(PollState::Ready, &run)),
        (RunStatus::NoData, _) => return Ok(done(PollState::NoData, &run)),
        (RunStatus::Failed, _) => {
            return Err(StepError::SourceFailed(
                run.failure_reason.unwrap_or_else(|| "the run failed".into()),
            ));
        }
        (status, _) => {
            return Err(StepError::NotReady(format!(
                "the run is {status}: its Amazon request is not recorded yet"
            )));
        }
    };
    let session = services.session(&ctx.job).await?;
    let source = services.bind(&ctx.job, &session).await?;
    let status = match source.status(&request_id).await {
        Ok(status) => status,
        Err(e) => return Err(note_refusal(services, &ctx.job.credentials, e.into()).await),
    };
    services.persist_session(&session).await?;
    let now = Utc::now();
    match status {
        RequestStatus::InProgress { state } => {
            let polls = store.record_poll(&ctx.key, run.polls, &state, now).await?;
            renew_quota(store, ctx).await;
            if polls >= ctx.job.limits.max_polls {
                let error = StepError::SourceFailed(format!(
                    "the request {request_id} was still {state} after {polls} status checks (limits.maxPolls)"
                ));
                return Err(fail_run(store, ctx, error).await);
            }
            let wait = ctx.poll_wait(polls, services.settings.max_wait);
            if let Some(deadline) = ctx.execution_deadline(services.settings.execution_timeout) {
                let next_check = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                if next_check > deadline {
                    let error = StepError::SourceFailed(format!(
                        "the request {request_id} was still {state} after {polls} status checks, and its execution \
                         has no time left for another check and the download (it must be done by {deadline}; \
                         ExecutionTimeoutSeconds)"
                    ));
                    return Err(fail_run(store, ctx, error).await);
                }
            }
            tracing::info!(request_id = %request_id, amazon_status = %state, polls, wait_seconds = wait.as_secs(), "not ready yet");
            Ok(PollOutput {
                state: PollState::InProgress,
                run: RunRef {
                    status: RunStatus::Requested,
                    ..RunRef::from(&run)
                },
                amazon_status: Some(state),
                polls,
                wait_seconds: wait.as_secs(),
            })
        }
        RequestStatus::Ready => {
            let update = RunUpdate {
                amazon_status: Some("DONE".into()),
                ..RunUpdate::default()
            };
            let run = store
                .transition(&ctx.key, &[RunStatus::Requested], RunStatus::Ready, update, now)
                .await?;
            release_quota(store, ctx).await;
            tracing::info!(request_id = %request_id, polls = run.polls, "ready to download");
            Ok(done(PollState::Ready, &run))
        }
        RequestStatus::NoData { reason } => {
            let update = RunUpdate {
                failure_reason: Some(reason.clone()),
                amazon_status: Some("NO_DATA".into()),
                ..RunUpdate::default()
            };
            let run = store
                .transition(&ctx.key, &[RunStatus::Requested], RunStatus::NoData, update, now)
                .await?;
            record_attempt(store, ctx, &run, Cause::NoData, &reason).await;
            release_quota(store, ctx).await;
            tracing::info!(request_id = %request_id, reason = %reason, "finished without data");
            Ok(done(PollState::NoData, &run))
        }
        RequestStatus::Failed { state, reason } => Err(fail_run_with_status(
            store,
            ctx,
            StepError::SourceFailed(format!("Amazon failed request {request_id}: {reason}")),
            Some(state),
        )
        .await),
    }
}
