//! The heartbeat: extends the leases of running jobs every third of a lease, and stops
//! a job whose cancellation was requested or whose lease was lost.

use std::{collections::HashMap, sync::Arc, time::Duration};

use super::{running::Stop, shared::Shared};
use crate::ErrorCode;

pub(super) async fn heartbeat_loop(shared: Arc<Shared>) {
    let every = (shared.config.lease / 3).max(Duration::from_millis(500));
    loop {
        tokio::select! {
            () = shared.stop_heartbeats.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let ids = shared.running.ids();
        if ids.is_empty() {
            continue;
        }
        match shared
            .jobs
            .heartbeat(&shared.config.name, &ids, shared.config.lease_seconds())
            .await
        {
            Ok(leases) => {
                let held: HashMap<i64, bool> =
                    leases.iter().map(|l| (l.id, l.cancel_requested)).collect();
                for id in ids {
                    match held.get(&id) {
                        Some(false) => {}
                        Some(true) => shared.running.stop(id, Stop::Requested),
                        None => shared.running.stop(id, Stop::Lost),
                    }
                }
            }
            // With every slot busy the claim loop may not notice for long: here is
            // where a running worker learns its session ended.
            Err(error) if error.code() == ErrorCode::AuthExpired => {
                shared.session_over(error.to_string())
            }
            Err(error) => shared.events.trouble(format!("extending leases: {error}")),
        }
    }
}
