//! `amzpipectl`: the operator's command line for the amzpipe pipeline.
//!
//! Onboard a seller's or advertiser's credentials, discover what they reach (and write job
//! definitions), run a job now or backfill it over a date range and watch it, see the runs in the
//! job table, and keep AMC's saved workflows in step with a directory of SQL files. It works against
//! a deployed stack (`--stack`: names from its outputs) and against the local stack
//! (`--env-file target/local/stack.env`).

mod context;
mod days;
mod discover;
mod error;
mod onboard;
mod output;
mod plan;
mod runs;
mod status;
mod workflows;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::context::{Context, Env, Names};
use crate::error::CliResult;

/// The operator's command line for the amzpipe pipeline (Amazon data into your S3).
#[derive(Debug, Parser)]
#[command(name = "amzpipectl", version, propagate_version = true)]
#[command(after_help = "\
Where things are: --stack reads the job table and the state machine from the CloudFormation stack's \
outputs (AWS credentials and region from the usual AWS configuration). --table and --state-machine, or \
AMZPIPE_TABLE and AMZPIPE_STATE_MACHINE_ARN, name them directly. Against the local stack: \
--env-file target/local/stack.env.")]
struct Cli {
    /// The deployed CloudFormation stack (env: AMZPIPE_STACK).
    #[arg(long, global = true, value_name = "NAME")]
    stack: Option<String>,
    /// The job table (env: AMZPIPE_TABLE); default: the stack's JobTableName output.
    #[arg(long, global = true, value_name = "NAME")]
    table: Option<String>,
    /// The state machine (env: AMZPIPE_STATE_MACHINE_ARN); default: the stack's StateMachineArn output.
    #[arg(long, global = true, value_name = "ARN")]
    state_machine: Option<String>,
    /// Read settings (KEY=VALUE lines) from this file first; the local stack writes one.
    #[arg(long, global = true, value_name = "FILE", env = "AMZPIPE_ENV_FILE")]
    env_file: Option<PathBuf>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Log what happens (to standard error); repeat for more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Store a seller's or advertiser's credentials (LWA consent, or an SP-API refresh token) and prove them.
    Onboard(onboard::OnboardArgs),
    /// List what stored credentials reach (profiles, AMC instances, marketplaces, Slate datasets); write jobs.
    Discover(discover::DiscoverArgs),
    /// Run a job now: one execution of the state machine, followed to its end.
    Run(runs::RunArgs),
    /// Run a job over a date range, window by window; running it again skips the windows done.
    Backfill(runs::BackfillArgs),
    /// The Amazon requests a job's schedule makes over the next days, and why (calls nothing).
    Plan(plan::PlanArgs),
    /// Recent runs from the job table (state, Amazon id, bytes, rows, duration, failure reason), or with
    /// --days the state of each data day.
    Status(status::StatusArgs),
    /// Amazon Marketing Cloud: saved workflows as code.
    Amc {
        /// What to do.
        #[command(subcommand)]
        command: workflows::AmcCommand,
    },
}

fn init_logs(verbose: u8) {
    let filter = match verbose {
        0 => "warn,aws_config=error",
        1 => "info,aws=warn",
        _ => "debug,aws=info,hyper=info,h2=info,rustls=info",
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
}

async fn dispatch(cli: &Cli) -> CliResult<()> {
    let env = Env::load(cli.env_file.as_deref())?;
    let names = Names {
        stack: cli.stack.clone(),
        table: cli.table.clone(),
        state_machine: cli.state_machine.clone(),
    };
    let ctx = Context::new(env, names, cli.json);
    let result = match &cli.command {
        Command::Onboard(args) => onboard::run(&ctx, args).await,
        Command::Discover(args) => discover::run(&ctx, args).await,
        Command::Run(args) => runs::run(&ctx, args).await,
        Command::Backfill(args) => runs::backfill(&ctx, args).await,
        Command::Plan(args) => plan::run(&ctx, args),
        Command::Status(args) => status::run(&ctx, args).await,
        Command::Amc { command } => workflows::run(&ctx, command).await,
    };
    // Whatever happened, a refresh token LWA rotated meanwhile must not be lost.
    let stored = ctx.store_rotations().await;
    result.and(stored)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.verbose);
    match dispatch(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(u8::try_from(e.code).unwrap_or(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
