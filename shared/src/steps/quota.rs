//! The shared quota a create takes, as the source's rules name it
//! ([`crate::domain::source::SourceRules::create_quota`]): a token of a bucket (SP-API per seller) or a
//! slot of a counter (AMC per instance), held in the job table so that every Lambda sees the same one.

use std::time::Duration;

use chrono::Utc;

use crate::domain::source::Quota;
use crate::ports::Quotas;
use crate::steps::{RunContext, StepError};

fn quota_of(ctx: &RunContext) -> Option<Quota> {
    ctx.job.source.rules().create_quota(&ctx.job.credentials)
}

/// Takes the job's shared quota for one create; `Some(wait)` when there is none left.
pub(crate) async fn take_quota<St: Quotas>(store: &St, ctx: &RunContext) -> Result<Option<Duration>, StepError> {
    match quota_of(ctx) {
        None => Ok(None),
        Some(Quota::Bucket { name, rate, burst }) => Ok(store.take_token(&name, rate, burst, Utc::now()).await?),
        Some(Quota::Slot { name, max, lease, wait }) => {
            let got = store
                .acquire_slot(&name, &ctx.key.run_id(), max, Utc::now(), lease)
                .await?;
            Ok((!got).then_some(wait))
        }
    }
}

/// Renews the lease of the run's slot while its Amazon request runs (a no-op for bucket quotas).
pub(crate) async fn renew_quota<St: Quotas>(store: &St, ctx: &RunContext) {
    if let Some(Quota::Slot { name, max, lease, .. }) = quota_of(ctx) {
        match store
            .acquire_slot(&name, &ctx.key.run_id(), max, Utc::now(), lease)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(quota = %name, "the run's slot lease had run out and the slots are full"),
            Err(e) => tracing::warn!(error = %e, quota = %name, "could not renew a quota slot"),
        }
    }
}

/// Gives back the run's slot when its Amazon request has ended (a no-op for bucket quotas).
pub(crate) async fn release_quota<St: Quotas>(store: &St, ctx: &RunContext) {
    if let Some(Quota::Slot { name, .. }) = quota_of(ctx)
        && let Err(e) = store.release_slot(&name, &ctx.key.run_id()).await
    {
        tracing::warn!(error = %e, quota = %name, "could not release a quota slot");
    }
}
