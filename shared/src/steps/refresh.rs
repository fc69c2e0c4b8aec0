//! refresh-token: makes sure the job's credentials give a valid access token, before any Amazon call.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::domain::TimeWindow;
use crate::ports::JobStore;
use crate::steps::failure::note_refusal;
use crate::steps::{Ports, RunContext, Services, StepError};

/// What refresh-token returns: a reference to the credentials and when the token expires (never the
/// token), and the slices of the run's window for the state machine to fan out over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenOutput {
    /// The secret id of the credential set.
    pub credentials: String,
    /// When the cached access token expires.
    pub expires_at: DateTime<Utc>,
    /// The slice indexes of the run's window (`[0]` for a window the source takes in one request).
    pub slices: Vec<usize>,
    /// The slices' windows.
    pub windows: Vec<TimeWindow>,
}

/// Gets (or reuses) an access token for the job's credentials and shares it with the other functions.
/// Errors: `InvalidJob` (bad event, missing or malformed secret), `CredentialsRefused`, `Transient`.
pub async fn refresh_token<P: Ports>(
    services: &Services<P>,
    event: serde_json::Value,
) -> Result<TokenOutput, StepError> {
    let ctx = match RunContext::from_event(event.clone()) {
        Ok(ctx) => ctx,
        Err(error) => return Err(record_refusal(services, &event, error).await),
    };
    // A window the job cannot have at this scheduled time (an AMC window ending within 48 hours of
    // it) is a refusal of the job too, and recorded as one.
    let windows = match ctx.job.windows(ctx.scheduled) {
        Ok(windows) => windows,
        Err(error) => return Err(record_refusal(services, &event, error.into()).await),
    };
    let span = tracing::info_span!("refresh-token", job = %ctx.job.name);
    // Boxed: unboxed, the layout of the Lambda binary's handler future (this future, nested in the
    // runtime's) passes rustc's default query depth.
    Box::pin(refresh(services, &ctx, windows).instrument(span)).await
}

/// Records a job refused as invalid where `amzpipectl status` shows it (best effort: the refusal is
/// the step's answer whatever the store says), and passes the error on.
async fn record_refusal<P: Ports>(services: &Services<P>, event: &serde_json::Value, error: StepError) -> StepError {
    if let StepError::InvalidJob(reason) = &error {
        let refused = crate::domain::run::RefusedJob::of_event(event, reason.clone(), Utc::now());
        tracing::warn!(job = %refused.job, %reason, "the job was refused");
        if let Err(e) = services.store.record_refused_job(&refused).await {
            tracing::error!(error = %e, "the refused job could not be recorded");
        }
    }
    error
}

async fn refresh<P: Ports>(
    services: &Services<P>,
    ctx: &RunContext,
    windows: Vec<TimeWindow>,
) -> Result<TokenOutput, StepError> {
    let session = services.session(&ctx.job).await?;
    let token = match session.lwa.access_token().await {
        Ok(token) => token,
        Err(e) => return Err(note_refusal(services, &ctx.job.credentials, e.into()).await),
    };
    services.persist_session(&session).await?;
    tracing::info!(expires_at = %token.expires_at, slices = windows.len(), "access token ready");
    Ok(TokenOutput {
        credentials: ctx.job.credentials.clone(),
        expires_at: token.expires_at,
        slices: (0..windows.len()).collect(),
        windows,
    })
}
