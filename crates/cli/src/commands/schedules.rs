//! `schedules ...`: recurring jobs, kept in the database and run by any of the user's
//! workers; and `kinds pause|resume|paused`, a kind held for every worker.

use std::process::ExitCode;

use chrono::Utc;
use clap::{Args, Subcommand};
use jobdeck_core::{JobsClient, NewJob, OnMissed, Schedule, ScheduleSpec, schedules::Cron};
use serde_json::json;

use super::{Context, jobs::InputArgs, table};
use crate::exit;

#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Your schedules with their next and last runs (the default).
    List,
    /// Everything about one schedule: its next ticks and the jobs it made.
    Show { id: i64 },
    /// Make a schedule.
    Add(AddArgs),
    /// Change a schedule; what is not given stays as it is.
    Edit(EditArgs),
    /// Stop making jobs until resumed (nothing is caught up for the time paused).
    Pause { id: i64 },
    /// Make jobs again from the next tick on.
    Resume { id: i64 },
    /// Make one job of it now; its ticks stay as they are.
    Run { id: i64 },
    /// Delete a schedule; the jobs it made stay.
    Delete { id: i64 },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The job kind (see `jobdeck kinds`).
    kind: String,
    /// When: five fields (minute hour day-of-month month day-of-week), e.g.
    /// "*/15 * * * *", or @hourly, @daily, @weekly, @monthly, @yearly.
    #[arg(long)]
    cron: String,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    id: i64,
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    cron: Option<String>,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Args)]
struct Options {
    /// The time zone the expression is read in (an IANA name) [default: UTC].
    #[arg(long = "tz", value_name = "ZONE")]
    timezone: Option<String>,
    /// A name to tell it by.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    input: InputArgs,
    #[arg(long)]
    priority: Option<i16>,
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=100))]
    max_attempts: Option<i32>,
    /// After downtime: `run-once` makes one job for the latest tick missed, `skip`
    /// none [default: run-once].
    #[arg(long, value_parser = parse_on_missed)]
    missed: Option<OnMissed>,
}

fn parse_on_missed(text: &str) -> Result<OnMissed, String> {
    match text {
        "run-once" => Ok(OnMissed::RunOnce),
        "skip" => Ok(OnMissed::Skip),
        _ => Err("expected run-once or skip".into()),
    }
}

impl Options {
    /// `spec` with what these options give.
    fn apply(self, mut spec: ScheduleSpec) -> anyhow::Result<ScheduleSpec> {
        if let Some(timezone) = self.timezone {
            spec.timezone = timezone;
        }
        if let Some(name) = self.name {
            spec.name = name;
        }
        if let Some(context) = self.input.value()? {
            spec.context = context;
        }
        if let Some(priority) = self.priority {
            spec.priority = priority;
        }
        if let Some(max_attempts) = self.max_attempts {
            spec.max_attempts = max_attempts;
        }
        if let Some(missed) = self.missed {
            spec.on_missed = missed;
        }
        Ok(spec)
    }
}

/// The expression and zone are checked, then the input against the kind as `enqueue`
/// checks it (when this CLI knows the kind), so a schedule never makes jobs that are
/// refused at every tick.
fn check(ctx: &Context, spec: &ScheduleSpec) -> anyhow::Result<()> {
    Cron::parse(&spec.cron, &spec.timezone)?;
    let job = NewJob {
        kind: spec.kind.clone(),
        context: spec.context.clone(),
        ..NewJob::default()
    };
    ctx.kinds
        .registry()
        .prepare(&job)
        .map(drop)
        .map_err(|invalid| {
            exit::Invalid(format!("invalid input for {}: {invalid}", spec.kind)).into()
        })
}

pub async fn run(ctx: &Context, command: Option<SchedulesCommand>) -> anyhow::Result<ExitCode> {
    let jobs = ctx.jobs()?;
    match command.unwrap_or(SchedulesCommand::List) {
        SchedulesCommand::List => {
            let schedules = jobs.schedules().await?;
            let human = if schedules.is_empty() {
                "No schedules; make one with `jobdeck schedules add KIND --cron EXPR`.".into()
            } else {
                list_table(&schedules)
            };
            ctx.print(&schedules, &human);
        }
        SchedulesCommand::Show { id } => show(ctx, &jobs, id).await?,
        SchedulesCommand::Add(args) => {
            let spec = args
                .options
                .apply(ScheduleSpec::new(args.kind, args.cron))?;
            check(ctx, &spec)?;
            let schedule = jobs.create_schedule(&spec).await?;
            ctx.print(
                &schedule,
                &format!("Schedule {} made; {}.", schedule.id, next_words(&schedule)),
            );
        }
        SchedulesCommand::Edit(args) => {
            let mut spec = ScheduleSpec::from(&jobs.schedule(args.id).await?);
            if let Some(kind) = args.kind {
                spec.kind = kind;
            }
            if let Some(cron) = args.cron {
                spec.cron = cron;
            }
            let spec = args.options.apply(spec)?;
            check(ctx, &spec)?;
            let schedule = jobs.update_schedule(args.id, &spec).await?;
            ctx.print(
                &schedule,
                &format!(
                    "Schedule {} changed; {}.",
                    schedule.id,
                    next_words(&schedule)
                ),
            );
        }
        SchedulesCommand::Pause { id } => {
            let schedule = jobs.set_schedule_enabled(id, false).await?;
            ctx.print(&schedule, &format!("Schedule {id} paused."));
        }
        SchedulesCommand::Resume { id } => {
            let schedule = jobs.set_schedule_enabled(id, true).await?;
            ctx.print(
                &schedule,
                &format!("Schedule {id} resumed; {}.", next_words(&schedule)),
            );
        }
        SchedulesCommand::Run { id } => {
            let job = jobs.run_schedule(id).await?;
            ctx.print(
                &job,
                &format!("Enqueued job {} ({}) from schedule {id}.", job.id, job.kind),
            );
        }
        SchedulesCommand::Delete { id } => {
            if !jobs.delete_schedule(id).await? {
                return Err(jobdeck_core::Error::Api {
                    status: 404,
                    code: "JD001".into(),
                    message: format!("schedule {id} not found"),
                    details: None,
                    hint: None,
                }
                .into());
            }
            ctx.print(
                &json!({ "deleted": id }),
                &format!("Schedule {id} deleted; its jobs stay."),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn next_words(schedule: &Schedule) -> String {
    match (schedule.enabled, schedule.next_run_at) {
        (false, _) => "paused".into(),
        (true, Some(at)) => format!("next run {}", table::time(Some(at))),
        (true, None) => "its next run is computed by the next worker".into(),
    }
}

fn list_table(schedules: &[Schedule]) -> String {
    let mut rows = table::new([
        "ID", "NAME", "KIND", "WHEN", "ZONE", "NEXT RUN", "LAST RUN", "STATE",
    ]);
    for s in schedules {
        rows.add_row(vec![
            s.id.to_string(),
            s.name.clone(),
            s.kind.clone(),
            s.cron.clone(),
            s.timezone.clone(),
            if s.enabled {
                table::time(s.next_run_at)
            } else {
                "-".into()
            },
            table::time(s.last_run_at),
            match (&s.problem, s.enabled) {
                (Some(_), _) => "problem".to_string(),
                (None, true) => "active".into(),
                (None, false) => "paused".into(),
            },
        ]);
    }
    rows.to_string()
}

async fn show(ctx: &Context, jobs: &JobsClient, id: i64) -> anyhow::Result<()> {
    let (schedule, made) = tokio::try_join!(jobs.schedule(id), jobs.schedule_jobs(id, 20))?;
    let upcoming = Cron::of(&schedule)
        .map(|cron| {
            if schedule.enabled {
                let from = schedule
                    .next_run_at
                    .map_or_else(Utc::now, |at| at - chrono::TimeDelta::seconds(1));
                cron.upcoming(from, 5)
            } else {
                Vec::new()
            }
        })
        .unwrap_or_default();
    let mut human = format!(
        "Schedule {}  {}  {}\n  when:     {} ({})\n  input:    {}\n  missed:   {}\n  state:    {}\n  last run: {}\n",
        schedule.id,
        schedule.name,
        schedule.kind,
        schedule.cron,
        schedule.timezone,
        schedule.context,
        match schedule.on_missed {
            OnMissed::RunOnce => "one job for the latest tick missed",
            OnMissed::Skip => "skipped",
        },
        if schedule.enabled { "active" } else { "paused" },
        table::time(schedule.last_run_at),
    );
    if let Some(problem) = &schedule.problem {
        human.push_str(&format!("  problem:  {problem}\n"));
    }
    if !upcoming.is_empty() {
        let next: Vec<String> = upcoming.iter().map(|at| table::time(Some(*at))).collect();
        human.push_str(&format!("  next:     {}\n", next.join(", ")));
    }
    human.push_str(&format!(
        "  jobs ({} newest):\n{}",
        made.len(),
        table::jobs(&made)
    ));
    ctx.print(
        &json!({ "schedule": schedule, "upcoming": upcoming, "jobs": made }),
        human.trim_end(),
    );
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum PauseCommand {
    /// Hold a kind for all of your workers, on every device: its jobs wait.
    Pause { kind: String },
    /// Let a paused kind's jobs run again.
    Resume { kind: String },
    /// The kinds you paused.
    Paused,
}

pub async fn kinds(ctx: &Context, command: PauseCommand) -> anyhow::Result<ExitCode> {
    let jobs = ctx.jobs()?;
    match command {
        PauseCommand::Pause { kind } => {
            jobs.pause_kind(&kind).await?;
            ctx.print(
                &json!({ "paused": kind }),
                &format!("Kind {kind} paused on all your workers; its jobs wait."),
            );
        }
        PauseCommand::Resume { kind } => {
            let was = jobs.resume_kind(&kind).await?;
            let human = if was {
                format!("Kind {kind} resumed.")
            } else {
                format!("Kind {kind} was not paused.")
            };
            ctx.print(&json!({ "resumed": kind, "was_paused": was }), &human);
        }
        PauseCommand::Paused => {
            let paused = jobs.paused_kinds().await?;
            let mut rows = table::new(["KIND", "PAUSED"]);
            for p in &paused {
                rows.add_row(vec![p.kind.clone(), table::time(Some(p.paused_at))]);
            }
            let human = if paused.is_empty() {
                "No kind is paused.".to_string()
            } else {
                rows.to_string()
            };
            ctx.print(&paused, &human);
        }
    }
    Ok(ExitCode::SUCCESS)
}
