//! `logs`: a job's log, every attempt or one, and with `--follow` as it is written.

use std::{process::ExitCode, time::Duration};

use clap::Args;
use jobdeck_core::{LogLine, LogStream};

use super::{Context, out};

#[derive(Debug, Args)]
pub struct LogsArgs {
    id: i64,
    /// Only this attempt's log (1 is the first).
    #[arg(long)]
    attempt: Option<i32>,
    /// Keep printing lines as they are written, until the job ends or Ctrl-C.
    #[arg(long, short)]
    follow: bool,
}

/// How often `--follow` asks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

pub async fn run(ctx: &Context, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let jobs = ctx.jobs()?;
    // Not found (or another user's) is said as such, not as an empty log.
    let mut job = jobs.get(args.id).await?;
    let mut after = None;
    let stop = jobdeck_core::signals::termination();
    tokio::pin!(stop);
    loop {
        let lines = jobs.logs(args.id, args.attempt, after).await?;
        if let Some(last) = lines.last() {
            after = Some((last.attempt, last.seq));
        }
        for line in &lines {
            print(ctx, line);
        }
        if !args.follow || job.status.is_final() {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = &mut stop => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        // Read the state before the lines, so the last lines of a job that just ended
        // are fetched once more before stopping.
        job = jobs.get(args.id).await?;
    }
}

fn print(ctx: &Context, line: &LogLine) {
    if ctx.json {
        out(&serde_json::to_string(line).unwrap_or_default());
        return;
    }
    let stream = match line.stream {
        LogStream::Stdout => "out",
        LogStream::Stderr => "err",
        LogStream::Log => "log",
    };
    let level = serde_json::to_value(line.level)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    out(&format!(
        "#{} {} {stream} {level:<5} {}",
        line.attempt,
        line.at.format("%H:%M:%S%.3f"),
        line.line
    ));
}
