//! Real PostgreSQL for tests: one throwaway cluster per test process, and a fresh
//! database per test cloned from a template that has the bootstrap and migrations.
//!
//! The cluster runs in a thread of its own that lives as long as the process; when the
//! process ends, the parent-death signal shuts the server down. Its data lives under
//! the system's temporary directory and is removed by the next test process.

use std::{
    fs,
    path::PathBuf,
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
        mpsc,
    },
};

use tokio_postgres::{Client, NoTls};

use crate::{
    Cluster, ClusterOptions, Error, apply_bootstrap, apply_migrations, cluster::SUPERUSER,
};

const TEMPLATE: &str = "jobdeck_template";
const DIR_PREFIX: &str = "jobdeck-test-";

/// The process's test cluster.
#[derive(Debug)]
pub struct TestCluster {
    port: u16,
}

/// A database of its own for one test, migrated like a fresh Supabase project.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    pub name: String,
    port: u16,
}

impl TestCluster {
    /// Starts the cluster on first use. Panics with PostgreSQL's own words if it cannot
    /// start: there is no meaningful test without it.
    pub fn shared() -> &'static TestCluster {
        static SHARED: OnceLock<TestCluster> = OnceLock::new();
        SHARED.get_or_init(|| match start_shared() {
            Ok(port) => TestCluster { port },
            Err(error) => panic!("the test PostgreSQL cluster did not start: {error}"),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new database cloned from the migrated template.
    pub async fn database(&self) -> TestDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let admin = connect(&url(self.port, SUPERUSER, "postgres")).await;
        admin
            .batch_execute(&format!("create database {name} template {TEMPLATE}"))
            .await
            .unwrap_or_else(|error| panic!("creating test database {name}: {error}"));
        TestDatabase {
            name,
            port: self.port,
        }
    }
}

impl TestDatabase {
    /// A fresh database on the process's shared cluster.
    pub async fn new() -> TestDatabase {
        TestCluster::shared().database().await
    }

    /// The superuser's URL (for setting up fixtures and simulating time passing).
    pub fn admin_url(&self) -> String {
        url(self.port, SUPERUSER, &self.name)
    }

    /// The URL of the role the REST server connects as (`authenticator`), which can do
    /// nothing itself until it switches to anon, authenticated or service_role.
    pub fn authenticator_url(&self) -> String {
        url(self.port, "authenticator", &self.name)
    }

    pub async fn admin(&self) -> Client {
        connect(&self.admin_url()).await
    }

    pub async fn authenticator(&self) -> Client {
        connect(&self.authenticator_url()).await
    }
}

fn url(port: u16, user: &str, database: &str) -> String {
    format!("postgres://{user}@127.0.0.1:{port}/{database}")
}

/// Connects, driving the connection on the current runtime.
pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| panic!("connecting to {url}: {error}"));
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "test connection ended");
        }
    });
    client
}

fn start_shared() -> Result<u16, Error> {
    let base = std::env::temp_dir();
    remove_stale_dirs(&base);
    let dir = base.join(format!("{DIR_PREFIX}{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    // The server's user (not us, when we are root) must be able to reach its data.
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(Error::io("opening the test directory to the server's user"))?;

    let mut options = ClusterOptions::new(dir.join("data"));
    options.durable = false;
    options
        .settings
        .push(("max_connections".into(), "200".into()));
    let cluster = Cluster::new(options)?;

    let (ready, started) = mpsc::channel();
    std::thread::Builder::new()
        .name("test-postgres".into())
        .spawn(move || {
            let mut running = match cluster.start() {
                Ok(running) => running,
                Err(error) => return drop(ready.send(Err(error))),
            };
            let port = running.port();
            let prepared = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Error::io("starting a runtime"))
                .and_then(|runtime| runtime.block_on(prepare_template(port)));
            let failed = prepared.is_err();
            let _ = ready.send(prepared.map(|()| port));
            if !failed {
                // This thread started the server, so the server lives while it does:
                // until the process exits.
                let _ = running.wait();
            }
        })
        .map_err(Error::io("starting the test cluster thread"))?;
    started.recv().map_err(|_| Error::StartFailed {
        log_tail: "the test cluster thread died".into(),
    })?
}

async fn prepare_template(port: u16) -> Result<(), Error> {
    let admin = connect(&url(port, SUPERUSER, "postgres")).await;
    admin
        .batch_execute(&format!("create database {TEMPLATE}"))
        .await?;
    let mut template = connect(&url(port, SUPERUSER, TEMPLATE)).await;
    apply_bootstrap(&template).await?;
    apply_migrations(&mut template).await?;
    // A template cannot be cloned while anyone is connected to it.
    drop(template);
    admin
        .batch_execute(&format!(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = '{TEMPLATE}'"
        ))
        .await?;
    Ok(())
}

/// Data left by earlier test processes that have exited.
fn remove_stale_dirs(base: &std::path::Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
