//! Everything that exists while the app is connected to one project: the session
//! owner, the jobs client, Realtime, the worker, and the tasks that watch them.

use std::{sync::Arc, time::Duration};

use jobdeck_core::{
    JobsClient, Project, SessionOwner,
    realtime::Realtime,
    worker::{Worker, WorkerConfig, WorkerHandle},
};
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::ipc::ConnectionView;

/// How long running jobs may take to finish when the app closes or the user signs out
/// before they are stopped and handed back.
const GRACE: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub struct Connection {
    pub project: Project,
    pub sandbox: bool,
    pub session: Arc<SessionOwner>,
    pub jobs: JobsClient,
    pub worker: WorkerHandle,
    /// Changes to the user's jobs, pushed from anywhere: the list follows them and the
    /// worker is woken by them.
    pub realtime: Realtime,
    /// Wakes the change feed at once (this app changed something).
    pub poke: Arc<Notify>,
    /// Cancelled when the connection closes: the watching tasks then end.
    pub(crate) stop: CancellationToken,
    /// The tasks that watch this connection (see `events::watch`).
    pub(crate) tasks: TaskTracker,
}

impl Connection {
    /// A connection to `project` as `session`, with this app's worker (named
    /// `worker_name` in job leases) started.
    pub fn open(
        project: Project,
        sandbox: bool,
        session: Arc<SessionOwner>,
        worker_name: String,
    ) -> Arc<Self> {
        let jobs = JobsClient::new(&project, Arc::clone(&session));
        let (registry, _) = crate::kinds::read();
        let realtime = Realtime::jobs(&project, Arc::clone(&session));
        let worker = Worker::new(WorkerConfig::new(worker_name), registry, jobs.clone())
            .woken_by(&realtime)
            .start();
        Arc::new(Connection {
            project,
            sandbox,
            session,
            jobs,
            worker,
            realtime,
            poke: Arc::new(Notify::new()),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    pub fn view(&self) -> ConnectionView {
        ConnectionView {
            url: self.project.url().to_string(),
            sandbox: self.sandbox,
            session: self.session.watch().borrow().clone(),
            worker: self.worker.status(),
            live: self.realtime.state().borrow().clone(),
        }
    }

    /// Stops claiming, lets running jobs finish for a moment, hands the rest back, then
    /// stops the tasks that watched this connection.
    pub async fn close(&self) {
        self.worker.shutdown(GRACE).await;
        self.realtime.shutdown().await;
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
