//! `local-stack`: the pipeline's backing on this machine: the Amazon API simulator, and a local AWS
//! (moto server) with the job table, the output bucket, the credentials secret `amzpipe/local` and the
//! token key created as the SAM template creates them, plus the state machine from
//! `infra/statemachine/pipeline.asl.json` on moto's interpreter. Its Lambda tasks go to the real
//! function binaries (built by `cargo build`, each behind a Lambda Runtime API served here), which
//! also answer the Lambda Invoke API on port 9000 (`cargo lambda invoke`, `aws lambda invoke
//! --endpoint-url`); or, with `--in-process`, to the steps inside this process; or, with
//! `--functions-url`, to another local Lambda emulator (`make watch`). Writes the stack's environment
//! to `target/local/stack.env` (read by `make watch` and by `amzpipectl --env-file`) and runs until
//! Ctrl-C.
//!
//! ```sh
//! make local-stack                                     # terminal 1 (builds the functions first)
//! cargo lambda invoke create-request -A 127.0.0.1 --data-file events/sp-reports.json   # terminal 2
//! cargo run -p amzpipe-cli -- --env-file target/local/stack.env run --job events/ads-reports.json
//! ```

use std::path::PathBuf;

use amzpipe_testkit::lambda_host::binaries_dir;
use amzpipe_testkit::sfn::{Functions, LambdaRouter};
use amzpipe_testkit::sim::{SimConfig, Simulator};
use amzpipe_testkit::stack::{self, Answer, BUCKET, Pipeline, SECRET, TABLE};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Starts the Amazon API simulator, a local AWS, the functions and the state machine for local runs")]
struct Cli {
    /// Simulator port.
    #[arg(long, default_value_t = 9400)]
    sim_port: u16,
    /// Where the stack's environment is written.
    #[arg(long, default_value = "target/local/stack.env")]
    env_file: PathBuf,
    /// The port of the Lambda Invoke API serving the function binaries.
    #[arg(long, default_value_t = 9000)]
    lambda_port: u16,
    /// Send the state machine's Lambda tasks to this local Lambda emulator instead (`make watch`:
    /// http://127.0.0.1:9000).
    #[arg(long, conflicts_with = "in_process")]
    functions_url: Option<String>,
    /// Answer the state machine's Lambda tasks with the steps in this process instead.
    #[arg(long)]
    in_process: bool,
    /// Where the function binaries' logs go.
    #[arg(long, default_value = "target/local/functions.log")]
    log: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let sim = Simulator::start_on(&format!("127.0.0.1:{}", cli.sim_port), SimConfig::default()).await?;
    let answer = match (&cli.functions_url, cli.in_process) {
        (Some(url), _) => Answer::Remote(url.clone()),
        (None, true) => Answer::InProcess,
        (None, false) => {
            if let Some(dir) = cli.log.parent() {
                std::fs::create_dir_all(dir)?;
            }
            Answer::Binaries {
                dir: binaries_dir()?,
                log: cli.log.clone(),
            }
        }
    };
    let pipeline = Pipeline::around(sim, 10, answer).await?;
    let _invoke_api = match &pipeline.host {
        Some(host) => Some(
            LambdaRouter::start(
                cli.lambda_port,
                pipeline.aws.endpoint(),
                Functions::Hosted(std::sync::Arc::clone(host)),
            )
            .await?,
        ),
        None => None,
    };
    stack::write_stack_env(&cli.env_file, &pipeline.sim, &pipeline.aws, Some(&pipeline.machine))?;
    println!("Amazon API simulator: {}", pipeline.sim.base_url());
    println!(
        "local AWS (moto):     {}  table {TABLE}, bucket {BUCKET}, secret {SECRET}",
        pipeline.aws.endpoint()
    );
    println!("state machine:        {}", pipeline.machine);
    match (&cli.functions_url, cli.in_process) {
        (Some(url), _) => println!("its Lambda tasks go to {url} (start it: make watch)"),
        (None, true) => println!("its Lambda tasks go to the steps in this process"),
        (None, false) => {
            println!(
                "its Lambda tasks go to the function binaries in {}, logs in {}",
                binaries_dir()?.display(),
                cli.log.display()
            );
            println!(
                "Lambda Invoke API:    http://127.0.0.1:{}  (cargo lambda invoke create-request -A 127.0.0.1 --data-file events/sp-reports.json)",
                cli.lambda_port
            );
        }
    }
    println!("environment written to {}", cli.env_file.display());
    println!();
    println!(
        "Operate it:           cargo run -p amzpipe-cli -- --env-file {} status",
        cli.env_file.display()
    );
    println!("Ctrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
