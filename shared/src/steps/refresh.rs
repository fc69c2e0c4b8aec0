//! refresh-token: makes sure the job's credentials give a valid access token, before any Amazon call.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::domain::TimeWindow;
use crate::ports::{JobStore, ObjectSink, Quotas, SecretStore, TokenCache};
use crate::steps::{RunContext, Services, StepError, note_refusal};

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
pub async fn refresh_token<St, Se, Si>(
    services: &Services<St, Se, Si>,
    event: serde_json::Value,
) -> Result<TokenOutput, StepError>
where
    St: JobStore + Quotas + TokenCache,
    Se: SecretStore,
    Si: ObjectSink,
{
    let ctx = RunContext::from_event(event)?;
    let span = tracing::info_span!("refresh-token", job = %ctx.job.name);
    async {
        let windows = ctx.job.windows(ctx.scheduled)?;
        let session = services.session(&ctx.job.credentials).await?;
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
    .instrument(span)
    .await
}
