//! The state the worker's parts share: each part's own small state, and the tasks they
//! run in.

use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    claims::Claims,
    completer::Completer,
    config::WorkerConfig,
    events::{Events, WorkerEvent, WorkerStatus},
    registry::Registry,
    running::{RunningJobs, Stop},
};
use crate::JobsClient;

/// What the worker's parts share: each part's own state, and the tasks they run in.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) config: WorkerConfig,
    /// The kinds this worker runs; replaced whole when the kinds file changes.
    pub(super) registry: RwLock<Arc<Registry>>,
    pub(super) jobs: JobsClient,
    pub(super) events: Events,
    /// The producer's state: slots, pausing, waking, stopping.
    pub(super) claims: Claims,
    /// The jobs running here, and the tasks they run in.
    pub(super) running: RunningJobs,
    pub(super) completer: Arc<Completer>,
    /// Wakes the scheduler: a schedule changed here or elsewhere.
    pub(super) schedules_changed: Notify,
    /// Wakes retention: the policy changed here or elsewhere.
    pub(super) retention_changed: Notify,
    /// Cancelled once no job needs its lease any more.
    pub(super) stop_heartbeats: CancellationToken,
    /// The claim, scheduler, retention and heartbeat loops and the completer's writer.
    pub(super) tasks: TaskTracker,
}

impl Shared {
    pub(super) fn registry(&self) -> Arc<Registry> {
        Arc::clone(&self.registry.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(super) fn status(&self) -> WorkerStatus {
        WorkerStatus {
            name: self.config.name.clone(),
            paused: *self.claims.paused.borrow(),
            concurrency: self.config.concurrency,
            running: self.running.ids(),
        }
    }

    /// The session is over: say so once, and hand every running job back (not fail
    /// it) while the session's parting token still allows.
    pub(super) fn session_over(&self, reason: String) {
        if self.claims.mark_session_ended() {
            self.events.emit(WorkerEvent::SessionEnded { reason });
        }
        self.running.stop_all(Stop::HandBack);
    }
}
