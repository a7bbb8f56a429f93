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

#[derive(Debug, Default)]
struct Inner {
    jobs: HashMap<i64, RunningJob>,
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

    /// Registers job `id` and spawns its task, unless the worker has stopped (then the
    /// caller hands the job back). Checking and registering are one step under the
    /// lock that [`RunningJobs::close`] takes, so no job starts after the close.
    pub(super) fn start<F>(&self, id: i64, task: impl FnOnce(RunningJob) -> F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let entry = {
            let mut inner = self.lock();
            if inner.closed {
                return false;
            }
            let entry = RunningJob {
                cancel: CancellationToken::new(),
                stop: Arc::new(Mutex::new(None)),
            };
            inner.jobs.insert(id, entry.clone());
            entry
        };
        self.tasks.spawn(task(entry));
        true
    }

    /// The job task's last step before its final event: the job no longer runs here.
    pub(super) fn remove(&self, id: i64) {
        self.lock().jobs.remove(&id);
    }

    pub(super) fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.lock().jobs.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub(super) fn stop(&self, id: i64, why: Stop) {
        if let Some(job) = self.lock().jobs.get(&id) {
            job.stop(why);
        }
    }

    pub(super) fn stop_all(&self, why: Stop) {
        for job in self.lock().jobs.values() {
            job.stop(why);
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
