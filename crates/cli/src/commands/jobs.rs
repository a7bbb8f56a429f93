//! `enqueue`, `jobs`, `show`, `watch`, `cancel`, `retry` (one job or every job of a
//! filter), `run-again`, `delete`, `prune`.

use std::{process::ExitCode, time::Duration};

use chrono::{DateTime, Utc};
use clap::Args;
use jobdeck_core::{BulkAction, Job, JobFilter, JobStatus, NewJob, worker::EnqueueError};
use serde_json::{Map, Value, json};

use super::{Context, out, table};
use crate::exit;

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The job kind (see `jobdeck kinds`).
    kind: String,
    #[command(flatten)]
    input: InputArgs,
    /// When to run it (RFC 3339, e.g. 2026-12-01T09:00:00Z).
    #[arg(long)]
    run_at: Option<DateTime<Utc>>,
    /// Higher runs first.
    #[arg(long)]
    priority: Option<i16>,
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=100))]
    max_attempts: Option<i32>,
    /// An idempotency key: enqueueing the same key again returns the first job. (Not
    /// `--key`, which names the project's API key everywhere.)
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Show progress until the job ends; the exit code says how it ended.
    #[arg(long)]
    wait: bool,
}

/// A job's input: `--input` or `--set` fields.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// The input as a JSON object.
    #[arg(long, conflicts_with = "set")]
    input: Option<String>,
    /// One input field as key=value (repeatable); the value is read as JSON when it
    /// parses as JSON, else as a string.
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl InputArgs {
    /// `base` with what was given: `--input` replaces it, `--set` changes its fields.
    pub fn apply_to(&self, base: Value) -> Result<Value, exit::Invalid> {
        match (self.value()?, base) {
            (None, base) => Ok(base),
            (Some(given), _) if self.input.is_some() => Ok(given),
            (Some(Value::Object(fields)), Value::Object(mut object)) => {
                object.extend(fields);
                Ok(Value::Object(object))
            }
            (Some(given), _) => Ok(given),
        }
    }

    /// The input given, if any.
    pub fn value(&self) -> Result<Option<Value>, exit::Invalid> {
        if let Some(text) = &self.input {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| exit::Invalid(format!("--input is not valid JSON: {e}")))?;
            if !value.is_object() {
                return Err(exit::Invalid(
                    "--input must be a JSON object, like '{\"name\":\"Ada\"}'".into(),
                ));
            }
            return Ok(Some(value));
        }
        if self.set.is_empty() {
            return Ok(None);
        }
        let mut object = Map::new();
        for pair in &self.set {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(exit::Invalid(format!(
                    "--set takes key=value, not \"{pair}\""
                )));
            };
            let value =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
            object.insert(key.to_string(), value);
        }
        Ok(Some(Value::Object(object)))
    }
}

pub async fn enqueue(ctx: &Context, args: EnqueueArgs) -> anyhow::Result<ExitCode> {
    let context = args
        .input
        .value()?
        .unwrap_or_else(|| Value::Object(Map::new()));
    let jobs = ctx.jobs()?;
    let new = NewJob {
        kind: args.kind.clone(),
        context,
        run_at: args.run_at,
        priority: args.priority,
        max_attempts: args.max_attempts,
        idempotency_key: args.idempotency_key.clone(),
    };
    let job = ctx
        .kinds
        .registry()
        .enqueue(&jobs, &new)
        .await
        .map_err(|error| enqueue_error(error, &args.kind))?;
    if !args.wait {
        ctx.print(&job, &format!("Enqueued job {} ({}).", job.id, job.kind));
        return Ok(ExitCode::SUCCESS);
    }
    if !ctx.json {
        eprintln!(
            "Enqueued job {} ({}); waiting for it to end.",
            job.id, job.kind
        );
    }
    // Drawn only on a terminal; elsewhere the summary alone is printed.
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(1000),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if ctx.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("[{bar:30}] {percent:>3}% {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("#>-"),
    );
    let job = loop {
        let job = jobs.get(job.id).await?;
        let fraction = job.progress.unwrap_or(0.0).clamp(0.0, 1.0);
        bar.set_position((f64::from(fraction) * 1000.0).round() as u64);
        bar.set_message(format!(
            "{} {}",
            job.status,
            job.progress_message.as_deref().unwrap_or("")
        ));
        if job.status.is_final() {
            break job;
        }
        // Polls: the job may run in any worker, in any process or device.
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if job.status == JobStatus::Finished {
        bar.finish();
    } else {
        bar.abandon();
    }
    ctx.print(&job, &summary(&job));
    Ok(match job.status {
        JobStatus::Finished => ExitCode::SUCCESS,
        JobStatus::Cancelled => ExitCode::from(exit::CANCELLED),
        _ => ExitCode::from(exit::FAILED),
    })
}

/// Refused input in the CLI's words, naming the kind.
fn enqueue_error(error: EnqueueError, kind: &str) -> anyhow::Error {
    match error {
        EnqueueError::Invalid(invalid) => {
            exit::Invalid(format!("invalid input for {kind}: {invalid}")).into()
        }
        EnqueueError::Api(error) => anyhow::Error::from(error),
    }
}

fn summary(job: &Job) -> String {
    match job.status {
        JobStatus::Finished => format!(
            "Job {} finished: {}",
            job.id,
            job.result
                .as_ref()
                .map_or("null".to_string(), Value::to_string)
        ),
        _ => format!(
            "Job {} {}: {}",
            job.id,
            job.status,
            job.error
                .as_ref()
                .map_or("no error recorded", |e| e.message.as_str())
        ),
    }
}

/// Which jobs: by state, kind and search.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only jobs in this state (repeatable).
    #[arg(long, value_parser = parse_status)]
    status: Vec<JobStatus>,
    #[arg(long)]
    kind: Option<String>,
    /// Matches the kind, or the id when a number.
    #[arg(long)]
    search: Option<String>,
    /// Only jobs whose input contains this JSON object, e.g. '{"customer": 42}'.
    #[arg(long, value_name = "JSON", value_parser = parse_object)]
    input: Option<Value>,
    /// Only jobs whose input's values hold these words (web search syntax: acme -test,
    /// "exact phrase").
    #[arg(long)]
    words: Option<String>,
    /// Only jobs whose result contains this JSON object, e.g. '{"rows": 0}'.
    #[arg(long, value_name = "JSON", value_parser = parse_object)]
    result: Option<Value>,
    /// Only jobs created at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    created_from: Option<DateTime<Utc>>,
    /// Only jobs created before this time.
    #[arg(long, value_name = "TIME")]
    created_until: Option<DateTime<Utc>>,
    /// Only jobs that ended at or after this time.
    #[arg(long, value_name = "TIME")]
    ended_from: Option<DateTime<Utc>>,
    /// Only jobs that ended before this time.
    #[arg(long, value_name = "TIME")]
    ended_until: Option<DateTime<Utc>>,
    /// Only the jobs this schedule made.
    #[arg(long, value_name = "ID")]
    schedule: Option<i64>,
}

fn parse_object(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) if value.is_object() => Ok(value),
        Ok(_) => Err("expected a JSON object, like '{\"customer\": 42}'".into()),
        Err(error) => Err(format!("not valid JSON: {error}")),
    }
}

impl FilterArgs {
    fn into_filter(self, limit: usize) -> JobFilter {
        JobFilter {
            statuses: self.status,
            kind: self.kind,
            search: self.search,
            limit,
            input: self.input,
            words: self.words,
            result: self.result,
            created_from: self.created_from,
            created_until: self.created_until,
            ended_from: self.ended_from,
            ended_until: self.ended_until,
            schedule_id: self.schedule,
            ..JobFilter::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
    limit: u16,
}

/// One job by id, or every job of a filter.
#[derive(Debug, Args)]
pub struct ActArgs {
    /// The job; without it, every job the filter flags match.
    id: Option<i64>,
    #[command(flatten)]
    filter: FilterArgs,
}

impl ActArgs {
    /// The job, or the filter (never both, never neither: acting on every job of the
    /// user takes at least one flag).
    fn target(self) -> Result<Result<i64, JobFilter>, exit::Invalid> {
        let filter = self.filter.into_filter(0);
        match (self.id, filter == JobFilter::default()) {
            (Some(id), true) => Ok(Ok(id)),
            (None, false) => Ok(Err(filter)),
            (Some(_), false) => Err(exit::Invalid(
                "give a job id or filter flags (--status, --kind, --search, --input, ...), not both".into(),
            )),
            (None, true) => Err(exit::Invalid(
                "give a job id, or filter flags (--status, --kind, --search, --input, ...) for every job they match".into(),
            )),
        }
    }
}

fn parse_status(text: &str) -> Result<JobStatus, String> {
    JobStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| "expected waiting, running, finished, failed or cancelled".into())
}

impl ListArgs {
    /// The first page of what `jobs` and `watch` show.
    fn into_filter(self) -> JobFilter {
        self.filter.into_filter(self.limit.into())
    }
}

pub async fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<ExitCode> {
    let page = ctx.jobs()?.list(&args.into_filter()).await?;
    let human = format!(
        "{}{} of {} jobs",
        table::jobs(&page.jobs),
        page.jobs.len(),
        page.total
    );
    ctx.print(&page, &human);
    Ok(ExitCode::SUCCESS)
}

pub async fn show(ctx: &Context, id: i64) -> anyhow::Result<ExitCode> {
    let job = ctx.jobs()?.get(id).await?;
    let mut human = format!(
        "Job {}  {}  {}\n  input:    {}\n  attempts: {} of {}\n  created:  {}\n  started:  {}\n  ended:    {}\n",
        job.id,
        job.kind,
        job.status,
        job.context,
        job.attempt,
        job.max_attempts,
        table::time(Some(job.created_at)),
        table::time(job.started_at),
        table::time(job.ended_at),
    );
    if let Some(result) = &job.result {
        human.push_str(&format!("  result:   {result}\n"));
    }
    if let Some(error) = &job.error {
        let code = error
            .code
            .as_deref()
            .map_or(String::new(), |c| format!(" ({c})"));
        human.push_str(&format!("  error:    {}{code}\n", error.message));
    }
    if !job.history.is_empty() {
        human.push_str("  history:\n");
        for entry in &job.history {
            human.push_str(&format!(
                "    attempt {} {} by {} ended {}{}\n",
                entry.attempt.map_or("?".to_string(), |n| n.to_string()),
                entry.outcome.as_str(),
                entry.worker.as_deref().unwrap_or("?"),
                entry.ended_at.as_deref().unwrap_or("?"),
                entry
                    .error
                    .as_ref()
                    .map_or(String::new(), |e| format!(": {}", e.message)),
            ));
        }
    }
    ctx.print(&job, human.trim_end());
    Ok(ExitCode::SUCCESS)
}

pub async fn watch(ctx: &Context, args: ListArgs) -> anyhow::Result<ExitCode> {
    let jobs = ctx.jobs()?;
    let filter = args.into_filter();
    // One listener for the whole watch, so a Ctrl-C that comes while the table is being
    // fetched or drawn is not lost.
    let stop = jobdeck_core::signals::termination();
    tokio::pin!(stop);
    loop {
        let (page, counts) = tokio::select! {
            _ = &mut stop => return Ok(ExitCode::SUCCESS),
            fetched = async { (jobs.list(&filter).await, jobs.counts().await) } => fetched,
        };
        let (page, counts) = (page?, counts?);
        let tally: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
        // Home, clear, redraw: the table stays in place.
        out(&format!(
            "\x1b[H\x1b[2J{}  (Ctrl-C to stop)\n\n{}",
            tally.join(" · "),
            table::jobs(&page.jobs)
        ));
        tokio::select! {
            _ = &mut stop => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

pub async fn cancel(ctx: &Context, args: ActArgs) -> anyhow::Result<ExitCode> {
    let id = match args.target()? {
        Ok(id) => id,
        Err(filter) => return bulk(ctx, BulkAction::Cancel, &filter).await,
    };
    let job = ctx.jobs()?.cancel(id).await?;
    let human = match job.status {
        JobStatus::Cancelled => format!("Job {id} cancelled."),
        _ => format!("Job {id} is running; its worker has been asked to stop."),
    };
    ctx.print(&job, &human);
    Ok(ExitCode::SUCCESS)
}

pub async fn retry(ctx: &Context, args: ActArgs) -> anyhow::Result<ExitCode> {
    let id = match args.target()? {
        Ok(id) => id,
        Err(filter) => return bulk(ctx, BulkAction::Retry, &filter).await,
    };
    let job = ctx.jobs()?.retry(id).await?;
    ctx.print(&job, &format!("Job {id} is waiting again."));
    Ok(ExitCode::SUCCESS)
}

async fn bulk(ctx: &Context, action: BulkAction, filter: &JobFilter) -> anyhow::Result<ExitCode> {
    let changed = ctx.jobs()?.bulk(action, filter).await?;
    let human = match action {
        BulkAction::Cancel => format!("{changed} jobs cancelled (running ones asked to stop)."),
        BulkAction::Retry => format!("{changed} jobs waiting again."),
    };
    ctx.print(&json!({ "changed": changed }), &human);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RunAgainArgs {
    id: i64,
    /// Changes to its input: `--input` replaces it, `--set` changes fields.
    #[command(flatten)]
    input: InputArgs,
}

/// A new job with job `id`'s kind, options and input (changed as asked), the input
/// checked against the kind as `enqueue` checks it.
pub async fn run_again(ctx: &Context, args: RunAgainArgs) -> anyhow::Result<ExitCode> {
    let jobs = ctx.jobs()?;
    let old = jobs.get(args.id).await?;
    let new = NewJob {
        context: args.input.apply_to(old.context)?,
        kind: old.kind,
        priority: Some(old.priority),
        max_attempts: Some(old.max_attempts),
        ..NewJob::default()
    };
    let job = ctx
        .kinds
        .registry()
        .enqueue(&jobs, &new)
        .await
        .map_err(|error| enqueue_error(error, &new.kind))?;
    ctx.print(
        &job,
        &format!(
            "Enqueued job {} ({}), again from job {}.",
            job.id, job.kind, args.id
        ),
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn delete(ctx: &Context, id: i64) -> anyhow::Result<ExitCode> {
    let jobs = ctx.jobs()?;
    let running = || exit::Conflict(format!("job {id} is running: cancel it first"));
    if jobs.get(id).await?.status == JobStatus::Running {
        return Err(running().into());
    }
    if !jobs.delete(id).await? {
        // Started meanwhile (row-level security keeps running jobs).
        return Err(running().into());
    }
    ctx.print(&json!({ "deleted": id }), &format!("Job {id} deleted."));
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete jobs that ended longer ago than this (e.g. 30d, 12h, 90m).
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    older_than: Duration,
    /// Only jobs in this state (repeatable) [default: finished and cancelled].
    #[arg(long, value_parser = parse_status)]
    status: Vec<JobStatus>,
}

pub async fn prune(ctx: &Context, args: PruneArgs) -> anyhow::Result<ExitCode> {
    let statuses = if args.status.is_empty() {
        vec![JobStatus::Finished, JobStatus::Cancelled]
    } else {
        args.status
    };
    if let Some(status) = statuses.iter().find(|s| !s.is_final()) {
        return Err(exit::Invalid(format!("only ended jobs are pruned, not {status} ones")).into());
    }
    let older_than = chrono::Duration::from_std(args.older_than)
        .map_err(|_| exit::Invalid("--older-than is too long".into()))?;
    let deleted = ctx.jobs()?.prune(older_than, &statuses).await?;
    ctx.print(
        &json!({ "deleted": deleted }),
        &format!("{deleted} ended jobs deleted."),
    );
    Ok(ExitCode::SUCCESS)
}
