//! `make bench-load`: one schedule over an agency's accounts, on the local stack, against the
//! simulator enforcing Amazon's published quotas; prints what it took.
//!
//! One execution of the real state machine (`infra/statemachine/pipeline.asl.json`, on moto's
//! interpreter, the steps answering its Lambda tasks in this process) runs, by default, 1,000 Ads
//! profiles, 50 SP-API sellers (a credential set each: SP-API usage plans are per selling partner) and
//! 20 AMC instances, read from a jobs file in S3. The simulator enforces the SP-API usage plans
//! (createReport 0.0167 rps, burst 15, per seller and operation) and AMC's 10 running executions per
//! instance, and answers 429s as Amazon does.
//!
//! Printed: jobs done, wall time, Amazon calls per kind, 429s received, quota violations (requests a
//! published quota refused: must be 0), duplicate Amazon requests (must be 0), and the execution's
//! history length and largest payload — the parent's as moto records it, each child's (one per job
//! and per slice) counted from the Lambda invocations the router saw, with the events Step Functions
//! writes per state (moto keeps no child history). Exits non-zero when a must-be-zero figure is not.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use amzpipe::domain::run::RunStatus;
use amzpipe::ports::JobStore;
use amzpipe::steps::RunContext;
use amzpipe_testkit::sfn::Invocation;
use amzpipe_testkit::sim::{EXTRA_PROFILES_FROM, SimConfig};
use amzpipe_testkit::stack::{Pipeline, event_job, put_jobs_file, secret_value};
use clap::Parser;
use serde_json::{Value, json};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(about = "Runs one schedule over many accounts through the real state machine and prints the figures")]
struct Cli {
    /// Ads profiles (one job each, one credential set: an agency's).
    #[arg(long, default_value_t = 1000)]
    ads: u32,
    /// SP-API sellers (one job and one credential set each).
    #[arg(long, default_value_t = 50)]
    sp: u32,
    /// AMC instances (one job each).
    #[arg(long, default_value_t = 20)]
    amc: u32,
    /// Jobs per SP-API seller (more than 15 exceeds createReport's burst: the rest must wait for the
    /// usage plan, one a minute).
    #[arg(long, default_value_t = 1)]
    sp_jobs_per_seller: u32,
    /// Jobs per AMC instance (more than 10 exceeds its running executions: the rest must wait).
    #[arg(long, default_value_t = 1)]
    amc_jobs_per_instance: u32,
    /// The simulated Ads API's throttling per credential set, requests per second (0: none; Amazon
    /// publishes no figure).
    #[arg(long, default_value_t = 10.0)]
    ads_rps: f64,
    /// Jobs running at once (the template's MaxConcurrency, at most 40).
    #[arg(long, default_value_t = 40)]
    concurrency: u32,
    /// Give up after this many minutes (per execution).
    #[arg(long, default_value_t = 60)]
    limit_minutes: u64,
    /// The re-pull calendar instead of one schedule: the Ads jobs with the `repull` rule and the
    /// default finality policy, fired on this many consecutive days (one execution a day; no SP-API
    /// or AMC jobs), printing the Ads requests per profile, report type and day.
    #[arg(long, value_name = "DAYS")]
    repull_days: Option<u32>,
}

const SCHEDULED: &str = "2026-11-23T06:00:00Z";

fn jobs(cli: &Cli) -> Vec<Value> {
    let mut jobs = Vec::new();
    for i in 0..cli.ads {
        let profile = EXTRA_PROFILES_FROM + i64::from(i);
        let mut job = event_job("ads-reports");
        job["name"] = json!(format!("ads-{profile}"));
        job["source"]["profileId"] = json!(profile.to_string());
        if cli.repull_days.is_some() {
            job["window"] = json!({"rule": "repull"});
        }
        jobs.push(job);
    }
    if cli.repull_days.is_some() {
        return jobs;
    }
    for i in 0..cli.sp {
        for k in 0..cli.sp_jobs_per_seller {
            let mut job = event_job("sp-reports");
            job["name"] = json!(format!("sp-seller-{i:03}-{k:02}"));
            job["credentials"] = json!(format!("amzpipe/seller-{i:03}"));
            jobs.push(job);
        }
    }
    for i in 0..cli.amc {
        for k in 0..cli.amc_jobs_per_instance {
            let mut job = event_job("amc");
            job["name"] = json!(format!("amc-{i:02}-{k:02}"));
            job["source"]["instanceId"] = json!(format!("amcbench{i:02}"));
            jobs.push(job);
        }
    }
    jobs
}

/// The history events Step Functions writes for one child execution (a job's, or a slice's), counted
/// from the Lambda invocations it made: `ExecutionStarted`/`Succeeded`; per attempt `TaskScheduled`,
/// `TaskStarted`, `TaskSucceeded`/`Failed`; per Task state entered and left two more; after each
/// create-request or poll-status answer a Choice and a Wait (two each); after a download a Choice.
fn child_history(invocations: &[&Invocation]) -> usize {
    let attempts = invocations.len();
    let answers = invocations.iter().filter(|i| i.error.is_none()).count();
    let loops = invocations
        .iter()
        .filter(|i| i.error.is_none() && matches!(i.function.as_str(), "create-request" | "poll-status"))
        .count();
    let downloads = invocations
        .iter()
        .filter(|i| i.error.is_none() && i.function == "download-decrypt")
        .count();
    2 + 3 * attempts + 2 * answers + 4 * loops + 2 * downloads
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let cli = Cli::parse();
    let jobs = jobs(&cli);
    if let Some(days) = cli.repull_days {
        println!(
            "re-pull calendar: {} Ads profiles, the repull rule and the default finality policy, {days} daily firings, \
             MaxConcurrency {}, Ads throttled at {} rps",
            cli.ads, cli.concurrency, cli.ads_rps
        );
    } else {
        println!(
            "load benchmark: {} jobs ({} Ads profiles; {} SP-API sellers × {}; {} AMC instances × {}), MaxConcurrency {}, \
         Ads throttled at {} rps",
            jobs.len(),
            cli.ads,
            cli.sp,
            cli.sp_jobs_per_seller,
            cli.amc,
            cli.amc_jobs_per_instance,
            cli.concurrency,
            cli.ads_rps
        );
    }
    let config = SimConfig {
        polls_per_stage: 1,
        sp_report_bytes: 64 << 10,
        ads_extra_profiles: cli.ads,
        ads_rate_limit: (cli.ads_rps > 0.0).then_some((cli.ads_rps, 2.0 * cli.ads_rps)),
        sp_rate_limits: true,
        ..SimConfig::default()
    };
    // The definition's own retry intervals (a Throttled step waits 60 s, then longer), as deployed.
    let p = Pipeline::start(config, cli.concurrency)
        .await?
        .with_deployed_retries(cli.concurrency)
        .await?;
    let sm = aws_sdk_secretsmanager::Client::new(&p.aws.sdk_config().await);
    for i in 0..cli.sp {
        let mut value: Value = serde_json::from_str(&secret_value("na"))?;
        value["refreshToken"] = json!(format!("Atzr|bench-seller-{i:03}"));
        sm.create_secret()
            .name(format!("amzpipe/seller-{i:03}"))
            .secret_string(value.to_string())
            .send()
            .await?;
    }
    if let Some(days) = cli.repull_days {
        return repull_calendar(&cli, &p, &jobs, days).await;
    }
    let input = json!({ "scheduledTime": SCHEDULED, "jobsFile": put_jobs_file(&p.aws, "load-bench", &jobs).await? });

    let clock = Instant::now();
    let execution = p
        .execute_input("load-bench", &input, Duration::from_secs(cli.limit_minutes * 60))
        .await?;
    let wall = clock.elapsed();

    // Runs, by status and by source.
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut requested: HashMap<&str, usize> = HashMap::new();
    for job in &jobs {
        let ctx = RunContext::from_event(json!({ "job": job, "scheduledTime": SCHEDULED }))?;
        let run = p.services.store.run(&ctx.key).await?;
        let status = run.as_ref().map_or("NONE".to_owned(), |r| r.status.to_string());
        if let Some(reason) = run.as_ref().and_then(|r| r.failure_reason.clone()) {
            let reason: String = reason.chars().take(120).collect();
            *failures.entry(reason).or_default() += 1;
        }
        *statuses.entry(status).or_default() += 1;
        if run.is_some_and(|r| r.request_id.is_some() || r.status == RunStatus::Succeeded) {
            *requested.entry(ctx.job.source.kind()).or_default() += 1;
        }
    }
    let done = statuses.get("SUCCEEDED").copied().unwrap_or(0) + statuses.get("NO_DATA").copied().unwrap_or(0);

    // Amazon's side.
    let requests = p.sim.requests();
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    let mut throttled: BTreeMap<String, usize> = BTreeMap::new();
    for r in &requests {
        *calls.entry(r.op.clone()).or_default() += 1;
        if r.status == 429 {
            *throttled.entry(r.op.clone()).or_default() += 1;
        }
    }
    // AMC queues a create past its ten running executions instead of refusing it: the simulator
    // counts the creates made while ten of the instance's executions were active.
    let too_many_running = p.sim.amc_creates_over_limit() as usize;
    let violations = p.sim.quota_refusals() as usize + too_many_running;
    let (sp, ads, amc) = p.sim.created_counts();
    let duplicates = [
        ("SP-API reports", sp, requested.get("sp-reports").copied().unwrap_or(0)),
        ("Ads reports", ads, requested.get("ads-reports").copied().unwrap_or(0)),
        ("AMC executions", amc, requested.get("amc").copied().unwrap_or(0)),
    ];
    let duplicate_total: usize = duplicates
        .iter()
        .map(|(_, made, runs)| made.saturating_sub(*runs))
        .sum();

    // Step Functions' side.
    let invocations = p.router.invocations();
    let mut children: HashMap<(String, String), Vec<&Invocation>> = HashMap::new();
    for i in &invocations {
        let job = i.input["job"]["name"].as_str().unwrap_or_default().to_owned();
        let slice = match i.function.as_str() {
            "refresh-token" => "job".to_owned(),
            _ => i.input["slice"].to_string(),
        };
        children.entry((job, slice)).or_default().push(i);
    }
    let peak_child = children.values().map(|v| child_history(v)).max().unwrap_or(0);
    let peak_input = invocations.iter().map(|i| i.payload_bytes.0).max().unwrap_or(0);
    let peak_output = invocations.iter().map(|i| i.payload_bytes.1).max().unwrap_or(0);
    let parent_payload = execution
        .history
        .iter()
        .flat_map(|e| e.as_object().into_iter().flat_map(|o| o.values()))
        .filter_map(|details| {
            ["input", "output"]
                .iter()
                .filter_map(|k| details.get(*k).and_then(Value::as_str).map(str::len))
                .max()
        })
        .max()
        .unwrap_or(0);

    println!();
    println!(
        "execution            {} in {:.1} s",
        execution.status,
        wall.as_secs_f64()
    );
    println!(
        "jobs done            {done} of {} (runs by status: {statuses:?})",
        jobs.len()
    );
    for (reason, n) in &failures {
        println!("  {n} × {reason}");
    }
    println!("Amazon calls         {} in all", requests.len());
    for (op, n) in &calls {
        println!("  {op:<32} {n:>6}");
    }
    println!(
        "429s received        {} {throttled:?}",
        throttled.values().sum::<usize>()
    );
    println!(
        "quota violations     {violations} (SP-API usage-plan refusals {}, AMC creates while 10 of the instance's executions were active {too_many_running})",
        p.sim.quota_refusals()
    );
    for (kind, made, runs) in duplicates {
        println!("  {kind:<18} made {made:>5} for {runs:>5} runs");
    }
    println!("duplicate requests   {duplicate_total}");
    println!(
        "history              parent {} events (moto); largest child {peak_child} events (counted; {} children)",
        execution.history.len(),
        children.len()
    );
    println!(
        "largest payload      parent {parent_payload} B; Lambda input {peak_input} B, output {peak_output} B (limit 262,144 B)"
    );
    println!("Amazon quotas held   {}", if violations == 0 { "yes" } else { "NO" });
    if violations > 0 || duplicate_total > 0 || done != jobs.len() {
        return Err(format!(
            "violations {violations}, duplicates {duplicate_total}, {done} of {} jobs done",
            jobs.len()
        )
        .into());
    }
    Ok(())
}

/// The re-pull calendar: the `repull` Ads jobs fired on `days` consecutive days, one execution a day
/// (the simulated days end yesterday, so that every day asked for is within Ads' retention). Prints,
/// per day, the Ads requests and the most any profile and report type received, and at the end the
/// quota violations and duplicate requests; fails unless both are 0 and no profile and report type
/// got more than 2 requests on a day.
async fn repull_calendar(cli: &Cli, p: &Pipeline, jobs: &[Value], days: u32) -> BenchResult<()> {
    let today = chrono::Utc::now().date_naive();
    let mut worst_per_day = 0;
    let mut requested_runs = 0;
    let clock = Instant::now();
    for d in 0..days {
        let day = today - chrono::Duration::days(i64::from(days - d));
        let scheduled = format!("{day}T06:00:00Z");
        let before = p.sim.requests_of("ads.createReport").len();
        let input = json!({ "scheduledTime": scheduled, "jobsFile": put_jobs_file(&p.aws, &format!("repull-{d}"), jobs).await? });
        let day_clock = Instant::now();
        let execution = p
            .execute_input(
                &format!("repull-{day}"),
                &input,
                Duration::from_secs(cli.limit_minutes * 60),
            )
            .await?;
        let creates = p.sim.requests_of("ads.createReport");
        let mut per_profile: HashMap<(String, String), usize> = HashMap::new();
        for r in creates.iter().skip(before).filter(|r| r.status < 300) {
            let profile = r
                .headers
                .get("amazon-advertising-api-scope")
                .cloned()
                .unwrap_or_default();
            let body: Value = serde_json::from_str(&r.body).unwrap_or_default();
            let report = body["configuration"]["reportTypeId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            *per_profile.entry((profile, report)).or_default() += 1;
        }
        let most = per_profile.values().copied().max().unwrap_or(0);
        worst_per_day = worst_per_day.max(most);
        let mut done = 0;
        for job in jobs {
            let first = RunContext::from_event(json!({ "job": job, "scheduledTime": scheduled }))?;
            for slice in 0..first.job.windows(first.scheduled)?.len() {
                let ctx = RunContext::from_event(json!({ "job": job, "scheduledTime": scheduled, "slice": slice }))?;
                let run = p.services.store.run(&ctx.key).await?;
                if run
                    .as_ref()
                    .is_some_and(|r| matches!(r.status, RunStatus::Succeeded | RunStatus::NoData))
                {
                    done += 1;
                }
                if run.is_some_and(|r| r.request_id.is_some() || r.status == RunStatus::Succeeded) {
                    requested_runs += 1;
                }
            }
        }
        println!(
            "  {day}  {}  {done} runs done  {} Ads requests  at most {most} per profile and report type  {:.0} s",
            execution.status,
            creates.len() - before,
            day_clock.elapsed().as_secs_f64()
        );
    }
    let violations = p.sim.quota_refusals() as usize + p.sim.amc_creates_over_limit() as usize;
    let (_, ads, _) = p.sim.created_counts();
    let duplicates = ads.saturating_sub(requested_runs);
    println!();
    println!(
        "re-pull calendar     {days} days × {} Ads profiles in {:.0} s",
        jobs.len(),
        clock.elapsed().as_secs_f64()
    );
    println!("requests per profile, report type and day: at most {worst_per_day} (Amazon recommends 1-2)");
    println!("quota violations     {violations}");
    println!("duplicate requests   {duplicates} ({ads} Ads reports made for {requested_runs} runs)");
    if violations > 0 || duplicates > 0 || worst_per_day > 2 {
        return Err(format!("violations {violations}, duplicates {duplicates}, {worst_per_day} requests a day").into());
    }
    Ok(())
}
