//! The executor: one job's attempt, from its start to its outcome written. The attempt
//! runs its kind's handler under the per-attempt timeout and the job's cancellation;
//! its outcome is finished (through the completer), failed (retried with backoff by
//! the database), handed back, or nothing when the lease was lost.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;

use super::{
    events::WorkerEvent,
    kind::{JobContext, JobError},
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

/// Runs one registered job to its end. The job leaves the running set (and frees its
/// slot) before its last event is sent, so whoever acts on that event sees the worker
/// as it now is.
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
    let outcome = attempt(&shared, job, &entry).await;
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
    shared.running.remove(id);
    drop(slot);
    if let Some(event) = last {
        shared.events.emit(event);
    }
}

/// The attempt itself: the handler under the timeout and the job's cancellation.
async fn attempt(shared: &Shared, job: Job, entry: &RunningJob) -> Result<Value, JobError> {
    let Some(handler) = shared.registry.get(&job.kind) else {
        return Err(JobError::permanent(format!(
            "no handler for job kind \"{}\" in worker {}",
            job.kind, shared.config.name
        ))
        .with_code("unknown_kind"));
    };
    let input = job.context.clone();
    let ctx = JobContext {
        job,
        jobs: shared.jobs.clone(),
        worker: shared.config.name.as_str().into(),
        cancel: entry.cancel.clone(),
        events: shared.events.sender().clone(),
    };
    let timeout = shared.config.attempt_timeout;
    tokio::select! {
        finished = tokio::time::timeout(timeout, handler.run(input, ctx)) => {
            finished.unwrap_or_else(|_| Err(JobError::retry(format!(
                "the attempt took longer than {} s", timeout.as_secs()
            )).with_code("timeout")))
        }
        () = entry.cancel.cancelled() => Err(JobError::retry("stopped").with_code("cancelled")),
    }
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
/// slot and its heartbeats meanwhile): giving up would leave the job to be run again
/// once its lease expired, though it had already run. Only a worker stopping for good
/// gives up; then the lease decides.
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
