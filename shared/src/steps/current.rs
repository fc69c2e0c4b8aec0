//! One truth per data day: which run's rows a table returns.
//!
//! **The rule.** For every table, account and data day, exactly one run's rows are current: the run
//! that succeeded and covered the day whose Amazon request was made **last** (the freshest data;
//! the greater run id on a tie). A lookback that asks for a day again, a backfill over days the
//! schedule covered, or a re-run of a window therefore replaces that day's rows, never adds to
//! them, and a backfill that ends after a fresher scheduled run does not take its place. Every run's
//! objects stay where they were stored (the `{table}_history` table reads them all); a run that fails
//! or finds no data never changes what is current.
//!
//! **The unit.** A report split by day (see [`crate::transfer::split`]) is current per day: a run
//! covers each day its window holds whole, so a day of its window it holds no rows for becomes
//! empty. A report whose source has no day column (AMC results, aggregates of their window; an SP-API
//! report type without one) is current per window, keyed by the window's first day: a re-run of the
//! same window replaces it. A report of a source split by day but kept compressed (stored whole) is
//! current only when its window is one whole day, which is then its unit.
//!
//! A run whose rows cannot be made current without reading a day twice or hiding part of one is
//! left in `{table}_history` only, with a warning: a window shorter than a day (`previousHour`), or
//! not on day boundaries; a kept report of a split source over several days; rows of a day its window
//! holds only in part.
//!
//! **The pointer.** Each unit has one object, `{prefix}/_current/source=…/account=…/report=…/dt={day}/symlink.txt`,
//! listing the `s3://` paths of the current run's objects for that day, one per line: the partition of
//! the table's current view (a `SymlinkTextInputFormat` table, see [`crate::steps::catalog`]). It is
//! written after the run's objects and manifest, in one PUT, so a reader sees the old run's objects or
//! the new one's, never a mix or a half-written run.
//!
//! **Races.** DynamoDB decides the winner, with a conditional write on the request time
//! ([`crate::ports::JobStore::claim_current`]). Whatever it decides, the run then writes the winner's
//! paths to the pointer and reads the winner again: if another run won meanwhile (whose pointer this
//! write may have overwritten), it writes again, until the pointer holds the winner it read last.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use crate::domain::document::{DocumentRecord, StoredObject};
use crate::domain::finality::FinalityPolicy;
use crate::domain::run::RunRecord;
use crate::ports::{CurrentClaim, CurrentUnit, JobStore, ObjectSink, PullFacts};
use crate::steps::{Ports, RunContext, Services, StepError};

/// The pointer's file name in each unit's folder.
pub const SYMLINK_FILE: &str = "symlink.txt";

/// Writes of one pointer before giving up to a retry, should the winner keep changing.
const ATTEMPTS: usize = 5;

/// Makes the run current for every unit it covers where no later request is (see the module docs);
/// returns the units it is current for. Nothing for a source whose table does not show current rows
/// ([`RunContext::shows_current_rows`]) or a run that stored no object.
/// Errors: `Transient` (the store or the bucket was unavailable, or the winner kept changing),
/// `Misconfigured`.
pub async fn make_current<P: Ports>(
    services: &Services<P>,
    ctx: &RunContext,
    run: &RunRecord,
    records: &[DocumentRecord],
) -> Result<Vec<NaiveDate>, StepError> {
    if !ctx.shows_current_rows() {
        return Ok(Vec::new());
    }
    let units = units(ctx, &services.settings.bucket, records);
    if units.is_empty() && records.iter().any(|r| !r.objects.is_empty()) {
        tracing::warn!(
            window_start = %ctx.window.start,
            window_end = %ctx.window.end,
            "the run's rows are not made current (its window is not whole days, or a kept report \
             of a source split by day covers several): they are in the history table only"
        );
    }
    let pulled = units.iter().map(|(day, (paths, _))| (*day, paths.as_slice()));
    crate::steps::days::record_pulls(services, ctx, run, pulled).await?;
    // Validated with the job; a policy it let through is `InvalidJob`.
    let policy = ctx.job.finality()?;
    let table = ctx.table();
    let mut won = Vec::new();
    for (day, (paths, rows)) in units {
        let unit = CurrentUnit {
            table: table.clone(),
            account: ctx.account_segment(),
            day,
        };
        let claim = CurrentClaim {
            run_id: ctx.key.run_id(),
            requested_at: requested_at(run),
            paths,
            pull: pull_facts(ctx, &policy, day, rows),
        };
        let claimed = services.store.claim_current(&unit, &claim).await?;
        let winner = publish(services, ctx, &unit).await?;
        let current = winner == ctx.key.run_id();
        tracing::info!(%day, claimed, current, winner, "current run of the day");
        if current {
            won.push(day);
        }
    }
    Ok(won)
}

/// The keys of the run's objects that a current pointer names (the run is the current run of their
/// units): objects that must never be deleted. Empty for a source whose table does not show current
/// rows. Errors: `Transient` (the store was unavailable), `Misconfigured`.
pub async fn current_keys<P: Ports>(services: &Services<P>, ctx: &RunContext) -> Result<BTreeSet<String>, StepError> {
    let mut keys = BTreeSet::new();
    if !ctx.shows_current_rows() {
        return Ok(keys);
    }
    let table = ctx.table();
    let run_id = ctx.key.run_id();
    let in_bucket = format!("s3://{}/", services.settings.bucket);
    for day in whole_days(ctx.window.start, ctx.window.end) {
        let unit = CurrentUnit {
            table: table.clone(),
            account: ctx.account_segment(),
            day,
        };
        if let Some(current) = services.store.current(&unit).await?.filter(|c| c.run_id == run_id) {
            keys.extend(
                current
                    .paths
                    .iter()
                    .filter_map(|path| path.strip_prefix(&in_bucket))
                    .map(str::to_owned),
            );
        }
    }
    Ok(keys)
}

/// When a run's Amazon request was made, as its current claims and day records order runs: its
/// first create call in this claim, else its claim.
pub(crate) fn requested_at(run: &RunRecord) -> chrono::DateTime<chrono::Utc> {
    run.create_started_at.unwrap_or(run.created_at)
}

/// What a pull of `day` by the run of `ctx` is under the job's `policy` (its age, whether final, when
/// its final pull is due), with the day's `rows`.
fn pull_facts(ctx: &RunContext, policy: &FinalityPolicy, day: NaiveDate, rows: Option<u64>) -> PullFacts {
    let age = ctx.job.pull_age(ctx.scheduled, day);
    PullFacts {
        job: ctx.job.name.clone(),
        age,
        is_final: policy.is_final_at(age),
        rows,
        final_due: policy.final_due(day),
    }
}

/// The units the run covers (see the module docs), each with the paths of its objects that hold the
/// unit's rows and their rows (where every object counted them); none when its rows cannot be made
/// current.
fn units(
    ctx: &RunContext,
    bucket: &str,
    records: &[DocumentRecord],
) -> BTreeMap<NaiveDate, (Vec<String>, Option<u64>)> {
    let objects: Vec<_> = records.iter().flat_map(|r| &r.objects).collect();
    let mut units = BTreeMap::new();
    let days = whole_days(ctx.window.start, ctx.window.end);
    if objects.is_empty() || days.is_empty() {
        return units;
    }
    let path = |key: &str| format!("s3://{bucket}/{key}");
    let add = |unit: &mut (Vec<String>, Option<u64>), object: &StoredObject| {
        unit.0.push(path(&object.key));
        unit.1 = unit.1.zip(object.rows).map(|(a, b)| a + b);
    };
    if objects.iter().all(|o| o.day.is_some()) {
        for day in &days {
            units.insert(*day, (Vec::new(), Some(0)));
        }
        for object in objects {
            if let Some(unit) = object.day.and_then(|day| units.get_mut(&day)) {
                add(unit, object);
            }
        }
    } else if ctx.job.source.rules().day_column().is_none() || days.len() == 1 {
        let mut unit = (Vec::new(), Some(0));
        for object in objects {
            add(&mut unit, object);
        }
        units.insert(days[0], unit);
    }
    units
}

/// The days `[start, end)` holds whole, in order.
pub(crate) fn whole_days(start: chrono::DateTime<chrono::Utc>, end: chrono::DateTime<chrono::Utc>) -> Vec<NaiveDate> {
    let midnight = |day: NaiveDate| day.and_time(chrono::NaiveTime::MIN).and_utc();
    let first = start.date_naive();
    let first = if midnight(first) < start {
        first.succ_opt()
    } else {
        Some(first)
    };
    first
        .into_iter()
        .flat_map(|day| day.iter_days())
        .take_while(|day| day.succ_opt().is_some_and(|next| midnight(next) <= end))
        .collect()
}

/// Writes the unit's winner to its pointer until the winner read after the write is the one
/// written; returns the winner's run id.
async fn publish<P: Ports>(services: &Services<P>, ctx: &RunContext, unit: &CurrentUnit) -> Result<String, StepError> {
    let key = ctx.current_key(unit.day);
    let mut winner = services.store.current(unit).await?;
    for _ in 0..ATTEMPTS {
        let Some(current) = winner else {
            return Err(StepError::Transient(format!(
                "no current run is recorded for {} on {} after a claim",
                unit.table, unit.day
            )));
        };
        let mut body = current.paths.join("\n");
        if !body.is_empty() {
            body.push('\n');
        }
        services
            .sink
            .put_object(&key, body.into(), "text/plain")
            .await
            .map_err(|e| StepError::Transient(format!("the current pointer could not be written: {e}")))?;
        winner = services.store.current(unit).await?;
        if winner.as_ref() == Some(&current) {
            return Ok(current.run_id);
        }
    }
    Err(StepError::Transient(format!(
        "the current run of {} on {} changed on each of {ATTEMPTS} writes",
        unit.table, unit.day
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        text.parse().expect("a time")
    }

    fn days(start: &str, end: &str) -> Vec<String> {
        whole_days(at(start), at(end)).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_window_covers_the_days_it_holds_whole_and_no_part_of_one() {
        assert_eq!(
            days("2026-11-18T00:00:00Z", "2026-11-21T00:00:00Z"),
            ["2026-11-18", "2026-11-19", "2026-11-20"]
        );
        assert!(
            days("2026-11-21T13:00:00Z", "2026-11-21T14:00:00Z").is_empty(),
            "an hour"
        );
        assert_eq!(
            days("2026-11-20T06:00:00Z", "2026-11-22T06:00:00Z"),
            ["2026-11-21"],
            "not on day boundaries"
        );
    }
}
