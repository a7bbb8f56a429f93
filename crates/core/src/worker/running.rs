//! The jobs running in this worker: one entry per job, and the tracker their tasks run
//! in, so that stopping is "wait for the job tasks, with a deadline".

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Why a running job was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The user asked to cancel it.
    Requested,
    /// Its lease is gone: another worker may run it now.
    Lost,
    /// The worker is stopping, or the session ended: hand the job back.
    HandBack,
}

/// One running job's controls: its cancellation, and why it was stopped (the first
/// reason wins).
#[derive(Debug, Clone)]
pub(super) struct RunningJob {
    pub(super) cancel: CancellationToken,
    stop: Arc<Mutex<Option<Stop>>>,
}

impl RunningJob {
    pub(super) fn stopped_because(&self) -> Option<Stop> {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stop(&self, why: Stop) {
        self.stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(why);
        self.cancel.cancel();
    }
}

/// Whether a job could start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Started {
    Yes,
    /// The worker has stopped.
    Closed,
    /// Its kind runs at its limit here already.
    Full,
}

#[derive(Debug)]
struct Entry {
    job: RunningJob,
    kind: String,
    /// Its kind has a limit here.
    limited: bool,
}

#[derive(Debug, Default)]
struct Inner {
    jobs: HashMap<i64, Entry>,
    /// Set when the worker stops: no job is registered after that.
    closed: bool,
}

#[derive(Debug, Default)]
pub(super) struct RunningJobs {
    // Held only for short synchronous sections, never across an await.
    inner: Mutex<Inner>,
    tasks: TaskTracker,
}

impl RunningJobs {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers job `id` of `kind` and spawns its task, unless the worker has stopped
    /// or `limit` jobs of the kind run already (then the caller hands the job back).
    /// Checking and registering are one step under the lock that
    /// [`RunningJobs::close`] takes, so no job starts after the close.
    pub(super) fn start<F>(
        &self,
        id: i64,
        kind: &str,
        limit: Option<usize>,
        task: impl FnOnce(RunningJob) -> F,
    ) -> Started
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let job = {
            let mut inner = self.lock();
            if inner.closed {
                return Started::Closed;
            }
            if let Some(limit) = limit
                && inner.jobs.values().filter(|e| e.kind == kind).count() >= limit
            {
                return Started::Full;
            }
            let job = RunningJob {
                cancel: CancellationToken::new(),
                stop: Arc::new(Mutex::new(None)),
            };
            let entry = Entry {
                job: job.clone(),
                kind: kind.to_string(),
                limited: limit.is_some(),
            };
            inner.jobs.insert(id, entry);
            job
        };
        self.tasks.spawn(task(job));
        Started::Yes
    }

    /// The job task's last step before its final event: the job no longer runs here.
    /// True if its kind has a limit here (a slot of that kind is free now).
    pub(super) fn remove(&self, id: i64) -> bool {
        self.lock().jobs.remove(&id).is_some_and(|e| e.limited)
    }

    /// How many jobs of `kind` run here.
    pub(super) fn count(&self, kind: &str) -> usize {
        self.lock().jobs.values().filter(|e| e.kind == kind).count()
    }

    pub(super) fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.lock().jobs.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub(super) fn stop(&self, id: i64, why: Stop) {
        if let Some(entry) = self.lock().jobs.get(&id) {
            entry.job.stop(why);
        }
    }

    pub(super) fn stop_all(&self, why: Stop) {
        for entry in self.lock().jobs.values() {
            entry.job.stop(why);
        }
    }

    /// No job starts from now on.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.tasks.close();
    }

    /// Resolves once every job task has ended (after [`RunningJobs::close`]).
    pub(super) async fn wait(&self) {
        self.tasks.wait().await;
    }
}
