//! `make demo`: the whole pipeline on this machine, with no AWS account and no Amazon credentials.
//!
//! 1. Starts the Amazon API simulator (all four sources and Login with Amazon; a request moves one
//!    stage per status check, so hour-long Amazon waits take seconds), a local AWS (moto server: S3,
//!    DynamoDB, Secrets Manager, Step Functions), and the four real Lambda binaries under
//!    `cargo lambda watch`.
//! 2. Creates the job table, the bucket and the credentials secret as the SAM template does.
//! 3. Creates the state machine from `infra/statemachine/pipeline.asl.json` (the file SAM deploys, its
//!    substitutions filled in) on moto's interpreter. Its Lambda tasks reach the functions through a
//!    small router that also turns `cargo lambda watch`'s error answer (HTTP 500) into real Lambda's
//!    (200 + `X-Amz-Function-Error`), so `Retry`/`Catch` by error name behave as in AWS.
//! 4. Runs one execution with a job per source (`events/*.json`), printing the steps as they happen,
//!    then the objects written, their sizes, row counts and manifests; then stops everything.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use amzpipe_testkit::moto::{LocalAws, free_port};
use amzpipe_testkit::sfn::{FUNCTIONS, Functions, LambdaRouter, StepFunctions, local_definition};
use amzpipe_testkit::sim::{SimConfig, Simulator};
use amzpipe_testkit::stack::{self, BUCKET, SECRET, TABLE};
use clap::Parser;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

#[derive(Parser)]
#[command(
    about = "Runs the pipeline's state machine locally: simulator, moto, the real functions under cargo lambda watch"
)]
struct Cli {
    /// Size of the simulated SP-API report in MiB (delivered AES-256-CBC encrypted, as the retired format was).
    #[arg(long, default_value_t = 64)]
    sp_api_mib: u64,
    /// Where the demo writes the functions' environment and logs.
    #[arg(long, default_value = "target/demo")]
    dir: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `cargo lambda watch` in a process group of its own, stopped with the whole group.
struct Watch {
    child: Child,
}

impl Watch {
    async fn start(port: u16, env_file: &Path, log: &Path) -> DemoResult<Self> {
        let root = workspace_root();
        let venv_bin = root.join(".venv/bin");
        let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
        let log = std::fs::File::create(log)?;
        let child = Command::new(venv_bin.join("cargo-lambda"))
            .args([
                "lambda",
                "watch",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
                "--env-file",
            ])
            .arg(env_file)
            .current_dir(&root)
            .env("PATH", path)
            // cargo-lambda builds with an environment that changes the build scripts of ring and the TLS
            // crates; a target directory of its own keeps it from rebuilding them after every `cargo build`.
            .env("CARGO_TARGET_DIR", root.join("target/lambda-watch"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start cargo lambda watch (run `make tools`): {e}"))?;
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if started.elapsed() > Duration::from_secs(120) {
                return Err("cargo lambda watch did not start listening".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(Self { child })
    }

    /// Invokes each function once with an empty event (each answers `InvalidJob`), so that
    /// `cargo lambda watch` builds and starts them all before the state machine needs them.
    async fn warm_up(port: u16) -> DemoResult<()> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(1800)).build()?;
        for function in FUNCTIONS {
            let started = Instant::now();
            let answer = http
                .post(format!(
                    "http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations"
                ))
                .body("{}")
                .send()
                .await?;
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            println!(
                "  {function:<17} ready in {:>5.1} s (an empty event answers {})",
                started.elapsed().as_secs_f64(),
                body["errorType"].as_str().unwrap_or("?")
            );
        }
        Ok(())
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args(["-TERM", &format!("-{pid}")]).status().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

fn job_of(path: &Path) -> DemoResult<Value> {
    let event: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    Ok(event["job"].clone())
}

/// The job name in a run id (`sp-orders-daily_20261122T0000Z_…` → `sp-orders-daily`).
fn job_name(run_id: &str) -> &str {
    run_id.split('_').next().unwrap_or(run_id)
}

/// Prints the history events not printed yet; returns how many there are.
fn print_progress(history: &[Value], seen: usize) -> usize {
    for event in history.iter().skip(seen) {
        let kind = event["type"].as_str().unwrap_or_default();
        if kind == "TaskSucceeded" {
            let output = event["taskSucceededEventDetails"]["output"].as_str().unwrap_or("{}");
            let output: Value = serde_json::from_str(output).unwrap_or(Value::Null);
            let p = output.get("Payload").unwrap_or(&output);
            let Some(run_id) = p["runId"].as_str() else {
                if let Some(expires) = p["expiresAt"].as_str() {
                    println!("  {:<26} refresh-token     access token ready (expires {expires})", "");
                }
                continue;
            };
            let job = job_name(run_id);
            if let Some(outcome) = p["outcome"].as_str() {
                println!(
                    "  {job:<26} create-request    {outcome} request {} (next check in {} s)",
                    p["requestId"].as_str().unwrap_or("-"),
                    p["waitSeconds"]
                );
            } else if let Some(state) = p["state"].as_str() {
                println!(
                    "  {job:<26} poll-status       {state} (Amazon: {}, check {})",
                    p["amazonStatus"].as_str().unwrap_or("-"),
                    p["polls"]
                );
            } else if p.get("totals").is_some() {
                let t = &p["totals"];
                println!(
                    "  {job:<26} download-decrypt  {} documents, {} bytes in, {} bytes stored, {} rows",
                    t["documents"], t["bytes_in"], t["bytes_out"], t["rows"]
                );
            }
        } else if kind == "TaskFailed" {
            let details = &event["taskFailedEventDetails"];
            println!(
                "  {:<26} a step failed      {} (the state machine retries or catches it by this name)",
                "",
                details["error"].as_str().unwrap_or("?")
            );
        }
    }
    history.len()
}

#[tokio::main]
async fn main() -> DemoResult<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.dir)?;
    let dir = std::fs::canonicalize(&cli.dir)?;
    println!("Starting the Amazon API simulator, a local AWS (moto) and the four functions (cargo lambda watch)…");
    println!("(The first run builds the functions under target/lambda-watch/: a few minutes on 2 cores.)");
    let sim = Simulator::start(SimConfig {
        sp_report_bytes: cli.sp_api_mib << 20,
        sp_legacy_documents: true,
        ..SimConfig::default()
    })
    .await?;
    let router_port = free_port()?;
    let aws = LocalAws::start_with_callback_port(Some(router_port)).await?;
    aws.enable_state_machines().await?;
    stack::provision(&aws).await?;

    let env_file = dir.join("functions.env");
    stack::write_stack_env(&env_file, &sim, &aws, None)?;
    let lambda_port = free_port()?;
    let log = dir.join("functions.log");
    let watch = Watch::start(lambda_port, &env_file, &log).await?;
    let result = match Watch::warm_up(lambda_port).await {
        Ok(()) => run(&aws, router_port, lambda_port).await,
        Err(e) => Err(e),
    };
    println!();
    println!("Stopping the functions, the local AWS and the simulator.");
    watch.stop().await;
    drop(aws);
    drop(sim);
    println!("The functions' JSON logs are in {}.", log.display());
    result
}

async fn run(aws: &LocalAws, router_port: u16, lambda_port: u16) -> DemoResult<()> {
    let _router = LambdaRouter::start(
        router_port,
        aws.endpoint(),
        Functions::Remote(format!("http://127.0.0.1:{lambda_port}")),
    )
    .await?;
    let sfn = StepFunctions::new(aws.endpoint());
    let machine = sfn
        .create("amzpipe-pipeline", &local_definition(TABLE, 4, false)?)
        .await?;
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
        machine.rsplit(':').next().unwrap_or(&machine),
        jobs.len()
    );
    let input = json!({ "scheduledTime": scheduled, "jobs": jobs });
    let started = sfn
        .call(
            "StartExecution",
            json!({"stateMachineArn": machine, "name": "demo", "input": input.to_string()}),
        )
        .await?;
    let arn = started["executionArn"].as_str().ok_or("no execution ARN")?.to_owned();
    let clock = Instant::now();
    let mut seen = 0;
    let status = loop {
        let history = sfn
            .call("GetExecutionHistory", json!({"executionArn": arn, "maxResults": 1000}))
            .await?;
        seen = print_progress(history["events"].as_array().map_or(&[][..], Vec::as_slice), seen);
        let described = sfn.call("DescribeExecution", json!({"executionArn": arn})).await?;
        let status = described["status"].as_str().unwrap_or_default().to_owned();
        if status != "RUNNING" {
            let history = sfn
                .call("GetExecutionHistory", json!({"executionArn": arn, "maxResults": 1000}))
                .await?;
            print_progress(history["events"].as_array().map_or(&[][..], Vec::as_slice), seen);
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
    print_objects(aws).await?;
    println!();
    println!("Next: `make test` runs the test suite; to deploy to AWS, see the README (\"Deploying to AWS\":");
    println!("`sam build` and `sam deploy --guided`, then fill the credentials secret and enable a schedule).");
    if status == "SUCCEEDED" {
        Ok(())
    } else {
        Err(format!("the execution ended {status}").into())
    }
}

async fn print_objects(aws: &LocalAws) -> DemoResult<()> {
    let s3 = aws.s3().await;
    println!();
    println!("Objects in s3://{BUCKET}/ (local):");
    println!("  {:>12}  key", "bytes");
    let mut manifests = Vec::new();
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
    Ok(())
}
