//! Woken by Realtime: a job that becomes claimable anywhere (enqueued by the CLI,
//! another device, a retry whose delay ran out, a kind resumed) wakes the claim loop
//! at once, or at its `run_at`, instead of waiting for the next poll; a schedule
//! changed anywhere wakes the scheduler, a retention policy changed anywhere wakes
//! retention. Polling stays as the safety net
//! for when Realtime is down or not served.

use std::{collections::BTreeSet, sync::Arc};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast::{self, error::RecvError};

use super::shared::Shared;
use crate::{
    JobStatus,
    realtime::{ChangeKind, RealtimeEvent},
};

/// Future wake-ups kept at most; beyond this the poll finds the rest.
const MAX_DUE: usize = 1024;

pub(super) async fn wake_on_changes(
    shared: Arc<Shared>,
    mut events: broadcast::Receiver<RealtimeEvent>,
) {
    let claims = &shared.claims;
    let mut due: BTreeSet<DateTime<Utc>> = BTreeSet::new();
    loop {
        let next = due.first().copied();
        let sleep = async {
            match next {
                Some(at) => {
                    tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = claims.stop.cancelled() => return,
            event = events.recv() => match event {
                // Joined (again), or fell behind: something may be waiting.
                Ok(RealtimeEvent::Joined) | Err(RecvError::Lagged(_)) => claims.wake.notify_one(),
                Ok(RealtimeEvent::Change(change)) => {
                    match change.table.as_str() {
                        "schedules" => shared.schedules_changed.notify_one(),
                        "retention_policies" => shared.retention_changed.notify_one(),
                        // A kind resumed: its waiting jobs may be claimed now.
                        "paused_kinds" => claims.wake.notify_one(),
                        _ => {}
                    }
                    if change.table != "jobs" || change.kind == ChangeKind::Delete {
                        continue;
                    }
                    let record = &change.record;
                    let waiting = record["status"].as_str() == Some(JobStatus::Waiting.as_str());
                    let ours = record["kind"].as_str().is_some_and(|kind| {
                        shared.registry().get(kind).is_some()
                            && shared.config.kinds.as_ref().is_none_or(|only| only.iter().any(|k| k == kind))
                    });
                    if !(waiting && ours) {
                        continue;
                    }
                    let run_at = record["run_at"]
                        .as_str()
                        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                        .map(|at| at.with_timezone(&Utc));
                    match run_at {
                        Some(at) if at > Utc::now() => {
                            if due.len() < MAX_DUE {
                                due.insert(at);
                            }
                        }
                        _ => claims.wake.notify_one(),
                    }
                }
                Err(RecvError::Closed) => return,
            },
            () = sleep => {
                let now = Utc::now();
                due.retain(|at| *at > now);
                claims.wake.notify_one();
            }
        }
    }
}
