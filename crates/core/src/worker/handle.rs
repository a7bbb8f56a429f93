//! The public surface: a [`Worker`] before it starts, and the [`WorkerHandle`] of a
//! running one.

use std::{sync::Arc, time::Duration};

use tokio::sync::broadcast;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    claims::Claims,
    completer::Completer,
    config::WorkerConfig,
    events::{Events, WorkerEvent, WorkerStatus},
    heartbeat, live, producer,
    registry::{EnqueueError, Registry},
    retention,
    running::{RunningJobs, Stop},
    scheduler,
    shared::Shared,
};
use crate::{
    Job, JobsClient, NewJob,
    realtime::{Realtime, RealtimeEvent},
};

/// A worker before it starts.
#[derive(Debug)]
pub struct Worker {
    config: WorkerConfig,
    registry: Registry,
    jobs: JobsClient,
    changes: Option<broadcast::Receiver<RealtimeEvent>>,
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
            changes: None,
        }
    }

    /// Wakes the worker for jobs enqueued or becoming due anywhere, as Realtime pushes
    /// them, so it does not wait for a poll.
    pub fn woken_by(mut self, realtime: &Realtime) -> Self {
        self.changes = Some(realtime.subscribe());
        self
    }

    /// Starts the claim, scheduler and heartbeat loops on the current tokio runtime.
    pub fn start(self) -> WorkerHandle {
        let concurrency = self.config.concurrency.max(1);
        let shared = Arc::new(Shared {
            claims: Claims::new(concurrency),
            completer: Arc::new(Completer::new(self.jobs.clone(), self.config.name.clone())),
            config: WorkerConfig {
                concurrency,
                ..self.config
            },
            registry: std::sync::RwLock::new(Arc::new(self.registry)),
            jobs: self.jobs,
            events: Events::new(),
            running: RunningJobs::default(),
            schedules_changed: tokio::sync::Notify::new(),
            retention_changed: tokio::sync::Notify::new(),
            stop_heartbeats: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        shared
            .tasks
            .spawn(producer::claim_loop(Arc::clone(&shared)));
        shared
            .tasks
            .spawn(scheduler::schedule_loop(Arc::clone(&shared)));
        shared
            .tasks
            .spawn(retention::retention_loop(Arc::clone(&shared)));
        shared
            .tasks
            .spawn(heartbeat::heartbeat_loop(Arc::clone(&shared)));
        if let Some(changes) = self.changes {
            shared
                .tasks
                .spawn(live::wake_on_changes(Arc::clone(&shared), changes));
        }
        WorkerHandle { shared }
    }
}

impl WorkerHandle {
    pub fn events(&self) -> broadcast::Receiver<WorkerEvent> {
        self.shared.events.subscribe()
    }

    /// Claims now instead of at the next poll (after this process enqueued).
    pub fn wake(&self) {
        self.shared.claims.wake.notify_one();
    }

    /// Looks at the schedules now (one was made or changed in this process).
    pub fn schedules_changed(&self) {
        self.shared.schedules_changed.notify_one();
    }

    /// Applies the retention policy now (it was changed in this process).
    pub fn retention_changed(&self) {
        self.shared.retention_changed.notify_one();
    }

    /// Stops claiming new jobs (and making scheduled ones, and applying retention);
    /// running jobs go on.
    pub fn pause(&self) {
        if !self.shared.claims.paused.send_replace(true) {
            self.shared.events.emit(WorkerEvent::Paused);
        }
    }

    pub fn resume(&self) {
        if self.shared.claims.paused.send_replace(false) {
            self.shared.events.emit(WorkerEvent::Resumed);
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

    /// The kinds this worker runs now.
    pub fn registry(&self) -> Arc<Registry> {
        self.shared.registry()
    }

    /// Replaces the kinds this worker runs (the kinds file changed), from a task that
    /// does not own the handle. Running jobs go on with the kind they started with; a
    /// kind no longer here is no longer claimed.
    pub fn registry_setter(&self) -> impl Fn(Registry) + Send + Sync + 'static {
        let shared = Arc::clone(&self.shared);
        move |registry| {
            *shared.registry.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(registry);
            shared.claims.wake.notify_one();
        }
    }

    /// Checks the input against the kind and enqueues. A job due now that this worker
    /// may run, with a slot free, is started in the same call (one round trip, the
    /// user confirmed meanwhile); any other is left to the claim loop, woken at once so
    /// it does not wait for a poll.
    pub async fn enqueue(&self, job: &NewJob) -> Result<Job, EnqueueError> {
        producer::enqueue(&self.shared, job).await
    }

    /// Stops claiming, lets running jobs finish for up to `grace`, then stops the rest
    /// and hands them back (they wait again without losing an attempt).
    pub async fn shutdown(&self, grace: Duration) {
        let shared = &self.shared;
        shared.claims.stop.cancel();
        shared.running.close();
        if tokio::time::timeout(grace, shared.running.wait())
            .await
            .is_err()
        {
            shared.running.stop_all(Stop::HandBack);
            // Handed back, the jobs need no lease; an outcome still being retried
            // gives up, and its lease decides.
            shared.stop_heartbeats.cancel();
            shared.running.wait().await;
        }
        shared.stop_heartbeats.cancel();
        shared.tasks.close();
        shared.tasks.wait().await;
        shared.events.emit(WorkerEvent::Stopped);
    }

    /// Stops everything at once without handing jobs back, as if the process had died:
    /// their leases run out and another worker takes them.
    pub fn abort(self) {
        self.shared.claims.stop.cancel();
        self.shared.running.close();
        self.shared.stop_heartbeats.cancel();
        self.shared.running.stop_all(Stop::Lost);
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.shared.claims.stop.cancel();
    }
}
