//! The state of many days at once, as a person reads it: per table and account, a grid of days, each
//! cell a state of [`crate::domain::day_state`], then the days to look at with their causes. Used by
//! `amzpipectl status --days` and by the local demo.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::day_state::{DayRecord, DayState, DayStatus, unrecorded_state};

/// One day of one table and account, as shown.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DayCell {
    /// The day.
    pub day: NaiveDate,
    /// Its state (`final`, `provisional`, `overdue`, `failed`, `no_data`, `missing`).
    pub status: DayStatus,
    /// Why it is not final.
    pub cause: Option<String>,
    /// What to do about it.
    pub hint: Option<String>,
    /// The last failure's reason, when the state comes from it.
    pub reason: Option<String>,
    /// Pulls that became current.
    pub pulls: u32,
    /// The current pull's rows.
    pub rows: Option<u64>,
    /// The rows of the pull before it.
    pub previous_rows: Option<u64>,
    /// The day's age at the current pull.
    pub pull_age: Option<i64>,
    /// The current run.
    pub current_run: Option<String>,
}

/// The grid of one table and account.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DayGrid {
    /// The job that wrote its records last.
    pub job: String,
    /// The table.
    pub table: String,
    /// The account.
    pub account: String,
    /// Each day, oldest first.
    pub days: Vec<DayCell>,
}

/// The grids of `records` (`(table, account, record)`) over the days `first..=last`, states as of
/// `today`: a day without a record is `missing` once due.
pub fn grids(
    records: Vec<(String, String, DayRecord)>,
    first: NaiveDate,
    last: NaiveDate,
    today: NaiveDate,
) -> Vec<DayGrid> {
    let mut by_unit: BTreeMap<(String, String), BTreeMap<NaiveDate, DayRecord>> = BTreeMap::new();
    for (table, account, record) in records {
        by_unit.entry((table, account)).or_default().insert(record.day, record);
    }
    by_unit
        .into_iter()
        .map(|((table, account), records)| {
            let job = records.values().last().map(|r| r.job.clone()).unwrap_or_default();
            let days = first
                .iter_days()
                .take_while(|d| *d <= last)
                .filter_map(|day| match records.get(&day) {
                    Some(record) => Some(cell(day, record.state(today), Some(record))),
                    None => unrecorded_state(day, today).map(|state| cell(day, state, None)),
                })
                .collect();
            DayGrid {
                job,
                table,
                account,
                days,
            }
        })
        .collect()
}

/// The cell of `day` in `state`, with what its record (if any) says of its pulls.
fn cell(day: NaiveDate, state: DayState, record: Option<&DayRecord>) -> DayCell {
    let current = record.and_then(|r| r.current.as_ref());
    DayCell {
        day,
        status: state.status,
        cause: state.cause.map(|c| c.as_str().to_owned()),
        hint: state.cause.map(|c| c.hint().to_owned()),
        reason: record.and_then(|r| r.reason(state)).map(str::to_owned),
        pulls: record.map_or(0, |r| r.pulls),
        rows: current.and_then(|c| c.rows),
        previous_rows: record.and_then(|r| r.previous_rows),
        pull_age: current.map(|c| c.age),
        current_run: current.map(|c| c.run_id.clone()),
    }
}

/// The letter a state has in the grid, and its ANSI colour.
fn glyph(status: DayStatus) -> (char, &'static str) {
    match status {
        DayStatus::Final => ('F', "32"),
        DayStatus::Provisional => ('p', "33"),
        DayStatus::Overdue => ('O', "35"),
        DayStatus::Failed => ('X', "31"),
        DayStatus::NoData => ('0', "90"),
        DayStatus::Missing => ('.', "31"),
    }
}

/// The grids as text: a header of day numbers, a line per table and account, a legend, and the
/// days that need a look with their causes.
pub fn render(grids: &[DayGrid], first: NaiveDate, last: NaiveDate, colour: bool) -> String {
    let mut out = String::new();
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d <= last).collect();
    let label = |g: &DayGrid| format!("{} {} {}", g.job, g.table, g.account);
    let width = grids.iter().map(|g| label(g).chars().count()).max().unwrap_or(0).max(3);
    out.push_str(&format!(
        "{:width$}  {} … {} (UTC days, oldest left)\n",
        "",
        first,
        last,
        width = width
    ));
    let tens: String = days.iter().map(|d| d.format("%d").to_string().remove(0)).collect();
    let ones: String = days.iter().map(|d| d.format("%d").to_string().remove(1)).collect();
    out.push_str(&format!(
        "{:width$}  {tens}\n{:width$}  {ones}\n",
        "",
        "",
        width = width
    ));
    for grid in grids {
        let by_day: BTreeMap<NaiveDate, DayStatus> = grid.days.iter().map(|c| (c.day, c.status)).collect();
        let cells: String = days
            .iter()
            .map(|day| match by_day.get(day) {
                Some(&status) => {
                    let (letter, code) = glyph(status);
                    if colour {
                        format!("\x1b[{code}m{letter}\x1b[0m")
                    } else {
                        letter.to_string()
                    }
                }
                None => " ".to_owned(),
            })
            .collect();
        out.push_str(&format!("{:width$}  {cells}\n", label(grid), width = width));
    }
    out.push_str("\nF final · p provisional · O overdue · X failed · 0 no data · . missing\n");
    let trouble: Vec<(&DayGrid, &DayCell)> = grids
        .iter()
        .flat_map(|g| g.days.iter().map(move |c| (g, c)))
        .filter(|(_, c)| !matches!(c.status, DayStatus::Final | DayStatus::Provisional))
        .collect();
    if !trouble.is_empty() {
        out.push_str("\nDays to look at:\n");
        for (grid, day) in trouble {
            out.push_str(&format!(
                "  {} {} {}  {}  {}{}\n",
                grid.table,
                grid.account,
                day.day,
                day.status,
                day.cause.as_deref().unwrap_or("-"),
                day.hint.as_deref().map(|h| format!(": {h}")).unwrap_or_default()
            ));
        }
    }
    let mut counts: BTreeMap<DayStatus, usize> = BTreeMap::new();
    for cell in grids.iter().flat_map(|g| &g.days) {
        *counts.entry(cell.status).or_default() += 1;
    }
    let summary: Vec<String> = DayStatus::ALL
        .iter()
        .filter_map(|s| counts.get(s).map(|n| format!("{n} {s}")))
        .collect();
    out.push_str(&format!("\n{}\n", summary.join(", ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::day_state::{Cause, DayAttempt, DayPull};
    use chrono::{Duration, Utc};

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    fn record(d: &str, current: Option<(i64, bool)>, failed: bool) -> DayRecord {
        let at = |s: &str| s.parse::<chrono::DateTime<Utc>>().expect("a time");
        DayRecord {
            day: day(d),
            job: "ads".into(),
            final_due: day(d) + Duration::days(43),
            current: current.map(|(age, is_final)| DayPull {
                run_id: "r".into(),
                requested_at: at("2026-11-01T06:00:00Z"),
                age,
                is_final,
                rows: Some(3),
            }),
            pulls: 1,
            previous_rows: None,
            attempt: failed.then(|| DayAttempt {
                run_id: "r2".into(),
                requested_at: at("2026-11-02T06:00:00Z"),
                at: at("2026-11-02T06:10:00Z"),
                cause: Cause::AmazonFatal,
                reason: "SourceFailed: Amazon failed request 7: FATAL".into(),
            }),
        }
    }

    #[test]
    fn the_grid_shows_each_days_state_and_lists_failed_and_missing_days_with_their_cause() {
        let records = vec![
            (
                "t".to_owned(),
                "a".to_owned(),
                record("2026-11-01", Some((43, true)), false),
            ),
            (
                "t".to_owned(),
                "a".to_owned(),
                record("2026-11-02", Some((1, false)), false),
            ),
            (
                "t".to_owned(),
                "a".to_owned(),
                record("2026-11-04", Some((1, false)), true),
            ),
        ];
        let grids = grids(records, day("2026-11-01"), day("2026-11-04"), day("2026-11-05"));
        let states: Vec<DayStatus> = grids[0].days.iter().map(|c| c.status).collect();
        assert_eq!(
            states,
            [
                DayStatus::Final,
                DayStatus::Provisional,
                DayStatus::Missing,
                DayStatus::Failed
            ]
        );
        let text = render(&grids, day("2026-11-01"), day("2026-11-04"), false);
        assert!(text.contains("ads t a  Fp.X"), "{text}");
        assert!(text.contains("2026-11-04  failed  amazon_fatal"), "{text}");
        assert!(text.contains("2026-11-03  missing  never_pulled"), "{text}");
        assert!(text.contains("1 final, 1 provisional, 1 failed, 1 missing"), "{text}");
        let coloured = render(&grids, day("2026-11-01"), day("2026-11-04"), true);
        assert!(coloured.contains("\x1b[32mF\x1b[0m"), "final is green");
    }
}
