//! The app's state: which project it is connected to, the session, the worker, and the
//! background tasks that carry their changes to the UI.
//!
//! One [`Shell`] lives for the whole app. Connecting to a project creates a
//! [`Connection`] that owns a session owner, a jobs client, a worker and their tasks;
//! replacing or closing it stops all of them. Locks guard only quick reads and swaps
//! and are never held across an `.await`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use jobdeck_core::{
    AuthClient, Error, JobsClient, Project, SessionOwner, SessionState,
    kinds::builtin,
    worker::{Worker, WorkerConfig, WorkerHandle, WorkerStatus},
};
use serde::{Deserialize, Serialize};
use tauri::AppHandle;
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use ts_rs::TS;

use crate::{events, sandbox::LocalSandbox, stores::Stores};

/// How long running jobs may take to finish when the app closes or the user signs out
/// before they are stopped and handed back.
const GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Serialize, TS)]
pub struct AppInfo {
    pub name: String,
    pub version: String,
}

/// What the UI shows about the connection.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectionView {
    pub url: String,
    /// Whether this is the local sandbox.
    pub sandbox: bool,
    pub session: SessionState,
    pub worker: WorkerStatus,
}

/// How a sign-up ended.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SignUpOutcome {
    SignedIn {
        session: SessionState,
    },
    /// The project confirms email addresses first: follow the link, then sign in.
    ConfirmationSent {
        email: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// The system's language when it is one the app speaks, else English.
    #[default]
    System,
    En,
    Ja,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct Preferences {
    pub theme: Theme,
    pub language: Language,
}

/// The project the app was last connected to, kept in the settings store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedProject {
    pub url: String,
    pub key: String,
    /// The local sandbox: found or started again on the next launch.
    #[serde(default)]
    pub sandbox: bool,
}

/// Everything that exists while the app is connected to one project.
#[derive(Debug)]
pub struct Connection {
    pub project: Project,
    pub sandbox: bool,
    pub session: Arc<SessionOwner>,
    pub jobs: JobsClient,
    pub worker: WorkerHandle,
    /// Wakes the change feed at once (this app changed something).
    pub poke: Arc<Notify>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Connection {
    pub fn view(&self) -> ConnectionView {
        ConnectionView {
            url: self.project.url().to_string(),
            sandbox: self.sandbox,
            session: self.session.watch().borrow().clone(),
            worker: self.worker.status(),
        }
    }

    /// Stops claiming, lets running jobs finish for a moment, hands the rest back, then
    /// stops the tasks that watched this connection.
    async fn close(&self) {
        self.worker.shutdown(GRACE).await;
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

#[derive(Debug)]
pub struct Shell {
    pub handle: AppHandle,
    pub stores: Stores,
    connection: Mutex<Option<Arc<Connection>>>,
    sandbox: Mutex<Option<LocalSandbox>>,
    /// Serialises connecting and disconnecting (not the commands that use a connection).
    switching: tokio::sync::Mutex<()>,
    /// Names this app's worker in job leases.
    worker_name: String,
    /// `--sandbox`: a first run uses the local sandbox instead of asking.
    sandbox_by_default: bool,
    /// When the process started, and whether the UI has shown the job list since.
    launched: Instant,
    shown: AtomicBool,
}

impl Shell {
    pub fn new(
        handle: AppHandle,
        stores: Stores,
        sandbox_by_default: bool,
        launched: Instant,
    ) -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let worker_name = format!(
            "desktop-{}-{}",
            if host.is_empty() { "host" } else { &host },
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            handle,
            stores,
            connection: Mutex::new(None),
            sandbox: Mutex::new(None),
            switching: tokio::sync::Mutex::new(()),
            worker_name,
            sandbox_by_default,
            launched,
            shown: AtomicBool::new(false),
        }
    }

    /// The UI painted the job list: logged once, with the time since launch, so a slow
    /// start shows in the log (the benchmark reads this line).
    pub fn list_shown(&self) {
        if !self.shown.swap(true, Ordering::Relaxed) {
            let ms = self.launched.elapsed().as_secs_f64() * 1000.0;
            tracing::info!(since_launch_ms = format!("{ms:.0}"), "job list shown");
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

    /// Connects to the project last used, if any (at start-up).
    pub async fn restore(self: &Arc<Self>) -> Result<Option<ConnectionView>, Error> {
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
        let store = self.stores.session(&saved.url);
        let session = SessionOwner::new(auth, Arc::new(store))?;
        let jobs = JobsClient::new(&project, Arc::clone(&session));
        let config = WorkerConfig::new(self.worker_name.clone());
        let worker = Worker::new(config, builtin(), jobs.clone()).start();
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let connection = Arc::new(Connection {
            project,
            sandbox: saved.sandbox,
            session,
            jobs,
            worker,
            poke: Arc::new(Notify::new()),
            stop,
            tasks,
        });
        events::watch(
            &self.handle,
            &self.stores,
            &connection,
            &connection.tasks,
            &connection.stop,
        );
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
