//! Quotas shared by every Lambda, held in the job table so that every one sees the same:
//! - the slot a create takes for its request's life, as the source's rules name it
//!   ([`crate::domain::source::SourceRules::create_quota`]: AMC's running executions per instance);
//! - the SP-API usage plans, charged by the API clients before every HTTP attempt ([`TableQuota`]).

use std::time::Duration;

use chrono::Utc;

use crate::adapters::api::{Charge, Operation, SharedQuota};
use crate::domain::source::Quota;
use crate::ports::Quotas;
use crate::steps::{RunContext, StepError};

/// The SP-API usage plans as buckets in the job table, one per operation and credential set
/// (`QUOTA#sp.{operation}#{credentials}`), charged by the SP-API clients before every HTTP attempt
/// of every operation: many runs of one seller polling at once exceed even getReport's 2 rps (the
/// load benchmark showed it), so no plan is left to chance.
pub(crate) struct TableQuota<St> {
    store: St,
    credentials: String,
}

impl<St> TableQuota<St> {
    pub(crate) fn new(store: St, credentials: &str) -> Self {
        Self {
            store,
            credentials: credentials.to_owned(),
        }
    }

    /// The bucket of `op` for these credentials.
    pub(crate) fn bucket(op: &Operation, credentials: &str) -> String {
        format!("sp.{}#{credentials}", op.name)
    }
}

/// The burst the job table allows of a plan: a fifth of Amazon's (at least one token) is kept in
/// reserve. Amazon counts a request when it arrives, the table when it is charged, and requests charged
/// in one order may arrive closer together than they were charged; the reserve absorbs that jitter
/// (three getReport requests, half a second apart, for a burst of 15), so that the plan itself is never
/// reached (the load benchmark had Amazon refuse requests charged at exactly its burst).
pub(crate) fn held_burst(burst: u32) -> u32 {
    burst.saturating_sub((burst / 5).max(1)).max(1)
}

impl<St: Quotas + Send + Sync> SharedQuota for TableQuota<St> {
    fn charge<'a>(
        &'a self,
        op: &'a Operation,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Charge, String>> + Send + 'a>> {
        Box::pin(async move {
            let name = Self::bucket(op, &self.credentials);
            match self
                .store
                .take_token(&name, op.rate, held_burst(op.burst), Utc::now())
                .await
            {
                Ok(None) => Ok(Charge::Granted),
                Ok(Some(wait)) => {
                    tracing::info!(quota = %name, wait_s = wait.as_secs(), "the shared usage plan is spent");
                    Ok(Charge::Wait(wait))
                }
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

fn quota_of(ctx: &RunContext) -> Option<Quota> {
    ctx.job.source.rules().create_quota(&ctx.job.credentials)
}

/// Takes the job's shared quota for one create; `Some(wait)` when there is none left.
pub(crate) async fn take_quota<St: Quotas>(store: &St, ctx: &RunContext) -> Result<Option<Duration>, StepError> {
    match quota_of(ctx) {
        None => Ok(None),
        Some(Quota::Slot { name, max, lease, wait }) => {
            let got = store
                .acquire_slot(&name, &ctx.key.run_id(), max, Utc::now(), lease)
                .await?;
            Ok((!got).then_some(wait))
        }
    }
}

/// Renews the lease of the run's slot while its Amazon request runs (a no-op for sources without one).
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

/// Gives back the run's slot when its Amazon request has ended (a no-op for sources without one).
pub(crate) async fn release_quota<St: Quotas>(store: &St, ctx: &RunContext) {
    if let Some(Quota::Slot { name, .. }) = quota_of(ctx)
        && let Err(e) = store.release_slot(&name, &ctx.key.run_id()).await
    {
        tracing::warn!(error = %e, quota = %name, "could not release a quota slot");
    }
}

#[cfg(test)]
mod tests {
    use super::held_burst;

    #[test]
    fn the_table_keeps_a_fifth_of_each_burst_in_reserve() {
        assert_eq!(held_burst(15), 12);
        assert_eq!(held_burst(10), 8);
        assert_eq!(held_burst(2), 1);
        assert_eq!(held_burst(1), 1);
    }
}
