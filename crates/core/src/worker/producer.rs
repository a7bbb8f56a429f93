//! The producer: gets jobs into this worker's slots. Two ways in:
//! - the claim loop waits for a free slot, claims as many jobs as there are free slots
//!   (and, for short jobs, a few more, held in a small queue of its own) in one call,
//!   and sleeps between empty (or failed) claims with a growing interval (jobs enqueued
//!   elsewhere) unless woken in-process or by Realtime;
//! - the enqueue fast path: a job enqueued here, due now, with a slot free, is enqueued
//!   and started in one call.
//!
//! Either way a job starts only after the signed-in user is confirmed and found to be
//! its owner (the original pattern's check, here once per claimed batch).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::OwnedSemaphorePermit;

use super::{executor, registry::EnqueueError, running::Started, shared::Shared};
use crate::{Error, ErrorCode, Job, JobStatus, NewJob, SessionState, User};

/// The enqueue fast path (see [`super::WorkerHandle::enqueue`]).
pub(super) async fn enqueue(shared: &Arc<Shared>, job: &NewJob) -> Result<Job, EnqueueError> {
    let registry = shared.registry();
    let Some(slot) = free_slot_for(shared, job) else {
        let enqueued = registry.enqueue(&shared.jobs, job).await?;
        shared.claims.wake.notify_one();
        return Ok(enqueued);
    };
    let job = &registry.prepare(job).map_err(EnqueueError::Invalid)?;
    let name = shared.config.name.as_str();
    let (enqueued, confirmed) = tokio::join!(
        shared
            .jobs
            .enqueue_and_start(job, name, shared.config.lease_seconds()),
        confirm_user(shared)
    );
    let enqueued = enqueued?;
    if enqueued.status == JobStatus::Running && enqueued.locked_by.as_deref() == Some(name) {
        let left = start_jobs(shared, vec![enqueued.clone()], vec![slot], confirmed).await;
        if !left.is_empty() {
            // Its kind reached its limit here meanwhile: the claim loop will take it.
            executor::release(shared, &[enqueued.id]).await;
        }
    } else {
        // An earlier job under the same idempotency key, no longer waiting.
        drop(slot);
        shared.claims.wake.notify_one();
    }
    Ok(enqueued)
}

/// A slot for `job` if this worker would start it now.
fn free_slot_for(shared: &Shared, job: &NewJob) -> Option<OwnedSemaphorePermit> {
    // A job given a run_at goes the usual way: the claim loop honours its time.
    let due = job.run_at.is_none();
    let runs_kind = claimable_kinds(shared).contains(&job.kind);
    if !(due && runs_kind && shared.claims.claiming()) {
        return None;
    }
    shared.claims.try_slot()
}

/// The kinds the next claim asks for: those this worker runs (its registry's, or the
/// configured list), less any running at its limit here.
fn claimable_kinds(shared: &Shared) -> Vec<String> {
    let registry = shared.registry();
    let mut kinds = match &shared.config.kinds {
        Some(kinds) => kinds.clone(),
        None => registry.names(),
    };
    kinds.retain(|kind| {
        registry
            .get(kind)
            .and_then(|entry| entry.options.concurrency)
            .is_none_or(|limit| shared.running.count(kind) < limit)
    });
    kinds
}

/// Jobs claimed ahead of free slots, each confirmed and leased, waiting for a slot.
/// Claimed only as many as slots are expected to take soon (see `Claims::ahead`), and
/// handed back if they wait longer than [`Ahead::ttl`]: well inside their lease, which
/// the heartbeat does not extend for them, so no job waits here long enough to be lost.
#[derive(Debug)]
struct Ahead {
    /// Each with when it was claimed.
    jobs: Vec<(Job, Instant)>,
    ttl: Duration,
}

impl Ahead {
    fn new(lease: Duration) -> Self {
        Self {
            jobs: Vec::new(),
            ttl: (lease / 4).min(Duration::from_secs(2)),
        }
    }

    /// Resolves when the oldest job has waited its time (never while none waits).
    async fn expired(&self) {
        match self.jobs.iter().map(|(_, since)| *since).min() {
            Some(oldest) => tokio::time::sleep_until((oldest + self.ttl).into()).await,
            None => std::future::pending().await,
        }
    }

    /// Hands back every job waiting here.
    async fn hand_back(&mut self, shared: &Shared) {
        if !self.jobs.is_empty() {
            let ids: Vec<i64> = self.jobs.drain(..).map(|(job, _)| job.id).collect();
            executor::release(shared, &ids).await;
        }
    }

    /// Hands back the jobs that waited their time.
    async fn hand_back_expired(&mut self, shared: &Shared) {
        let now = Instant::now();
        let (old, young): (Vec<_>, Vec<_>) = self
            .jobs
            .drain(..)
            .partition(|(_, since)| *since + self.ttl <= now);
        self.jobs.extend(young);
        let ids: Vec<i64> = old.iter().map(|(job, _)| job.id).collect();
        if !ids.is_empty() {
            executor::release(shared, &ids).await;
        }
    }
}

pub(super) async fn claim_loop(shared: Arc<Shared>) {
    let claims = &shared.claims;
    let mut idle = shared.config.poll_min;
    let mut paused = claims.paused.subscribe();
    let mut ahead = Ahead::new(shared.config.lease);
    // Whether this claim is likely to find jobs (woken by an enqueue here, or the last
    // claim found some): then the user is confirmed while the claim is in flight, which
    // saves a round trip before the jobs start. Polls that usually find nothing claim
    // first and confirm only when they found something.
    let mut expect_jobs = true;
    loop {
        while *paused.borrow_and_update() {
            // Paused: nothing starts, so nothing waits here for a slot either.
            ahead.hand_back(&shared).await;
            tokio::select! {
                () = claims.stop.cancelled() => return,
                _ = paused.changed() => {}
            }
        }
        let first = tokio::select! {
            () = claims.stop.cancelled() => {
                ahead.hand_back(&shared).await;
                return;
            }
            permit = claims.slot() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = ahead.expired() => {
                ahead.hand_back_expired(&shared).await;
                continue;
            }
        };
        let mut slots = vec![first];
        while let Some(permit) = claims.try_slot() {
            slots.push(permit);
        }
        if !ahead.jobs.is_empty() {
            // Jobs claimed ahead take the free slots first, without a round trip.
            let waiting = std::mem::take(&mut ahead.jobs);
            ahead.jobs = start_confirmed(&shared, waiting, &mut slots).await;
            if slots.is_empty() {
                continue;
            }
        }
        let kinds = claimable_kinds(&shared);
        let extra = claims
            .ahead(shared.config.concurrency)
            .saturating_sub(ahead.jobs.len());
        let wanted = slots.len() + extra;
        let claim = async {
            if kinds.is_empty() {
                // Every kind here runs at its limit: wait for one to end.
                return Ok(Vec::new());
            }
            shared
                .jobs
                .claim(
                    &shared.config.name,
                    Some(&kinds),
                    wanted as u32,
                    shared.config.lease_seconds(),
                )
                .await
        };
        let (claimed, confirmed) = if expect_jobs {
            let (claimed, confirmed) = tokio::join!(claim, confirm_user(&shared));
            (claimed, Some(confirmed))
        } else {
            (claim.await, None)
        };
        expect_jobs = false;
        if claimed.is_ok() {
            shared.events.reached();
        }
        match claimed {
            Ok(jobs) if jobs.is_empty() => {}
            Ok(jobs) if claims.stop.is_cancelled() => {
                // A claim already in flight when the worker began to stop (it may even
                // have taken back a job just handed back): start nothing, return it all.
                let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
                executor::release(&shared, &ids).await;
                ahead.hand_back(&shared).await;
                return;
            }
            Ok(jobs) => {
                idle = shared.config.poll_min;
                let confirmed = confirm_claimed(&shared, confirmed).await;
                let left = start_jobs(&shared, jobs, slots, confirmed).await;
                ahead.jobs.extend(left);
                // Free slots mean the next claim may find more at once.
                expect_jobs = true;
                continue;
            }
            Err(error)
                if error.code() == ErrorCode::AuthExpired
                    && session_is_over(&shared.jobs.session().watch().borrow()) =>
            {
                drop(slots);
                shared.session_over(error.to_string());
                ahead.hand_back(&shared).await;
                if !wait_for_sign_in(&shared).await {
                    return;
                }
                claims.session_resumed();
                continue;
            }
            // Anything else, a refused token the session owner still holds included
            // (the jobs client already refreshed once and retried), is trouble: say so
            // and back off like an empty claim, never claim again at once.
            Err(error) => shared.events.trouble(error.to_string()),
        }
        let wait = idle;
        idle = (idle * 2).min(shared.config.poll_max);
        // Waiting holds no slot: an enqueue in this process may take one meanwhile.
        drop(slots);
        tokio::select! {
            () = claims.stop.cancelled() => {
                ahead.hand_back(&shared).await;
                return;
            }
            () = claims.wake.notified() => {
                idle = shared.config.poll_min;
                expect_jobs = true;
            }
            () = tokio::time::sleep(wait) => {}
            _ = paused.changed() => {}
            () = ahead.expired() => ahead.hand_back_expired(&shared).await,
        }
    }
}

/// Signed out, or ended by the server: no request can succeed until a new sign-in.
fn session_is_over(state: &SessionState) -> bool {
    matches!(state, SessionState::SignedOut | SessionState::Ended { .. })
}

/// Waits until the user is signed in again; false if the worker stops first.
async fn wait_for_sign_in(shared: &Shared) -> bool {
    let mut state = shared.jobs.session().watch();
    loop {
        if matches!(*state.borrow_and_update(), SessionState::Active { .. }) {
            return true;
        }
        tokio::select! {
            () = shared.claims.stop.cancelled() => return false,
            changed = state.changed() => if changed.is_err() { return false },
        }
    }
}

/// Asks Auth who the signed-in user is. A token Auth cannot verify though the session
/// owner holds it as valid is refreshed once, as the jobs client does for REST.
async fn confirm_user(shared: &Shared) -> Result<User, Error> {
    let session = shared.jobs.session();
    let token = session.access_token().await?;
    match session.auth().user(&token).await {
        Err(error) if error.server_code() == Some("bad_jwt") => {
            let token = session.token_refused(&token).await?;
            session.auth().user(&token).await
        }
        answer => answer,
    }
}

/// Confirms the user for jobs just claimed; `first` is the answer of a check made
/// beside the claim. While Auth cannot be reached (a restart, an outage ending) it
/// asks again with backoff for up to half a lease, which the jobs' leases outlast:
/// jobs already held are better started a little late than handed back and claimed
/// again.
async fn confirm_claimed(
    shared: &Shared,
    first: Option<Result<User, Error>>,
) -> Result<User, Error> {
    let deadline = Instant::now() + shared.config.lease / 2;
    let mut wait = Duration::from_millis(50);
    let mut answer = match first {
        Some(answer) => answer,
        None => confirm_user(shared).await,
    };
    loop {
        match answer {
            Err(error)
                if error.code() == ErrorCode::Network && Instant::now() + wait < deadline =>
            {
                tokio::select! {
                    () = shared.claims.stop.cancelled() => return Err(error),
                    () = tokio::time::sleep(wait) => {}
                }
                wait *= 2;
                answer = confirm_user(shared).await;
            }
            answer => return answer,
        }
    }
}

/// Starts each claimed job that belongs to the `confirmed` user, one slot each;
/// answers those that found no slot (claimed ahead, or of a kind at its limit here),
/// each with when it was claimed.
async fn start_jobs(
    shared: &Arc<Shared>,
    jobs: Vec<Job>,
    mut slots: Vec<OwnedSemaphorePermit>,
    confirmed: Result<User, Error>,
) -> Vec<(Job, Instant)> {
    let user = match confirmed {
        Ok(user) => user,
        Err(error) => {
            // Not confirmed: run nothing, hand the jobs back while we still can.
            shared
                .events
                .trouble(format!("could not confirm the signed-in user: {error}"));
            let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
            executor::release(shared, &ids).await;
            return Vec::new();
        }
    };
    let (own, foreign): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.uuid == user.id);
    if !foreign.is_empty() {
        tracing::warn!(
            jobs = foreign.len(),
            "claimed jobs belong to someone else; handing them back"
        );
        let ids: Vec<i64> = foreign.iter().map(|j| j.id).collect();
        executor::release(shared, &ids).await;
    }
    let now = Instant::now();
    let own = own.into_iter().map(|job| (job, now)).collect();
    start_confirmed(shared, own, &mut slots).await
}

/// Starts confirmed jobs in the free `slots`, taking one each; answers the jobs that
/// found none, or whose kind runs at its limit here.
async fn start_confirmed(
    shared: &Arc<Shared>,
    jobs: Vec<(Job, Instant)>,
    slots: &mut Vec<OwnedSemaphorePermit>,
) -> Vec<(Job, Instant)> {
    let registry = shared.registry();
    let mut left = Vec::new();
    let mut refused = Vec::new();
    for (job, claimed) in jobs {
        let limit = registry
            .get(&job.kind)
            .and_then(|entry| entry.options.concurrency);
        let full = limit.is_some_and(|limit| shared.running.count(&job.kind) >= limit);
        let slot = match slots.pop() {
            Some(slot) if !full => slot,
            slot => {
                slots.extend(slot);
                left.push((job, claimed));
                continue;
            }
        };
        let id = job.id;
        let kind = job.kind.clone();
        let started = shared.running.start(id, &kind, limit, |entry| {
            executor::run_job(Arc::clone(shared), job, entry, slot)
        });
        if started != Started::Yes {
            // The worker began to stop while this batch was being confirmed.
            refused.push(id);
        }
    }
    if !refused.is_empty() {
        executor::release(shared, &refused).await;
    }
    left
}
