//! `status --days N`: per table and account, a grid of the last N data days, each cell the day's
//! state (see `amzpipe::domain::day_state`), read live from the job table; then every day that is
//! not final or provisional, with its cause and what to do. `--json` prints the same as data.

use std::io::IsTerminal;

use amzpipe::domain::day_grid::{grids, render};
use chrono::{Duration, NaiveDate, Utc};

use crate::context::Context;
use crate::error::CliResult;
use crate::output::print_json;

/// Runs `status --days N`: the `days` data days up to `to` (default yesterday).
pub async fn run(ctx: &Context, days: u32, to: Option<NaiveDate>, job: Option<&str>) -> CliResult<()> {
    let today = Utc::now().date_naive();
    let last = to.unwrap_or(today - Duration::days(1));
    let first = last - Duration::days(i64::from(days.max(1)) - 1);
    let store = ctx.store().await?;
    let records = store.all_day_records(first, last, job).await?;
    let grids = grids(records, first, last, today);
    if ctx.json {
        return print_json(&grids);
    }
    if grids.is_empty() {
        println!("No day is recorded from {first} to {last}: no run of a table of current rows has ended yet.");
        return Ok(());
    }
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", render(&grids, first, last, colour));
    Ok(())
}
