//! The producer's state, apart from its loop so every part can read it: the slots,
//! pausing, waking and stopping.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use tokio::sync::{AcquireError, Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;

/// The producer's state: the slots jobs run in, pausing, waking and stopping.
#[derive(Debug)]
pub(super) struct Claims {
    pub(super) wake: Notify,
    pub(super) paused: watch::Sender<bool>,
    /// Cancelled to stop claiming.
    pub(super) stop: CancellationToken,
    slots: Arc<Semaphore>,
    /// Set while the session is over, so the end is announced once.
    session_ended: AtomicBool,
}

impl Claims {
    pub(super) fn new(concurrency: usize) -> Self {
        Self {
            wake: Notify::new(),
            paused: watch::Sender::new(false),
            stop: CancellationToken::new(),
            slots: Arc::new(Semaphore::new(concurrency)),
            session_ended: AtomicBool::new(false),
        }
    }

    /// A free slot, waiting for one; an error once the slots are closed.
    pub(super) async fn slot(&self) -> Result<OwnedSemaphorePermit, AcquireError> {
        Arc::clone(&self.slots).acquire_owned().await
    }

    /// A free slot, if there is one now.
    pub(super) fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }

    /// Signed in again: claiming may go on.
    pub(super) fn session_resumed(&self) {
        self.session_ended.store(false, Ordering::Relaxed);
    }

    /// Marks the session ended; true the first time.
    pub(super) fn mark_session_ended(&self) -> bool {
        !self.session_ended.swap(true, Ordering::Relaxed)
    }

    /// Whether new jobs may start now (not paused, stopping or signed out).
    pub(super) fn claiming(&self) -> bool {
        !*self.paused.borrow()
            && !self.stop.is_cancelled()
            && !self.session_ended.load(Ordering::Relaxed)
    }
}
