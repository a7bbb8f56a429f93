//! What the UI hears without asking: one Tauri event, [`APP_EVENT`], whose payload is an
//! [`AppEvent`].
//!
//! Jobs this app runs reach the UI the moment the worker reports them; changes made
//! elsewhere (the CLI, another device) are pushed by Realtime through the live feed,
//! which reads by cursor after every (re)join and polls every [`poll`] (and at once
//! whenever this app changed something) only while Realtime is down. The UI applies
//! both the same way: a job's newer version replaces the older. The log lines this
//! app's jobs write and changes to the kinds file are pushed the same way.

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use jobdeck_core::{
    ChangeFeed, ErrorBody, Job, JobStatus, LiveFeed, LogLine, SessionState,
    realtime::{LiveState, RealtimeEvent},
    worker::{WorkerEvent, WorkerStatus},
};
use serde::Serialize;
use tauri::{AppHandle, Emitter};
use tauri_plugin_notification::NotificationExt;
use tokio::sync::broadcast::error::RecvError;
use ts_rs::TS;

use crate::{connection::Connection, ipc::Language, kinds::KindsView, stores::Stores};

pub const APP_EVENT: &str = "jobdeck://event";

/// How often changes made elsewhere are looked for while Realtime is down:
/// `JOBDECK_FEED_POLL_SECONDS` (0: never, which tests use to prove a change was pushed),
/// else two seconds.
fn poll() -> Duration {
    match std::env::var("JOBDECK_FEED_POLL_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(0) => Duration::from_secs(u64::from(u32::MAX)),
        Some(seconds) => Duration::from_secs(seconds),
        None => Duration::from_secs(2),
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AppEvent {
    /// New versions of these jobs (a job not on screen yet may be new).
    Jobs {
        jobs: Vec<Job>,
    },
    /// A running job's progress (between its row's updates).
    Progress {
        id: i64,
        progress: f32,
        message: Option<String>,
    },
    Session {
        state: SessionState,
    },
    /// The worker's state; `trouble` when it cannot reach the project and is retrying.
    Worker {
        status: WorkerStatus,
        trouble: Option<String>,
    },
    /// These jobs were deleted (here or elsewhere).
    Deleted {
        ids: Vec<i64>,
    },
    /// Whether the change feed reaches the project (`error` while it does not).
    Feed {
        error: Option<ErrorBody>,
    },
    /// Whether changes made elsewhere are pushed now (else they are polled).
    Live {
        state: LiveState,
    },
    /// Lines of a job's log this app's worker just stored.
    Log {
        id: i64,
        lines: Vec<LogLine>,
    },
    /// The kinds file changed: the kinds the app runs now.
    Kinds {
        kinds: KindsView,
    },
    /// The user's schedules or paused kinds changed (here or elsewhere): read them
    /// again if they are on show.
    Schedules,
    /// The user's retention policy changed (here or elsewhere).
    Retention,
}

/// How many events about jobs (their rows, deletions, progress) this process has sent
/// the UI (see [`job_events_sent`]).
static JOB_EVENTS_SENT: AtomicU64 = AtomicU64::new(0);

/// How many events about jobs have been sent to the UI so far: a read of the jobs that
/// began at one count has missed none if the count is the same once the UI listens.
pub fn job_events_sent() -> u64 {
    JOB_EVENTS_SENT.load(Ordering::SeqCst)
}

fn emit(handle: &AppHandle, event: AppEvent) {
    if matches!(
        event,
        AppEvent::Jobs { .. } | AppEvent::Deleted { .. } | AppEvent::Progress { .. }
    ) {
        JOB_EVENTS_SENT.fetch_add(1, Ordering::SeqCst);
    }
    if let Err(error) = handle.emit(APP_EVENT, event) {
        tracing::warn!(%error, "could not send an event to the UI");
    }
}

/// Starts the tasks that carry `connection`'s changes to the UI, in the connection's
/// own tracker; they end when the connection closes.
pub fn watch(handle: &AppHandle, stores: &Stores, connection: &Connection) {
    let (tasks, stop) = (&connection.tasks, &connection.stop);
    // The worker's own jobs: instant.
    let mut events = connection.worker.events();
    let (h, s, poke, worker) = (
        handle.clone(),
        stores.clone(),
        Arc::clone(&connection.poke),
        connection.worker.status_reader(),
    );
    let until = stop.clone();
    tasks.spawn(async move {
        loop {
            let event = tokio::select! {
                () = until.cancelled() => return,
                event = events.recv() => event,
            };
            let event = match event {
                Ok(event) => event,
                // Missed some: the feed catches up with the rows.
                Err(RecvError::Lagged(_)) => {
                    poke.notify_one();
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let mut trouble = None;
            match event {
                WorkerEvent::JobStarted { job } | WorkerEvent::ScheduleFired { job, .. } => {
                    emit(&h, AppEvent::Jobs { jobs: vec![job] })
                }
                WorkerEvent::JobUpdated { job } => {
                    notify(&h, &s, &job);
                    emit(&h, AppEvent::Jobs { jobs: vec![job] });
                }
                WorkerEvent::JobProgress {
                    id,
                    progress,
                    message,
                } => {
                    emit(
                        &h,
                        AppEvent::Progress {
                            id,
                            progress,
                            message,
                        },
                    );
                    continue;
                }
                WorkerEvent::JobLog { id, lines } => emit(&h, AppEvent::Log { id, lines }),
                // The feed hears of the rows that went (or catches up).
                WorkerEvent::JobReleased { .. }
                | WorkerEvent::JobLost { .. }
                | WorkerEvent::JobsRemoved { .. } => {
                    poke.notify_one();
                }
                WorkerEvent::Trouble { message } => trouble = Some(message),
                WorkerEvent::Paused
                | WorkerEvent::Resumed
                | WorkerEvent::Reconnected
                | WorkerEvent::SessionEnded { .. }
                | WorkerEvent::Stopped => {}
            }
            emit(
                &h,
                AppEvent::Worker {
                    status: worker(),
                    trouble,
                },
            );
        }
    });

    // Everything else: the live feed.
    let mut feed = LiveFeed::new(
        ChangeFeed::new(connection.jobs.clone(), Utc::now()),
        &connection.realtime,
        poll(),
        Arc::clone(&connection.poke),
    );
    let (h, session) = (handle.clone(), Arc::clone(&connection.session));
    let mut signed_in = connection.session.watch();
    let until = stop.clone();
    tasks.spawn(async move {
        let mut failing = false;
        loop {
            if session.user().is_none() {
                tokio::select! {
                    () = until.cancelled() => return,
                    changed = signed_in.changed() => if changed.is_err() { return },
                }
                continue;
            }
            let update = tokio::select! {
                () = until.cancelled() => return,
                update = feed.next() => update,
            };
            match update {
                Ok(update) => {
                    if failing {
                        failing = false;
                        emit(&h, AppEvent::Feed { error: None });
                    }
                    if !update.jobs.is_empty() {
                        emit(&h, AppEvent::Jobs { jobs: update.jobs });
                    }
                    if !update.deleted.is_empty() {
                        emit(
                            &h,
                            AppEvent::Deleted {
                                ids: update.deleted,
                            },
                        );
                    }
                }
                // Signed out meanwhile: not trouble; the loop waits for a sign-in.
                Err(_) if session.user().is_none() => {}
                Err(error) => {
                    tracing::debug!(%error, "the change feed could not read");
                    failing = true;
                    emit(
                        &h,
                        AppEvent::Feed {
                            error: Some(error.body()),
                        },
                    );
                    // Not again at once: the next read waits for the poll or a push.
                    tokio::select! {
                        () = until.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        }
    });

    // Schedules, paused kinds and the retention policy changed anywhere: a hint to
    // read them again.
    let mut changes = connection.realtime.subscribe();
    let h = handle.clone();
    let until = stop.clone();
    tasks.spawn(async move {
        loop {
            let event = tokio::select! {
                () = until.cancelled() => return,
                event = changes.recv() => event,
            };
            match event {
                Ok(RealtimeEvent::Change(change)) => match change.table.as_str() {
                    "schedules" | "paused_kinds" => emit(&h, AppEvent::Schedules),
                    "retention_policies" => emit(&h, AppEvent::Retention),
                    _ => {}
                },
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    emit(&h, AppEvent::Schedules);
                    emit(&h, AppEvent::Retention);
                }
                Err(RecvError::Closed) => return,
            }
        }
    });

    // Whether the list is live.
    let mut live = connection.realtime.state();
    let h = handle.clone();
    let until = stop.clone();
    tasks.spawn(async move {
        loop {
            let state = live.borrow_and_update().clone();
            emit(&h, AppEvent::Live { state });
            tokio::select! {
                () = until.cancelled() => return,
                changed = live.changed() => if changed.is_err() { return },
            }
        }
    });

    // The session: state changes, and refreshes ahead of expiry.
    let mut states = connection.session.watch();
    let (h, poke) = (handle.clone(), Arc::clone(&connection.poke));
    let until = stop.clone();
    tasks.spawn(async move {
        loop {
            tokio::select! {
                () = until.cancelled() => return,
                changed = states.changed() => if changed.is_err() { return },
            }
            let state = states.borrow_and_update().clone();
            if matches!(state, SessionState::Active { .. }) {
                poke.notify_one();
            }
            emit(&h, AppEvent::Session { state });
        }
    });
    let session = Arc::clone(&connection.session);
    let until = stop.clone();
    tasks.spawn(session.keep_fresh(until.cancelled_owned(), Duration::from_secs(5)));
    // The kinds file: the worker runs what it says now, and the UI shows it.
    let (h, set_registry) = (handle.clone(), connection.worker.registry_setter());
    tasks.spawn(crate::kinds::watch(stop.clone(), move |registry, kinds| {
        set_registry(registry);
        emit(&h, AppEvent::Kinds { kinds });
    }));
}

/// A desktop notification when one of this app's jobs finished or failed for good.
fn notify(handle: &AppHandle, stores: &Stores, job: &Job) {
    let japanese = match stores.preferences().language {
        Language::Ja => true,
        Language::En => false,
        Language::System => std::env::var("LANG").is_ok_and(|l| l.starts_with("ja")),
    };
    let Some((title, body)) = notification(japanese, job) else {
        return;
    };
    // No notification daemon (a headless session) is not worth more than a line.
    if let Err(error) = handle
        .notification()
        .builder()
        .title(title)
        .body(body)
        .show()
    {
        tracing::debug!(%error, "could not show a notification");
    }
}

/// The UI's texts (`ui/src/locales/`), read once: the notifications say what the UI
/// would, in its words.
fn texts(japanese: bool) -> &'static HashMap<String, String> {
    static EN: OnceLock<HashMap<String, String>> = OnceLock::new();
    static JA: OnceLock<HashMap<String, String>> = OnceLock::new();
    let (cell, json) = if japanese {
        (&JA, include_str!("../ui/src/locales/ja.json"))
    } else {
        (&EN, include_str!("../ui/src/locales/en.json"))
    };
    cell.get_or_init(|| serde_json::from_str(json).unwrap_or_default())
}

/// The title and body of the notification for `job`, if its status has one.
fn notification(japanese: bool, job: &Job) -> Option<(String, String)> {
    let key = match job.status {
        JobStatus::Finished => "notify.finished",
        JobStatus::Failed => "notify.failed",
        _ => return None,
    };
    let texts = texts(japanese);
    let title = texts.get(&format!("{key}Title"))?.clone();
    let body = texts
        .get(key)?
        .replace("{kind}", &job.kind)
        .replace("{id}", &job.id.to_string());
    Some((title, body))
}

#[cfg(test)]
mod tests {
    use jobdeck_core::{Job, JobStatus};
    use serde_json::json;

    fn job(status: JobStatus) -> Job {
        serde_json::from_value(json!({
            "id": 7, "uuid": "u", "kind": "hello", "status": status, "context": {},
            "result": null, "error": null, "history": [], "progress": null,
            "progress_message": null, "attempt": 1, "max_attempts": 3, "priority": 0,
            "run_at": "2026-01-01T00:00:00Z", "locked_by": null, "locked_until": null,
            "cancel_requested_at": null, "idempotency_key": null,
            "created_at": "2026-01-01T00:00:00Z", "started_at": null, "ended_at": null,
            "updated_at": "2026-01-01T00:00:00Z"
        }))
        .expect("a job")
    }

    #[test]
    fn notifications_use_the_uis_texts_in_both_languages() {
        assert_eq!(
            super::notification(false, &job(JobStatus::Finished)),
            Some(("Job finished".into(), "hello #7 finished".into()))
        );
        assert_eq!(
            super::notification(true, &job(JobStatus::Failed)),
            Some((
                "ジョブが失敗しました".into(),
                "hello #7 が失敗しました".into()
            ))
        );
        assert_eq!(super::notification(false, &job(JobStatus::Waiting)), None);
    }
}
