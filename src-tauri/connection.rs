//! Everything that exists while the app is connected to one project: the session
//! owner, the jobs client, Realtime, the worker, and the tasks that watch them.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use jobdeck_core::{
    EmailLinkFlow, Error, JobsClient, OAuthFlow, Project, SessionOwner, User,
    auth::oauth::{DEFAULT_TIMEOUT, EMAIL_LINK_TIMEOUT},
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
    /// A sign-in waiting for the browser (a provider's, or an emailed link's): at most
    /// one.
    browser: Mutex<PendingSignIn>,
}

/// The flow started and not yet waited for, and how to stop the one waited for.
#[derive(Debug, Default)]
struct PendingSignIn {
    flow: Option<BrowserFlow>,
    cancel: CancellationToken,
}

#[derive(Debug)]
enum BrowserFlow {
    Provider(OAuthFlow),
    EmailLink(EmailLinkFlow),
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
            browser: Mutex::default(),
        })
    }

    /// Makes `flow` the one sign-in waiting for the browser (one started before is
    /// cancelled).
    fn set_pending(&self, flow: BrowserFlow) {
        let mut pending = self.browser.lock().unwrap_or_else(|e| e.into_inner());
        pending.cancel.cancel();
        *pending = PendingSignIn {
            flow: Some(flow),
            cancel: CancellationToken::new(),
        };
    }

    /// Starts a sign-in through `provider` and opens the user's browser at it;
    /// answers the URL, for the user to open by hand when no browser opened.
    pub async fn start_oauth(&self, provider: &str) -> Result<String, Error> {
        let flow = OAuthFlow::start(self.session.auth(), provider).await?;
        let url = flow.url().to_string();
        self.set_pending(BrowserFlow::Provider(flow));
        // Opening a browser may wait on a launcher: off the async workers.
        let opening = url.clone();
        let opened = tokio::task::spawn_blocking(move || webbrowser::open(&opening)).await;
        if !matches!(opened, Ok(Ok(()))) {
            tracing::warn!("no browser opened for the sign-in; the app shows its URL");
        }
        Ok(url)
    }

    /// Has a code and a sign-in link emailed to `email` (creating the account if there
    /// is none); the link, followed in the browser, ends the sign-in waited for by
    /// [`Self::finish_browser`].
    pub async fn start_email_link(&self, email: &str) -> Result<(), Error> {
        let flow = EmailLinkFlow::start(self.session.auth(), email, true).await?;
        self.set_pending(BrowserFlow::EmailLink(flow));
        Ok(())
    }

    /// Waits for the started sign-in's browser, until it comes back, times out, is
    /// cancelled or the connection closes.
    pub async fn finish_browser(&self) -> Result<User, Error> {
        let (flow, cancel) = {
            let mut pending = self.browser.lock().unwrap_or_else(|e| e.into_inner());
            (pending.flow.take(), pending.cancel.clone())
        };
        let flow =
            flow.ok_or_else(|| Error::Invalid("no sign-in is waiting for the browser".into()))?;
        let stop = self.stop.clone();
        let ended = async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = stop.cancelled() => {}
            }
        };
        match flow {
            BrowserFlow::Provider(flow) => {
                self.session
                    .sign_in_with_oauth(flow, DEFAULT_TIMEOUT, ended)
                    .await
            }
            BrowserFlow::EmailLink(flow) => {
                self.session
                    .sign_in_with_email_link(flow, EMAIL_LINK_TIMEOUT, ended)
                    .await
            }
        }
    }

    /// Cancels the sign-in waiting for the browser, if any.
    pub fn cancel_browser(&self) {
        let mut pending = self.browser.lock().unwrap_or_else(|e| e.into_inner());
        pending.flow = None;
        pending.cancel.cancel();
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
