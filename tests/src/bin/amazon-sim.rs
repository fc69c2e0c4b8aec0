//! `amazon-sim`: the Amazon API simulator as a process (for the local demo and manual runs).
//!
//! `amazon-sim --port 9400 [--config sim.json]` serves LWA (`/auth/o2/token`), SP-API Reports,
//! Ads reporting v3 and AMC at `http://127.0.0.1:9400`, and Slate at `http://127.0.0.1:9400/apis`.
//! Scenarios (faults, outcomes) are posted to `/_sim/scenario`; see the `sim` module docs.

use std::path::PathBuf;

use amzpipe_testkit::sim::{SimConfig, Simulator};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Simulates the Amazon APIs (LWA, SP-API Reports, Ads v3, AMC, Slate) on loopback")]
struct Cli {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 9400)]
    port: u16,
    /// A JSON file with the simulator configuration (camelCase fields of `SimConfig`).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let config: SimConfig = match &cli.config {
        Some(path) => serde_json::from_slice(&std::fs::read(path)?)?,
        None => SimConfig::default(),
    };
    let sim = Simulator::start_on(&format!("127.0.0.1:{}", cli.port), config).await?;
    println!(
        "amazon-sim listening on {} (Slate at {})",
        sim.base_url(),
        sim.slate_url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
