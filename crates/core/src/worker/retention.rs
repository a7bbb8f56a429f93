//! Retention: the user's policy (see `retention_policies`) applied in the background.
//! Every running worker of the user does this, in small batches with a pause between
//! them, so a large backlog goes without long locks or a burst of load beside the
//! jobs; two workers at once remove each job once (the database decides).
//!
//! It looks every [`EVERY`], and at once when the policy changes (here or, through
//! Realtime, anywhere).

use std::{sync::Arc, time::Duration};

use super::{events::WorkerEvent, shared::Shared};

/// Between looks at the policy.
const EVERY: Duration = Duration::from_secs(10 * 60);
/// Jobs removed per call: small enough that each call is short.
pub(super) const BATCH: u32 = 500;
/// Between two batches of one look, leaving the database to the jobs.
const BETWEEN_BATCHES: Duration = Duration::from_millis(50);
/// After a failed look: Supabase unreachable, the session over.
const RETRY: Duration = Duration::from_secs(60);

pub(super) async fn retention_loop(shared: Arc<Shared>) {
    let pass = || async {
        match apply(&shared).await {
            Ok(()) => EVERY,
            Err(error) => {
                // The claim loop says when Supabase is away or the session is over.
                tracing::debug!(%error, "applying the retention policy");
                RETRY
            }
        }
    };
    shared
        .claims
        .between_passes(&shared.retention_changed, pass)
        .await;
}

/// Removes, batch by batch, every job the policy names now; says how many went.
async fn apply(shared: &Shared) -> Result<(), crate::Error> {
    let mut removed = 0;
    let outcome = loop {
        match shared.jobs.apply_retention(BATCH).await {
            Ok(count) => {
                removed += count;
                if count < u64::from(BATCH) {
                    break Ok(());
                }
            }
            Err(error) => break Err(error),
        }
        tokio::select! {
            () = shared.claims.stop.cancelled() => break Ok(()),
            () = tokio::time::sleep(BETWEEN_BATCHES) => {}
        }
    };
    if removed > 0 {
        tracing::info!(removed, "the retention policy removed ended jobs");
        shared
            .events
            .emit(WorkerEvent::JobsRemoved { count: removed });
    }
    outcome
}
