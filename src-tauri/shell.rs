//! The app's state: which project it is connected to, and the one-click sandbox.
//!
//! One [`Shell`] lives for the whole app. Connecting to a project opens a
//! [`Connection`] (a session owner, a jobs client, a worker and their tasks);
//! replacing or closing it stops all of them. Locks guard only quick reads and swaps
//! and are never held across an `.await`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Instant, SystemTime},
};

use jobdeck_core::{
    AuthClient, Error, JobFilter, KeychainStore, Project, SessionOwner, worker::WorkerConfig,
};
use tauri::AppHandle;

use crate::{
    connection::Connection,
    events,
    ipc::{ConnectionView, JobsOpening, LaunchTimings},
    kinds,
    sandbox::LocalSandbox,
    stores::{SavedProject, Stores},
};

#[derive(Debug)]
pub struct Shell {
    pub handle: AppHandle,
    pub stores: Stores,
    connection: Mutex<Option<Arc<Connection>>>,
    sandbox: Mutex<Option<LocalSandbox>>,
    /// Serialises connecting and disconnecting (not the commands that use a connection).
    switching: tokio::sync::Mutex<()>,
    /// Serialises restoring: the one begun at launch (with its read of the jobs
    /// screen) and the UI's asks for their outcome.
    restoring: Arc<tokio::sync::Mutex<()>>,
    /// The jobs screen as the launch read it, for the UI's first ask.
    opening: Mutex<Option<KeptOpening>>,
    /// Names this app's worker in job leases.
    worker_name: String,
    /// `--sandbox`: a first run uses the local sandbox instead of asking.
    sandbox_by_default: bool,
    /// When the process started (by the monotonic clock, and by the wall clock the
    /// page's time origin is told in), and whether the UI has shown the job list since.
    launched: Instant,
    launched_at: SystemTime,
    shown: AtomicBool,
}

/// An opening read ahead, with what it was read for.
#[derive(Debug)]
struct KeptOpening {
    filter: JobFilter,
    user: String,
    opening: JobsOpening,
}

impl Shell {
    pub fn new(
        handle: AppHandle,
        stores: Stores,
        sandbox_by_default: bool,
        launched: Instant,
    ) -> Self {
        Self {
            handle,
            stores,
            connection: Mutex::new(None),
            sandbox: Mutex::new(None),
            switching: tokio::sync::Mutex::new(()),
            restoring: Arc::new(tokio::sync::Mutex::new(())),
            opening: Mutex::new(None),
            worker_name: WorkerConfig::unique_name("desktop"),
            sandbox_by_default,
            launched,
            launched_at: SystemTime::now() - launched.elapsed(),
            shown: AtomicBool::new(false),
        }
    }

    /// The UI painted the job list: logged once, with the time since launch and the
    /// UI's steps on the same clock, so a slow start shows in the log and says where
    /// (the benchmark reads this line). The page's time origin is placed by the wall
    /// clock, which the page and the app share.
    pub fn list_shown(&self, timings: &LaunchTimings) {
        if !self.shown.swap(true, Ordering::Relaxed) {
            let ms = self.launched.elapsed().as_secs_f64() * 1000.0;
            let launched_at = self
                .launched_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            let origin = timings.time_origin_ms - launched_at;
            let at = |step: f64| format!("{:.0}", origin + step);
            tracing::info!(
                since_launch_ms = format!("{ms:.0}"),
                painted_ms = at(timings.painted_ms),
                page_started_ms = at(0.0),
                page_loaded_ms = at(timings.page_loaded_ms),
                script_ms = at(timings.script_ms),
                connection_ms = at(timings.connection_ms),
                list_ms = at(timings.list_ms),
                "job list shown"
            );
        }
    }

    /// The current connection, or an error the UI answers with the connect screen.
    pub fn connection(&self) -> Result<Arc<Connection>, Error> {
        self.connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| Error::Invalid("not connected to a Supabase project".into()))
    }

    pub fn current(&self) -> Option<ConnectionView> {
        self.connection().ok().map(|c| c.view())
    }

    /// Begins [`Shell::restore`] at launch, while the window loads its page: the
    /// session is read and checked, the worker started, and the jobs screen's opening
    /// read (see [`Shell::opening`]), all before the UI asks. The UI's own calls then
    /// wait for this and answer from it; a restore that failed is tried again by the
    /// UI's, which shows why.
    pub fn begin_restore(self: &Arc<Self>) {
        // Taken here, not in the task, so no ask of the UI's can come first.
        let Ok(restoring) = Arc::clone(&self.restoring).try_lock_owned() else {
            return;
        };
        let shell = Arc::clone(self);
        tauri::async_runtime::spawn(async move {
            match shell.restore_now().await {
                Ok(Some(_)) => {
                    let filter = JobFilter::opening();
                    match shell.read_opening(&filter).await {
                        Ok(Some((user, opening))) => {
                            *shell.opening.lock().unwrap_or_else(|e| e.into_inner()) =
                                Some(KeptOpening {
                                    filter,
                                    user,
                                    opening,
                                });
                        }
                        Ok(None) => {}
                        Err(error) => tracing::info!(%error, "reading the jobs at launch"),
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::info!(%error, "restoring the last connection at launch"),
            }
            drop(restoring);
        });
    }

    /// Connects to the project last used, if any (at start-up).
    pub async fn restore(self: &Arc<Self>) -> Result<Option<ConnectionView>, Error> {
        let _restoring = self.restoring.lock().await;
        self.restore_now().await
    }

    async fn restore_now(self: &Arc<Self>) -> Result<Option<ConnectionView>, Error> {
        if let Some(view) = self.current() {
            return Ok(Some(view));
        }
        match self.stores.project()? {
            Some(saved) if saved.sandbox => self.connect_sandbox().await.map(Some),
            Some(saved) => self.open(saved, false).await.map(Some),
            None if self.sandbox_by_default => self.connect_sandbox().await.map(Some),
            None => Ok(None),
        }
    }

    /// The jobs screen's opening under `filter`: the one read at launch if it was read
    /// for this filter and user and not asked for before, else read now. `None` while
    /// no signed-in session is there to read it with (the UI then shows the screen
    /// that asks for one).
    pub async fn opening(&self, filter: &JobFilter) -> Result<Option<JobsOpening>, Error> {
        drop(self.restoring.lock().await);
        let kept = self
            .opening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let user = self
            .connection()
            .ok()
            .and_then(|c| c.session.user())
            .map(|u| u.id);
        match kept {
            Some(kept) if kept.filter == *filter && Some(&kept.user) == user.as_ref() => {
                Ok(Some(kept.opening))
            }
            _ => Ok(self.read_opening(filter).await?.map(|(_, opening)| opening)),
        }
    }

    /// The opening under `filter`, and the user it was read as.
    async fn read_opening(
        &self,
        filter: &JobFilter,
    ) -> Result<Option<(String, JobsOpening)>, Error> {
        let Ok(connection) = self.connection() else {
            return Ok(None);
        };
        let user = match connection.session.user() {
            Some(user) if connection.session.watch().borrow().is_signed_in() => user.id,
            _ => return Ok(None),
        };
        // Counted before reading: an event sent meanwhile makes the UI read again.
        let job_events_sent = events::job_events_sent();
        let (page, counts) =
            tokio::try_join!(connection.jobs.list(filter), connection.jobs.counts())?;
        let opening = JobsOpening {
            kinds: kinds::read().1,
            page,
            counts,
            job_events_sent,
        };
        Ok(Some((user, opening)))
    }

    /// Checks `url` and `key` against the project's Auth server, then connects.
    pub async fn connect(self: &Arc<Self>, url: &str, key: &str) -> Result<ConnectionView, Error> {
        let saved = SavedProject {
            url: url.trim().to_string(),
            key: key.trim().to_string(),
            sandbox: false,
        };
        self.open(saved, true).await
    }

    /// Connects to the local sandbox: the one running on its default data directory, or
    /// one this app starts (and stops when it closes).
    pub async fn connect_sandbox(self: &Arc<Self>) -> Result<ConnectionView, Error> {
        let status = match LocalSandbox::find()? {
            Some(status) => status,
            None => {
                let started = LocalSandbox::start().await?;
                let status = started.status.clone();
                let previous = self
                    .sandbox
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace(started);
                if let Some(previous) = previous {
                    previous.stop().await;
                }
                status
            }
        };
        let saved = SavedProject {
            url: status.api_url,
            key: status.anon_key,
            sandbox: true,
        };
        self.open(saved, true).await
    }

    async fn open(
        self: &Arc<Self>,
        saved: SavedProject,
        check: bool,
    ) -> Result<ConnectionView, Error> {
        let project = Project::new(&saved.url, &saved.key)?;
        let auth = AuthClient::connect(project.clone());
        if check {
            auth.check().await?;
        }
        let _switching = self.switching.lock().await;
        self.close_connection().await;
        // In the OS keychain; the app's own store only where no keychain answers.
        let store = KeychainStore::new(
            format!("app:{}", saved.url),
            Arc::new(self.stores.session(&saved.url)),
        );
        let session = SessionOwner::new(auth, Arc::new(store))?;
        let connection =
            Connection::open(project, saved.sandbox, session, self.worker_name.clone());
        events::watch(&self.handle, &self.stores, &connection);
        self.stores.set_project(Some(&saved))?;
        *self.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&connection));
        Ok(connection.view())
    }

    /// Leaves the project: running jobs are handed back, and the next start shows the
    /// connect screen. The session stays stored for when the user comes back.
    pub async fn disconnect(&self) -> Result<(), Error> {
        let _switching = self.switching.lock().await;
        self.close_connection().await;
        self.stores.set_project(None)
    }

    async fn close_connection(&self) {
        let previous = self
            .connection
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(previous) = previous {
            previous.close().await;
        }
    }

    /// Everything stops: the worker hands its jobs back, the tasks end, and a sandbox
    /// this app started stops its PostgreSQL.
    pub async fn shutdown(&self) {
        self.close_connection().await;
        let sandbox = self
            .sandbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(sandbox) = sandbox {
            sandbox.stop().await;
        }
    }
}
