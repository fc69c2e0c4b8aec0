//! `run` and `backfill`: executions of the deployed state machine started by hand, followed live.
//!
//! `run` starts one execution of a job for a scheduled time (now by default), exactly what its
//! schedule would send. `backfill` cuts a date range into windows the source accepts, skips the
//! windows whose runs already ended well, and starts one execution per remaining window, a few at a
//! time; the Amazon quotas themselves are held by the functions (the shared SP-API token bucket, the
//! AMC running slots), so executions over quota wait in the state machine instead of failing.
//! Running the same backfill again retries only what did not finish.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use amzpipe::adapters::dynamo::DynamoJobStore;
use amzpipe::domain::TimeWindow;
use amzpipe::domain::job::Job;
use amzpipe::domain::run::{RunKey, RunRecord, RunStatus};
use amzpipe::ports::JobStore;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::{Value, json};

use crate::context::Context;
use crate::error::{CliError, CliResult, aws_error};
use crate::output::{bytes, print_json, table};
use crate::status::{RunRow, window_cell};

/// Run a job now.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job definition: a JSON file with the job, or an event with a `job` field (`events/*.json`).
    #[arg(long, value_name = "FILE")]
    pub job: PathBuf,
    /// The scheduled time to run for (RFC 3339, e.g. 2026-11-23T06:00:00Z): the window is computed
    /// from it as the schedule would. Now when absent.
    #[arg(long, value_name = "TIME")]
    pub at: Option<DateTime<Utc>>,
    /// Start the execution and return at once.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds between progress checks.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
}

/// Backfill a job over a date range.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The job definition: a JSON file with the job, or an event with a `job` field.
    #[arg(long, value_name = "FILE")]
    pub job: PathBuf,
    /// First day (UTC, YYYY-MM-DD), included.
    #[arg(long, value_name = "DATE")]
    pub from: NaiveDate,
    /// Last day (UTC, YYYY-MM-DD), included.
    #[arg(long, value_name = "DATE")]
    pub to: NaiveDate,
    /// Days per window (one Amazon request each), instead of the default: the runs the job's schedule
    /// makes over the range (its window, lookback and slices), so that backfilled and scheduled days
    /// are the same runs. At most the source's limit (Ads 31, SP-API 30).
    #[arg(long, value_name = "DAYS")]
    pub window_days: Option<u32>,
    /// Executions running at once (AMC: at most 10, its running limit per instance).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=50))]
    pub parallel: u64,
    /// Show the windows and what would run, and start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds between progress checks.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
}

/// Reads a job file: a job, or an event carrying one.
pub fn load_job(path: &Path) -> CliResult<(Job, Value)> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| CliError::usage(format!("{}: not JSON: {e}", path.display())))?;
    let value = match value.get("job") {
        Some(job) if value.get("source").is_none() => job.clone(),
        _ => value,
    };
    let job = Job::from_value(value.clone()).map_err(|e| CliError::from(e).context(path.display()))?;
    Ok((job, value))
}

/// An execution to start and the runs it makes.
struct Submission {
    name: String,
    input: Value,
    runs: Vec<RunKey>,
}

/// How a window ended.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WindowOutcome {
    #[serde(skip)]
    window: TimeWindow,
    window_start: String,
    window_end: String,
    /// `SKIPPED` (ended well before), or the run's state after its execution.
    state: String,
    execution: Option<String>,
    run: Option<RunRow>,
    failure: Option<String>,
}

/// A Step Functions execution name of `parts` and the stamp `batch`, which a long job name cannot cut
/// off (two runs of one job never share a name).
fn execution_name(parts: &[&str], batch: &str) -> String {
    amzpipe::domain::execution::execution_name(&parts.join("-"), batch)
}

fn stamp() -> String {
    format!("{}{:03x}", Utc::now().format("%Y%m%dT%H%M%S"), fastrand::u16(..0xfff))
}

/// Runs `run`.
pub async fn run(ctx: &Context, args: &RunArgs) -> CliResult<()> {
    let (job, value) = load_job(&args.job)?;
    let scheduled = args.at.unwrap_or_else(Utc::now);
    let windows = job.windows(scheduled)?;
    let machine = ctx.state_machine().await?;
    let submission = Submission {
        name: execution_name(&[&job.name], &stamp()),
        input: json!({ "scheduledTime": scheduled.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "jobs": [value] }),
        runs: windows
            .into_iter()
            .map(|window| RunKey {
                job: job.name.clone(),
                window,
            })
            .collect(),
    };
    if args.no_wait {
        let arn = start(ctx, &machine, &submission).await?;
        if ctx.json {
            return print_json(&json!({ "executionArn": arn, "name": submission.name }));
        }
        println!("started {arn}");
        println!("follow it with `amzpipectl status --job {} --watch`", job.name);
        return Ok(());
    }
    let store = ctx.store().await?;
    let plan = Plan {
        job: &job,
        machine,
        submissions: vec![submission],
        skipped: Vec::new(),
        parallel: 1,
        interval: Duration::from_secs(args.interval),
    };
    let outcomes = follow(ctx, &store, plan).await?;
    report(ctx, &outcomes)
}

/// Runs `backfill`.
pub async fn backfill(ctx: &Context, args: &BackfillArgs) -> CliResult<()> {
    let (job, _) = load_job(&args.job)?;
    let rules = job.source.rules();
    let windows = job.backfill(args.from, args.to, args.window_days)?;
    let mut parallel = args.parallel as usize;
    if let Some(max) = rules.max_parallel_runs().map(|m| m as usize)
        && parallel > max
    {
        eprintln!(
            "note: {} runs at most {max} requests of one job at once; --parallel lowered to {max}",
            rules.kind()
        );
        parallel = max;
    }
    let store = ctx.store().await?;
    let mut skipped = Vec::new();
    let mut submissions = Vec::new();
    let batch = stamp();
    for w in &windows {
        let key = RunKey {
            job: job.name.clone(),
            window: w.window,
        };
        let existing = store.run(&key).await?;
        if let Some(run) = existing.filter(|r| matches!(r.status, RunStatus::Succeeded | RunStatus::NoData)) {
            skipped.push(run);
            continue;
        }
        let value = serde_json::to_value(&w.job).map_err(|e| CliError::failed(e.to_string()))?;
        submissions.push(Submission {
            name: execution_name(
                &[
                    &job.name,
                    &w.window.start.format("%Y%m%d").to_string(),
                    &w.window.end.format("%Y%m%d").to_string(),
                ],
                &batch,
            ),
            input: json!({ "scheduledTime": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "jobs": [value] }),
            runs: vec![key],
        });
    }
    if args.dry_run {
        let plan: Vec<Value> = windows
            .iter()
            .map(|w| {
                let done = skipped.iter().any(|r| r.key.window == w.window);
                json!({"windowStart": w.window.start.to_rfc3339(), "windowEnd": w.window.end.to_rfc3339(),
                       "action": if done { "skip (ended well)" } else { "run" }})
            })
            .collect();
        if ctx.json {
            return print_json(&plan);
        }
        let mut t = table(&["WINDOW", "ACTION"]);
        for (w, p) in windows.iter().zip(&plan) {
            t.add_row(vec![
                window_cell(&w.window),
                p["action"].as_str().unwrap_or_default().to_owned(),
            ]);
        }
        println!("{t}");
        println!(
            "{} windows: {} to run, {} already done",
            windows.len(),
            submissions.len(),
            skipped.len()
        );
        return Ok(());
    }
    if !ctx.json && !skipped.is_empty() {
        eprintln!(
            "{} of {} windows already ended well; skipping them",
            skipped.len(),
            windows.len()
        );
    }
    let machine = if submissions.is_empty() {
        String::new()
    } else {
        ctx.state_machine().await?
    };
    let plan = Plan {
        job: &job,
        machine,
        submissions,
        skipped,
        parallel,
        interval: Duration::from_secs(args.interval),
    };
    let outcomes = follow(ctx, &store, plan).await?;
    report(ctx, &outcomes)
}

async fn start(ctx: &Context, machine: &str, submission: &Submission) -> CliResult<String> {
    let input = serde_json::to_string(&submission.input).map_err(|e| CliError::failed(e.to_string()))?;
    let started = ctx
        .sfn()
        .await
        .start_execution()
        .state_machine_arn(machine)
        .name(&submission.name)
        .input(input)
        .send()
        .await
        .map_err(|e| aws_error("starting the execution", &e))?;
    Ok(started.execution_arn().to_owned())
}

fn progress(ctx: &Context, total: u64) -> ProgressBar {
    let live = !ctx.json && std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        Some(total),
        if live {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} windows · {msg} · {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A line for a finished window, above the bar (or on its own without a terminal).
fn announce(ctx: &Context, bar: &ProgressBar, line: String) {
    if ctx.json {
        return;
    }
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// What to start and follow.
struct Plan<'a> {
    job: &'a Job,
    /// The state machine's ARN (unused when there is nothing to start).
    machine: String,
    submissions: Vec<Submission>,
    /// Runs that ended well before: reported, not started.
    skipped: Vec<RunRecord>,
    /// Executions at once.
    parallel: usize,
    /// Between progress checks.
    interval: Duration,
}

/// Starts the plan's submissions at most `parallel` at a time and follows them to their end.
async fn follow(ctx: &Context, store: &DynamoJobStore, plan: Plan<'_>) -> CliResult<Vec<WindowOutcome>> {
    let Plan {
        job,
        machine,
        submissions,
        skipped,
        parallel,
        interval,
    } = plan;
    let machine = machine.as_str();
    let total = (submissions.iter().map(|s| s.runs.len()).sum::<usize>() + skipped.len()) as u64;
    let bar = progress(ctx, total);
    let mut outcomes: Vec<WindowOutcome> = skipped
        .iter()
        .map(|r| WindowOutcome {
            window: r.key.window,
            window_start: r.key.window.start.to_rfc3339(),
            window_end: r.key.window.end.to_rfc3339(),
            state: "SKIPPED".into(),
            execution: None,
            run: Some(RunRow::of(r)),
            failure: None,
        })
        .collect();
    bar.set_position(skipped.len() as u64);
    let mut queue: std::collections::VecDeque<Submission> = submissions.into();
    let mut running: Vec<(String, Submission)> = Vec::new();
    let mut failed = 0usize;
    let sfn = ctx.sfn().await;
    loop {
        while running.len() < parallel {
            let Some(next) = queue.pop_front() else { break };
            let arn = start(ctx, machine, &next).await?;
            running.push((arn, next));
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => {
                bar.abandon();
                return Err(CliError::failed("interrupted; the executions started go on in Step Functions")
                    .hint("run the same command again later: windows that ended well are skipped"));
            }
        }
        let runs: HashMap<String, RunRecord> = store
            .runs_of(&job.name)
            .await?
            .into_iter()
            .map(|r| (r.run_id.clone(), r))
            .collect();
        let mut still = Vec::new();
        for (arn, submission) in running {
            let described = sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .map_err(|e| aws_error("reading an execution", &e))?;
            let status = described.status().as_str().to_owned();
            if status == "RUNNING" || status == "PENDING_REDRIVE" {
                still.push((arn, submission));
                continue;
            }
            for key in &submission.runs {
                let run = runs.get(&key.run_id());
                let state = run.map_or_else(|| format!("EXECUTION_{status}"), |r| r.status.to_string());
                let ok = status == "SUCCEEDED"
                    && run.is_some_and(|r| matches!(r.status, RunStatus::Succeeded | RunStatus::NoData));
                let failure = if ok {
                    None
                } else {
                    failed += 1;
                    Some(
                        run.and_then(|r| r.failure_reason.clone())
                            .or_else(|| described.cause().map(str::to_owned))
                            .or_else(|| described.error().map(str::to_owned))
                            .unwrap_or_else(|| format!("the execution ended {status}")),
                    )
                };
                let row = run.map(RunRow::of);
                announce(
                    ctx,
                    &bar,
                    format!(
                        "{} {state} {}{}",
                        window_cell(&key.window),
                        row.as_ref().map_or_else(String::new, |r| bytes(r.bytes)),
                        failure.as_deref().map_or_else(String::new, |f| format!(" — {f}")),
                    ),
                );
                outcomes.push(WindowOutcome {
                    window: key.window,
                    window_start: key.window.start.to_rfc3339(),
                    window_end: key.window.end.to_rfc3339(),
                    state,
                    execution: Some(arn.clone()),
                    run: row,
                    failure,
                });
                bar.inc(1);
            }
        }
        running = still;
        let moved: u64 = runs.values().map(|r| RunRow::of(r).bytes).sum();
        bar.set_message(format!(
            "{} running · {} queued · {failed} failed · {} stored",
            running.len(),
            queue.len(),
            bytes(moved)
        ));
    }
    bar.finish_and_clear();
    outcomes.sort_by(|a, b| a.window_start.cmp(&b.window_start));
    Ok(outcomes)
}

fn report(ctx: &Context, outcomes: &[WindowOutcome]) -> CliResult<()> {
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    if ctx.json {
        print_json(&json!({
            "windows": outcomes,
            "done": outcomes.iter().filter(|o| o.failure.is_none()).count(),
            "failed": failed,
        }))?;
    } else {
        let mut t = table(&["WINDOW", "STATE", "BYTES", "ROWS", "FAILURE"]);
        for o in outcomes {
            t.add_row(vec![
                window_cell(&o.window),
                o.state.clone(),
                o.run.as_ref().map_or_else(String::new, |r| bytes(r.bytes)),
                o.run
                    .as_ref()
                    .and_then(|r| r.rows)
                    .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                o.failure.clone().unwrap_or_default(),
            ]);
        }
        println!("{t}");
    }
    if failed > 0 {
        return Err(
            CliError::failed(format!("{failed} of {} windows failed", outcomes.len())).hint(
                "fix what the failure says, then run the same command again: windows that ended well are skipped",
            ),
        );
    }
    Ok(())
}
