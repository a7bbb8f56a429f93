//! What a run stands on: a `jobdeck dev` sandbox in a throwaway directory (its own
//! PostgreSQL, which the peers share), a seeded user, and superuser connections for
//! setup and for checking outcomes (never for the measured path).

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, bail};
use jobdeck_core::{AuthClient, JobsClient, MemoryStore, Project, Session, SessionOwner};
use serde::Deserialize;
use tokio::process::{Child, Command};

pub const EMAIL: &str = "bench@jobdeck.invalid";
pub const PASSWORD: &str = "bench-password";

/// The parts of the sandbox's `status.json` a run needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub api_url: String,
    /// The superuser's URL of the sandbox's PostgreSQL.
    pub db_url: String,
    pub anon_key: String,
}

#[derive(Debug)]
pub struct Stack {
    pub dir: PathBuf,
    pub status: Status,
    sandbox: Child,
}

impl Stack {
    /// Starts `jobdeck dev` (from `bin_dir`) on a free port with a seeded user, and
    /// waits until it serves.
    pub async fn start(bin_dir: &Path) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("jobdeck-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        // PostgreSQL may run as another user (when we are root): it must pass through.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))?;
        let data = dir.join("sandbox");
        let log = std::fs::File::create(dir.join("sandbox.log"))?;
        let mut sandbox = Command::new(bin_dir.join("jobdeck"))
            .args(["dev", "--port", "0", "--data-dir"])
            .arg(&data)
            .arg("--seed-user")
            .arg(format!("{EMAIL}:{PASSWORD}"))
            .env("JOBDECK_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin_dir.join("jobdeck").display()))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let log = std::fs::read_to_string(dir.join("sandbox.log")).unwrap_or_default();
            if log.contains("Stop it with Ctrl-C") {
                break;
            }
            if sandbox.try_wait()?.is_some() || tokio::time::Instant::now() > deadline {
                bail!("the sandbox did not start:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let status = std::fs::read_to_string(data.join("status.json"))
            .context("reading the sandbox's status.json")?;
        Ok(Stack {
            status: serde_json::from_str(&status)?,
            dir,
            sandbox,
        })
    }

    /// The sandbox's process (PostgreSQL runs below it).
    pub fn sandbox_pid(&self) -> u32 {
        self.sandbox.id().unwrap_or(0)
    }

    pub fn project(&self) -> anyhow::Result<Project> {
        Ok(Project::new(&self.status.api_url, &self.status.anon_key)?)
    }

    /// A fresh session of the seeded user (each process signs in for its own).
    pub async fn session(&self) -> anyhow::Result<Session> {
        let auth = AuthClient::connect(self.project()?);
        Ok(auth.sign_in_with_password(EMAIL, PASSWORD).await?)
    }

    /// The seeded user's jobs, through the REST API in a session of their own.
    pub async fn jobs(&self) -> anyhow::Result<JobsClient> {
        jobs_client(self.project()?, EMAIL, PASSWORD).await
    }

    /// A superuser connection to `database` on the sandbox's PostgreSQL.
    pub async fn admin(&self, database: &str) -> anyhow::Result<tokio_postgres::Client> {
        connect(&self.db_url(database)).await
    }

    pub fn db_url(&self, database: &str) -> String {
        match self.status.db_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{database}"),
            None => self.status.db_url.clone(),
        }
    }

    /// Stops the sandbox as Ctrl-C would (PostgreSQL shuts down cleanly) and removes
    /// the run's directory.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.sandbox.id() {
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await?;
            tokio::time::timeout(Duration::from_secs(60), self.sandbox.wait()).await??;
        }
        std::fs::remove_dir_all(&self.dir)?;
        Ok(())
    }
}

/// Signs in as `email` and answers a jobs client acting as them.
pub async fn jobs_client(
    project: Project,
    email: &str,
    password: &str,
) -> anyhow::Result<JobsClient> {
    let owner = SessionOwner::new(
        AuthClient::connect(project.clone()),
        Arc::new(MemoryStore::default()),
    )?;
    owner.sign_in_with_password(email, password).await?;
    Ok(JobsClient::new(&project, owner))
}

pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| "connecting to the sandbox's PostgreSQL")?;
    // The driver ends when the client is dropped.
    tokio::spawn(connection);
    Ok(client)
}
