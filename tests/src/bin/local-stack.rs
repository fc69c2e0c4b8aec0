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
    let settings = stack::settings(&sim);
    let endpoint = |value: Option<String>| value.unwrap_or_default();
    let env = [
        ("AMZPIPE_TABLE", TABLE.to_owned()),
        ("AMZPIPE_BUCKET", BUCKET.to_owned()),
        ("AMZPIPE_LWA_URL", endpoint(settings.endpoints.lwa)),
        ("AMZPIPE_SP_API_URL", endpoint(settings.endpoints.sp_api)),
        ("AMZPIPE_ADS_API_URL", endpoint(settings.endpoints.ads_api)),
        ("AMZPIPE_SLATE_URL", endpoint(settings.endpoints.slate)),
        ("AMZPIPE_MAX_WAIT_SECONDS", "1".to_owned()),
        ("AWS_ENDPOINT_URL", aws.endpoint().to_owned()),
        ("AWS_REGION", amzpipe_testkit::moto::REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ];
    let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    if let Some(dir) = cli.env_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&cli.env_file, text)?;
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
