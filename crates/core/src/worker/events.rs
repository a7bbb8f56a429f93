//! What a worker tells its owner: events as jobs move, and its status on demand.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::{Job, LogLine};

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
    /// Lines of the job's log, as they were stored (in order, each attempt's seq
    /// counting from 0).
    JobLog {
        id: i64,
        lines: Vec<LogLine>,
    },
    /// The job ended: finished, failed, cancelled, or waiting for a retry.
    JobUpdated {
        job: Job,
    },
    /// A schedule's tick made this job (it waits to be claimed like any other).
    ScheduleFired {
        schedule_id: i64,
        job: Job,
    },
    /// The user's retention policy removed this many ended jobs.
    JobsRemoved {
        count: u64,
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

/// The worker's event channel, which also remembers whether trouble was reported so
/// that the first success after it is announced once.
#[derive(Debug)]
pub(super) struct Events {
    sender: broadcast::Sender<WorkerEvent>,
    troubled: AtomicBool,
}

impl Events {
    pub(super) fn new() -> Self {
        Self {
            sender: broadcast::channel(1024).0,
            troubled: AtomicBool::new(false),
        }
    }

    pub(super) fn emit(&self, event: WorkerEvent) {
        if matches!(event, WorkerEvent::Trouble { .. }) {
            self.troubled.store(true, Ordering::Relaxed);
        }
        // Nobody listening is fine.
        let _ = self.sender.send(event);
    }

    pub(super) fn trouble(&self, message: String) {
        self.emit(WorkerEvent::Trouble { message });
    }

    /// A request succeeded: if trouble was reported, say it is over (once).
    pub(super) fn reached(&self) {
        if self.troubled.swap(false, Ordering::Relaxed) {
            self.emit(WorkerEvent::Reconnected);
        }
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<WorkerEvent> {
        self.sender.subscribe()
    }

    /// The sender itself, for handlers' progress reports.
    pub(super) fn sender(&self) -> &broadcast::Sender<WorkerEvent> {
        &self.sender
    }
}
