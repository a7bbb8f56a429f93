//! The one-click local sandbox: the one `jobdeck dev` is running on its default data
//! directory, or one the app starts in-process and stops when it closes.

use jobdeck_core::Error;
use jobdeck_sandbox::{Options, SandboxError, Status};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The port `jobdeck dev` (and Supabase's own CLI) serve on; another is picked if taken.
const PORT: u16 = 54321;

#[derive(Debug)]
pub struct LocalSandbox {
    pub status: Status,
    stop: CancellationToken,
    served: JoinHandle<()>,
}

fn failed(error: SandboxError) -> Error {
    Error::Invalid(format!("the local sandbox could not start: {error}"))
}

impl LocalSandbox {
    /// The sandbox running on the default data directory, if any.
    pub fn find() -> Result<Option<Status>, Error> {
        let dir = jobdeck_sandbox::default_data_dir()
            .ok_or_else(|| Error::Invalid("HOME is not set: cannot find the sandbox".into()))?;
        Ok(jobdeck_sandbox::read_status(&dir))
    }

    pub async fn start() -> Result<Self, Error> {
        let data_dir = jobdeck_sandbox::default_data_dir()
            .ok_or_else(|| Error::Invalid("HOME is not set: cannot start the sandbox".into()))?;
        // Checked before PostgreSQL starts, rather than failing after it did.
        let port = match std::net::TcpListener::bind(("127.0.0.1", PORT)) {
            Ok(_) => PORT,
            Err(_) => 0,
        };
        let running = jobdeck_sandbox::start(Options {
            data_dir,
            db_url: None,
            port,
            jwt_expiry: 3600,
            refresh_reuse_interval: 10.0,
            redirect_urls: Vec::new(),
            seed_users: Vec::new(),
        })
        .await
        .map_err(failed)?;
        let status = running.status.clone();
        tracing::info!(url = %status.api_url, "started the local sandbox");
        let stop = CancellationToken::new();
        let until = stop.clone();
        let served = tokio::spawn(async move {
            if let Err(error) = running.serve(until.cancelled_owned()).await {
                tracing::error!(%error, "the local sandbox stopped");
            }
        });
        Ok(Self {
            status,
            stop,
            served,
        })
    }

    /// Stops serving and stops PostgreSQL cleanly.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.served.await;
    }
}
