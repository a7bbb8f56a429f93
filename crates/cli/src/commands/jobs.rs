//! `enqueue`, `jobs`, `show`, `watch`, `cancel`, `retry`.

use std::{process::ExitCode, time::Duration};

use chrono::{DateTime, Utc};
use clap::Args;
use jobdeck_core::{Job, JobFilter, JobStatus, NewJob, worker::EnqueueError};
use serde_json::{Map, Value};

use super::{Context, out};
use crate::exit;

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The job kind (see `jobdeck kinds`).
    kind: String,
    /// The input as a JSON object.
    #[arg(long, conflicts_with = "set")]
    input: Option<String>,
    /// One input field as key=value (repeatable); the value is read as JSON when it
    /// parses as JSON, else as a string.
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
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

fn input(args: &EnqueueArgs) -> Result<Value, exit::Invalid> {
    if let Some(text) = &args.input {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| exit::Invalid(format!("--input is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(exit::Invalid(
                "--input must be a JSON object, like '{\"name\":\"Ada\"}'".into(),
            ));
        }
        return Ok(value);
    }
    let mut object = Map::new();
    for pair in &args.set {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(exit::Invalid(format!(
                "--set takes key=value, not \"{pair}\""
            )));
        };
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        object.insert(key.to_string(), value);
    }
    Ok(Value::Object(object))
}

pub async fn enqueue(ctx: &Context, args: EnqueueArgs) -> anyhow::Result<ExitCode> {
    let context = input(&args)?;
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
        .map_err(|error| match error {
            EnqueueError::Invalid(invalid) => {
                exit::Invalid(format!("invalid input for {}: {invalid}", args.kind)).into()
            }
            EnqueueError::Api(error) => anyhow::Error::from(error),
        })?;
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
    let mut last = String::new();
    let job = loop {
        let job = jobs.get(job.id).await?;
        if job.status.is_final() {
            break job;
        }
        if !ctx.json {
            let line = progress_line(&job);
            if line != last {
                eprint!("\r\x1b[2K{line}");
                last = line;
            }
        }
        // Polls: the job may run in any worker, in any process or device.
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if !ctx.json {
        eprintln!("\r\x1b[2K{}", progress_line(&job));
    }
    ctx.print(&job, &summary(&job));
    Ok(match job.status {
        JobStatus::Finished => ExitCode::SUCCESS,
        JobStatus::Cancelled => ExitCode::from(exit::CANCELLED),
        _ => ExitCode::from(exit::FAILED),
    })
}

fn progress_line(job: &Job) -> String {
    let fraction = job.progress.unwrap_or(0.0).clamp(0.0, 1.0);
    let filled = (fraction * 30.0).round() as usize;
    format!(
        "[{}{}] {:>3}% {} {}",
        "#".repeat(filled),
        "-".repeat(30 - filled),
        (fraction * 100.0).round(),
        job.status,
        job.progress_message.as_deref().unwrap_or("")
    )
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

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only jobs in this state (repeatable).
    #[arg(long, value_parser = parse_status)]
    status: Vec<JobStatus>,
    #[arg(long)]
    kind: Option<String>,
    /// Matches the kind, or the id when a number.
    #[arg(long)]
    search: Option<String>,
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
    limit: u16,
}

fn parse_status(text: &str) -> Result<JobStatus, String> {
    JobStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| "expected waiting, running, finished, failed or cancelled".into())
}

fn time(at: Option<DateTime<Utc>>) -> String {
    at.map_or("-".into(), |t| {
        t.with_timezone(&chrono::Local)
            .format("%m-%d %H:%M:%S")
            .to_string()
    })
}

fn duration(job: &Job) -> String {
    match (job.started_at, job.ended_at) {
        (Some(start), end) => {
            let ms = (end.unwrap_or_else(Utc::now) - start)
                .num_milliseconds()
                .max(0);
            if ms < 10_000 {
                format!("{:.1}s", ms as f64 / 1000.0)
            } else {
                format!("{}s", ms / 1000)
            }
        }
        _ => "-".into(),
    }
}

fn table(jobs: &[Job]) -> String {
    let mut out = format!(
        "{:>8}  {:<12} {:<10} {:<15} {:<15} {:<15} {:>8} {:>5} {:>8}\n",
        "ID", "KIND", "STATUS", "CREATED", "STARTED", "ENDED", "TOOK", "PROG", "ATTEMPT"
    );
    for job in jobs {
        out.push_str(&format!(
            "{:>8}  {:<12} {:<10} {:<15} {:<15} {:<15} {:>8} {:>5} {:>8}\n",
            job.id,
            job.kind,
            job.status.as_str(),
            time(Some(job.created_at)),
            time(job.started_at),
            time(job.ended_at),
            duration(job),
            job.progress
                .map_or("-".into(), |p| format!("{:.0}%", p * 100.0)),
            format!("{}/{}", job.attempt, job.max_attempts),
        ));
    }
    out
}

impl ListArgs {
    /// The first page of what `jobs` and `watch` show.
    fn into_filter(self) -> JobFilter {
        JobFilter {
            statuses: self.status,
            kind: self.kind,
            search: self.search,
            limit: self.limit.into(),
            ..JobFilter::default()
        }
    }
}

pub async fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<ExitCode> {
    let page = ctx.jobs()?.list(&args.into_filter()).await?;
    let human = format!(
        "{}{} of {} jobs",
        table(&page.jobs),
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
        time(Some(job.created_at)),
        time(job.started_at),
        time(job.ended_at),
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
            table(&page.jobs)
        ));
        tokio::select! {
            _ = &mut stop => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

pub async fn cancel(ctx: &Context, id: i64) -> anyhow::Result<ExitCode> {
    let job = ctx.jobs()?.cancel(id).await?;
    let human = match job.status {
        JobStatus::Cancelled => format!("Job {id} cancelled."),
        _ => format!("Job {id} is running; its worker has been asked to stop."),
    };
    ctx.print(&job, &human);
    Ok(ExitCode::SUCCESS)
}

pub async fn retry(ctx: &Context, id: i64) -> anyhow::Result<ExitCode> {
    let job = ctx.jobs()?.retry(id).await?;
    ctx.print(&job, &format!("Job {id} is waiting again."));
    Ok(ExitCode::SUCCESS)
}
