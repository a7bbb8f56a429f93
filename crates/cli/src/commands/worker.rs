//! `worker`: headless processing until Ctrl-C or SIGTERM, then unfinished jobs are
//! handed back.

use std::{process::ExitCode, time::Duration};

use clap::Args;
use jobdeck_core::{
    realtime::Realtime,
    worker::{Worker, WorkerConfig, WorkerEvent},
};

use super::{Context, out};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// How many jobs run at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Only these kinds (comma-separated); default: every kind this CLI knows (built-in
    /// and the kinds file's). Jobs of other kinds wait for a worker that runs them.
    #[arg(long, value_delimiter = ',', value_name = "KIND,...")]
    only: Vec<String>,
    /// Seconds to let running jobs finish after Ctrl-C or SIGTERM before handing
    /// them back.
    #[arg(long, default_value_t = 10)]
    grace: u64,
    /// Seconds a job stays this worker's without a heartbeat: if the worker dies, its
    /// jobs go to another worker after this.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    lease: u64,
}

pub async fn run(ctx: &Context, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let jobs = ctx.jobs()?;
    let user = jobs
        .session()
        .user()
        .ok_or(jobdeck_core::Error::SignedOut)?;
    let name = WorkerConfig::unique_name("cli");
    let mut config = WorkerConfig::new(name.clone());
    config.concurrency = args.concurrency.into();
    config.kinds = (!args.only.is_empty()).then_some(args.only);
    config.lease = Duration::from_secs(args.lease);
    // Woken by Realtime for jobs enqueued anywhere; polling remains the safety net.
    let realtime = Realtime::jobs(jobs.project(), std::sync::Arc::clone(jobs.session()));
    let worker = Worker::new(config, ctx.kinds.registry(), jobs)
        .woken_by(&realtime)
        .start();
    let mut events = worker.events();
    eprintln!(
        "Worker {name} running as {} ({} at once). Ctrl-C to stop.",
        user.email.as_deref().unwrap_or(&user.id),
        args.concurrency
    );
    let json = ctx.json;
    let log = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if json {
                out(&serde_json::to_string(&event).unwrap_or_default());
                continue;
            }
            match event {
                WorkerEvent::JobStarted { job } => {
                    out(&format!("started  {} {}", job.id, job.kind))
                }
                WorkerEvent::JobUpdated { job } => out(&format!(
                    "{:<8} {} {}",
                    job.status.as_str(),
                    job.id,
                    job.kind
                )),
                WorkerEvent::ScheduleFired { schedule_id, job } => out(&format!(
                    "made     {} {} (schedule {schedule_id})",
                    job.id, job.kind
                )),
                WorkerEvent::JobsRemoved { count } => out(&format!(
                    "removed  {count} ended jobs (the retention policy)"
                )),
                WorkerEvent::JobReleased { id } => out(&format!("released {id}")),
                WorkerEvent::JobLost { id } => out(&format!("lost     {id}")),
                WorkerEvent::SessionEnded { reason } => {
                    eprintln!("session ended: {reason}; run `jobdeck login`")
                }
                WorkerEvent::Trouble { message } => eprintln!("trouble: {message}"),
                WorkerEvent::Reconnected => eprintln!("reconnected: claiming again"),
                WorkerEvent::Stopped => break,
                _ => {}
            }
        }
    });
    jobdeck_core::signals::termination().await;
    eprintln!(
        "Stopping: letting running jobs finish for up to {} s, then handing them back.",
        args.grace
    );
    worker.shutdown(Duration::from_secs(args.grace)).await;
    realtime.shutdown().await;
    let _ = log.await;
    Ok(ExitCode::SUCCESS)
}
