//! `jobdeck dev`: the local sandbox, and `jobdeck dev status`.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use jobdeck_sandbox::{Options, read_status};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevArgs {
    #[command(subcommand)]
    command: Option<DevCommand>,
    #[command(flatten)]
    start: StartArgs,
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Show the running sandbox's URL and keys.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
struct StartArgs {
    /// Where the sandbox keeps its database, keys and state.
    #[arg(long, env = "JOBDECK_DEV_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Use this PostgreSQL (a superuser's URL) instead of starting a private one.
    #[arg(long, env = "JOBDECK_DEV_DB_URL")]
    db_url: Option<String>,
    /// The loopback port to serve on (0: any free port).
    #[arg(long, default_value_t = 54321)]
    port: u16,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    jwt_expiry: u64,
    /// Seconds a rotated refresh token may be reused before reuse revokes its session.
    #[arg(long, default_value_t = 10.0)]
    refresh_reuse_interval: f64,
    /// Another URL (a glob, e.g. `http://localhost:*/**`) that a sign-in through a
    /// provider may return to; loopback IP addresses need none (repeatable).
    #[arg(long = "redirect-url", value_name = "GLOB")]
    redirect_url: Vec<String>,
    /// A confirmed user to create at start, as email:password (repeatable).
    #[arg(long = "seed-user", value_name = "EMAIL:PASSWORD", value_parser = parse_seed_user)]
    seed_users: Vec<(String, String)>,
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Pretty)]
    output: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Pretty,
    Env,
    Json,
}

fn parse_seed_user(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((email, password)) if email.contains('@') && !password.is_empty() => {
            Ok((email.to_string(), password.to_string()))
        }
        _ => Err("expected email:password".into()),
    }
}

/// Where the sandbox keeps its data unless `--data-dir` says otherwise.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    jobdeck_sandbox::default_data_dir().context("HOME is not set; pass --data-dir")
}

pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(DevCommand::Status(status)) => show_status(status),
        None => start(args.start).await,
    }
}

fn show_status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let Some(status) = read_status(&data_dir) else {
        bail!(
            "no sandbox is running on {} (start one with `jobdeck dev`)",
            data_dir.display()
        );
    };
    match args.output {
        Format::Pretty => print!("{}", status.pretty()),
        Format::Env => print!("{}", status.env()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&status)?),
    }
    Ok(ExitCode::SUCCESS)
}

async fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let running = jobdeck_sandbox::start(Options {
        data_dir: data_dir.clone(),
        db_url: args.db_url,
        port: args.port,
        jwt_expiry: args.jwt_expiry,
        refresh_reuse_interval: args.refresh_reuse_interval,
        redirect_urls: args.redirect_url,
        seed_users: args.seed_users,
    })
    .await?;
    println!(
        "Jobdeck sandbox is running (data in {}).\n",
        data_dir.display()
    );
    print!("{}", running.status.pretty());
    println!("\nStop it with Ctrl-C.");
    running.serve(shutdown_signal()).await?;
    tracing::info!("sandbox stopped");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, SIGTERM or SIGHUP.
async fn shutdown_signal() {
    let signal = jobdeck_core::signals::termination().await;
    tracing::info!(
        signal,
        "stopping: finishing requests in flight, then PostgreSQL"
    );
}
