//! The producer: gets jobs into this worker's slots. Two ways in:
//! - the claim loop waits for a free slot, claims as many jobs as there are free slots
//!   in one call, and sleeps between empty (or failed) claims with a growing interval
//!   (jobs enqueued elsewhere) unless woken in-process;
//! - the enqueue fast path: a job enqueued here, due now, with a slot free, is enqueued
//!   and started in one call.
//!
//! Either way a job starts only after the signed-in user is confirmed and found to be
//! its owner (the original pattern's check, here once per claimed batch).

use std::sync::Arc;

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
        start_jobs(shared, vec![enqueued.clone()], vec![slot], confirmed).await;
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

pub(super) async fn claim_loop(shared: Arc<Shared>) {
    let claims = &shared.claims;
    let mut idle = shared.config.poll_min;
    let mut paused = claims.paused.subscribe();
    // Whether this claim is likely to find jobs (woken by an enqueue here, or the last
    // claim found some): then the user is confirmed while the claim is in flight, which
    // saves a round trip before the jobs start. Polls that usually find nothing claim
    // first and confirm only when they found something.
    let mut expect_jobs = true;
    loop {
        while *paused.borrow_and_update() {
            tokio::select! {
                () = claims.stop.cancelled() => return,
                _ = paused.changed() => {}
            }
        }
        let first = tokio::select! {
            () = claims.stop.cancelled() => return,
            permit = claims.slot() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let mut slots = vec![first];
        while let Some(permit) = claims.try_slot() {
            slots.push(permit);
        }
        let kinds = claimable_kinds(&shared);
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
                    slots.len() as u32,
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
                return;
            }
            Ok(jobs) => {
                idle = shared.config.poll_min;
                let confirmed = match confirmed {
                    Some(confirmed) => confirmed,
                    None => confirm_user(&shared).await,
                };
                start_jobs(&shared, jobs, slots, confirmed).await;
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
            () = claims.stop.cancelled() => return,
            () = claims.wake.notified() => {
                idle = shared.config.poll_min;
                expect_jobs = true;
            }
            () = tokio::time::sleep(wait) => {}
            _ = paused.changed() => {}
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

/// Starts each claimed job that belongs to the `confirmed` user, one slot each.
async fn start_jobs(
    shared: &Arc<Shared>,
    jobs: Vec<Job>,
    mut slots: Vec<OwnedSemaphorePermit>,
    confirmed: Result<User, Error>,
) {
    let user = match confirmed {
        Ok(user) => user,
        Err(error) => {
            // Not confirmed: run nothing, hand the jobs back while we still can.
            shared
                .events
                .trouble(format!("could not confirm the signed-in user: {error}"));
            let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
            executor::release(shared, &ids).await;
            return;
        }
    };
    let registry = shared.registry();
    for job in jobs {
        let Some(slot) = slots.pop() else { break };
        if job.uuid != user.id {
            tracing::warn!(
                job = job.id,
                "a claimed job belongs to someone else; handing it back"
            );
            executor::release(shared, &[job.id]).await;
            continue;
        }
        let id = job.id;
        let limit = registry
            .get(&job.kind)
            .and_then(|entry| entry.options.concurrency);
        let kind = job.kind.clone();
        let started = shared.running.start(id, &kind, limit, |entry| {
            executor::run_job(Arc::clone(shared), job, entry, slot)
        });
        if started != Started::Yes {
            // The worker began to stop while this batch was being confirmed, or more
            // of the kind were claimed at once than it may run here.
            executor::release(shared, &[id]).await;
        }
    }
}
