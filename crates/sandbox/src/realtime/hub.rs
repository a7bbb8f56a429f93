//! Who is subscribed to what: every joined channel of every socket, and the way to
//! reach each socket.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{
    bindings::Binding,
    protocol::{Frame, Vsn},
};
use crate::db::Caller;

/// Frames queued for one socket; changes wait for room (so a burst reaches a reader
/// that keeps up), which bounds the server's memory per socket.
pub const OUTBOX_FRAMES: usize = 1024;
/// A socket that takes no frame for this long while changes wait is closed (its client
/// reconnects and catches up), so a stalled reader holds up the others only this long.
pub const STALLED: Duration = Duration::from_secs(5);

/// The way to one socket: its queue of frames, and the token that closes it.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub vsn: Vsn,
    frames: mpsc::Sender<String>,
    kick: CancellationToken,
}

impl Outbox {
    pub fn new(vsn: Vsn) -> (Self, mpsc::Receiver<String>) {
        let (frames, queue) = mpsc::channel(OUTBOX_FRAMES);
        let outbox = Outbox {
            vsn,
            frames,
            kick: CancellationToken::new(),
        };
        (outbox, queue)
    }

    /// Queues a reply; a socket whose queue is full is closed instead.
    pub fn send(&self, frame: &Frame) {
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.frames.try_send(frame.encode(self.vsn))
        {
            tracing::warn!(
                "a Realtime client fell {OUTBOX_FRAMES} frames behind; closing its socket"
            );
            self.kick.cancel();
        }
    }
    /// Queues a change's frame (encoded in this socket's `vsn`), waiting for room; a
    /// socket stalled for [`STALLED`] is closed.
    pub async fn deliver(&self, frame: String) {
        if let Err(mpsc::error::SendTimeoutError::Timeout(_)) =
            self.frames.send_timeout(frame, STALLED).await
        {
            tracing::warn!("a Realtime client took no changes for {STALLED:?}; closing its socket");
            self.kick.cancel();
        }
    }

    /// Resolves when the socket must close (it fell behind, or the changes were
    /// interrupted and its client must catch up).
    pub fn kicked(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.kick.cancelled()
    }
}

/// One joined channel.
#[derive(Debug)]
pub struct Subscription {
    pub outbox: Outbox,
    /// `realtime:<name>`.
    pub topic: String,
    pub join_ref: Option<String>,
    pub bindings: Vec<Binding>,
    /// Who the channel's token says the subscriber is; changes are checked as them.
    pub caller: Caller,
}

#[derive(Debug, Default)]
pub struct Hub {
    subscriptions: Mutex<HashMap<u64, Arc<Subscription>>>,
    sockets: Mutex<HashMap<u64, CancellationToken>>,
    next_id: AtomicU64,
    next_binding: AtomicU32,
    /// Whether changes are being listened for: joins wait until they are.
    listening: watch::Sender<bool>,
}

impl Hub {
    fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn binding_id(&self) -> u32 {
        self.next_binding.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A socket opened; answers its id.
    pub fn open(&self, outbox: &Outbox) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Self::lock(&self.sockets).insert(id, outbox.kick.clone());
        id
    }

    pub fn close(&self, socket: u64) {
        Self::lock(&self.sockets).remove(&socket);
    }

    /// Waits up to `within` for changes to be heard; false if they still are not.
    pub async fn until_listening(&self, within: Duration) -> bool {
        let mut listening = self.listening.subscribe();
        tokio::time::timeout(within, listening.wait_for(|on| *on))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Changes are heard from now on: channels may join.
    pub fn started_listening(&self) {
        self.listening.send_replace(true);
    }

    /// Changes can no longer be heard (the database connection was lost): every channel
    /// gets `phx_error` and leaves the hub, and joins are refused until listening again,
    /// so a client that rejoins catches up only once nothing can be missed.
    pub fn stopped_listening(&self) {
        self.listening.send_replace(false);
        let subscriptions: Vec<Arc<Subscription>> = Self::lock(&self.subscriptions)
            .drain()
            .map(|(_, s)| s)
            .collect();
        for subscription in subscriptions {
            subscription.outbox.send(&Frame::push(
                &subscription.topic,
                subscription.join_ref.as_deref(),
                "phx_error",
                json!({}),
            ));
        }
    }

    /// Closes every socket (the sandbox is stopping).
    pub fn kick_all(&self) {
        for kick in Self::lock(&self.sockets).values() {
            kick.cancel();
        }
    }

    /// Adds or replaces a channel's subscription; answers its key.
    pub fn subscribe(&self, key: Option<u64>, subscription: Subscription) -> u64 {
        let key = key.unwrap_or_else(|| self.next_id.fetch_add(1, Ordering::Relaxed));
        Self::lock(&self.subscriptions).insert(key, Arc::new(subscription));
        key
    }

    pub fn unsubscribe(&self, key: u64) {
        Self::lock(&self.subscriptions).remove(&key);
    }

    /// Every subscription now, to deliver to without holding the lock.
    pub fn snapshot(&self) -> Vec<Arc<Subscription>> {
        Self::lock(&self.subscriptions).values().cloned().collect()
    }
}
