//! The worker: claims the user's jobs and runs them in background tasks.
//!
//! Three kinds of task, all owned by the [`WorkerHandle`]:
//! - the claim loop: waits for a free slot, claims as many jobs as there are free
//!   slots in one call, and sleeps between empty claims with a growing interval (jobs
//!   enqueued elsewhere) unless woken in-process (jobs enqueued here start at once);
//! - the heartbeat loop: extends the leases of running jobs, and stops a job whose
//!   cancellation was requested or whose lease was lost;
//! - one task per job: checks it belongs to the signed-in user (confirmed once per
//!   claim), runs its handler under a per-attempt timeout, then finishes, fails or
//!   releases it;
//! - a writer of successes, while there are any: jobs that succeed while a batch is
//!   being written go together in the next (one request per batch, not per job).
//!
//! Stopping is two-level: [`WorkerHandle::shutdown`] stops claiming and lets running
//! jobs finish within a grace period, then stops them and hands them back.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, oneshot, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    kind::{Handler, InvalidInput, JobContext, JobError},
    registry::Registry,
};
use crate::{Error, ErrorBody, ErrorCode, Job, JobStatus, JobsClient, NewJob, SessionState, User};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this worker in each job's lease (`locked_by`); unique per process.
    pub name: String,
    /// How many jobs run at once.
    pub concurrency: usize,
    /// Claim only these kinds. `None` claims every kind, failing those it has no
    /// handler for with a clear error: right for a user's only worker. Workers that
    /// share a queue with differently equipped ones list their kinds.
    pub kinds: Option<Vec<String>>,
    /// How long a claim holds a job without a heartbeat. A worker that dies loses its
    /// jobs to others after this.
    pub lease: Duration,
    /// An attempt running longer than this fails (and is retried).
    pub attempt_timeout: Duration,
    /// The first and the longest wait between claims that found nothing.
    pub poll_min: Duration,
    pub poll_max: Duration,
}

impl WorkerConfig {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            concurrency: 4,
            kinds: None,
            // A lease and the longest idle poll together stay within 30 s: a dead
            // worker's job is running again within half a minute.
            lease: Duration::from_secs(25),
            attempt_timeout: Duration::from_secs(3600),
            poll_min: Duration::from_millis(250),
            poll_max: Duration::from_secs(5),
        }
    }
}

/// Everything that happens to jobs in this worker, for the UI and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerEvent {
    JobStarted {
        job: Job,
    },
    JobProgress {
        id: i64,
        progress: f32,
        message: Option<String>,
    },
    /// The job ended: finished, failed, cancelled, or waiting for a retry.
    JobUpdated {
        job: Job,
    },
    /// Handed back on shutdown: it waits for the next worker.
    JobReleased {
        id: i64,
    },
    /// The lease was lost (another worker may run it now); nothing was written.
    JobLost {
        id: i64,
    },
    Paused,
    Resumed,
    /// Claiming stopped because the session is over; it resumes after a new sign-in.
    SessionEnded {
        reason: String,
    },
    /// Supabase could not be reached or refused; the worker retries by itself.
    Trouble {
        message: String,
    },
    /// Supabase answers again after trouble: claiming goes on as before.
    Reconnected,
    Stopped,
}

/// What the worker is doing now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WorkerStatus {
    pub name: String,
    pub paused: bool,
    pub concurrency: usize,
    pub running: Vec<i64>,
}

/// Why enqueueing through the worker refused a job.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("invalid input: {0}")]
    Invalid(InvalidInput),
    #[error(transparent)]
    Api(#[from] Error),
}

impl EnqueueError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EnqueueError::Invalid(_) => ErrorCode::Validation,
            EnqueueError::Api(error) => error.code(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        match self {
            EnqueueError::Invalid(invalid) => ErrorBody {
                code: ErrorCode::Validation,
                message: self.to_string(),
                field: Some(invalid.field.clone()).filter(|f| !f.is_empty()),
            },
            EnqueueError::Api(error) => error.body(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Requested,
    Lost,
    /// The worker is stopping, or the session ended: hand the job back.
    HandBack,
}

#[derive(Debug, Clone)]
struct Running {
    cancel: CancellationToken,
    stop: Arc<Mutex<Option<Stop>>>,
}

#[derive(Debug)]
struct Shared {
    config: WorkerConfig,
    registry: Registry,
    jobs: JobsClient,
    wake: Notify,
    paused: watch::Sender<bool>,
    /// Cancelled to stop claiming.
    stop_claiming: CancellationToken,
    /// Cancelled once no job runs any more, to stop the heartbeats.
    stop_heartbeats: CancellationToken,
    slots: Arc<Semaphore>,
    /// Set while the session is over, so the end is announced once.
    session_ended: std::sync::atomic::AtomicBool,
    /// Set by trouble, so the first claim that succeeds after it says so once.
    troubled: std::sync::atomic::AtomicBool,
    // Held only for short synchronous sections, never across an await.
    running: Mutex<HashMap<i64, Running>>,
    /// Successes waiting to be written (see [`finish`]); the same rule for the lock.
    completions: Mutex<Completions>,
    events: broadcast::Sender<WorkerEvent>,
    /// Every task of this worker: the loops, each job, the writer of successes.
    tasks: TaskTracker,
}

/// A success waiting to be written with others.
#[derive(Debug)]
struct Completion {
    id: i64,
    result: Value,
    written: oneshot::Sender<Result<Option<Job>, Error>>,
}

#[derive(Debug, Default)]
struct Completions {
    queue: Vec<Completion>,
    /// A writer task is running; it takes what is queued until nothing is.
    writing: bool,
}

impl Shared {
    fn status(&self) -> WorkerStatus {
        let mut running: Vec<i64> = self.running().keys().copied().collect();
        running.sort_unstable();
        WorkerStatus {
            name: self.config.name.clone(),
            paused: *self.paused.borrow(),
            concurrency: self.config.concurrency,
            running,
        }
    }

    fn emit(&self, event: WorkerEvent) {
        if matches!(event, WorkerEvent::Trouble { .. }) {
            self.troubled
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn completions(&self) -> std::sync::MutexGuard<'_, Completions> {
        self.completions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stop_job(&self, id: i64, why: Stop) {
        if let Some(job) = self.running().get(&id) {
            let mut stop = job.stop.lock().unwrap_or_else(|e| e.into_inner());
            stop.get_or_insert(why);
            job.cancel.cancel();
        }
    }

    fn lease_seconds(&self) -> u32 {
        self.config.lease.as_secs().clamp(1, 86_400) as u32
    }

    /// The session is over: say so once, and hand every running job back (not fail
    /// it) while the session's parting token still allows.
    fn session_over(&self, reason: String) {
        if !self
            .session_ended
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            self.emit(WorkerEvent::SessionEnded { reason });
        }
        let ids: Vec<i64> = self.running().keys().copied().collect();
        for id in ids {
            self.stop_job(id, Stop::HandBack);
        }
    }
}

/// A worker before it starts.
#[derive(Debug)]
pub struct Worker {
    config: WorkerConfig,
    registry: Registry,
    jobs: JobsClient,
}

/// A running worker. Dropping it stops claiming; call [`WorkerHandle::shutdown`] to
/// also hand running jobs back.
#[derive(Debug)]
pub struct WorkerHandle {
    shared: Arc<Shared>,
}

impl Worker {
    pub fn new(config: WorkerConfig, registry: Registry, jobs: JobsClient) -> Self {
        Self {
            config,
            registry,
            jobs,
        }
    }

    /// Starts the claim and heartbeat loops on the current tokio runtime.
    pub fn start(self) -> WorkerHandle {
        let concurrency = self.config.concurrency.max(1);
        let (events, _) = broadcast::channel(1024);
        let tasks = TaskTracker::new();
        let shared = Arc::new(Shared {
            slots: Arc::new(Semaphore::new(concurrency)),
            session_ended: std::sync::atomic::AtomicBool::new(false),
            troubled: std::sync::atomic::AtomicBool::new(false),
            config: WorkerConfig {
                concurrency,
                ..self.config
            },
            registry: self.registry,
            jobs: self.jobs,
            wake: Notify::new(),
            paused: watch::Sender::new(false),
            stop_claiming: CancellationToken::new(),
            stop_heartbeats: CancellationToken::new(),
            running: Mutex::new(HashMap::new()),
            completions: Mutex::new(Completions::default()),
            events,
            tasks: tasks.clone(),
        });
        tasks.spawn(claim_loop(Arc::clone(&shared)));
        tasks.spawn(heartbeat_loop(Arc::clone(&shared)));
        WorkerHandle { shared }
    }
}

impl WorkerHandle {
    pub fn events(&self) -> broadcast::Receiver<WorkerEvent> {
        self.shared.events.subscribe()
    }

    /// Claims now instead of at the next poll (after this process enqueued).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Stops claiming new jobs; running jobs go on.
    pub fn pause(&self) {
        if !self.shared.paused.send_replace(true) {
            self.shared.emit(WorkerEvent::Paused);
        }
    }

    pub fn resume(&self) {
        if self.shared.paused.send_replace(false) {
            self.shared.emit(WorkerEvent::Resumed);
            self.wake();
        }
    }

    pub fn status(&self) -> WorkerStatus {
        self.shared.status()
    }

    /// Reads the status from a task that does not own the handle.
    pub fn status_reader(&self) -> impl Fn() -> WorkerStatus + Send + Sync + 'static {
        let shared = Arc::clone(&self.shared);
        move || shared.status()
    }

    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Checks the input against the kind and enqueues. A job due now that this worker
    /// may run, with a slot free, is started in the same call (one round trip, the
    /// user confirmed meanwhile); any other is left to the claim loop, woken at once so
    /// it does not wait for a poll.
    pub async fn enqueue(&self, job: &NewJob) -> Result<Job, EnqueueError> {
        let shared = &self.shared;
        shared
            .registry
            .validate(&job.kind, &job.context)
            .map_err(EnqueueError::Invalid)?;
        let slot = self.free_slot_for(job);
        let Some(slot) = slot else {
            let enqueued = shared.jobs.enqueue(job).await?;
            self.wake();
            return Ok(enqueued);
        };
        let name = shared.config.name.as_str();
        let (enqueued, confirmed) = tokio::join!(
            shared
                .jobs
                .enqueue_and_start(job, name, shared.lease_seconds()),
            confirm_user(shared)
        );
        let enqueued = enqueued?;
        if enqueued.status == JobStatus::Running && enqueued.locked_by.as_deref() == Some(name) {
            start_jobs(shared, vec![enqueued.clone()], vec![slot], confirmed).await;
        } else {
            // An earlier job under the same idempotency key, no longer waiting.
            drop(slot);
            self.wake();
        }
        Ok(enqueued)
    }

    /// A slot for `job` if this worker would start it now.
    fn free_slot_for(&self, job: &NewJob) -> Option<OwnedSemaphorePermit> {
        let shared = &self.shared;
        // A job given a run_at goes the usual way: the claim loop honours its time.
        let due = job.run_at.is_none();
        let runs_kind = shared
            .config
            .kinds
            .as_ref()
            .is_none_or(|kinds| kinds.contains(&job.kind));
        let claiming = !*shared.paused.borrow()
            && !shared.stop_claiming.is_cancelled()
            && !shared
                .session_ended
                .load(std::sync::atomic::Ordering::Relaxed);
        if !(due && runs_kind && claiming) {
            return None;
        }
        Arc::clone(&shared.slots).try_acquire_owned().ok()
    }

    /// Stops claiming, lets running jobs finish for up to `grace`, then stops the rest
    /// and hands them back (they wait again without losing an attempt).
    pub async fn shutdown(&self, grace: Duration) {
        let shared = &self.shared;
        {
            // Under the lock that registers jobs: no job starts after this.
            let _running = shared.running();
            shared.stop_claiming.cancel();
        }
        shared.tasks.close();
        let drained = async {
            while !shared.running().is_empty() {
                let mut events = shared.events.subscribe();
                if shared.running().is_empty() {
                    break;
                }
                let _ = events.recv().await;
            }
        };
        if tokio::time::timeout(grace, drained).await.is_err() {
            let ids: Vec<i64> = shared.running().keys().copied().collect();
            for id in ids {
                shared.stop_job(id, Stop::HandBack);
            }
        }
        shared.stop_heartbeats.cancel();
        shared.tasks.wait().await;
        shared.emit(WorkerEvent::Stopped);
    }

    /// Stops everything at once without handing jobs back, as if the process had died:
    /// their leases run out and another worker takes them.
    pub fn abort(self) {
        self.shared.stop_claiming.cancel();
        self.shared.stop_heartbeats.cancel();
        let ids: Vec<i64> = self.shared.running().keys().copied().collect();
        for id in ids {
            self.shared.stop_job(id, Stop::Lost);
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.shared.stop_claiming.cancel();
    }
}

async fn claim_loop(shared: Arc<Shared>) {
    let mut idle = shared.config.poll_min;
    let mut paused = shared.paused.subscribe();
    // Whether this claim is likely to find jobs (woken by an enqueue here, or the last
    // claim found some): then the user is confirmed while the claim is in flight, which
    // saves a round trip before the jobs start. Polls that usually find nothing claim
    // first and confirm only when they found something.
    let mut expect_jobs = true;
    loop {
        while *paused.borrow_and_update() {
            tokio::select! {
                () = shared.stop_claiming.cancelled() => return,
                _ = paused.changed() => {}
            }
        }
        let first = tokio::select! {
            () = shared.stop_claiming.cancelled() => return,
            permit = Arc::clone(&shared.slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let mut slots = vec![first];
        while let Ok(permit) = Arc::clone(&shared.slots).try_acquire_owned() {
            slots.push(permit);
        }
        let claim = shared.jobs.claim(
            &shared.config.name,
            shared.config.kinds.as_deref(),
            slots.len() as u32,
            shared.lease_seconds(),
        );
        let (claimed, confirmed) = if expect_jobs {
            let (claimed, confirmed) = tokio::join!(claim, confirm_user(&shared));
            (claimed, Some(confirmed))
        } else {
            (claim.await, None)
        };
        expect_jobs = false;
        if claimed.is_ok()
            && shared
                .troubled
                .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            shared.emit(WorkerEvent::Reconnected);
        }
        let wait = match claimed {
            Ok(jobs) if jobs.is_empty() => {
                let wait = idle;
                idle = (idle * 2).min(shared.config.poll_max);
                Some(wait)
            }
            Ok(jobs) if shared.stop_claiming.is_cancelled() => {
                // A claim already in flight when the worker began to stop (it may even
                // have taken back a job just handed back): start nothing, return it all.
                let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
                release(&shared, &ids).await;
                return;
            }
            Ok(jobs) => {
                idle = shared.config.poll_min;
                let confirmed = match confirmed {
                    Some(confirmed) => confirmed,
                    None => confirm_user(&shared).await,
                };
                start_jobs(&shared, jobs, slots, confirmed).await;
                // Free slots mean the next claim may find more at once.
                expect_jobs = true;
                continue;
            }
            Err(error) if error.code() == ErrorCode::AuthExpired => {
                drop(slots);
                shared.session_over(error.to_string());
                if !wait_for_sign_in(&shared).await {
                    return;
                }
                shared
                    .session_ended
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            Err(error) => {
                shared.emit(WorkerEvent::Trouble {
                    message: error.to_string(),
                });
                let wait = idle;
                idle = (idle * 2).min(shared.config.poll_max);
                Some(wait)
            }
        };
        if let Some(wait) = wait {
            // Waiting holds no slot: an enqueue in this process may take one meanwhile.
            drop(slots);
            tokio::select! {
                () = shared.stop_claiming.cancelled() => return,
                () = shared.wake.notified() => {
                    idle = shared.config.poll_min;
                    expect_jobs = true;
                }
                () = tokio::time::sleep(wait) => {}
                _ = paused.changed() => {}
            }
        }
    }
}

/// Waits until the user is signed in again; false if the worker stops first.
async fn wait_for_sign_in(shared: &Shared) -> bool {
    let mut state = shared.jobs.session().watch();
    loop {
        if matches!(*state.borrow_and_update(), SessionState::Active { .. }) {
            return true;
        }
        tokio::select! {
            () = shared.stop_claiming.cancelled() => return false,
            changed = state.changed() => if changed.is_err() { return false },
        }
    }
}

/// Asks Auth who the signed-in user is (as the original pattern does before each job;
/// here once per claimed batch).
async fn confirm_user(shared: &Shared) -> Result<User, Error> {
    let session = shared.jobs.session();
    let token = session.access_token().await?;
    session.auth().user(&token).await
}

/// Starts each claimed job that belongs to the `confirmed` user.
async fn start_jobs(
    shared: &Arc<Shared>,
    jobs: Vec<Job>,
    mut slots: Vec<OwnedSemaphorePermit>,
    confirmed: Result<User, Error>,
) {
    let user = match confirmed {
        Ok(user) => user,
        Err(error) => {
            // Not confirmed: run nothing, hand the jobs back while we still can.
            shared.emit(WorkerEvent::Trouble {
                message: format!("could not confirm the signed-in user: {error}"),
            });
            let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
            release(shared, &ids).await;
            return;
        }
    };
    for job in jobs {
        let Some(slot) = slots.pop() else { break };
        if job.uuid != user.id {
            tracing::warn!(
                job = job.id,
                "a claimed job belongs to someone else; handing it back"
            );
            release(shared, &[job.id]).await;
            continue;
        }
        let entry = {
            let mut running = shared.running();
            if shared.stop_claiming.is_cancelled() {
                None
            } else {
                let entry = Running {
                    cancel: CancellationToken::new(),
                    stop: Arc::new(Mutex::new(None)),
                };
                running.insert(job.id, entry.clone());
                Some(entry)
            }
        };
        match entry {
            Some(entry) => {
                let handler = shared.registry.get(&job.kind);
                shared
                    .tasks
                    .spawn(run_job(Arc::clone(shared), job, handler, entry, slot));
            }
            // The worker began to stop while this batch was being confirmed.
            None => release(shared, &[job.id]).await,
        }
    }
}

async fn release(shared: &Shared, ids: &[i64]) {
    match shared.jobs.release(&shared.config.name, ids).await {
        Ok(released) => {
            for job in released {
                shared.emit(WorkerEvent::JobReleased { id: job.id });
            }
        }
        Err(error) => tracing::warn!(%error, "handing jobs back; their leases will expire"),
    }
}

/// Runs one registered job to its end; `entry` is its place in the running set.
async fn run_job(
    shared: Arc<Shared>,
    job: Job,
    handler: Option<Arc<dyn Handler>>,
    entry: Running,
    slot: OwnedSemaphorePermit,
) {
    let id = job.id;
    let Running { cancel, stop } = entry;
    shared.emit(WorkerEvent::JobStarted { job: job.clone() });

    let outcome = match handler {
        None => Err(JobError::permanent(format!(
            "no handler for job kind \"{}\" in worker {}",
            job.kind, shared.config.name
        ))
        .with_code("unknown_kind")),
        Some(handler) => {
            let ctx = JobContext {
                job: job.clone(),
                jobs: shared.jobs.clone(),
                worker: shared.config.name.as_str().into(),
                cancel: cancel.clone(),
                events: shared.events.clone(),
            };
            let run = tokio::time::timeout(
                shared.config.attempt_timeout,
                handler.run(job.context.clone(), ctx),
            );
            tokio::select! {
                finished = run => finished.unwrap_or_else(|_| Err(JobError::retry(format!(
                    "the attempt took longer than {} s", shared.config.attempt_timeout.as_secs()
                )).with_code("timeout"))),
                () = cancel.cancelled() => Err(JobError::retry("stopped").with_code("cancelled")),
            }
        }
    };
    let why = *stop.lock().unwrap_or_else(|e| e.into_inner());
    let record = match (why, outcome) {
        (Some(Stop::Lost), _) => {
            shared.emit(WorkerEvent::JobLost { id });
            None
        }
        (Some(Stop::HandBack), Err(_)) => {
            release(&shared, &[id]).await;
            None
        }
        (_, Ok(result)) => Some(Outcome::Finished(result)),
        (Some(Stop::Requested), Err(_)) => Some(Outcome::Failed {
            error: json!({ "message": "cancelled on request", "code": "cancelled" }),
            permanent: true,
        }),
        (None, Err(error)) => Some(Outcome::Failed {
            error: error.to_json(),
            permanent: error.permanent,
        }),
    };
    if let Some(record) = record {
        match write_outcome(&shared, id, record).await {
            Ok(Some(job)) => shared.emit(WorkerEvent::JobUpdated { job }),
            Ok(None) => shared.emit(WorkerEvent::JobLost { id }),
            Err(error) if error.server_code() == Some("JD002") => {
                shared.emit(WorkerEvent::JobLost { id })
            }
            Err(error) => shared.emit(WorkerEvent::Trouble {
                message: format!("recording the outcome of job {id}: {error}"),
            }),
        }
    }
    shared.running().remove(&id);
    drop(slot);
}

/// How an attempt ended, to be written.
#[derive(Debug)]
enum Outcome {
    Finished(Value),
    Failed { error: Value, permanent: bool },
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
            Outcome::Finished(result) => finish(shared, id, result.clone()).await,
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
                    shared.emit(WorkerEvent::Trouble {
                        message: format!("recording the outcome of job {id}, retrying: {error}"),
                    });
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

/// Records a success and answers the finished job, or `None` if the lease was lost.
/// Successes that arrive while a batch is being written wait and go together in the
/// next: one request per batch rather than per job, which is what lets a busy worker
/// keep up. A lone success is written at once, in a call of its own.
async fn finish(shared: &Arc<Shared>, id: i64, result: Value) -> Result<Option<Job>, Error> {
    let (written, answer) = oneshot::channel();
    let start_writer = {
        let mut completions = shared.completions();
        completions.queue.push(Completion {
            id,
            result,
            written,
        });
        !std::mem::replace(&mut completions.writing, true)
    };
    if start_writer {
        shared.tasks.spawn(write_completions(Arc::clone(shared)));
    }
    answer.await.unwrap_or_else(|_| {
        Err(Error::Protocol {
            url: String::new(),
            reason: "the job's success was not written".into(),
        })
    })
}

/// Writes queued successes in batches until none is left.
async fn write_completions(shared: Arc<Shared>) {
    const MAX_BATCH: usize = 1000;
    loop {
        let batch: Vec<Completion> = {
            let mut completions = shared.completions();
            if completions.queue.is_empty() {
                completions.writing = false;
                return;
            }
            let take = completions.queue.len().min(MAX_BATCH);
            completions.queue.drain(..take).collect()
        };
        let done: Vec<(i64, &Value)> = batch.iter().map(|c| (c.id, &c.result)).collect();
        match shared.jobs.finish_many(&shared.config.name, &done).await {
            Ok(jobs) => {
                let mut finished: HashMap<i64, Job> =
                    jobs.into_iter().map(|job| (job.id, job)).collect();
                for completion in batch {
                    let _ = completion.written.send(Ok(finished.remove(&completion.id)));
                }
            }
            Err(error) => {
                for completion in batch {
                    let _ = completion.written.send(Err(error.clone()));
                }
            }
        }
    }
}

async fn heartbeat_loop(shared: Arc<Shared>) {
    let every = (shared.config.lease / 3).max(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = shared.stop_heartbeats.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let ids: Vec<i64> = shared.running().keys().copied().collect();
        if ids.is_empty() {
            continue;
        }
        match shared
            .jobs
            .heartbeat(&shared.config.name, &ids, shared.lease_seconds())
            .await
        {
            Ok(leases) => {
                let held: HashMap<i64, bool> =
                    leases.iter().map(|l| (l.id, l.cancel_requested)).collect();
                for id in ids {
                    match held.get(&id) {
                        Some(false) => {}
                        Some(true) => shared.stop_job(id, Stop::Requested),
                        None => shared.stop_job(id, Stop::Lost),
                    }
                }
            }
            // With every slot busy the claim loop may not notice for long: here is
            // where a running worker learns its session ended.
            Err(error) if error.code() == ErrorCode::AuthExpired => {
                shared.session_over(error.to_string())
            }
            Err(error) => shared.emit(WorkerEvent::Trouble {
                message: format!("extending leases: {error}"),
            }),
        }
    }
}
