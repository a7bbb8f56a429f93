//! `retention ...` (how long ended jobs are kept; the user's workers apply it) and
//! `activity` (what the jobs did over the last hour, day or week, counted by the
//! database).

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use jobdeck_core::{ActivitySpan, RetentionPolicy};

use super::{Context, table};

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Your policy (the default).
    Show,
    /// Set the policy; your running workers apply it in the background.
    Set(SetArgs),
    /// Keep every job.
    Clear,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("limit").required(true).multiple(true))]
pub struct SetArgs {
    /// Remove ended jobs older than this many days.
    #[arg(long, group = "limit", value_name = "DAYS")]
    keep_days: Option<u32>,
    /// Of each kind, keep only this many ended jobs (the last enqueued).
    #[arg(long, group = "limit", value_name = "JOBS")]
    keep_last: Option<u32>,
}

pub async fn retention(
    ctx: &Context,
    command: Option<RetentionCommand>,
) -> anyhow::Result<ExitCode> {
    let jobs = ctx.jobs()?;
    let policy = match command.unwrap_or(RetentionCommand::Show) {
        RetentionCommand::Show => jobs.retention().await?,
        RetentionCommand::Set(args) => {
            jobs.set_retention(&RetentionPolicy {
                keep_days: args.keep_days,
                keep_last: args.keep_last,
            })
            .await?
        }
        RetentionCommand::Clear => jobs.set_retention(&RetentionPolicy::default()).await?,
    };
    let human = format!("Retention: {policy}.");
    ctx.print(&policy, &human);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Span {
    Hour,
    Day,
    Week,
}

#[derive(Debug, Args)]
pub struct ActivityArgs {
    /// The last hour (per minute), day or week (per hour).
    #[arg(long, value_enum, default_value = "hour")]
    span: Span,
}

pub async fn activity(ctx: &Context, args: ActivityArgs) -> anyhow::Result<ExitCode> {
    let span = match args.span {
        Span::Hour => ActivitySpan::Hour,
        Span::Day => ActivitySpan::Day,
        Span::Week => ActivitySpan::Week,
    };
    let activity = ctx.jobs()?.activity(span).await?;
    let total = |pick: fn(&jobdeck_core::ActivityBucket) -> u64| {
        activity.buckets.iter().map(pick).sum::<u64>()
    };
    let mut human = format!(
        "Last {}: {} finished, {} failed, {} retried.\n",
        span.as_str(),
        total(|b| b.finished),
        total(|b| b.failed),
        total(|b| b.retried)
    );
    if !activity.kinds.is_empty() {
        let mut kinds = table::new(["KIND", "FINISHED", "FAILED", "P50", "P90", "P99", "MAX"]);
        let ms = |value: Option<f64>| value.map_or("-".into(), |v| format!("{v:.0} ms"));
        for kind in &activity.kinds {
            kinds.add_row(vec![
                kind.kind.clone(),
                kind.finished.to_string(),
                kind.failed.to_string(),
                ms(kind.p50_ms),
                ms(kind.p90_ms),
                ms(kind.p99_ms),
                ms(kind.max_ms),
            ]);
        }
        human.push_str(&format!("{kinds}"));
    }
    ctx.print(&activity, human.trim_end());
    Ok(ExitCode::SUCCESS)
}
