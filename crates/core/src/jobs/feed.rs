//! Changes to the user's jobs made anywhere (this app, the CLI, another device): read
//! by polling `updated_at` ([`ChangeFeed`]), and pushed by Realtime with the poll as
//! the catch-up and the fallback ([`LiveFeed`]).
//!
//! `updated_at` is stamped when a row is written, but the row becomes visible only when
//! its transaction commits, which can be after a later stamp was already read. So each
//! poll reads again a short window behind its cursor and drops the versions it has
//! already delivered: a change is delivered once, and never skipped as long as its
//! transaction took less than the window.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{
    Notify,
    broadcast::{
        self,
        error::{RecvError, TryRecvError},
    },
    watch,
};

use super::{Job, JobsClient};
use crate::{
    Error,
    realtime::{Change, ChangeKind, LiveState, Realtime, RealtimeEvent},
};

/// How far behind the cursor each poll reads again.
const OVERLAP: TimeDelta = TimeDelta::seconds(5);
/// Rows per request; a poll that fills a page reads the next at once.
const PAGE: usize = 500;

#[derive(Debug)]
pub struct ChangeFeed {
    jobs: JobsClient,
    cursor: DateTime<Utc>,
    /// Versions delivered within the overlap window: job id → its `updated_at`.
    delivered: HashMap<i64, DateTime<Utc>>,
}

impl ChangeFeed {
    /// A feed of changes made after `since` (normally: when the snapshot was read,
    /// less a little, since a change seen twice is harmless and one missed is not).
    pub fn new(jobs: JobsClient, since: DateTime<Utc>) -> Self {
        Self {
            jobs,
            cursor: since,
            delivered: HashMap::new(),
        }
    }

    /// A version delivered another way (pushed): the next poll does not deliver it
    /// again.
    pub fn saw(&mut self, job: &Job) {
        self.cursor = self.cursor.max(job.updated_at);
        self.delivered.insert(job.id, job.updated_at);
        if self.delivered.len() > 10 * PAGE {
            let horizon = self.cursor - OVERLAP;
            self.delivered.retain(|_, at| *at >= horizon);
        }
    }

    /// Every change not delivered yet, oldest first (one version per job: its newest).
    pub async fn poll(&mut self) -> Result<Vec<Job>, Error> {
        let mut changed: Vec<Job> = Vec::new();
        let mut from = self.cursor - OVERLAP;
        loop {
            let page = self.jobs.changed_since(from, PAGE).await?;
            let full = page.len() == PAGE;
            for job in page {
                from = from.max(job.updated_at);
                if self.delivered.get(&job.id) == Some(&job.updated_at) {
                    continue;
                }
                self.cursor = self.cursor.max(job.updated_at);
                self.delivered.insert(job.id, job.updated_at);
                changed.retain(|seen| seen.id != job.id);
                changed.push(job);
            }
            // A full page could end inside a run of equal stamps; the rest of that run
            // is read by the next poll, which starts a window behind.
            if !full {
                break;
            }
        }
        let horizon = self.cursor - OVERLAP;
        self.delivered.retain(|_, at| *at >= horizon);
        Ok(changed)
    }
}

/// What changed: new versions of jobs (a job not seen before may be new), and jobs
/// deleted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedUpdate {
    pub jobs: Vec<Job>,
    pub deleted: Vec<i64>,
}

/// Changes pushed in one burst and handed over together.
const BURST: usize = 500;

/// The change feed made live: while Realtime is live, changes arrive as they commit;
/// after every (re)join (and when this receiver fell behind) the cursor is read once,
/// so what changed while away is not missed; while Realtime is down, the cursor is
/// polled every `poll`. A `poke` (this process changed something) reads the cursor at
/// once when not live.
#[derive(Debug)]
pub struct LiveFeed {
    feed: ChangeFeed,
    events: broadcast::Receiver<RealtimeEvent>,
    state: watch::Receiver<LiveState>,
    poll: Duration,
    poke: Arc<Notify>,
    catch_up: bool,
}

impl LiveFeed {
    pub fn new(feed: ChangeFeed, realtime: &Realtime, poll: Duration, poke: Arc<Notify>) -> Self {
        Self {
            feed,
            events: realtime.subscribe(),
            state: realtime.state(),
            poll,
            poke,
            // What changed before `feed`'s cursor is the caller's snapshot; the first
            // join (or the first poll, while down) reads what changed since.
            catch_up: false,
        }
    }

    fn live(&self) -> bool {
        *self.state.borrow() == LiveState::Live
    }

    /// The next update (empty after a read of the cursor that found nothing). Not
    /// cancel-safe while it reads the cursor (what it read would count as delivered):
    /// cancel it only to stop.
    pub async fn next(&mut self) -> Result<FeedUpdate, Error> {
        loop {
            if self.catch_up {
                let jobs = self.feed.poll().await?;
                self.catch_up = false;
                // Answered even when nothing changed: the caller learns the read worked.
                return Ok(FeedUpdate {
                    jobs,
                    deleted: Vec::new(),
                });
            }
            let live = self.live();
            tokio::select! {
                event = self.events.recv() => {
                    let mut update = FeedUpdate::default();
                    let mut event = event;
                    loop {
                        match event {
                            Ok(RealtimeEvent::Change(change)) => {
                                if !self.apply(change, &mut update) {
                                    self.catch_up = true;
                                }
                            }
                            Ok(RealtimeEvent::Joined) | Err(RecvError::Lagged(_)) => self.catch_up = true,
                            // Realtime stopped: only the poll is left.
                            Err(RecvError::Closed) => {
                                tokio::time::sleep(self.poll).await;
                                self.catch_up = true;
                            }
                        }
                        if update.jobs.len() + update.deleted.len() >= BURST {
                            break;
                        }
                        match self.events.try_recv() {
                            Ok(more) => event = Ok(more),
                            Err(TryRecvError::Lagged(n)) => event = Err(RecvError::Lagged(n)),
                            Err(_) => break,
                        }
                    }
                    if !(update.jobs.is_empty() && update.deleted.is_empty()) {
                        return Ok(update);
                    }
                }
                _ = self.state.changed() => {}
                () = tokio::time::sleep(self.poll), if !live => self.catch_up = true,
                () = self.poke.notified(), if !live => self.catch_up = true,
            }
        }
    }

    /// Adds a pushed change of the jobs table to `update`; false if it could not be
    /// read (the cursor then reads it).
    fn apply(&mut self, change: Change, update: &mut FeedUpdate) -> bool {
        if change.schema != "public" || change.table != "jobs" {
            return true;
        }
        match change.kind {
            ChangeKind::Delete => match change.old_record["id"].as_i64() {
                Some(id) => {
                    update.jobs.retain(|job| job.id != id);
                    update.deleted.push(id);
                    true
                }
                None => false,
            },
            ChangeKind::Insert | ChangeKind::Update => {
                match serde_json::from_value::<Job>(change.record) {
                    Ok(job) => {
                        self.feed.saw(&job);
                        update.jobs.retain(|seen| seen.id != job.id);
                        update.jobs.push(job);
                        true
                    }
                    Err(error) => {
                        tracing::debug!(%error, "a pushed job did not read as a job");
                        false
                    }
                }
            }
        }
    }
}
