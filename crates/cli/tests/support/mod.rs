//! The `jobdeck` binary as its users run it, shared by the CLI's test files: a
//! signed-in CLI with its own session file, its workers, and `jobdeck dev` processes.

#![allow(dead_code)]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{ExitStatus, Output, Stdio},
    time::Duration,
};

use jobdeck_sandbox::testing::{TestSandbox, email};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader, Lines},
    process::{Child, ChildStdout, Command},
    time::timeout,
};

pub const JOBDECK: &str = env!("CARGO_BIN_EXE_jobdeck");
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Generous: a first start runs initdb.
pub const START_DEADLINE: Duration = Duration::from_secs(120);
pub const PASSWORD: &str = "correct horse";

/// One signed-in CLI: its own session file, pointed at a sandbox by the environment.
/// Each process that refreshes tokens needs one of its own (a session has one owner).
pub struct Cli {
    url: String,
    key: String,
    session: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cli {
    /// A new user of `sandbox`, signed in.
    pub async fn signed_in(sandbox: &TestSandbox) -> Cli {
        let address = email("cli");
        sandbox.sign_up(&address, PASSWORD).await;
        Cli::login(&sandbox.status.api_url, &sandbox.status.anon_key, &address).await
    }

    /// A CLI of `url` with a session file of its own, not signed in.
    pub fn signed_out(url: &str, key: &str) -> Cli {
        let dir = tempfile::tempdir().expect("a directory");
        Cli {
            url: url.to_string(),
            key: key.to_string(),
            session: dir.path().join("session.json"),
            _dir: dir,
        }
    }

    /// `jobdeck login` as an existing user, in a session of its own.
    pub async fn login(url: &str, key: &str, address: &str) -> Cli {
        let cli = Cli::signed_out(url, key);
        let out = cli
            .run_with_stdin(
                &["login", address, "--password-stdin"],
                &format!("{PASSWORD}\n"),
            )
            .await;
        assert!(
            out.status.success(),
            "login: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cli
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(JOBDECK);
        command
            .args(args)
            .env("SUPABASE_URL", &self.url)
            .env("SUPABASE_ANON_KEY", &self.key)
            .env("JOBDECK_SESSION_FILE", &self.session)
            .env_remove("SUPABASE_PUBLISHABLE_KEY")
            .kill_on_drop(true);
        command
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        let run = self.command(args).stdin(Stdio::null()).output();
        timeout(DEADLINE, run)
            .await
            .expect("finishes in time")
            .expect("runs")
    }

    /// Starts `jobdeck args` with every stream piped to the test.
    pub fn spawn_piped(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs")
    }

    pub async fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use tokio::io::AsyncWriteExt as _;
        let mut child = self.spawn_piped(args);
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).await.expect("writes");
        drop(stdin);
        child.wait_with_output().await.expect("finishes")
    }

    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all).await;
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    /// A `jobdeck worker`, and the lines it prints for each job event.
    pub fn worker(&self, grace: &str) -> (Child, Lines<BufReader<ChildStdout>>) {
        self.worker_with(&["worker", "--concurrency", "2", "--grace", grace])
    }

    /// `jobdeck args` (a worker), and the lines it prints.
    pub fn worker_with(&self, args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the worker starts");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        (child, lines)
    }
}

/// Waits, with a deadline, for the worker to print `event` for job `id`
/// ("started", "finished", "failed", ...).
pub async fn worker_says(lines: &mut Lines<BufReader<ChildStdout>>, event: &str, id: i64) {
    let id = id.to_string();
    timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.expect("reads the worker") {
            let mut words = line.split_whitespace();
            if words.next() == Some(event) && words.next() == Some(id.as_str()) {
                return;
            }
        }
        panic!("the worker stopped before saying {event} {id}");
    })
    .await
    .expect("the worker said it in time");
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("an exit code")
}

/// Starts `jobdeck dev` on `data_dir` with `args` (and a seeded user,
/// seed@example.com) and waits until it says it is serving.
pub async fn start_sandbox(data_dir: &Path, args: &[&str]) -> Child {
    let mut child = Command::new(JOBDECK)
        .arg("dev")
        .args(args)
        .args(["--seed-user", &format!("seed@example.com:{PASSWORD}")])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("jobdeck dev starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    timeout(START_DEADLINE, async {
        while let Some(line) = lines.next_line().await.expect("reading stdout") {
            if line.contains("Stop it with Ctrl-C") {
                return;
            }
        }
        panic!("jobdeck dev exited before serving");
    })
    .await
    .expect("jobdeck dev serves within the deadline");
    // Keep draining stdout so the sandbox never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// `jobdeck dev status -o env`, as a map.
pub async fn sandbox_status(data_dir: &Path) -> Result<HashMap<String, String>, String> {
    let output = Command::new(JOBDECK)
        .args(["dev", "status", "-o", "env", "--data-dir"])
        .arg(data_dir)
        .output()
        .await
        .expect("jobdeck dev status runs");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect())
}

/// Sends `signal` to a child and waits for it to exit.
pub async fn signal(child: &mut Child, signal: &str) -> ExitStatus {
    let pid = child.id().expect("a running child").to_string();
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(sent.success());
    timeout(DEADLINE, child.wait())
        .await
        .expect("exits within the deadline")
        .expect("an exit status")
}
