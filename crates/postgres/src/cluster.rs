//! A private PostgreSQL server: one data directory, one `postgres` child process.
//!
//! The server is a child of the calling process, not a daemon: started through
//! `setpriv --pdeathsig`, it is told to shut down if its parent dies, so a crashed
//! sandbox or test run does not leave a server behind. When the caller is root (as CI
//! and containers are) every PostgreSQL program runs as the `postgres` system user,
//! because PostgreSQL refuses to run as root.

use std::{
    fs::{self, File, OpenOptions},
    io::Write as _,
    net::TcpListener,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use crate::Error;

/// The oldest PostgreSQL the migrations are written for.
pub const MIN_VERSION: u32 = 15;
/// The superuser that `initdb` creates unless [`ClusterOptions::superuser`] says
/// otherwise.
pub const SUPERUSER: &str = "postgres";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const LOG_FILE: &str = "jobdeck-postgres.log";

/// How to create and run a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Where the cluster keeps its data; created by [`Cluster::init`] if missing.
    pub data_dir: PathBuf,
    /// The loopback port to listen on; `None` picks a free one.
    pub port: Option<u16>,
    /// `false` trades crash safety for speed (no fsync): for throwaway test clusters.
    pub durable: bool,
    /// The superuser `initdb` creates: [`SUPERUSER`], or another name where `postgres`
    /// must be an ordinary role (as on a hosted Supabase project, whose superuser is
    /// `supabase_admin`).
    pub superuser: String,
    /// The superuser's password for TCP connections; `None` trusts every local
    /// connection (test clusters only: anyone on the machine could connect).
    pub superuser_password: Option<String>,
    /// Extra `postgresql.conf` settings passed on the command line.
    pub settings: Vec<(String, String)>,
}

impl ClusterOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            port: None,
            durable: true,
            superuser: SUPERUSER.into(),
            superuser_password: None,
            settings: Vec::new(),
        }
    }
}

/// The unprivileged account PostgreSQL runs as when the caller is root.
#[derive(Debug, Clone)]
struct RunAs {
    user: String,
    uid: u32,
    gid: u32,
}

/// A cluster that is not running (yet).
#[derive(Debug)]
pub struct Cluster {
    options: ClusterOptions,
    bin_dir: PathBuf,
    run_as: Option<RunAs>,
}

impl Cluster {
    /// Finds the PostgreSQL binaries and decides which user runs them.
    pub fn new(options: ClusterOptions) -> Result<Self, Error> {
        let bin_dir = find_bin_dir()?;
        let am_root = fs::metadata("/proc/self")
            .map_err(Error::io("reading the current user"))?
            .uid()
            == 0;
        let run_as = if am_root {
            Some(postgres_user()?)
        } else {
            None
        };
        Ok(Self {
            options,
            bin_dir,
            run_as,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.options.data_dir
    }

    /// Whether the data directory already holds a cluster.
    pub fn is_initialized(&self) -> bool {
        self.options.data_dir.join("PG_VERSION").is_file()
    }

    /// Creates the cluster unless the data directory already holds one.
    pub fn init(&self) -> Result<(), Error> {
        if self.is_initialized() {
            return Ok(());
        }
        let data_dir = &self.options.data_dir;
        fs::create_dir_all(data_dir)
            .map_err(Error::io(format!("creating {}", data_dir.display())))?;
        self.check_reachable()?;
        fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
            .map_err(Error::io(format!("restricting {}", data_dir.display())))?;
        self.give_to_server_user(data_dir)?;

        let mut args: Vec<String> = vec![
            "-D".into(),
            data_dir.display().to_string(),
            "-U".into(),
            self.options.superuser.clone(),
            "-E".into(),
            "UTF8".into(),
            "--locale=C".into(),
        ];
        if !self.options.durable {
            args.push("--no-sync".into());
        }
        let password_file = match &self.options.superuser_password {
            Some(password) => {
                let path = data_dir.with_extension("initdb-password");
                let mut file = File::create(&path)
                    .map_err(Error::io(format!("writing {}", path.display())))?;
                file.write_all(password.as_bytes())
                    .map_err(Error::io(format!("writing {}", path.display())))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                    .map_err(Error::io(format!("restricting {}", path.display())))?;
                self.give_to_server_user(&path)?;
                args.extend([
                    "--auth-local=trust".into(),
                    "--auth-host=scram-sha-256".into(),
                    format!("--pwfile={}", path.display()),
                ]);
                Some(path)
            }
            None => {
                args.push("--auth=trust".into());
                None
            }
        };
        let result = self.run_tool("initdb", &args);
        if let Some(path) = password_file {
            // The password now lives hashed in the cluster; the plain copy must go.
            let _ = fs::remove_file(path);
        }
        result.map(drop)
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(self) -> Result<RunningCluster, Error> {
        self.init()?;
        if let Some(pid) = self.live_postmaster_pid() {
            tracing::debug!(pid, "postmaster.pid names a live process");
            if !self.outlived_its_owner(pid) {
                return Err(Error::AlreadyRunning(self.options.data_dir.clone()));
            }
            // Its owner died outright (a kill -9 of the sandbox): the parent-death
            // signal has it shutting down. Starting again must wait for that, not fail.
            tracing::info!(
                pid,
                "waiting for the previous PostgreSQL to finish stopping"
            );
            let deadline = Instant::now() + START_TIMEOUT;
            while self.live_postmaster_pid() == Some(pid) {
                if Instant::now() > deadline {
                    return Err(Error::AlreadyRunning(self.options.data_dir.clone()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // A free port can be taken by someone else between our check and the server's
        // bind; when we chose it, choose again.
        let mut tries = if self.options.port.is_some() { 1 } else { 5 };
        loop {
            let port = match self.options.port {
                Some(port) => port,
                None => free_port()?,
            };
            match self.spawn_ready(port) {
                Err(Error::StartFailed { log_tail })
                    if tries > 1 && log_tail.contains("could not bind") =>
                {
                    tries -= 1;
                    tracing::debug!(port, "port was taken, trying another");
                }
                Err(error) => return Err(error),
                Ok(server) => {
                    return Ok(RunningCluster {
                        cluster: self,
                        server,
                        port,
                        stopped: false,
                    });
                }
            }
        }
    }

    /// Starts the server on `port` and waits until it reports itself ready.
    fn spawn_ready(&self, port: u16) -> Result<Server, Error> {
        let data_dir = self.options.data_dir.clone();
        let log_path = data_dir.join(LOG_FILE);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(Error::io(format!("opening {}", log_path.display())))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log_err = log
            .try_clone()
            .map_err(Error::io("duplicating the log file handle"))?;

        let mut settings = vec![
            ("listen_addresses".to_string(), "127.0.0.1".to_string()),
            // No socket in a system directory we may not be allowed to write.
            ("unix_socket_directories".to_string(), String::new()),
        ];
        if !self.options.durable {
            for name in ["fsync", "synchronous_commit", "full_page_writes"] {
                settings.push((name.to_string(), "off".to_string()));
            }
        }
        settings.extend(self.options.settings.iter().cloned());

        let mut command = self.command("postgres", true);
        command
            .arg("-D")
            .arg(&data_dir)
            .arg("-p")
            .arg(port.to_string());
        for (name, value) in &settings {
            command.arg("-c").arg(format!("{name}={value}"));
        }
        command.stdin(Stdio::null()).stdout(log).stderr(log_err);
        let mut server = Server::spawn(command)?;

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server.exit_status() {
                let log_tail = read_tail(&log_path, log_start);
                tracing::debug!(%status, "postgres exited while starting");
                return Err(Error::StartFailed { log_tail });
            }
            if postmaster_status(&data_dir, server.pid).as_deref() == Some("ready") {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.run_tool("pg_ctl", &self.stop_args("immediate"));
                return Err(Error::StartTimedOut(START_TIMEOUT));
            }
            // The server reports readiness only through postmaster.pid; poll it briefly.
            std::thread::sleep(Duration::from_millis(10));
        }
        tracing::info!(port, data_dir = %data_dir.display(), "PostgreSQL is ready");
        Ok(server)
    }

    fn stop_args(&self, mode: &str) -> Vec<String> {
        let data_dir = self.data_dir().display().to_string();
        ["stop", "-D", &data_dir, "-m", mode, "-w", "-t", "60"]
            .map(String::from)
            .to_vec()
    }

    /// Whether the live server `pid` is on its way out on its own: it says it is
    /// stopping, or the process that started it is gone (orphans are re-parented to
    /// init), which delivered the parent-death signal.
    fn outlived_its_owner(&self, pid: u32) -> bool {
        if postmaster_status(&self.options.data_dir, pid).as_deref() == Some("stopping") {
            return true;
        }
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // "pid (comm) state ppid ...": the command may contain spaces, so read after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        ppid == Some(1)
    }

    fn live_postmaster_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.options.data_dir.join("postmaster.pid")).ok()?;
        let pid: u32 = text.lines().next()?.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// When the server runs as another user, it must be able to pass through every
    /// directory above its data; say so now rather than let initdb fail obscurely.
    fn check_reachable(&self) -> Result<(), Error> {
        let Some(run_as) = &self.run_as else {
            return Ok(());
        };
        let data_dir = self
            .options
            .data_dir
            .canonicalize()
            .map_err(Error::io(format!(
                "resolving {}",
                self.options.data_dir.display()
            )))?;
        for dir in data_dir.ancestors().skip(1) {
            let meta =
                fs::metadata(dir).map_err(Error::io(format!("reading {}", dir.display())))?;
            let mode = meta.permissions().mode();
            let can_enter = mode & 0o001 != 0
                || (meta.uid() == run_as.uid && mode & 0o100 != 0)
                || (meta.gid() == run_as.gid && mode & 0o010 != 0);
            if !can_enter {
                return Err(Error::Unreachable {
                    user: run_as.user.clone(),
                    dir: dir.to_path_buf(),
                });
            }
        }
        Ok(())
    }

    fn give_to_server_user(&self, path: &Path) -> Result<(), Error> {
        if let Some(run_as) = &self.run_as {
            std::os::unix::fs::chown(path, Some(run_as.uid), Some(run_as.gid)).map_err(
                Error::io(format!("giving {} to {}", path.display(), run_as.user)),
            )?;
        }
        Ok(())
    }

    /// A PostgreSQL program, run as the server's user. `server` adds the parent-death
    /// signal that ties the server's life to ours.
    fn command(&self, program: &str, server: bool) -> Command {
        let binary = self.bin_dir.join(program);
        let mut command = if self.run_as.is_some() || server {
            let mut command = Command::new("setpriv");
            if let Some(run_as) = &self.run_as {
                command.args([
                    format!("--reuid={}", run_as.user),
                    format!("--regid={}", run_as.user),
                    "--init-groups".to_string(),
                ]);
            }
            if server {
                // SIGINT is PostgreSQL's "fast shutdown": clients are disconnected and
                // the data directory is left clean.
                command.arg("--pdeathsig=INT");
            }
            command.arg("--").arg(binary);
            command
        } else {
            Command::new(binary)
        };
        // The caller's working directory may be one the server's user cannot enter.
        command.current_dir("/");
        command
    }

    fn run_tool(&self, program: &str, args: &[String]) -> Result<Output, Error> {
        let output = self
            .command(program, false)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(Error::io(format!("running {program}")))?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(Error::Command {
                command: format!("{program} {}", args.join(" ")),
                status: output.status.to_string(),
                output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }
}

/// A started server. Dropping it stops the server (fast shutdown).
#[derive(Debug)]
pub struct RunningCluster {
    cluster: Cluster,
    server: Server,
    port: u16,
    stopped: bool,
}

/// The `postgres` process and the thread that started it and waits for it.
///
/// The parent-death signal is tied to the *thread* that spawned the process, so that
/// thread must live exactly as long as the server: a short-lived thread (a pool
/// worker, say) would take the server down with it when it exits.
#[derive(Debug)]
struct Server {
    pid: u32,
    exited: mpsc::Receiver<std::io::Result<ExitStatus>>,
    status: Option<ExitStatus>,
    supervisor: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn spawn(mut command: Command) -> Result<Self, Error> {
        let (spawned_tx, spawned_rx) = mpsc::channel();
        let (exited_tx, exited) = mpsc::channel();
        let supervisor = std::thread::Builder::new()
            .name("postgres-supervisor".into())
            .spawn(move || match command.spawn() {
                Err(error) => drop(spawned_tx.send(Err(error))),
                Ok(mut child) => {
                    let _ = spawned_tx.send(Ok(child.id()));
                    let _ = exited_tx.send(child.wait());
                }
            })
            .map_err(Error::io("starting the PostgreSQL supervisor thread"))?;
        let pid = spawned_rx
            .recv()
            .map_err(|_| Error::io("starting postgres")(std::io::Error::other("supervisor died")))?
            .map_err(Error::io("starting postgres"))?;
        Ok(Self {
            pid,
            exited,
            status: None,
            supervisor: Some(supervisor),
        })
    }

    /// The exit status, if the server has exited.
    fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = match self.exited.try_recv() {
                Ok(Ok(status)) => Some(status),
                Ok(Err(_)) | Err(mpsc::TryRecvError::Disconnected) => Some(ExitStatus::default()),
                Err(mpsc::TryRecvError::Empty) => None,
            };
        }
        self.status
    }

    /// Blocks until the server exits.
    fn wait(&mut self) -> std::io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self
            .exited
            .recv()
            .map_err(|_| std::io::Error::other("the PostgreSQL supervisor thread died"))??;
        self.status = Some(status);
        if let Some(thread) = self.supervisor.take() {
            let _ = thread.join();
        }
        Ok(status)
    }
}

impl RunningCluster {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        self.cluster.data_dir()
    }

    /// A connection URL for `user` on `database`, with the superuser's password when
    /// `user` is the superuser and the cluster has one.
    pub fn url(&self, user: &str, database: &str) -> String {
        match (
            &self.cluster.options.superuser_password,
            user == self.cluster.options.superuser,
        ) {
            (Some(password), true) => {
                format!(
                    "postgres://{user}:{password}@127.0.0.1:{}/{database}",
                    self.port
                )
            }
            _ => format!("postgres://{user}@127.0.0.1:{}/{database}", self.port),
        }
    }

    /// Blocks until the server exits by itself (used by a process that only keeps a
    /// server alive, such as the shared test cluster).
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.server.wait();
        self.stopped = true;
        status
    }

    /// Fast shutdown: disconnects clients, writes a checkpoint, waits for the exit.
    pub fn stop(mut self) -> Result<(), Error> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), Error> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        if self.server.exit_status().is_some() {
            // Already gone (killed, or stopped by someone else): nothing to stop.
            return Ok(());
        }
        let result = self
            .cluster
            .run_tool("pg_ctl", &self.cluster.stop_args("fast"));
        let _ = self.server.wait();
        result.map(drop)
    }
}

impl Drop for RunningCluster {
    fn drop(&mut self) {
        if let Err(error) = self.stop_inner() {
            tracing::warn!(%error, "stopping PostgreSQL");
        }
    }
}

/// `$JOBDECK_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin` that is at
/// least [`MIN_VERSION`], else the directory of a `postgres` found on `PATH`. The
/// benchmark runs that server's `pgbench` from here.
pub fn find_bin_dir() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os("JOBDECK_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<u32> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|version| *version >= MIN_VERSION)
        .filter(|version| root.join(format!("{version}/bin/postgres")).is_file())
        .collect();
    versions.sort_unstable();
    if let Some(version) = versions.last() {
        return Ok(root.join(format!("{version}/bin")));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("postgres").is_file() && dir.join("initdb").is_file())
        .ok_or_else(|| Error::BinariesNotFound {
            version: MIN_VERSION,
            looked_in: "$JOBDECK_PG_BIN, /usr/lib/postgresql/*/bin, $PATH".into(),
        })
}

fn postgres_user() -> Result<RunAs, Error> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(Error::io("reading /etc/passwd"))?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() > 3 && fields[0] == "postgres")
        .and_then(|fields| {
            Some(RunAs {
                user: fields[0].to_string(),
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
            })
        })
        .ok_or(Error::NoUnprivilegedUser)
}

fn free_port() -> Result<u16, Error> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(Error::io("finding a free loopback port"))?;
    Ok(listener
        .local_addr()
        .map_err(Error::io("finding a free loopback port"))?
        .port())
}

/// The status word PostgreSQL writes on line 8 of postmaster.pid ("starting",
/// "ready", "stopping"), if the file belongs to `pid`.
fn postmaster_status(data_dir: &Path, pid: u32) -> Option<String> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    (lines.first()?.trim() == pid.to_string())
        .then(|| lines.get(7).map(|s| s.trim().to_string()))?
}

fn read_tail(path: &Path, from: u64) -> String {
    let text = fs::read(path).unwrap_or_default();
    let start = usize::try_from(from).unwrap_or(0).min(text.len());
    let text = String::from_utf8_lossy(&text[start..]);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
