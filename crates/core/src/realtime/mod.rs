//! Supabase Realtime's `postgres_changes`, heard as the signed-in user: the server
//! pushes each change to a subscribed table that the user's row-level security lets
//! them select.
//!
//! [`Realtime::start`] owns one background task that keeps one channel joined: it
//! waits while nobody is signed in, joins with the session's access token, answers
//! nothing but heartbeats, swaps the token whenever the session refreshes it, and
//! reconnects with backoff (1, 2, 5, then 10 s, as realtime-js does) when the socket
//! fails. Its [`LiveState`] is watchable. Changes are not stored while away, so after
//! every (re)join it sends [`RealtimeEvent::Joined`]: a consumer then reads what
//! changed since its cursor (see [`crate::jobs::feed::LiveFeed`]), and nothing is
//! missed.
//!
//! The socket loop is in `socket`.

mod socket;

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use serde::Serialize;
use serde_json::Value;
use tokio::{
    sync::{broadcast, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::{Project, SessionOwner};

/// How many events a slow receiver may fall behind before it lags (it then treats
/// the gap as a rejoin, and reads by cursor).
const EVENTS: usize = 4096;

/// One `postgres_changes` entry of the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub schema: String,
    pub table: String,
    /// `column=op.value`, e.g. `kind=eq.report`.
    pub filter: Option<String>,
}

impl Subscription {
    /// Every INSERT, UPDATE and DELETE of `public.<table>` the user may see.
    pub fn table(table: &str) -> Self {
        Self {
            schema: "public".into(),
            table: table.into(),
            filter: None,
        }
    }
}

/// Whether changes are being pushed now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LiveState {
    /// Nobody is signed in (or it was stopped): nothing to hear.
    Off,
    Connecting,
    /// Joined: changes arrive as they commit.
    Live,
    /// The socket failed; it tries again shortly.
    Down {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

/// One change, as Realtime describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub schema: String,
    pub table: String,
    pub kind: ChangeKind,
    /// The new row (empty for a DELETE).
    pub record: Value,
    /// The old row's primary key (UPDATE, DELETE).
    pub old_record: Value,
    pub commit_timestamp: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RealtimeEvent {
    /// The channel is joined (again): changes made before now were not pushed, so read
    /// them by cursor.
    Joined,
    Change(Change),
}

/// A running Realtime connection. Dropping it stops it.
#[derive(Debug)]
pub struct Realtime {
    events: broadcast::Sender<RealtimeEvent>,
    state: watch::Receiver<LiveState>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// How often the socket proves it is alive (realtime-js's default).
pub const HEARTBEAT: Duration = Duration::from_secs(25);

impl Realtime {
    /// Starts hearing every change to the user's jobs, schedules, paused kinds and
    /// retention policy (what the app, the CLI's worker and the live feed listen to).
    pub fn jobs(project: &Project, session: Arc<SessionOwner>) -> Self {
        let tables = ["jobs", "schedules", "paused_kinds", "retention_policies"];
        Self::start(project, session, tables.map(Subscription::table).to_vec())
    }

    /// Starts hearing `subscriptions` as `session`'s user, on the current runtime.
    pub fn start(
        project: &Project,
        session: Arc<SessionOwner>,
        subscriptions: Vec<Subscription>,
    ) -> Self {
        Self::start_with(project, session, subscriptions, HEARTBEAT)
    }

    /// [`Realtime::start`] with another heartbeat interval (a shorter one notices a
    /// dead server sooner).
    pub fn start_with(
        project: &Project,
        session: Arc<SessionOwner>,
        subscriptions: Vec<Subscription>,
        heartbeat: Duration,
    ) -> Self {
        let (events, _) = broadcast::channel(EVENTS);
        let (state_tx, state) = watch::channel(LiveState::Off);
        let stop = CancellationToken::new();
        let task = tokio::spawn(socket::run(
            socket::Target::new(project, subscriptions, heartbeat),
            session,
            events.clone(),
            state_tx,
            stop.clone(),
        ));
        Self {
            events,
            state,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RealtimeEvent> {
        self.events.subscribe()
    }

    pub fn state(&self) -> watch::Receiver<LiveState> {
        self.state.clone()
    }

    pub fn is_live(&self) -> bool {
        *self.state.borrow() == LiveState::Live
    }

    /// Leaves the channel and waits for the task to end.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
