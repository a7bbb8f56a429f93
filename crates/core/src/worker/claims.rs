//! The producer's state, apart from its loop so every part can read it: the slots,
//! pausing, waking and stopping, and how long attempts take here (which decides how
//! many jobs a claim takes ahead of free slots).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
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
    /// A moving average of how long attempts take here, in microseconds; 0 before
    /// the first.
    attempt_micros: AtomicU64,
}

/// The most jobs a claim takes beyond the free slots.
const MAX_AHEAD: usize = 32;

/// Jobs are claimed ahead only as many as the slots are expected to start within
/// this, from how long attempts have taken: short jobs come in batches (a claim, a
/// user check and a write per batch rather than per job), while a slow kind is never
/// claimed before a slot is free to run it, so other workers can take it and its
/// start time is when it starts.
const AHEAD_HORIZON: Duration = Duration::from_millis(20);

impl Claims {
    /// Runs the background chore `pass` while the worker runs and is not paused: at
    /// start, after each pause, and then after the wait each pass answers, or sooner
    /// when `woken` is notified or the worker is paused or resumed. Returns once the
    /// worker stops (a pass under way is left to end on its own terms first).
    pub(super) async fn between_passes<F: Future<Output = Duration>>(
        &self,
        woken: &Notify,
        mut pass: impl FnMut() -> F,
    ) {
        let mut paused = self.paused.subscribe();
        loop {
            while *paused.borrow_and_update() {
                tokio::select! {
                    () = self.stop.cancelled() => return,
                    _ = paused.changed() => {}
                }
            }
            let wait = pass().await;
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
                () = woken.notified() => {}
                _ = paused.changed() => {}
            }
        }
    }

    pub(super) fn new(concurrency: usize) -> Self {
        Self {
            wake: Notify::new(),
            paused: watch::Sender::new(false),
            stop: CancellationToken::new(),
            slots: Arc::new(Semaphore::new(concurrency)),
            session_ended: AtomicBool::new(false),
            attempt_micros: AtomicU64::new(0),
        }
    }

    /// An attempt took `took`: part of the average from now on.
    pub(super) fn attempt_took(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        // One writer at a time is not guaranteed, and need not be: a lost update only
        // skips a sample of an average.
        let before = self.attempt_micros.load(Ordering::Relaxed);
        let after = if before == 0 {
            took
        } else {
            (before.saturating_mul(7) / 8)
                .saturating_add(took / 8)
                .max(1)
        };
        self.attempt_micros.store(after, Ordering::Relaxed);
    }

    /// How many jobs the next claim takes beyond the free slots, for `concurrency`
    /// slots: none until attempts have been timed, and none for slow ones.
    pub(super) fn ahead(&self, concurrency: usize) -> usize {
        let micros = self.attempt_micros.load(Ordering::Relaxed);
        if micros == 0 {
            return 0;
        }
        let per_slot = AHEAD_HORIZON.as_micros() as u64 / micros;
        usize::try_from(per_slot)
            .unwrap_or(usize::MAX)
            .saturating_mul(concurrency)
            .min(MAX_AHEAD)
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
