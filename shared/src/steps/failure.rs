//! How a step ends a run that failed: the reason recorded on the run, its quota given back, and a
//! session whose credentials were refused forgotten.

use chrono::Utc;

use crate::domain::run::{RunStatus, RunUpdate};
use crate::ports::{JobStore, Quotas};
use crate::steps::quota::release_quota;
use crate::steps::{Ports, RunContext, Services, StepError};

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
        Ok(_) => tracing::warn!(error_type = error.error_type(), error = %error, "run failed"),
        Err(e) => tracing::error!(error = %e, "could not record the failure on the run"),
    }
    release_quota(store, ctx).await;
    error
}

/// Forgets the session when its credentials were refused, then passes the error on.
pub(crate) async fn note_refusal<P: Ports>(services: &Services<P>, secret_id: &str, error: StepError) -> StepError {
    if matches!(error, StepError::CredentialsRefused(_)) {
        services.sessions.forget(secret_id).await;
    }
    error
}
