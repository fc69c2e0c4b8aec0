//! The state of every data day (see [`crate::domain::day_state`]), kept where a user reads it.
//!
//! **In the job table.** A pull that becomes current is recorded in the same conditional write that
//! claims the day ([`crate::steps::current`]); an attempt that fails or finds no data is recorded by
//! [`record_attempt`] on each whole day of its window, by whichever step or failure path ends the
//! run. `amzpipectl status --days` reads these records, live.
//!
//! **In the bucket and the catalog.** [`publish`], at the end of each successful run, writes one
//! JSON Lines object per day, `{prefix}/_day_status/source=…/account=…/report=…/dt={day}/status.json`
//! (the row of [`DayStatusRow`], its state as of the write), and registers the table
//! `{table}_day_status` over them (projected on `account` and `dt` like the others), so that
//! `SELECT … FROM {table}_day_status WHERE status <> 'final'` runs beside the data. It writes the
//! days the run covered and every day of the job's horizon (its oldest pull age and
//! [`RECHECK_MARGIN_DAYS`] more, to yesterday) that is not final or provisional, so that a failed or
//! overdue day is brought up to date by the job's next success. A day no run ever attempted has no object (the command line shows it `missing`).

use chrono::{Duration, NaiveDate, Utc};

use crate::domain::day_state::{Cause, DayAttempt, DayRecord, DayStatus, DayStatusRow};
use crate::domain::run::RunRecord;
use crate::ports::{CurrentUnit, JobStore, ObjectSink, TableColumn, TableDefinition, TableFormat};
use crate::steps::catalog::{register, step_error};
use crate::steps::current::{requested_at, whole_days};
use crate::steps::metrics::DaysSummary;
use crate::steps::{Ports, RunContext, Services, StepError};

/// The status object's file name in each day's folder.
pub const STATUS_FILE: &str = "status.json";

/// Days before the job's oldest pull age whose status a success still rewrites when they are not
/// final or provisional: a day whose final pull failed stays visible as `overdue` for a month.
pub const RECHECK_MARGIN_DAYS: u32 = 31;

/// Records on each whole day of `run`'s window that the run ended without making it current:
/// failed with `cause` (or [`Cause::NoData`]), for `reason`. Nothing for a source whose table does
/// not show current rows. A store that cannot record it is logged, not raised: the run's own end is
/// what the failure path must not lose.
pub(crate) async fn record_attempt<St: JobStore>(
    store: &St,
    ctx: &RunContext,
    run: &RunRecord,
    cause: Cause,
    reason: &str,
) {
    if !ctx.shows_current_rows() {
        return;
    }
    let Ok(policy) = ctx.job.finality() else {
        return;
    };
    let table = ctx.table();
    let attempt = DayAttempt {
        run_id: run.run_id.clone(),
        requested_at: requested_at(run),
        at: Utc::now(),
        cause,
        reason: reason.to_owned(),
    };
    for day in whole_days(ctx.window.start, ctx.window.end) {
        let unit = CurrentUnit {
            table: table.clone(),
            account: ctx.account_segment(),
            day,
        };
        if let Err(e) = store
            .record_day_attempt(&unit, &ctx.job.name, policy.final_due(day), &attempt)
            .await
        {
            tracing::warn!(%day, error = %e, "the day's attempt could not be recorded");
        }
    }
}

/// Writes the status objects of the days the run of `ctx` covered and of the job's days that are
/// neither final nor provisional (see the module docs), and registers their table when the function
/// has a catalog. Returns the records written. Nothing for a source whose table does not show
/// current rows. Errors: `Transient` (the store, the bucket or the catalog was unavailable),
/// `Misconfigured`.
pub async fn publish<P: Ports>(services: &Services<P>, ctx: &RunContext) -> Result<Vec<DayRecord>, StepError> {
    if !ctx.shows_current_rows() {
        return Ok(Vec::new());
    }
    let covered = whole_days(ctx.window.start, ctx.window.end);
    let (Some(&first_covered), Some(&last_covered)) = (covered.first(), covered.last()) else {
        return Ok(Vec::new());
    };
    let policy = ctx.job.finality()?;
    let settled_day = ctx.job.firing_day(ctx.scheduled);
    let oldest = policy.pull_ages.last().copied().unwrap_or(1);
    let first = first_covered.min(settled_day - Duration::days(i64::from(oldest + RECHECK_MARGIN_DAYS)));
    let last = last_covered.max(settled_day - Duration::days(1));
    let table = ctx.table();
    let now = Utc::now();
    let records = services
        .store
        .day_records(&table, &ctx.account_segment(), first, last)
        .await?;
    crate::steps::metrics::days(
        ctx.job.source.kind(),
        &ctx.job.name,
        &summary(&records, &covered, now.date_naive()),
    );
    let written: Vec<DayRecord> = records
        .into_iter()
        .filter(|r| {
            covered.contains(&r.day)
                || !matches!(
                    r.state(now.date_naive()).status,
                    DayStatus::Final | DayStatus::Provisional
                )
        })
        .collect();
    for record in &written {
        let row = DayStatusRow::of(&table, record, now);
        let mut body = serde_json::to_vec(&row)
            .map_err(|e| StepError::Transient(format!("the day status could not be written: {e}")))?;
        body.push(b'\n');
        services
            .sink
            .put_object(&ctx.day_status_key(record.day), body.into(), "application/x-ndjson")
            .await
            .map_err(|e| StepError::Transient(format!("the day status could not be written: {e}")))?;
    }
    if let (Some(catalog), Some(first_day)) = (&services.catalog, written.iter().map(|r| r.day).min()) {
        register(catalog, status_table(ctx, &services.settings.bucket, &table, first_day))
            .await
            .map_err(step_error)?;
    }
    tracing::info!(days = written.len(), "day status written");
    Ok(written)
}

/// One row of `{table}_pulls`: an object of a day's rows a run stored, with when the run's request
/// was made and when its rows were stored whole, its manifest written (RFC 3339, milliseconds, UTC).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct PullRow<'a> {
    run_id: &'a str,
    data_day: String,
    requested_at: &'a str,
    completed_at: &'a str,
    object_path: Option<&'a str>,
}

/// The columns of `{table}_pulls`, in order.
const PULL_COLUMNS: [&str; 5] = ["run_id", "data_day", "requested_at", "completed_at", "object_path"];

/// Records the days the run of `ctx` pulled, each with the objects holding its rows (`units`), as one
/// object under `_pulls/` (a row per object; a day without rows has one row without a path), and
/// registers `{table}_pulls` over them when the function has a catalog: what the as-of query of the
/// README reads to tell which run's rows a day had at any time. A repeated call writes the same key.
/// Errors: `Transient` (the bucket or the catalog was unavailable), `Misconfigured`.
pub(crate) async fn record_pulls<'a, P: Ports>(
    services: &Services<P>,
    ctx: &RunContext,
    run: &RunRecord,
    units: impl IntoIterator<Item = (NaiveDate, &'a [String])>,
) -> Result<(), StepError> {
    let millis = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (requested_at, completed_at) = (millis(requested_at(run)), millis(Utc::now()));
    let run_id = ctx.key.run_id();
    let mut body = Vec::new();
    for (day, paths) in units {
        let row = |object_path| PullRow {
            run_id: &run_id,
            data_day: day.to_string(),
            requested_at: &requested_at,
            completed_at: &completed_at,
            object_path,
        };
        // A day without rows has one row without a path.
        let objects = paths.iter().map(|p| Some(p.as_str()));
        for object_path in objects.chain(paths.is_empty().then_some(None)) {
            serde_json::to_writer(&mut body, &row(object_path))
                .map_err(|e| StepError::Transient(format!("the pulls could not be written: {e}")))?;
            body.push(b'\n');
        }
    }
    if body.is_empty() {
        return Ok(());
    }
    let key = ctx.pulls_key(ctx.window.start.date_naive(), run.claims);
    services
        .sink
        .put_object(&key, body.into(), "application/x-ndjson")
        .await
        .map_err(|e| StepError::Transient(format!("the pulls could not be written: {e}")))?;
    if let Some(catalog) = &services.catalog {
        let table = ctx.table();
        let (location, location_template) = ctx.pulls_location(&services.settings.bucket);
        let definition = strings_table(
            ctx,
            format!("{table}_pulls"),
            format!(
                "amzpipe: every pull of a day of {table}: the run, when its request was made and when its \
                 rows were stored whole, and each object of the day's rows (dt: the run's window's first \
                 day); the as-of query reads it"
            ),
            &PULL_COLUMNS,
            (location, location_template),
            ctx.window.start.date_naive(),
        );
        register(catalog, definition).await.map_err(step_error)?;
    }
    Ok(())
}

/// What the job's `records` say at `today`, as its metrics count them: the rows dropped are those of
/// the days the run `covered`.
fn summary(records: &[DayRecord], covered: &[NaiveDate], today: NaiveDate) -> DaysSummary {
    let mut out = DaysSummary::default();
    let age = |day: NaiveDate| (today - day).num_days();
    for record in records {
        match record.state(today).status {
            DayStatus::Overdue => out.overdue += 1,
            DayStatus::Failed => out.failed += 1,
            DayStatus::Final => {
                out.newest_final_age = Some(out.newest_final_age.map_or(age(record.day), |a| a.min(age(record.day))))
            }
            DayStatus::Provisional => {
                out.newest_provisional_age = Some(
                    out.newest_provisional_age
                        .map_or(age(record.day), |a| a.min(age(record.day))),
                );
            }
            DayStatus::NoData | DayStatus::Missing => {}
        }
        if covered.contains(&record.day)
            && let Some((_, Some(share))) = record.row_drift()
        {
            out.rows_dropped_share = out.rows_dropped_share.max(-share);
        }
    }
    out
}

/// The `{table}_day_status` table of the job's day status objects.
fn status_table(ctx: &RunContext, bucket: &str, table: &str, first_day: NaiveDate) -> TableDefinition {
    strings_table(
        ctx,
        format!("{table}_day_status"),
        format!(
            "amzpipe: the state of each data day of {table} (final, provisional, overdue, failed, no_data), \
             its cause, pulls and drift; written by each successful run (partitions account and dt, projected)"
        ),
        &DayStatusRow::COLUMNS,
        ctx.day_status_location(bucket),
        first_day,
    )
}

/// A JSON Lines table of string `columns` named `name` (at most 255 characters) at `location` (the
/// prefix and the partition template), partitioned as the job's tables are.
fn strings_table(
    ctx: &RunContext,
    mut name: String,
    description: String,
    columns: &[&str],
    (location, location_template): (String, String),
    first_day: NaiveDate,
) -> TableDefinition {
    name.truncate(255);
    TableDefinition {
        name,
        description,
        columns: columns
            .iter()
            .map(|c| TableColumn {
                name: (*c).to_owned(),
                source: (*c).to_owned(),
                kind: crate::domain::document::ColumnKind::String,
            })
            .collect(),
        format: TableFormat::JsonLines,
        location,
        location_template,
        accounts: std::collections::BTreeSet::from([ctx.account_segment()]),
        first_day,
        current: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::day_state::DayPull;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    fn record(d: &str, age: i64, is_final: bool, rows: u64, previous: Option<u64>) -> DayRecord {
        DayRecord {
            day: day(d),
            job: "ads".into(),
            final_due: day(d) + Duration::days(5),
            current: Some(DayPull {
                run_id: "r".into(),
                requested_at: day(d).and_hms_opt(6, 0, 0).expect("a time").and_utc() + Duration::days(age),
                age,
                is_final,
                rows: Some(rows),
            }),
            pulls: 2,
            previous_rows: previous,
            attempt: None,
        }
    }

    #[test]
    fn a_day_past_its_final_age_without_a_final_pull_counts_as_overdue_in_the_metrics_and_freshness_is_the_newest_days_age()
     {
        let today = day("2026-11-20");
        let records = [
            record("2026-11-01", 5, true, 10, Some(10)),
            record("2026-11-10", 3, false, 10, Some(10)),
            record("2026-11-17", 1, false, 4, Some(10)),
            record("2026-11-19", 1, false, 10, None),
        ];
        let covered = [day("2026-11-17"), day("2026-11-19")];
        let summary = summary(&records, &covered, today);
        assert_eq!(summary.overdue, 1, "2026-11-10: due 2026-11-15, not final");
        assert_eq!(summary.failed, 0);
        assert_eq!(summary.newest_final_age, Some(19));
        assert_eq!(summary.newest_provisional_age, Some(1));
        assert!(
            (summary.rows_dropped_share - 0.6).abs() < 1e-9,
            "the re-pull of 2026-11-17 lost 6 of its 10 rows: {}",
            summary.rows_dropped_share
        );
    }
}
