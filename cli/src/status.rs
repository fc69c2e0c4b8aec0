//! `status`: the runs in the job table, newest first, as a table or JSON; `--watch` follows them;
//! `--days N` shows the state of each data day instead (see [`crate::days`]).

use std::io::IsTerminal;
use std::time::Duration;

use amzpipe::domain::TimeWindow;
use amzpipe::domain::run::{RefusedJob, RunRecord, RunStatus};
use chrono::Utc;
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::context::Context;
use crate::error::CliResult;
use crate::output::{bytes, duration, print_json, table};

/// Which runs to show.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only the runs of this job.
    #[arg(long)]
    pub job: Option<String>,
    /// Only runs in this state (`running` is every state before the end).
    #[arg(long, value_enum)]
    pub state: Option<StateFilter>,
    /// At most this many runs, the most recently changed first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Show the runs again every --interval seconds until interrupted (Ctrl-C).
    #[arg(long)]
    pub watch: bool,
    /// Seconds between refreshes with --watch.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// With --watch: stop after this many refreshes.
    #[arg(long, requires = "watch")]
    pub count: Option<u32>,
    /// Instead of runs, the state of the last N data days per table and account (final,
    /// provisional, overdue, failed, no data, missing), with the cause of each day not final.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=400), conflicts_with_all = ["state", "watch"])]
    pub days: Option<u32>,
    /// With --days: the last data day shown (UTC, YYYY-MM-DD); default yesterday.
    #[arg(long, value_name = "DATE", requires = "days")]
    pub to: Option<chrono::NaiveDate>,
}

/// A state to filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateFilter {
    /// Claimed, requested or ready: not ended yet.
    Running,
    /// Claimed; no Amazon request recorded yet.
    Claimed,
    /// Amazon is working on it.
    Requested,
    /// Amazon's report is ready; downloading.
    Ready,
    /// Stored, manifest written.
    Succeeded,
    /// Amazon had no data for the window.
    NoData,
    /// Failed; see the reason.
    Failed,
    /// A job refused before it could have a run (its definition); see the reason.
    Refused,
}

impl StateFilter {
    fn admits(self, status: RunStatus) -> bool {
        match self {
            Self::Running => !status.is_finished(),
            Self::Claimed => status == RunStatus::Claimed,
            Self::Requested => status == RunStatus::Requested,
            Self::Ready => status == RunStatus::Ready,
            Self::Succeeded => status == RunStatus::Succeeded,
            Self::NoData => status == RunStatus::NoData,
            Self::Failed => status == RunStatus::Failed,
            Self::Refused => false,
        }
    }

    /// Whether refused jobs are shown: with no filter, or `refused`.
    fn admits_refused(filter: Option<Self>) -> bool {
        filter.is_none_or(|f| f == Self::Refused)
    }
}

/// One run as shown.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRow {
    /// The job.
    pub job: String,
    /// The run id (job and window).
    pub run_id: String,
    /// Window start (RFC 3339).
    pub window_start: String,
    /// Window end, excluded.
    pub window_end: String,
    /// The run's state.
    pub state: String,
    /// Amazon's last status word.
    pub amazon_status: Option<String>,
    /// The Amazon request id.
    pub amazon_id: Option<String>,
    /// Bytes stored so far.
    pub bytes: u64,
    /// Rows stored so far (text formats; none for JSON documents and ZIP entries of other kinds).
    pub rows: Option<u64>,
    /// From claim to the last change (to now while running), in seconds.
    pub duration_seconds: i64,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// The manifest's key, once written.
    pub manifest_key: Option<String>,
    /// Last change.
    pub updated_at: String,
}

impl RunRow {
    /// The row of `run`.
    pub fn of(run: &RunRecord) -> Self {
        let (bytes, rows) = (run.bytes_out, run.rows);
        let until = if run.status.is_finished() {
            run.updated_at
        } else {
            Utc::now()
        };
        Self {
            job: run.key.job.clone(),
            run_id: run.run_id.clone(),
            window_start: run.key.window.start.to_rfc3339(),
            window_end: run.key.window.end.to_rfc3339(),
            state: run.status.to_string(),
            amazon_status: run.amazon_status.clone(),
            amazon_id: run.request_id.clone(),
            bytes,
            rows,
            duration_seconds: (until - run.created_at).num_seconds(),
            failure_reason: run.failure_reason.clone(),
            manifest_key: run.manifest_key.clone(),
            updated_at: run.updated_at.to_rfc3339(),
        }
    }
}

impl RunRow {
    /// The row of a job refused before it could have a run: state `REFUSED`, no window.
    pub fn refused(refused: &RefusedJob) -> Self {
        Self {
            job: refused.job.clone(),
            run_id: String::new(),
            window_start: String::new(),
            window_end: String::new(),
            state: "REFUSED".into(),
            amazon_status: None,
            amazon_id: None,
            bytes: 0,
            rows: None,
            duration_seconds: 0,
            failure_reason: Some(refused.reason.clone()),
            manifest_key: None,
            updated_at: refused.at.to_rfc3339(),
        }
    }
}

/// A row as the table shows it: the row, its window and its state cells.
struct Shown {
    row: RunRow,
    window: String,
    state: String,
    at: chrono::DateTime<Utc>,
}

impl Shown {
    fn run(run: &RunRecord) -> Self {
        let row = RunRow::of(run);
        let state = match &row.amazon_status {
            Some(amazon) if !run.status.is_finished() => format!("{} ({amazon})", row.state),
            _ => row.state.clone(),
        };
        Self {
            window: window_cell(&run.key.window),
            state,
            row,
            at: run.updated_at,
        }
    }

    fn refused(refused: &RefusedJob) -> Self {
        Self {
            row: RunRow::refused(refused),
            window: "-".into(),
            state: "REFUSED".into(),
            at: refused.at,
        }
    }
}

/// A window in a table cell: days as dates, other windows as times.
pub fn window_cell(w: &TimeWindow) -> String {
    let midnight = |t: chrono::DateTime<Utc>| t.time() == chrono::NaiveTime::MIN;
    if midnight(w.start) && midnight(w.end) {
        let last = w.end - chrono::Duration::days(1);
        if last.date_naive() == w.start.date_naive() {
            w.start.format("%Y-%m-%d").to_string()
        } else {
            format!("{} … {}", w.start.format("%Y-%m-%d"), last.format("%Y-%m-%d"))
        }
    } else {
        format!(
            "{} … {}",
            w.start.format("%Y-%m-%d %H:%M"),
            w.end.format("%Y-%m-%d %H:%M")
        )
    }
}

/// Runs the command.
pub async fn run(ctx: &Context, args: &StatusArgs) -> CliResult<()> {
    if let Some(days) = args.days {
        return crate::days::run(ctx, days, args.to, args.job.as_deref()).await;
    }
    let store = ctx.store().await?;
    let mut frames = 0u32;
    loop {
        let mut runs = match &args.job {
            Some(job) => store.runs_of(job).await?,
            None => store.all_runs().await?,
        };
        runs.retain(|r| args.state.is_none_or(|s| s.admits(r.status)));
        let mut shown: Vec<Shown> = runs.iter().map(Shown::run).collect();
        if StateFilter::admits_refused(args.state) {
            let refused = store.refused_jobs(args.limit).await?;
            shown.extend(
                refused
                    .iter()
                    .filter(|r| args.job.as_ref().is_none_or(|job| *job == r.job))
                    .map(Shown::refused),
            );
        }
        shown.sort_by_key(|s| std::cmp::Reverse(s.at));
        shown.truncate(args.limit);
        if args.watch && std::io::stdout().is_terminal() && !ctx.json {
            print!("\x1b[2J\x1b[H");
        }
        if ctx.json {
            let rows: Vec<&RunRow> = shown.iter().map(|s| &s.row).collect();
            if args.watch {
                println!("{}", serde_json::json!({ "at": Utc::now().to_rfc3339(), "runs": rows }));
            } else {
                print_json(&rows)?;
            }
        } else {
            if args.watch {
                println!(
                    "{} · every {} s · Ctrl-C to stop",
                    Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
                    args.interval
                );
            }
            print_table(shown);
        }
        frames += 1;
        if !args.watch || args.count.is_some_and(|c| frames >= c) {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.interval)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

fn print_table(shown: Vec<Shown>) {
    if shown.is_empty() {
        println!("no runs");
        return;
    }
    let mut t = table(&[
        "JOB",
        "WINDOW",
        "STATE",
        "AMAZON ID",
        "BYTES",
        "ROWS",
        "DURATION",
        "FAILURE",
    ]);
    for Shown { row, window, state, .. } in shown {
        t.add_row(vec![
            row.job,
            window,
            state,
            row.amazon_id.unwrap_or_default(),
            bytes(row.bytes),
            row.rows.map_or_else(|| "-".to_owned(), |n| n.to_string()),
            duration(row.duration_seconds),
            row.failure_reason.unwrap_or_default(),
        ]);
    }
    println!("{t}");
}
