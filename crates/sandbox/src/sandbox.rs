//! The sandbox's life: start, serve, stop.
//!
//! The data directory holds everything that must survive a restart:
//! - `config.json` (owner-only): the JWT secret and database passwords, made once;
//! - `postgres/`: the private cluster (unless `--db-url` names another PostgreSQL);
//! - `status.json`: what a running sandbox serves (URL, keys, process id), removed at
//!   a clean stop; `jobdeck dev status` reads it.

use std::{
    fs,
    future::Future,
    net::SocketAddr,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::serve::ListenerExt as _;
use jobdeck_postgres::{
    Cluster, ClusterOptions, RunningCluster, apply_bootstrap, apply_migrations, set_login_password,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_postgres::NoTls;

use crate::{
    AppState, Settings, app,
    auth::store,
    db::Db,
    keys::{Keys, random_token},
    rest::schema::Schema,
};

const CONFIG_FILE: &str = "config.json";
const STATUS_FILE: &str = "status.json";
const CLUSTER_DIR: &str = "postgres";
const POOL_SIZE: usize = 16;
const REALTIME_POOL_SIZE: usize = 4;

/// How to run the sandbox.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    /// Use this PostgreSQL (a superuser's URL) instead of a private cluster.
    pub db_url: Option<String>,
    /// The loopback port to serve on; 0 picks a free one.
    pub port: u16,
    pub jwt_expiry: u64,
    pub refresh_reuse_interval: f64,
    /// Globs of the URLs other than loopback ones that a sign-in through a provider
    /// may redirect to (Supabase's "Redirect URLs").
    pub redirect_urls: Vec<String>,
    /// Confirmed users to create at start (email, password), if missing.
    pub seed_users: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("a sandbox is already running on {data_dir} (process {pid}, {api_url})")]
    AlreadyRunning {
        data_dir: PathBuf,
        pid: u32,
        api_url: String,
    },
    #[error("port {port} on 127.0.0.1 is not available: {source} (choose another with --port)")]
    PortInUse {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid database URL: {0}")]
    DbUrl(String),
    #[error("seeding user {email}: {message}")]
    Seed { email: String, message: String },
    #[error(transparent)]
    Postgres(#[from] jobdeck_postgres::Error),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let action = action.into();
    move |source| SandboxError::Io { action, source }
}

/// Made once per data directory, so keys and data outlive restarts.
#[derive(Serialize, Deserialize)]
struct Config {
    jwt_secret: String,
    keys_issued_at: i64,
    postgres_password: String,
    authenticator_password: String,
    auth_admin_password: String,
}

/// What a running sandbox serves, as `supabase status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub api_url: String,
    pub db_url: String,
    pub anon_key: String,
    pub service_role_key: String,
    /// The keys new projects have (`sb_publishable_…`, `sb_secret_…`); absent from a
    /// status file written by an older sandbox.
    #[serde(default)]
    pub publishable_key: String,
    #[serde(default)]
    pub secret_key: String,
    pub jwt_secret: String,
    pub inbox_url: String,
    pub pid: u32,
}

impl Status {
    /// `supabase status`'s layout.
    pub fn pretty(&self) -> String {
        format!(
            "         API URL: {}\n          DB URL: {}\n       Inbox URL: {}\n Publishable key: {}\n      Secret key: {}\n      JWT secret: {}\n        anon key: {}\nservice_role key: {}\n",
            self.api_url,
            self.db_url,
            self.inbox_url,
            self.publishable_key,
            self.secret_key,
            self.jwt_secret,
            self.anon_key,
            self.service_role_key
        )
    }

    /// `KEY="value"` lines, for `eval` or an env file.
    pub fn env(&self) -> String {
        format!(
            "API_URL=\"{}\"\nDB_URL=\"{}\"\nINBOX_URL=\"{}\"\nPUBLISHABLE_KEY=\"{}\"\nSECRET_KEY=\"{}\"\nJWT_SECRET=\"{}\"\nANON_KEY=\"{}\"\nSERVICE_ROLE_KEY=\"{}\"\n",
            self.api_url,
            self.db_url,
            self.inbox_url,
            self.publishable_key,
            self.secret_key,
            self.jwt_secret,
            self.anon_key,
            self.service_role_key
        )
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Where the sandbox keeps its data by default: `$JOBDECK_SANDBOX_DIR` if set, else
/// `$XDG_DATA_HOME/jobdeck/sandbox` (or `~/.local/share/...`); for root, a system
/// directory the PostgreSQL user can reach. The CLI and the desktop app both look here,
/// so either finds the sandbox the other started. `None` when HOME is not set.
pub fn default_data_dir() -> Option<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = env("JOBDECK_SANDBOX_DIR") {
        return Some(PathBuf::from(dir));
    }
    let root = fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if root {
        return Some(PathBuf::from("/var/lib/jobdeck/sandbox"));
    }
    let base = match env("XDG_DATA_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env("HOME")?).join(".local/share"),
    };
    Some(base.join("jobdeck/sandbox"))
}

/// The status of the sandbox running on `data_dir`, if one is.
pub fn read_status(data_dir: &Path) -> Option<Status> {
    let text = fs::read_to_string(data_dir.join(STATUS_FILE)).ok()?;
    let status: Status = serde_json::from_str(&text).ok()?;
    process_alive(status.pid).then_some(status)
}

fn write_private(path: &Path, contents: &str) -> Result<(), SandboxError> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).map_err(io(format!("writing {}", tmp.display())))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
        .map_err(io(format!("restricting {}", tmp.display())))?;
    // Renamed into place, so a crash never leaves half a file.
    fs::rename(&tmp, path).map_err(io(format!("writing {}", path.display())))
}

fn load_config(data_dir: &Path) -> Result<Config, SandboxError> {
    let path = data_dir.join(CONFIG_FILE);
    if let Ok(text) = fs::read_to_string(&path) {
        return serde_json::from_str(&text)
            .map_err(|e| io(format!("reading {}", path.display()))(std::io::Error::other(e)));
    }
    let config = Config {
        jwt_secret: Keys::generate_secret(),
        keys_issued_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default(),
        postgres_password: random_token(24),
        authenticator_password: random_token(24),
        auth_admin_password: random_token(24),
    };
    let text = serde_json::to_string_pretty(&config)
        .map_err(|e| io("encoding the config")(std::io::Error::other(e)))?;
    write_private(&path, &text)?;
    Ok(config)
}

/// A started sandbox. [`Running::serve`] runs it until the shutdown future resolves.
#[derive(Debug)]
pub struct Running {
    pub status: Status,
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    cluster: Option<RunningCluster>,
    data_dir: PathBuf,
    /// The superuser's connection settings, where Realtime listens for changes and the
    /// schema cache for `NOTIFY pgrst`.
    admin_config: tokio_postgres::Config,
    /// The connections Realtime checks changes on.
    realtime_db: Db,
}

/// Starts PostgreSQL (or connects to `db_url`), prepares the database and binds the
/// HTTP port. Nothing is served until [`Running::serve`].
pub async fn start(options: Options) -> Result<Running, SandboxError> {
    let data_dir = options.data_dir.clone();
    fs::create_dir_all(&data_dir).map_err(io(format!("creating {}", data_dir.display())))?;
    // The PostgreSQL server may run as another user (when we are root): it must be able
    // to pass through to its own directory, and nothing more.
    fs::set_permissions(&data_dir, fs::Permissions::from_mode(0o711))
        .map_err(io(format!("restricting {}", data_dir.display())))?;
    if let Some(status) = read_status(&data_dir) {
        return Err(SandboxError::AlreadyRunning {
            data_dir,
            pid: status.pid,
            api_url: status.api_url,
        });
    }
    let config = load_config(&data_dir)?;

    let (cluster, admin_url) = match &options.db_url {
        Some(url) => (None, url.clone()),
        None => {
            let mut cluster_options = ClusterOptions::new(data_dir.join(CLUSTER_DIR));
            cluster_options.superuser_password = Some(config.postgres_password.clone());
            cluster_options
                .settings
                .push(("max_connections".into(), "100".into()));
            let started =
                tokio::task::spawn_blocking(move || Cluster::new(cluster_options)?.start())
                    .await
                    .map_err(|e| io("starting PostgreSQL")(std::io::Error::other(e)))?;
            let cluster = match started {
                Err(jobdeck_postgres::Error::AlreadyRunning(_)) => {
                    return Err(SandboxError::AlreadyRunning {
                        data_dir,
                        pid: 0,
                        api_url: "its PostgreSQL is still running".into(),
                    });
                }
                other => other?,
            };
            let url = cluster.url("postgres", "postgres");
            (Some(cluster), url)
        }
    };

    let admin_config: tokio_postgres::Config = admin_url
        .parse()
        .map_err(|e: tokio_postgres::Error| SandboxError::DbUrl(e.to_string()))?;
    let (mut admin, connection) = admin_config.connect(NoTls).await?;
    let driver = tokio::spawn(connection);
    apply_bootstrap(&admin).await?;
    let applied = apply_migrations(&mut admin).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    // After the migrations, so the tables they publish get their change capture now.
    admin.batch_execute(crate::realtime::CAPTURE).await?;
    // Passwords are set on every start, so a data directory and its config stay in
    // step even when the database was given with --db-url.
    for (role, password) in [
        ("authenticator", &config.authenticator_password),
        ("supabase_auth_admin", &config.auth_admin_password),
    ] {
        set_login_password(&admin, role, password).await?;
    }
    let schema = Schema::load(&admin).await?;
    drop(admin);
    let _ = driver.await;

    let role_config = |user: &str, password: &str| {
        let mut config = admin_config.clone();
        config.user(user).password(password);
        config
    };
    let db = Db::new(
        role_config("authenticator", &config.authenticator_password),
        POOL_SIZE,
    )
    .map_err(|e| SandboxError::DbUrl(e.to_string()))?;
    let auth_db = Db::new(
        role_config("supabase_auth_admin", &config.auth_admin_password),
        4,
    )
    .map_err(|e| SandboxError::DbUrl(e.to_string()))?;
    // Realtime checks each change as its subscriber on connections of its own, so a
    // burst of changes never waits for (or holds up) the REST API's.
    let realtime_db = Db::new(
        role_config("authenticator", &config.authenticator_password),
        REALTIME_POOL_SIZE,
    )
    .map_err(|e| SandboxError::DbUrl(e.to_string()))?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|source| SandboxError::PortInUse {
            port: options.port,
            source,
        })?;
    let address: SocketAddr = listener
        .local_addr()
        .map_err(io("reading the bound address"))?;
    let api_url = format!("http://{address}");

    let keys = Keys::new(config.jwt_secret.clone(), config.keys_issued_at)
        .map_err(|e| io(format!("the keys in {CONFIG_FILE}"))(std::io::Error::other(e)))?;
    let status = Status {
        api_url: api_url.clone(),
        db_url: admin_url.replace("postgres://", "postgresql://"),
        anon_key: keys.anon_key.clone(),
        service_role_key: keys.service_role_key.clone(),
        publishable_key: keys.publishable_key.clone(),
        secret_key: keys.secret_key.clone(),
        jwt_secret: config.jwt_secret.clone(),
        inbox_url: format!("{api_url}/inbox"),
        pid: std::process::id(),
    };
    let settings = Settings {
        site_url: api_url.clone(),
        redirect_urls: options.redirect_urls.clone(),
        api_url,
        jwt_expiry: options.jwt_expiry,
        refresh_reuse_interval: options.refresh_reuse_interval,
    };
    let state = Arc::new(AppState::new(keys, db, auth_db, settings, schema));

    for (email, password) in &options.seed_users {
        seed_user(&state, email, password).await?;
    }
    let text = serde_json::to_string_pretty(&status)
        .map_err(|e| io("encoding the status")(std::io::Error::other(e)))?;
    write_private(&data_dir.join(STATUS_FILE), &text)?;
    Ok(Running {
        status,
        state,
        listener,
        cluster,
        data_dir,
        admin_config,
        realtime_db,
    })
}

async fn seed_user(state: &AppState, email: &str, password: &str) -> Result<(), SandboxError> {
    let failed = |message: String| SandboxError::Seed {
        email: email.to_string(),
        message,
    };
    let client = state
        .auth_db
        .client()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if store::find_by_email(&client, email)
        .await
        .map_err(|e| failed(e.message))?
        .is_some()
    {
        return Ok(());
    }
    let hash = bcrypt::hash(password, bcrypt::DEFAULT_COST).map_err(|e| failed(e.to_string()))?;
    store::create_user(
        &client,
        email,
        Some(&hash),
        true,
        &json!({}),
        &json!({}),
        store::Identity::EMAIL,
    )
    .await
    .map_err(|e| failed(e.message))?;
    tracing::info!(email, "seeded a confirmed user");
    Ok(())
}

impl Running {
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves until `shutdown` resolves, lets requests in flight finish, then stops
    /// PostgreSQL cleanly (when the sandbox started it).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SandboxError> {
        let Running {
            state,
            listener,
            cluster,
            data_dir,
            admin_config,
            realtime_db,
            ..
        } = self;
        let stop = tokio_util::sync::CancellationToken::new();
        let schema = tokio::spawn(crate::rest::schema::watch(
            admin_config.clone(),
            Arc::clone(&state),
            stop.clone(),
        ));
        let changes = tokio::spawn(crate::realtime::changes::run(
            admin_config,
            Arc::clone(&state.realtime),
            realtime_db,
            stop.clone(),
        ));
        let hub = Arc::clone(&state.realtime);
        let stopping = stop.clone();
        let shutdown = async move {
            shutdown.await;
            // Realtime's sockets stay open until told: close them, so the graceful
            // shutdown does not wait for clients that would never leave.
            stopping.cancel();
            hub.kick_all();
        };
        // Realtime pushes small frames one after another: with Nagle's algorithm the
        // second waits for the client's delayed ACK of the first (up to 40 ms).
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        // The peer's address: MFA challenges are answered from where they were asked.
        let app = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(io("serving HTTP"));
        stop.cancel();
        let _ = changes.await;
        let _ = schema.await;
        let _ = fs::remove_file(data_dir.join(STATUS_FILE));
        if let Some(cluster) = cluster {
            tokio::task::spawn_blocking(move || cluster.stop())
                .await
                .map_err(|e| io("stopping PostgreSQL")(std::io::Error::other(e)))??;
        }
        served
    }
}
