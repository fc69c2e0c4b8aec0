//! `local-stack`: the pipeline's backing on this machine: the Amazon API simulator, and a local AWS
//! (moto server) with the job table, the output bucket and the credentials secret `amzpipe/local`
//! created as the SAM template creates them, plus the state machine from
//! `infra/statemachine/pipeline.asl.json` on moto's interpreter. Its Lambda tasks go to the real
//! function binaries under `cargo lambda watch` (`make watch`, port 9000), or with `--in-process` to
//! the steps inside this process (nothing else to start). Writes the stack's environment to
//! `target/local/stack.env` (read by `make watch` and by `amzpipectl --env-file`) and runs until Ctrl-C.
//!
//! ```sh
//! cargo run -p amzpipe-testkit --bin local-stack      # terminal 1
//! make watch                                           # terminal 2: the four functions on :9000
//! cargo lambda invoke create-request --data-file events/sp-reports.json   # terminal 3
//! cargo run -p amzpipe-cli -- --env-file target/local/stack.env run --job events/ads-reports.json
//! ```

use std::path::PathBuf;

use amzpipe_testkit::sim::{SimConfig, Simulator};
use amzpipe_testkit::stack::{self, BUCKET, Pipeline, SECRET, TABLE};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Starts the Amazon API simulator, a local AWS and the state machine for local runs")]
struct Cli {
    /// Simulator port.
    #[arg(long, default_value_t = 9400)]
    sim_port: u16,
    /// Where the stack's environment is written.
    #[arg(long, default_value = "target/local/stack.env")]
    env_file: PathBuf,
    /// Where the state machine's Lambda tasks go: the local Lambda emulator of `make watch`.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    functions_url: String,
    /// Answer the state machine's Lambda tasks with the steps in this process instead.
    #[arg(long)]
    in_process: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let sim = Simulator::start_on(&format!("127.0.0.1:{}", cli.sim_port), SimConfig::default()).await?;
    let remote = (!cli.in_process).then(|| cli.functions_url.clone());
    let pipeline = Pipeline::around(sim, 10, remote).await?;
    stack::write_stack_env(&cli.env_file, &pipeline.sim, &pipeline.aws, Some(&pipeline.machine))?;
    println!("Amazon API simulator: {}", pipeline.sim.base_url());
    println!(
        "local AWS (moto):     {}  table {TABLE}, bucket {BUCKET}, secret {SECRET}",
        pipeline.aws.endpoint()
    );
    println!("state machine:        {}", pipeline.machine);
    println!(
        "its Lambda tasks go to {}",
        if cli.in_process {
            "the steps in this process"
        } else {
            cli.functions_url.as_str()
        }
    );
    println!("environment written to {}", cli.env_file.display());
    println!();
    if !cli.in_process {
        println!("Next, in another terminal:  make watch");
        println!("then invoke a step:         cargo lambda invoke refresh-token --data-file events/sp-reports.json");
    }
    println!(
        "or operate it:              cargo run -p amzpipe-cli -- --env-file {} status",
        cli.env_file.display()
    );
    println!("Ctrl-C stops the simulator and the local AWS.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
