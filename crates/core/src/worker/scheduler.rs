//! The scheduler: turns the user's due schedule ticks into jobs. Every running worker
//! of the user does this; the database lets one of them make each tick's job (see
//! `fire_schedule`), so a tick makes one job however many devices are on.
//!
//! It sleeps until the earliest next tick (at most [`MAX_SLEEP`], so a schedule made
//! elsewhere while Realtime is away is found), or until woken: a schedule changed
//! here or, through Realtime, anywhere.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use super::{events::WorkerEvent, shared::Shared};
use crate::{
    ErrorCode,
    schedules::{Cron, Firing},
};

/// The longest sleep between looks at the schedules.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// After a failed look: Supabase unreachable, the session over.
const RETRY: Duration = Duration::from_secs(5);

pub(super) async fn schedule_loop(shared: Arc<Shared>) {
    let pass = || async {
        match fire_due(&shared).await {
            Ok(Some(next)) => (next - Utc::now())
                .to_std()
                .unwrap_or_default()
                .min(MAX_SLEEP),
            Ok(None) => MAX_SLEEP,
            Err(error) => {
                // The claim loop says when Supabase is away or the session is over.
                tracing::debug!(%error, "reading the schedules");
                RETRY
            }
        }
    };
    shared
        .claims
        .between_passes(&shared.schedules_changed, pass)
        .await;
}

/// Makes the jobs of every due tick; answers the earliest tick still to come.
async fn fire_due(shared: &Shared) -> Result<Option<DateTime<Utc>>, crate::Error> {
    let schedules = shared.jobs.enabled_schedules().await?;
    let mut earliest: Option<DateTime<Utc>> = None;
    for schedule in schedules {
        let cron = match Cron::of(&schedule) {
            Ok(cron) => cron,
            Err(error) => {
                let problem = error.to_string();
                if schedule.problem.as_deref() != Some(problem.as_str()) {
                    shared
                        .jobs
                        .report_schedule_problem(schedule.id, &problem)
                        .await?;
                }
                continue;
            }
        };
        let now = Utc::now();
        let next = match schedule.next_run_at {
            None => {
                let Some(next) = cron.next_after(now) else {
                    continue;
                };
                shared.jobs.start_schedule(schedule.id, next).await?;
                next
            }
            Some(due) if due > now => due,
            Some(due) => {
                let Some(firing) = Firing::at(&cron, schedule.on_missed, due, now) else {
                    continue;
                };
                match shared.jobs.fire_schedule(schedule.id, &firing).await {
                    Ok(Some(job)) => {
                        shared.claims.wake.notify_one();
                        shared.events.emit(WorkerEvent::ScheduleFired {
                            schedule_id: schedule.id,
                            job,
                        });
                    }
                    Ok(None) => {}
                    // A tick this device's clock says has come, the database's not yet.
                    Err(error) if error.code() == ErrorCode::Validation => {
                        tracing::warn!(%error, schedule = schedule.id, "a schedule's tick was refused");
                    }
                    Err(error) => return Err(error),
                }
                firing.next
            }
        };
        earliest = Some(earliest.map_or(next, |at| at.min(next)));
    }
    Ok(earliest)
}
