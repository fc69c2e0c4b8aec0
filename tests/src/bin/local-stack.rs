//! `local-stack`: the pipeline's backing on this machine, for running the real Lambda functions under
//! `cargo lambda watch`: the Amazon API simulator and a local AWS (moto server) with the job table,
//! the output bucket and the credentials secret `amzpipe/local`, created as the SAM template creates
//! them. Writes the functions' environment to `target/local/functions.env` and runs until Ctrl-C.
//!
//! ```sh
//! cargo run -p amzpipe-testkit --bin local-stack      # terminal 1
//! make watch                                           # terminal 2: the four functions on :9000
//! cargo lambda invoke create-request --data-file events/sp-reports.json   # terminal 3
//! ```

use std::path::PathBuf;

use amzpipe_testkit::moto::LocalAws;
use amzpipe_testkit::sim::{SimConfig, Simulator};
use amzpipe_testkit::stack::{self, BUCKET, SECRET, TABLE};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Starts the Amazon API simulator and a local AWS for the functions under `cargo lambda watch`")]
struct Cli {
    /// Simulator port.
    #[arg(long, default_value_t = 9400)]
    sim_port: u16,
    /// Where the functions' environment is written.
    #[arg(long, default_value = "target/local/functions.env")]
    env_file: PathBuf,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let sim = Simulator::start_on(&format!("127.0.0.1:{}", cli.sim_port), SimConfig::default()).await?;
    let aws = LocalAws::start().await?;
    stack::provision(&aws).await?;
    stack::write_functions_env(&cli.env_file, &sim, &aws)?;
    println!("Amazon API simulator: {}", sim.base_url());
    println!(
        "local AWS (moto):     {}  table {TABLE}, bucket {BUCKET}, secret {SECRET}",
        aws.endpoint()
    );
    println!("functions' environment written to {}", cli.env_file.display());
    println!();
    println!("Next, in another terminal:  make watch");
    println!("then invoke a step:         cargo lambda invoke refresh-token --data-file events/sp-reports.json");
    println!("Ctrl-C stops the simulator and the local AWS.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
