//! `make demo`: the whole pipeline on this machine, with no AWS account and no Amazon credentials.
//!
//! 1. Starts the Amazon API simulator (all four sources and Login with Amazon; a request moves one
//!    stage per status check, so hour-long Amazon waits take seconds), a local AWS (moto server: S3,
//!    DynamoDB, Secrets Manager, KMS, Step Functions), and the four real Lambda binaries — the ones
//!    `cargo build` left next to this one — each polling a Lambda Runtime API served here, as in Lambda.
//! 2. Creates the job table, the bucket, the credentials secret and the token key as the SAM template does.
//! 3. Creates the state machine from `infra/statemachine/pipeline.asl.json` (the file SAM deploys, its
//!    substitutions filled in) on moto's interpreter. Its Lambda tasks reach the functions through a
//!    small router that answers as Lambda's Invoke API does (a handler error is 200 +
//!    `X-Amz-Function-Error`), so `Retry`/`Catch` by error name behave as in AWS.
//! 4. Fires a schedule as EventBridge Scheduler would (its firing handed to the refresh-token binary,
//!    which starts the execution under the schedule's name and time), with a job per source
//!    (`events/*.json`), printing the steps as they happen, then the objects written, their sizes, row
//!    counts and manifests, and a SQL query over each table.
//! 5. Runs the Ads job on three days in a row with a two-day lookback, then a backfill and a re-run of
//!    one day, and shows with SQL that each data day's rows are read once, the latest run's.
//! 6. Runs a `repull` Ads job over a simulated month (thirty daily firings, one report failed by
//!    Amazon, one firing missed), then prints the state of every day (`amzpipectl status --days`'s
//!    grid) and queries the `_day_status` table; then stops everything.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amzpipe_testkit::lambda_host::binaries_dir;
use amzpipe_testkit::moto::LocalAws;
use amzpipe_testkit::sfn::Invocation;
use amzpipe_testkit::sim::{SimConfig, Simulator};
use amzpipe_testkit::stack::{Answer, BUCKET, GLUE_DATABASE, Pipeline, SECRET};
use clap::Parser;
use serde_json::{Value, json};

/// The schedule the demo fires, as if EventBridge Scheduler did.
const DEMO_SCHEDULE: &str = "demo-daily";

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(about = "Runs the pipeline's state machine locally: simulator, moto, the real function binaries")]
struct Cli {
    /// Size of the simulated SP-API report in MiB (a 2021-06-30 document: gzip-compressed).
    #[arg(long, default_value_t = 64)]
    sp_api_mib: u64,
    /// Where the demo writes the functions' logs.
    #[arg(long, default_value = "target/demo")]
    dir: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn job_of(path: &Path) -> DemoResult<Value> {
    let event: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    Ok(event["job"].clone())
}

/// The job name in a run id (`sp-orders-daily_20261122T0000Z_…` → `sp-orders-daily`).
fn job_name(run_id: &str) -> &str {
    run_id.split('_').next().unwrap_or(run_id)
}

/// Prints the steps' answers not printed yet (the router in front of the functions sees every one: the
/// jobs and slices run as child executions, whose histories moto does not keep); returns how many
/// there are.
fn print_progress(invocations: &[Invocation], seen: usize) -> usize {
    for invocation in invocations.iter().skip(seen) {
        let p = &invocation.output;
        if let Some(error) = &invocation.error {
            println!(
                "  {:<26} {:<17} failed: {error} (the state machine retries or catches it by this name)",
                "", invocation.function
            );
            continue;
        }
        let Some(run_id) = p["runId"].as_str() else {
            if let Some(name) = p["executionName"].as_str() {
                println!(
                    "  {:<26} refresh-token     schedule fired: execution {name} started",
                    ""
                );
            } else if let Some(expires) = p["expiresAt"].as_str() {
                println!("  {:<26} refresh-token     access token ready (expires {expires})", "");
            }
            continue;
        };
        let job = job_name(run_id);
        match invocation.function.as_str() {
            "create-request" => println!(
                "  {job:<26} create-request    {} request {} (next check in {} s)",
                p["outcome"].as_str().unwrap_or("-"),
                p["requestId"].as_str().unwrap_or("-"),
                p["waitSeconds"]
            ),
            "poll-status" => println!(
                "  {job:<26} poll-status       {} (Amazon: {}, check {})",
                p["state"].as_str().unwrap_or("-"),
                p["amazonStatus"].as_str().unwrap_or("-"),
                p["polls"]
            ),
            "download-decrypt" if p["outcome"] == "CONTINUE" => println!(
                "  {job:<26} download-decrypt  the Lambda deadline came; {} documents kept, continuing",
                p["totals"]["documents"]
            ),
            "download-decrypt" => {
                let t = &p["totals"];
                println!(
                    "  {job:<26} download-decrypt  {} documents, {} bytes in, {} bytes stored, {} rows",
                    t["documents"], t["bytes_in"], t["bytes_out"], t["rows"]
                );
            }
            _ => {}
        }
    }
    invocations.len()
}

#[tokio::main]
async fn main() -> DemoResult<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.dir)?;
    let dir = std::fs::canonicalize(&cli.dir)?;
    let log = dir.join("functions.log");
    let _ = std::fs::remove_file(&log);
    let binaries = binaries_dir()?;
    println!("Starting the Amazon API simulator, a local AWS (moto) and the four function binaries");
    println!(
        "({}/{{refresh-token,create-request,poll-status,download-decrypt}})…",
        binaries.display()
    );
    let clock = Instant::now();
    let sim = Simulator::start(SimConfig {
        sp_report_bytes: cli.sp_api_mib << 20,
        ..SimConfig::default()
    })
    .await?;
    let pipeline = Pipeline::around(
        sim,
        4,
        Answer::Binaries {
            dir: binaries,
            log: log.clone(),
        },
    )
    .await?;
    println!("  ready in {:.1} s", clock.elapsed().as_secs_f64());
    let result = run(&pipeline).await;
    println!();
    println!("Stopping the functions, the local AWS and the simulator.");
    drop(pipeline);
    println!("The functions' JSON logs are in {}.", log.display());
    result
}

async fn run(pipeline: &Pipeline) -> DemoResult<()> {
    let sfn = &pipeline.sfn;
    let machine = &pipeline.machine;
    let events = workspace_root().join("events");
    let mut jobs = Vec::new();
    for name in ["sp-reports", "ads-reports", "amc", "slate"] {
        let mut job = job_of(&events.join(format!("{name}.json")))?;
        job["credentials"] = json!(SECRET);
        jobs.push(job);
    }
    let scheduled = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    println!();
    println!(
        "State machine {} (from infra/statemachine/pipeline.asl.json); one execution, {} jobs, scheduled {scheduled}:",
        machine.rsplit(':').next().unwrap_or(machine),
        jobs.len()
    );
    // The firing EventBridge Scheduler would deliver to refresh-token (the template's schedules' input),
    // which starts the execution under the schedule's name and the scheduled time.
    let firing = json!({
        "schedule": format!("arn:aws:scheduler:us-east-1:123456789012:schedule/default/{DEMO_SCHEDULE}"),
        "scheduledTime": scheduled,
        "jobs": jobs,
    });
    let started = pipeline.router.invoke("refresh-token", &firing).await?;
    let arn = started["executionArn"].as_str().ok_or("no execution ARN")?.to_owned();
    let clock = Instant::now();
    let mut seen = 0;
    let status = loop {
        seen = print_progress(&pipeline.router.invocations(), seen);
        let described = sfn.call("DescribeExecution", json!({"executionArn": arn})).await?;
        let status = described["status"].as_str().unwrap_or_default().to_owned();
        if status != "RUNNING" {
            print_progress(&pipeline.router.invocations(), seen);
            if status != "SUCCEEDED" {
                println!("  {}: {}", described["error"], described["cause"]);
            }
            break status;
        }
        if clock.elapsed() > Duration::from_secs(600) {
            return Err("the execution did not finish within ten minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!();
    println!("Execution {status} in {:.1} s.", clock.elapsed().as_secs_f64());
    let tables = print_objects(&pipeline.aws).await?;
    print_queries(&pipeline.aws, &tables)?;
    if let Some(ads) = jobs.iter().find(|j| j["source"]["type"] == "adsReports") {
        one_truth_per_day(pipeline, ads).await?;
        finality_month(pipeline, ads).await?;
    }
    println!();
    println!("Next: `make test` runs the test suite; to deploy to AWS, see the README (\"Deploying to AWS\":");
    println!("`sam build` and `sam deploy --guided`, then fill the credentials secret and enable a schedule).");
    if status == "SUCCEEDED" {
        Ok(())
    } else {
        Err(format!("the execution ended {status}").into())
    }
}

/// Runs the Ads job as a schedule with a lookback would, over days its earlier runs covered, then a
/// backfill and a re-run of one day, and shows with SQL that each day's rows are read once.
async fn one_truth_per_day(pipeline: &Pipeline, ads: &Value) -> DemoResult<()> {
    let today = chrono::Utc::now().date_naive();
    let day = |n: u64| today - chrono::Days::new(n);
    println!();
    println!(
        "One truth per data day: the Ads job asking for yesterday and the two days before, scheduled on {}, {} and {};",
        day(6),
        day(5),
        day(4)
    );
    println!(
        "then a backfill of {} to {} and a re-run of {}, each answer restating the figures:",
        day(8),
        day(6),
        day(6)
    );
    let mut job = ads.clone();
    job["window"] = json!({"rule": "yesterday", "lookbackDays": 2});
    let explicit = |name: &str, first: chrono::NaiveDate, days: u64| {
        let mut one = job.clone();
        one["name"] = json!(name);
        one["window"] = json!({"rule": "explicit", "start": format!("{first}T00:00:00Z"),
            "end": format!("{}T00:00:00Z", first + chrono::Days::new(days))});
        one
    };
    let runs = [
        (format!("lookback-{}", day(6)), day(6), job.clone()),
        (format!("lookback-{}", day(5)), day(5), job.clone()),
        (format!("lookback-{}", day(4)), day(4), job.clone()),
        ("backfill".to_owned(), day(4), explicit("ads-backfill", day(8), 3)),
        ("re-run".to_owned(), day(4), explicit("ads-rerun", day(6), 1)),
    ];
    for (name, scheduled, job) in runs {
        let clock = Instant::now();
        let execution = pipeline
            .execute(&name, &format!("{scheduled}T06:00:00Z"), &[job])
            .await
            .map_err(|e| format!("execution {name}: {e}"))?;
        println!(
            "  execution {name:<20} {} in {:.1} s",
            execution.status,
            clock.elapsed().as_secs_f64()
        );
        if execution.status != "SUCCEEDED" {
            return Err(format!("execution {name} ended {}", execution.status).into());
        }
    }
    let table = "ads_reports_spcampaigns";
    let sql = [
        format!(
            "SELECT dt, count(*) AS current_rows, sum(CAST(clicks AS BIGINT)) AS clicks FROM {table} GROUP BY dt ORDER BY dt"
        ),
        format!(
            "SELECT (SELECT count(*) FROM {table}) AS current_rows, count(*) AS rows_every_run_stored FROM {table}_history"
        ),
    ];
    let answers = amzpipe_testkit::sql::query(
        pipeline.aws.endpoint(),
        GLUE_DATABASE,
        &sql.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    print_answers(answers);
    println!();
    println!(
        "  Each day is read once, from the run requested last that covered it ({table}); every run's rows stay in"
    );
    println!("  {table}_history (README, \"One truth per data day\").");
    Ok(())
}

/// Runs the Ads job with the `repull` rule over a simulated month, Amazon failing one firing's report
/// and the schedule missing another, then shows the state of every day: the grid of `amzpipectl
/// status --days` and a query of the `_day_status` table.
async fn finality_month(pipeline: &Pipeline, ads: &Value) -> DemoResult<()> {
    const FIRINGS: i64 = 30;
    let (failed, missed) = (12, 20);
    let today = chrono::Utc::now().date_naive();
    let firing = |i: i64| today - chrono::Duration::days(FIRINGS - 1 - i);
    let mut job = ads.clone();
    job["name"] = json!("ads-repull-month");
    job["window"] = json!({"rule": "repull"});
    job["finality"] = json!({"repullDays": [3, 7], "finalAfterDays": 7});
    println!();
    println!(
        "Finality: the Ads job with the repull rule (pulled at ages 1, 3 and 7, final at 7: a short policy for the demo;"
    );
    println!(
        "the default is the README's) fired daily from {} to {}; Amazon fails the report of {} and the schedule",
        firing(0),
        firing(FIRINGS - 1),
        firing(failed)
    );
    println!("misses {}:", firing(missed));
    let clock = Instant::now();
    let mut line = String::new();
    for i in 0..FIRINGS {
        if i == missed {
            line.push_str(" (missed)");
            continue;
        }
        if i == failed {
            pipeline
                .sim
                .set_scenario(amzpipe_testkit::sim::Scenario::with_outcome("spCampaigns", "FAILED"));
        }
        let name = format!("repull-{}", firing(i));
        let execution = pipeline
            .execute(&name, &format!("{}T06:00:00Z", firing(i)), std::slice::from_ref(&job))
            .await
            .map_err(|e| format!("execution {name}: {e}"))?;
        if i == failed {
            pipeline.sim.set_scenario(amzpipe_testkit::sim::Scenario::default());
        }
        line.push_str(&format!(" {}", &firing(i).to_string()[8..]));
        if execution.status != "SUCCEEDED" && i != failed {
            return Err(format!("execution {name} ended {}", execution.status).into());
        }
    }
    println!(
        "  fired on{line}: {} executions in {:.0} s",
        FIRINGS - 1,
        clock.elapsed().as_secs_f64()
    );
    let (first, last) = (firing(0) - chrono::Duration::days(7), today - chrono::Duration::days(1));
    let records = pipeline
        .services
        .store
        .all_day_records(first, last, Some("ads-repull-month"))
        .await?;
    let grids = amzpipe::domain::day_grid::grids(records, first, last, today);
    println!();
    println!(
        "  amzpipectl status --days {} --job ads-repull-month:",
        (last - first).num_days() + 1
    );
    for text in amzpipe::domain::day_grid::render(&grids, first, last, false).lines() {
        println!("  {text}");
    }
    let sql = "SELECT status, cause, count(*) AS days, min(data_day) AS first_day, max(data_day) AS last_day \
               FROM ads_reports_spcampaigns_day_status WHERE status <> 'final' GROUP BY status, cause ORDER BY status";
    print_answers(amzpipe_testkit::sql::query(
        pipeline.aws.endpoint(),
        GLUE_DATABASE,
        &[sql],
    )?);
    println!();
    println!("  Every day is final once pulled at its final age; the day whose final pull Amazon failed, and the one");
    println!("  whose final pull fell on the missed firing, are overdue, each with its cause (README, \"Finality\").");
    Ok(())
}

/// Prints the objects and the manifests; returns the catalog tables the manifests name.
async fn print_objects(aws: &LocalAws) -> DemoResult<Vec<String>> {
    let s3 = aws.s3().await;
    println!();
    println!("Objects in s3://{BUCKET}/ (local):");
    println!("  {:>12}  key", "bytes");
    let mut manifests = Vec::new();
    let mut tables = Vec::new();
    for (key, size) in aws.objects(BUCKET).await? {
        println!("  {size:>12}  {key}");
        if key.ends_with("/_manifest.json") {
            manifests.push(key);
        }
    }
    println!();
    println!("Manifests (written last; a run is complete once its manifest exists):");
    println!(
        "  {:<26} {:>8} {:>12} {:>10}  manifest",
        "job", "objects", "bytes", "rows"
    );
    for key in manifests {
        let body = s3
            .get_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await?
            .body
            .collect()
            .await?;
        let manifest: Value = serde_json::from_slice(&body.into_bytes())?;
        if let Some(table) = manifest["table"]["table"].as_str() {
            tables.push(table.to_owned());
        }
        let t = &manifest["totals"];
        let number = |v: &Value| v.as_u64().unwrap_or_default();
        println!(
            "  {:<26} {:>8} {:>12} {:>10}  s3://{BUCKET}/{key}",
            manifest["context"]["job"].as_str().unwrap_or("?"),
            number(&t["objects"]),
            number(&t["bytes_out"]),
            number(&t["rows"])
        );
    }
    tables.sort();
    tables.dedup();
    Ok(tables)
}

/// Queries each table as Athena would (the catalog's definition alone, by DuckDB) and prints the SQL
/// and its answer.
fn print_queries(aws: &LocalAws, tables: &[String]) -> DemoResult<()> {
    println!();
    println!(
        "Tables in the Glue database {GLUE_DATABASE} (partition projection: no crawler, no partition registered),"
    );
    println!(
        "queried with SQL as Athena would read them (tests/sql/athena_local.py: DuckDB over the catalog's definitions):"
    );
    let mut sql: Vec<String> = tables
        .iter()
        .map(|t| format!("SELECT account, dt, count(*) AS row_count FROM {t} GROUP BY account, dt ORDER BY dt"))
        .collect();
    // A changelog's current state: its view (one row per key, deletions left out).
    sql.extend(tables.iter().filter(|t| t.starts_with("slate_")).map(|t| {
        format!("SELECT count(*) AS rows_in_changelog, (SELECT count(*) FROM {t}_current) AS current_rows FROM {t}")
    }));
    let answers = amzpipe_testkit::sql::query(
        aws.endpoint(),
        GLUE_DATABASE,
        &sql.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    print_answers(answers);
    Ok(())
}

/// Prints each statement and its answer.
fn print_answers(answers: Vec<amzpipe_testkit::sql::Answer>) {
    for answer in answers {
        println!();
        println!("  sql> {}", answer.sql);
        println!("  {}", answer.columns.join(" | "));
        for row in answer.rows {
            let cells: Vec<&str> = row.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
            println!("  {}", cells.join(" | "));
        }
    }
}
