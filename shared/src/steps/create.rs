//! create-request: claims the run and creates its Amazon request exactly once.

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::domain::run::RunStatus;
use crate::ports::{JobStore, SourceError, StoreError};
use crate::steps::failure::{fail_run, note_refusal, within_step_bound};
use crate::steps::quota::take_quota;
use crate::steps::{Ports, RunContext, RunRef, Services, StepError};

/// How far back before a previous attempt's start a search for its request looks (clock skew).
const FIND_SLACK: chrono::Duration = chrono::Duration::seconds(120);

/// How long an execution holds a run's create lease: above create-request's Lambda timeout, so a
/// live holder never loses it; a dead one's runs out and another execution takes over.
const CREATE_LEASE: chrono::Duration = chrono::Duration::minutes(15);

/// What create-request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CreateOutcome {
    /// A new Amazon request was created and recorded.
    Created,
    /// An earlier, interrupted attempt had created the request; it was found and recorded.
    Found,
    /// The run already had its request (a duplicate schedule fire, a retried step): continue polling.
    Existing,
    /// No capacity (a shared quota, or Amazon's throttling): wait `waitSeconds` and call again.
    Throttled,
    /// The run has already ended (`SUCCEEDED` or `NO_DATA`): nothing to do.
    Done,
}

/// What create-request returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOutput {
    /// What happened.
    pub outcome: CreateOutcome,
    /// The run.
    #[serde(flatten)]
    pub run: RunRef,
    /// The Amazon request id, once there is one.
    pub request_id: Option<String>,
    /// Seconds to wait before the next step (the first status check, or the next create attempt).
    pub wait_seconds: u64,
}

/// Claims the run for the event's job and window and makes sure its Amazon request exists, once.
///
/// A duplicate fire or a retry finds the existing run and continues it; a retry after a crash between
/// "created at Amazon" and "recorded" looks for the request the crashed attempt made before creating
/// one. Errors: `InvalidJob`, `CredentialsRefused` and the source's own refusals (recorded on the run
/// as `FAILED`), `Transient`, `AuthExpired`.
pub async fn create_request<P: Ports>(
    services: &Services<P>,
    event: serde_json::Value,
) -> Result<CreateOutput, StepError> {
    let ctx = RunContext::from_event(event)?;
    let span = tracing::info_span!("create-request", job = %ctx.job.name, run_id = %ctx.key.run_id());
    async {
        let result = Box::pin(create(services, &ctx)).await;
        within_step_bound(&services.store, &ctx, "create-request", result, |out| {
            (out.outcome == CreateOutcome::Throttled)
                .then(|| format!("no capacity to create the request (waiting {} s)", out.wait_seconds))
        })
        .await
    }
    .instrument(span)
    .await
}

async fn create<P: Ports>(services: &Services<P>, ctx: &RunContext) -> Result<CreateOutput, StepError> {
    let store = &services.store;
    let first_wait = ctx.poll_wait(0, services.settings.max_wait).as_secs();
    let output = |outcome, run: &crate::domain::run::RunRecord, wait_seconds| CreateOutput {
        outcome,
        run: RunRef::from(run),
        request_id: run.request_id.clone(),
        wait_seconds,
    };
    let run = store.claim_run(&ctx.key, ctx.job.source.kind(), Utc::now()).await?;
    match run.status {
        RunStatus::Claimed => {}
        RunStatus::Requested | RunStatus::Ready => {
            tracing::info!(request_id = ?run.request_id, status = %run.status, "the run already has its request; continuing it");
            return Ok(output(CreateOutcome::Existing, &run, first_wait));
        }
        RunStatus::Succeeded | RunStatus::NoData => {
            tracing::info!(status = %run.status, "the run has already ended; nothing to do");
            return Ok(output(CreateOutcome::Done, &run, 0));
        }
        RunStatus::Failed => {
            return Err(StepError::SourceFailed(
                run.failure_reason.unwrap_or_else(|| "the run failed".into()),
            ));
        }
    }
    if let Some(deadline) = ctx.execution_deadline(services.settings.execution_timeout)
        && Utc::now() > deadline
    {
        let error = StepError::SourceFailed(format!(
            "no request was made: the execution has no time left to finish the run (it must be done by \
             {deadline}; ExecutionTimeoutSeconds); a later execution of the window makes it"
        ));
        return Err(fail_run(store, ctx, error).await);
    }
    let throttled = |run, wait: Duration| {
        let wait = wait.min(services.settings.max_wait).as_secs().max(1);
        tracing::info!(wait_seconds = wait, "no capacity to create the request now");
        Ok(output(CreateOutcome::Throttled, run, wait))
    };
    if let Some(wait) = take_quota(store, ctx).await? {
        return throttled(&run, wait);
    }
    let session = services.session(&ctx.job).await?;
    let source = services.bind(&ctx.job, &session).await?;
    let previous_attempt = run.create_started_at;
    let now = Utc::now();
    let run = match store.begin_create(&ctx.key, &ctx.owner, now, now + CREATE_LEASE).await {
        Ok(run) => run,
        // Another execution is creating this run's request: wait for it, then continue its run.
        Err(StoreError::Held(by)) => {
            tracing::info!(%by, "another execution is creating this run's request; waiting");
            return throttled(&run, Duration::from_secs(30));
        }
        Err(e) => return Err(e.into()),
    };
    // Only an attempt whose outcome is unknown (it crashed, timed out, or met a 5xx after sending)
    // leaves `createStartedAt` behind: a refused one is forgotten below, so a 429 is simply retried.
    let found = match previous_attempt {
        Some(at) => {
            tracing::info!(since = %at, "an earlier attempt may have created the request; looking for it");
            match source.find_existing(&ctx.window, at - FIND_SLACK).await {
                Ok(found) => Ok(found),
                Err(SourceError::Throttled { retry_after }) => return throttled(&run, retry_after),
                Err(
                    e @ (SourceError::AuthExpired(_)
                    | SourceError::NotAuthorized(_)
                    | SourceError::CredentialsRefused(_)),
                ) => Err(e),
                // Whatever the search ran into (a 404, a 5xx), the earlier outcome is still unknown:
                // try again later, never give the run up for it.
                Err(e) => {
                    tracing::warn!(error = %e, "the search for an earlier attempt's request failed");
                    return Err(StepError::Transient(format!(
                        "could not look for the request an earlier attempt may have made: {e}"
                    )));
                }
            }
        }
        None => Ok(None),
    };
    let created = match found {
        Ok(Some(id)) => Ok((CreateOutcome::Found, id)),
        Ok(None) => source.create(&ctx.window).await.map(|id| (CreateOutcome::Created, id)),
        Err(e) => Err(e),
    };
    let (outcome, id) = match created {
        Ok(created) => created,
        Err(e) => {
            if refused_without_effect(&e) {
                store.abandon_create(&ctx.key, Utc::now()).await?;
            }
            if let SourceError::Throttled { retry_after } = e {
                return throttled(&run, retry_after);
            }
            let error = note_refusal(services, &ctx.job.credentials, e.into()).await;
            return Err(if error.is_retryable() {
                error
            } else {
                fail_run(store, ctx, error).await
            });
        }
    };
    // An id that cannot go in a URL fails the run now, naming its problem, before any call uses it.
    if let Err(problem) = crate::domain::encode_returned_id(&id) {
        return Err(fail_run(store, ctx, StepError::SourceFailed(problem)).await);
    }
    let run = store.record_request(&ctx.key, &id, Utc::now()).await?;
    services.persist_session(&session).await?;
    tracing::info!(request_id = %id, outcome = ?outcome, "request recorded");
    Ok(output(outcome, &run, first_wait))
}

/// Whether Amazon answered the create with a refusal, so that it created nothing: a 429 (or our own
/// quota), a 4xx, a refused token. A network failure, a timeout or a 5xx after sending may have
/// created the request (the client says so as a transient error): the next attempt searches first.
fn refused_without_effect(e: &SourceError) -> bool {
    matches!(
        e,
        SourceError::Throttled { .. }
            | SourceError::Invalid(_)
            | SourceError::NotFound(_)
            | SourceError::NotAuthorized(_)
            | SourceError::CredentialsRefused(_)
            | SourceError::AuthExpired(_)
    )
}
