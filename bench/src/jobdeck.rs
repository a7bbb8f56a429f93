//! Jobdeck's own figures: throughput of no-op jobs drained through the REST API as the
//! signed-in user (one worker in this process, or several worker processes together),
//! and enqueue-to-start latency for a worker in this process (woken by the enqueue)
//! and in a process of its own (woken by Realtime).

use std::{
    process::Stdio,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, bail, ensure};
use jobdeck_core::{
    JobsClient, NewJob,
    realtime::{LiveState, Realtime},
    worker::{JobContext, JobError, JobKind, Registry, Worker, WorkerConfig, WorkerEvent},
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    process::Command,
    sync::{broadcast::error::RecvError, mpsc},
};

use crate::{
    cpu,
    stack::{self, Stack},
};

pub const KIND: &str = "bench.noop";

/// The benchmark's job: does nothing, except say when it started if it is a sample.
#[derive(Debug)]
pub struct Noop {
    started: mpsc::UnboundedSender<(u64, SystemTime)>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoopInput {
    #[serde(default)]
    sample: Option<u64>,
}

impl JobKind for Noop {
    const NAME: &'static str = KIND;
    const DESCRIPTION: &'static str = "Does nothing (the benchmark's job).";
    type Input = NoopInput;
    type Output = ();

    async fn run(&self, input: NoopInput, _ctx: JobContext) -> Result<(), JobError> {
        if let Some(sample) = input.sample {
            let _ = self.started.send((sample, SystemTime::now()));
        }
        Ok(())
    }
}

fn worker(
    jobs: &JobsClient,
    name: &str,
    concurrency: usize,
) -> (Worker, mpsc::UnboundedReceiver<(u64, SystemTime)>) {
    let (started, samples) = mpsc::unbounded_channel();
    let registry = Registry::new().register(Noop { started });
    (
        kind_worker(jobs, registry, KIND, name, concurrency),
        samples,
    )
}

/// A worker with `concurrency` slots that claims only `kind`, run by `registry`.
fn kind_worker(
    jobs: &JobsClient,
    registry: Registry,
    kind: &str,
    name: &str,
    concurrency: usize,
) -> Worker {
    let mut config = WorkerConfig::new(name);
    config.concurrency = concurrency;
    config.kinds = Some(vec![kind.into()]);
    Worker::new(config, registry, jobs.clone())
}

/// The pause before latency sample `i`: spread over 0 to 500 ms so the samples meet the
/// worker in every state of its polling (the graphile-worker script uses the same).
pub fn gap(i: u64) -> Duration {
    Duration::from_millis((i * 7919) % 500)
}

/// Enqueues `n` no-op jobs in bulk, then times a worker with `concurrency` slots
/// draining them; answers jobs per second and the CPU the drain took, after checking
/// every job finished once.
pub async fn throughput(
    stack: &Stack,
    jobs: &JobsClient,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, cpu::PerThousand)> {
    let (started, _samples) = mpsc::unbounded_channel();
    let registry = Registry::new().register(Noop { started });
    drain(stack, jobs, registry, KIND, n, concurrency).await
}

/// [`throughput`] for any `kind` that `registry` runs: `n` jobs of it with empty
/// input, drained by a worker in this process. The CPU of the programs a kind runs is
/// the worker's (they are its children, each waited for).
pub async fn drain(
    stack: &Stack,
    jobs: &JobsClient,
    registry: Registry,
    kind: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, cpu::PerThousand)> {
    enqueue_empty(jobs, kind, n).await?;
    let worker = kind_worker(
        jobs,
        registry,
        kind,
        &format!("bench-{concurrency}"),
        concurrency,
    );
    let admin = stack.admin("postgres").await?;
    let before = cpu::Sample::take(stack.sandbox_pid());
    let start = Instant::now();
    let handle = worker.start();
    let mut events = handle.events();
    let mut ended = 0;
    while ended < n {
        match events.recv().await {
            Ok(WorkerEvent::JobUpdated { .. }) => ended += 1,
            Ok(WorkerEvent::Trouble { message }) => bail!("the worker had trouble: {message}"),
            Ok(_) => {}
            // Too far behind to count events: ask the database until nothing is left.
            Err(RecvError::Lagged(_)) => {
                while remaining(&admin, kind).await? > 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                break;
            }
            Err(RecvError::Closed) => bail!("the worker stopped"),
        }
    }
    let elapsed = start.elapsed();
    let cpu = before.per_thousand(&cpu::Sample::take(stack.sandbox_pid()), n, true);
    handle.shutdown(Duration::from_secs(5)).await;

    finished_once(&admin, kind, n).await?;
    Ok((n as f64 / elapsed.as_secs_f64(), cpu))
}

/// The job tallies' triggers (supabase/migrations/20261201000600_job_tallies.sql).
const TALLY_TRIGGERS: [&str; 4] = [
    "jobs_tally_inserts",
    "jobs_tally_updates",
    "jobs_tally_deletes",
    "jobs_untally_truncate",
];

/// [`throughput`] with the job tallies' triggers switched off (as the superuser), to
/// show what keeping the counts costs. Every job of the run is deleted by its end, so
/// the tallies are right again once the triggers are back.
pub async fn throughput_untallied(
    stack: &Stack,
    jobs: &JobsClient,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let admin = stack.admin("postgres").await?;
    let switch = |how: &str| {
        let each: Vec<String> = TALLY_TRIGGERS
            .iter()
            .map(|t| format!("{how} trigger {t}"))
            .collect();
        format!("alter table public.jobs {}", each.join(", "))
    };
    admin.batch_execute(&switch("disable")).await?;
    let measured = throughput(stack, jobs, n, concurrency).await;
    admin.batch_execute(&switch("enable")).await?;
    Ok(measured?.0)
}

/// `n` jobs of `kind` with empty input, in one bulk enqueue.
async fn enqueue_empty(jobs: &JobsClient, kind: &str, n: usize) -> anyhow::Result<()> {
    let job = NewJob {
        kind: kind.into(),
        context: json!({}),
        ..NewJob::default()
    };
    jobs.enqueue_many(&vec![job; n]).await?;
    Ok(())
}

async fn remaining(admin: &tokio_postgres::Client, kind: &str) -> anyhow::Result<i64> {
    let row = admin
        .query_one(
            "select count(*) from public.jobs where kind = $1 and status in ('waiting', 'running')",
            &[&kind],
        )
        .await?;
    Ok(row.get(0))
}

/// Enqueue-to-start latency (ms) with the worker in this process: each job is enqueued
/// through the worker, whose wake-up claims it at once.
pub async fn latency_in_process(jobs: &JobsClient, samples: u64) -> anyhow::Result<Vec<f64>> {
    let (worker, mut started) = worker(jobs, "bench-latency", 4);
    let handle = worker.start();
    let mut latencies = Vec::new();
    for i in 0..samples {
        tokio::time::sleep(gap(i)).await;
        let enqueued = SystemTime::now();
        handle.enqueue(&sample_job(i)).await?;
        let (sample, at) = tokio::time::timeout(Duration::from_secs(30), started.recv())
            .await
            .context("a sample did not start within 30 s")?
            .context("the worker stopped")?;
        ensure!(sample == i, "sample {sample} started instead of {i}");
        latencies.push(millis_between(enqueued, at));
    }
    handle.shutdown(Duration::from_secs(5)).await;
    Ok(latencies)
}

/// Enqueues `n` no-op jobs, then times `processes` worker processes (each signed in
/// with a session of its own, `concurrency` slots each) draining them together;
/// answers jobs per second and the CPU the drain took, after checking every job
/// finished once.
pub async fn scale_out(
    stack: &Stack,
    jobs: &JobsClient,
    n: usize,
    processes: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, cpu::PerThousand)> {
    enqueue_empty(jobs, KIND, n).await?;
    let admin = stack.admin("postgres").await?;
    let mut children = Vec::new();
    for _ in 0..processes {
        let mut child = worker_child(stack, concurrency)?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("a worker process said nothing for 30 s")??;
        ensure!(
            ready.as_deref() == Some("ready"),
            "a worker process did not start"
        );
        children.push(child);
    }
    let before = cpu::Sample::take(stack.sandbox_pid());
    let start = Instant::now();
    for child in &mut children {
        let stdin = child.stdin.as_mut().context("no stdin")?;
        stdin.write_all(b"go\n").await?;
        stdin.flush().await?;
    }
    // The workers are other processes: the database says when they are done.
    let deadline = start + Duration::from_secs(600);
    while remaining(&admin, KIND).await? > 0 {
        ensure!(
            Instant::now() < deadline,
            "the workers did not drain the jobs in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    let cpu = before.per_thousand(&cpu::Sample::take(stack.sandbox_pid()), n, false);
    for mut child in children {
        child.start_kill()?;
        child.wait().await?;
    }
    finished_once(&admin, KIND, n).await?;
    Ok((n as f64 / elapsed.as_secs_f64(), cpu))
}

/// This binary's `worker-process`, ready to be told to start.
fn worker_child(stack: &Stack, concurrency: usize) -> anyhow::Result<tokio::process::Child> {
    Ok(Command::new(std::env::current_exe()?)
        .args(["worker-process", "--api-url", &stack.status.api_url])
        .args(["--anon-key", &stack.status.anon_key])
        .args(["--concurrency", &concurrency.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?)
}

/// Every one of the `n` jobs of `kind` finished, each in one attempt; then they are
/// removed for the next run.
async fn finished_once(admin: &tokio_postgres::Client, kind: &str, n: usize) -> anyhow::Result<()> {
    let row = admin
        .query_one(
            "select count(*) filter (where status = 'finished'),
                    count(*) filter (where attempt <> 1)
               from public.jobs where kind = $1",
            &[&kind],
        )
        .await?;
    let (finished, rerun): (i64, i64) = (row.get(0), row.get(1));
    ensure!(
        finished == n as i64 && rerun == 0,
        "of {n} jobs {finished} finished and {rerun} ran more than once"
    );
    // Separately: a multi-statement batch is one transaction, and VACUUM refuses those.
    admin.batch_execute("delete from public.jobs").await?;
    admin.batch_execute("vacuum analyze public.jobs").await?;
    Ok(())
}

/// Enqueue-to-start latency (ms) with the worker in another process (this binary's
/// `worker-process`, signed in for its own session), woken by Realtime.
pub async fn latency_cross_process(
    stack: &Stack,
    jobs: &JobsClient,
    samples: u64,
) -> anyhow::Result<Vec<f64>> {
    let mut child = worker_child(stack, 4)?;
    drop(child.stdin.take());
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let mut next = async || -> anyhow::Result<String> {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("the worker process said nothing for 30 s")??
            .context("the worker process ended")
    };
    ensure!(next().await? == "ready", "the worker process did not start");
    let mut latencies = Vec::new();
    for i in 0..samples {
        tokio::time::sleep(gap(i)).await;
        let enqueued = SystemTime::now();
        jobs.enqueue(&sample_job(i)).await?;
        let line = next().await?;
        let (sample, micros) = line
            .split_once(' ')
            .and_then(|(s, m)| Some((s.parse::<u64>().ok()?, m.parse::<u64>().ok()?)))
            .with_context(|| format!("unexpected line from the worker process: {line}"))?;
        ensure!(sample == i, "sample {sample} started instead of {i}");
        let at = UNIX_EPOCH + Duration::from_micros(micros);
        latencies.push(millis_between(enqueued, at));
    }
    child.start_kill()?;
    child.wait().await?;
    Ok(latencies)
}

/// `worker-process`: signs in, waits for Realtime, prints `ready`, and once its
/// standard input gives a line (or ends) runs a worker with `concurrency` slots for
/// the benchmark's kind, printing `<sample> <start, µs since the epoch>` for each
/// sample job it starts.
pub async fn worker_process(
    api_url: &str,
    anon_key: &str,
    concurrency: usize,
) -> anyhow::Result<()> {
    let project = jobdeck_core::Project::new(api_url, anon_key)?;
    let jobs = stack::jobs_client(project, stack::EMAIL, stack::PASSWORD).await?;
    let realtime = Realtime::jobs(jobs.project(), std::sync::Arc::clone(jobs.session()));
    tokio::time::timeout(
        Duration::from_secs(30),
        realtime.state().wait_for(|s| *s == LiveState::Live),
    )
    .await
    .context("Realtime was not live within 30 s")??;
    let (worker, mut started) = worker(
        &jobs,
        &format!("bench-process-{}", std::process::id()),
        concurrency,
    );
    println!("ready");
    // Blocking: the workspace's tokio has no stdin, and nothing else runs yet.
    tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await??;
    let handle = worker.woken_by(&realtime).start();
    while let Some((sample, at)) = started.recv().await {
        let micros = at.duration_since(UNIX_EPOCH)?.as_micros();
        println!("{sample} {micros}");
    }
    handle.shutdown(Duration::from_secs(1)).await;
    realtime.shutdown().await;
    Ok(())
}

fn sample_job(i: u64) -> NewJob {
    NewJob {
        kind: KIND.into(),
        context: json!({ "sample": i }),
        ..NewJob::default()
    }
}

fn millis_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -(e.duration().as_secs_f64() * 1000.0),
    }
}
