//! `jobdeck`: Jobdeck from the command line.
//!
//! # Layout
//! - `main`: arguments, logging, one runtime.
//! - [`config`]: which project (flags, environment, config file, local sandbox) and
//!   where the CLI's own session lives.
//! - [`commands`]: one module per group of subcommands, each a thin layer over
//!   `jobdeck-core` or `jobdeck-sandbox`.
//! - [`exit`]: errors as one line or `{code, message}`, and the exit codes.

mod commands;
mod config;
mod exit;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "jobdeck",
    version,
    about = "Background jobs that run under a Supabase user's own session"
)]
struct Cli {
    /// The Supabase project's URL [env: SUPABASE_URL].
    #[arg(long, global = true)]
    url: Option<String>,
    /// The project's anon or publishable key [env: SUPABASE_ANON_KEY or SUPABASE_PUBLISHABLE_KEY].
    #[arg(long, global = true)]
    key: Option<String>,
    /// Machine-readable output; errors as {"code", "message"}.
    #[arg(long, global = true)]
    json: bool,
    /// The kinds file [env: JOBDECK_KINDS; default: ~/.config/jobdeck/kinds.toml].
    #[arg(long, global = true, value_name = "FILE")]
    kinds: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign in (a password prompt, --password-stdin, --otp for an emailed code, or
    /// --provider for an OAuth provider in the browser).
    Login(commands::auth::LoginArgs),
    /// Sign out of this CLI's session.
    Logout(commands::auth::LogoutArgs),
    /// Who this CLI is signed in as.
    Whoami,
    /// Second factors: an authenticator app (TOTP) asked for at each sign-in.
    #[command(subcommand)]
    Mfa(commands::auth::MfaCommand),
    /// Enqueue a job.
    Enqueue(commands::jobs::EnqueueArgs),
    /// List your jobs, newest first.
    Jobs(commands::jobs::ListArgs),
    /// Everything about one job, its failure history included.
    Show { id: i64 },
    /// A live table of your jobs, redrawn in place until Ctrl-C.
    Watch(commands::jobs::ListArgs),
    /// Cancel a job (a running one is asked to stop), or every job of --status, --kind
    /// and --search.
    Cancel(commands::jobs::ActArgs),
    /// Put a failed or cancelled job back to waiting, or every such job of --status,
    /// --kind and --search.
    Retry(commands::jobs::ActArgs),
    /// Enqueue a job's kind and input again (--set or --input change the input).
    RunAgain(commands::jobs::RunAgainArgs),
    /// Delete a job that is not running, with its log.
    Delete { id: i64 },
    /// Delete ended jobs older than --older-than (default 30d).
    Prune(commands::jobs::PruneArgs),
    /// How long ended jobs are kept (by age, or the last N of each kind); your
    /// workers apply it in the background.
    Retention {
        #[command(subcommand)]
        command: Option<commands::insight::RetentionCommand>,
    },
    /// What your jobs did over the last hour, day or week: finished, failed and
    /// retried, and how long each kind took.
    Activity(commands::insight::ActivityArgs),
    /// Recurring jobs: made at every tick of a cron expression by any of your workers.
    Schedules {
        #[command(subcommand)]
        command: Option<commands::schedules::SchedulesCommand>,
    },
    /// Run your jobs here, headless, until Ctrl-C or SIGTERM.
    Worker(commands::worker::WorkerArgs),
    /// A job's log (every attempt's, or one's); --follow prints it as it is written.
    Logs(commands::logs::LogsArgs),
    /// The job kinds (built-in and from the kinds file), their executors and input
    /// schemas; `kinds check` validates the kinds file; `kinds pause|resume|paused`
    /// hold a kind for all of your workers.
    Kinds {
        #[command(subcommand)]
        command: Option<commands::kinds::KindsCommand>,
    },
    /// Run the local Supabase-compatible sandbox (Auth + REST over a private PostgreSQL).
    Dev(commands::dev::DevArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JOBDECK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log(&cli.command))),
        )
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log kept in a file or read by a program has
        // no escape codes in it.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => exit::report(&error, json),
    }
}

/// The sandbox logs what it serves; the other commands speak only when asked.
fn default_log(command: &Command) -> &'static str {
    match command {
        Command::Dev(_) => "info,tokio_postgres=warn",
        _ => "warn",
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use commands::{auth, dev, insight, jobs, kinds, logs, schedules, worker};
    let source = kinds::KindsSource {
        explicit: cli.kinds.clone(),
    };
    let context = || -> anyhow::Result<commands::Context> {
        Ok(commands::Context {
            project: config::project(cli.url.as_deref(), cli.key.as_deref())?,
            json: cli.json,
            kinds: source.clone(),
        })
    };
    match cli.command {
        Command::Dev(args) => dev::run(args).await,
        Command::Kinds { command } => kinds::run(&source, command, cli.json, context).await,
        Command::Schedules { command } => schedules::run(&context()?, command).await,
        Command::Logs(args) => logs::run(&context()?, args).await,
        Command::Login(args) => auth::login(&context()?, args).await,
        Command::Logout(args) => auth::logout(&context()?, args).await,
        Command::Whoami => auth::whoami(&context()?).await,
        Command::Mfa(command) => auth::mfa(&context()?, command).await,
        Command::Enqueue(args) => jobs::enqueue(&context()?, args).await,
        Command::Jobs(args) => jobs::list(&context()?, args).await,
        Command::Show { id } => jobs::show(&context()?, id).await,
        Command::Watch(args) => jobs::watch(&context()?, args).await,
        Command::Cancel(args) => jobs::cancel(&context()?, args).await,
        Command::Retry(args) => jobs::retry(&context()?, args).await,
        Command::RunAgain(args) => jobs::run_again(&context()?, args).await,
        Command::Delete { id } => jobs::delete(&context()?, id).await,
        Command::Prune(args) => jobs::prune(&context()?, args).await,
        Command::Retention { command } => insight::retention(&context()?, command).await,
        Command::Activity(args) => insight::activity(&context()?, args).await,
        Command::Worker(args) => worker::run(&context()?, args).await,
    }
}
