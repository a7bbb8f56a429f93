//! The executor: one job's attempt, from its start to its outcome written. The attempt
//! runs its kind's handler under the per-attempt timeout and the job's cancellation;
//! its outcome is finished (through the completer), failed (retried with backoff by
//! the database), handed back, or nothing when the lease was lost.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::{
    events::WorkerEvent,
    kind::{JobContext, JobError},
    logs::{AttemptLog, LogSink},
    running::{RunningJob, Stop},
    shared::Shared,
};
use crate::{Error, ErrorCode, Job};

/// How an attempt ended, to be written.
#[derive(Debug)]
enum Outcome {
    Finished(Value),
    Failed { error: Value, permanent: bool },
}

/// Runs one registered job to its end. Its slot is free once the handler has ended,
/// so the next job starts while this one's outcome is written; the job stays in the
/// running set (its lease kept by the heartbeat) until then, and leaves it before its
/// last event is sent, so whoever acts on that event sees the worker as it now is.
pub(super) async fn run_job(
    shared: Arc<Shared>,
    job: Job,
    entry: RunningJob,
    slot: OwnedSemaphorePermit,
) {
    let id = job.id;
    shared
        .events
        .emit(WorkerEvent::JobStarted { job: job.clone() });
    let began = Instant::now();
    let outcome = attempt(&shared, job, &entry).await;
    shared.claims.attempt_took(began.elapsed());
    drop(slot);
    let last = match (entry.stopped_because(), outcome) {
        (Some(Stop::Lost), _) => Some(WorkerEvent::JobLost { id }),
        (Some(Stop::HandBack), Err(_)) => hand_back(&shared, &[id])
            .await
            .first()
            .map(|&id| WorkerEvent::JobReleased { id }),
        (_, Ok(result)) => Some(recorded(&shared, id, Outcome::Finished(result)).await),
        (Some(Stop::Requested), Err(_)) => Some(
            recorded(
                &shared,
                id,
                Outcome::Failed {
                    error: json!({ "message": "cancelled on request", "code": "cancelled" }),
                    permanent: true,
                },
            )
            .await,
        ),
        (None, Err(error)) => Some(
            recorded(
                &shared,
                id,
                Outcome::Failed {
                    error: error.to_json(),
                    permanent: error.permanent,
                },
            )
            .await,
        ),
    };
    if shared.running.remove(id) {
        // Its kind was at its limit here: the claim loop may have skipped it.
        shared.claims.wake.notify_one();
    }
    if let Some(event) = last {
        shared.events.emit(event);
    }
}

/// The attempt itself: the kind's handler under its timeout and the job's
/// cancellation, its log sent alongside and finished before the outcome is written (so
/// a failure's last lines are stored when the failure is seen).
async fn attempt(shared: &Shared, job: Job, entry: &RunningJob) -> Result<Value, JobError> {
    let registry = shared.registry();
    let Some(kind) = registry.get(&job.kind) else {
        return Err(JobError::permanent(format!(
            "no handler for job kind \"{}\" in worker {}",
            job.kind, shared.config.name
        ))
        .with_code("unknown_kind"));
    };
    let worker: Arc<str> = shared.config.name.as_str().into();
    let sink = LogSink {
        jobs: shared.jobs.clone(),
        worker: Arc::clone(&worker),
        events: shared.events.sender().clone(),
    };
    let log = AttemptLog::new(job.id, job.attempt, Some(sink));
    // The attempt's own stop: the job's (cancelled, lost, handed back) or its timeout.
    let stop = entry.cancel.child_token();
    let input = job.context.clone();
    let ctx = JobContext {
        job,
        jobs: shared.jobs.clone(),
        worker,
        cancel: stop.clone(),
        events: shared.events.sender().clone(),
        log: Arc::clone(&log),
    };
    let timeout = kind
        .options
        .timeout
        .unwrap_or(shared.config.attempt_timeout);
    let grace = kind.handler.stop_grace();
    let run = kind.handler.run(input, ctx);
    let outcome = tokio::select! {
        outcome = until_stopped(run, timeout, grace, &stop) => outcome,
        never = log.keep_sending() => match never {},
    };
    log.finish().await;
    outcome
}

/// Runs `run` until it ends, its timeout passes or `stop` is cancelled. A stopped
/// handler is told (through its context) and given `grace` to stop what it started
/// (a program gets SIGTERM, then SIGKILL), then dropped.
async fn until_stopped(
    run: BoxFuture<'static, Result<Value, JobError>>,
    timeout: Duration,
    grace: Duration,
    stop: &CancellationToken,
) -> Result<Value, JobError> {
    tokio::pin!(run);
    let why = tokio::select! {
        outcome = &mut run => return outcome,
        () = tokio::time::sleep(timeout) => JobError::retry(format!(
            "the attempt took longer than {} s", timeout.as_secs()
        )).with_code("timeout"),
        () = stop.cancelled() => JobError::retry("stopped").with_code("cancelled"),
    };
    stop.cancel();
    if !grace.is_zero() {
        let _ = tokio::time::timeout(grace, run).await;
    }
    Err(why)
}

/// Writes the outcome and answers the event that says how it went.
async fn recorded(shared: &Arc<Shared>, id: i64, outcome: Outcome) -> WorkerEvent {
    match write_outcome(shared, id, outcome).await {
        Ok(Some(job)) => WorkerEvent::JobUpdated { job },
        Ok(None) => WorkerEvent::JobLost { id },
        Err(error) if error.server_code() == Some("JD002") => WorkerEvent::JobLost { id },
        Err(error) => WorkerEvent::Trouble {
            message: format!("recording the outcome of job {id}: {error}"),
        },
    }
}

/// Writes an attempt's outcome, answering the job as it now is, or `None` if the lease
/// was lost. While Supabase cannot be reached the write is retried (the job keeps its
/// lease meanwhile: it stays in the running set, which the heartbeat extends): giving
/// up would leave the job to be run again once its lease expired, though it had
/// already run. Only a worker stopping for good gives up; then the lease decides.
async fn write_outcome(
    shared: &Arc<Shared>,
    id: i64,
    outcome: Outcome,
) -> Result<Option<Job>, Error> {
    let mut wait = shared.config.poll_min;
    let mut said = false;
    loop {
        let written = match &outcome {
            Outcome::Finished(result) => {
                shared
                    .completer
                    .finish(&shared.tasks, id, result.clone())
                    .await
            }
            Outcome::Failed { error, permanent } => shared
                .jobs
                .fail(id, &shared.config.name, error, *permanent)
                .await
                .map(Some),
        };
        match written {
            Err(error) if error.code() == ErrorCode::Network => {
                if !said {
                    said = true;
                    shared.events.trouble(format!(
                        "recording the outcome of job {id}, retrying: {error}"
                    ));
                }
                tokio::select! {
                    () = shared.stop_heartbeats.cancelled() => return Err(error),
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(shared.config.poll_max);
            }
            written => return written,
        }
    }
}

/// Hands jobs back to waiting and says so for each.
pub(super) async fn release(shared: &Shared, ids: &[i64]) {
    for id in hand_back(shared, ids).await {
        shared.events.emit(WorkerEvent::JobReleased { id });
    }
}

/// Hands jobs back to waiting; answers those that were (the others were no longer
/// this worker's). While Supabase cannot be reached the call is retried with backoff
/// (as an outcome is): a job left leased here would wait out its lease and be claimed
/// again, an attempt used for nothing. Once the worker stops for good, or on any other
/// error, it gives up and the leases decide.
async fn hand_back(shared: &Shared, ids: &[i64]) -> Vec<i64> {
    let mut wait = shared.config.poll_min;
    loop {
        match shared.jobs.release(&shared.config.name, ids).await {
            Ok(released) => return released.iter().map(|job| job.id).collect(),
            Err(error) if error.code() == ErrorCode::Network => {
                tokio::select! {
                    () = shared.stop_heartbeats.cancelled() => {
                        tracing::warn!(%error, "handing jobs back; their leases will expire");
                        return Vec::new();
                    }
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(shared.config.poll_max);
            }
            Err(error) => {
                tracing::warn!(%error, "handing jobs back; their leases will expire");
                return Vec::new();
            }
        }
    }
}
