//! The `command` executor: runs a program directly (an argv, never a shell) as the
//! signed-in user's job.
//!
//! The job's input JSON goes to the program's standard input. Its environment carries
//! the project (`SUPABASE_URL`, `SUPABASE_ANON_KEY`), an access token valid at start
//! (`SUPABASE_ACCESS_TOKEN`), `JOBDECK_TOKEN_FILE` (a file only the user can read,
//! rewritten with each refreshed token while the program runs), and `JOBDECK_JOB_ID`,
//! `JOBDECK_ATTEMPT`, `JOBDECK_KIND`; never the refresh token, and none of the
//! worker's own `SUPABASE_*` or `JOBDECK_*` variables.
//!
//! Standard output lines that are JSON objects with `progress`, `log`, `result` or
//! `error` are messages; every other line (and all of standard error) goes to the
//! attempt's log. The program runs in a process group of its own: a stop (cancel,
//! timeout, shutdown) sends the group SIGTERM, then SIGKILL after [`KILL_GRACE`], and
//! whatever the program left running when it exits is ended with it. It also gets a
//! parent-death signal, so it never outlives its worker, even one killed by SIGKILL.

use std::{
    collections::{BTreeMap, VecDeque},
    io,
    os::unix::{fs::OpenOptionsExt as _, process::ExitStatusExt as _},
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::Arc,
    time::Duration,
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use serde_json::{Map, Value, json};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _},
    time::Instant,
};

use super::Execute;
use crate::{
    LogLevel, LogStream, Secret,
    worker::{JobContext, JobError},
};

/// How long a stopped program has between SIGTERM and SIGKILL.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(5);
/// How long output is still read after the program exited (a process it started
/// outside its group may hold the pipes open).
const DRAIN: Duration = Duration::from_secs(2);
/// How long `SUPABASE_ACCESS_TOKEN` is valid for at least, at the program's start
/// (`JOBDECK_TOKEN_FILE` always holds a valid one).
const TOKEN_AT_START: Duration = Duration::from_secs(300);
/// Progress is reported at most this often (a program may print it per item).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// A line longer than this is cut (the rest, up to the next newline, is skipped), so a
/// program printing without newlines cannot grow the worker's memory.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Standard error lines a failure's message may quote.
const STDERR_TAIL: usize = 5;
/// Log lines a failure's details keep.
const FAILURE_LINES: usize = 20;

#[derive(Debug)]
pub(crate) struct Command {
    program: PathBuf,
    args: Vec<String>,
    cwd: PathBuf,
    env: BTreeMap<String, String>,
}

impl Command {
    /// A command from the kinds file in `folder`: a relative program path (one with a
    /// `/`) and `cwd` resolve against it; a bare name is looked up on `PATH`.
    pub(crate) fn new(
        argv: Vec<String>,
        cwd: Option<&str>,
        env: BTreeMap<String, String>,
        folder: &Path,
    ) -> Result<Self, String> {
        let mut argv = argv.into_iter();
        let program = argv
            .next()
            .filter(|p| !p.is_empty())
            .ok_or("command needs at least the program to run")?;
        let program = if program.contains('/') {
            folder.join(program)
        } else {
            PathBuf::from(program)
        };
        for key in env.keys() {
            if key.is_empty() || key.contains(['=', '\0']) {
                return Err(format!("\"{key}\" is not an environment variable name"));
            }
            if reserved(key) {
                return Err(format!(
                    "{key} is set by Jobdeck (SUPABASE_* and JOBDECK_* are reserved)"
                ));
            }
        }
        Ok(Self {
            program,
            args: argv.collect(),
            cwd: cwd.map_or_else(|| folder.to_path_buf(), |cwd| folder.join(cwd)),
            env,
        })
    }

    fn spawn(
        &self,
        ctx: &JobContext,
        token: &Secret,
        token_file: &Path,
    ) -> io::Result<tokio::process::Child> {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(reserved) {
                command.env_remove(key);
            }
        }
        let project = ctx.jobs.project();
        command
            .envs(&self.env)
            .env("SUPABASE_URL", project.url())
            .env("SUPABASE_ANON_KEY", project.key().value())
            .env("SUPABASE_ACCESS_TOKEN", token.expose())
            .env("JOBDECK_TOKEN_FILE", token_file)
            .env("JOBDECK_JOB_ID", ctx.job.id.to_string())
            .env("JOBDECK_ATTEMPT", ctx.job.attempt.to_string())
            .env("JOBDECK_KIND", &ctx.job.kind);
        die_with_parent(&mut command);
        command.spawn()
    }
}

fn reserved(key: &str) -> bool {
    key.starts_with("SUPABASE_") || key.starts_with("JOBDECK_")
}

/// The program gets SIGKILL when the worker dies, however it dies.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec. It makes two system
    // calls, both async-signal-safe, and allocates nothing. (Linux sends the signal
    // when the thread that forked exits; that is a tokio runtime thread, which lives
    // as long as the worker.)
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The worker died before the signal was armed: do not run orphaned.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(io::Error::from(nix::errno::Errno::ESRCH));
            }
            Ok(())
        });
    }
}

impl Execute for Command {
    async fn run(self: Arc<Self>, input: Value, ctx: JobContext) -> Result<Value, JobError> {
        let session = Arc::clone(ctx.jobs.session());
        let token = session.access_token_valid_for(TOKEN_AT_START).await?;
        let mut token_file = TokenFile::new(&token).map_err(|e| {
            JobError::retry(format!("cannot write the token file: {e}")).with_code("token_file")
        })?;
        let mut child = self.spawn(&ctx, &token, token_file.path()).map_err(|e| {
            JobError::permanent(format!("cannot start {}: {e}", self.program.display()))
                .with_code("spawn_failed")
        })?;
        let group = Group(child.id().map(|pid| Pid::from_raw(pid as i32)));
        let mut stdout = Lines::new(child.stdout.take());
        let mut stderr = Lines::new(child.stderr.take());
        let mut stdin = child.stdin.take();
        let mut input = serde_json::to_vec(&input).unwrap_or_default();
        input.push(b'\n');
        let write_input = async move {
            if let Some(stdin) = &mut stdin {
                // A program that does not read its input closes the pipe: not an error.
                let _ = stdin.write_all(&input).await;
            }
        };
        tokio::pin!(write_input);
        let mut input_written = false;
        let mut messages = Messages::default();
        let mut stderr_tail = VecDeque::new();
        let mut session_state = session.watch();
        let mut exit: Option<ExitStatus> = None;
        let mut drain_until = None;
        let mut kill_at = None;
        let mut killed = false;
        let far = Instant::now() + Duration::from_secs(365 * 86_400);
        loop {
            if exit.is_some() && stdout.done && stderr.done {
                break;
            }
            let refresh_at = session
                .refresh_due()
                .map_or(far, |due| Instant::now() + due.max(Duration::from_secs(1)));
            tokio::select! {
                // Standard output first when both pipes have lines: what a program
                // prints to both in turn then mostly keeps its order.
                biased;
                line = stdout.next(), if !stdout.done => match line {
                    Some(line) => messages.read(&ctx, &line),
                    None => stdout.done = true,
                },
                line = stderr.next(), if !stderr.done => match line {
                    Some(line) => {
                        ctx.log_line(LogStream::Stderr, LogLevel::Info, &line);
                        if stderr_tail.len() == STDERR_TAIL {
                            stderr_tail.pop_front();
                        }
                        stderr_tail.push_back(line);
                    }
                    None => stderr.done = true,
                },
                () = &mut write_input, if !input_written => input_written = true,
                status = child.wait(), if exit.is_none() => {
                    exit = Some(status.map_err(|e| JobError::retry(format!("waiting for the program: {e}")))?);
                    // What the program left running in its group ends with it.
                    group.signal(Signal::SIGKILL);
                    drain_until = Some(Instant::now() + DRAIN);
                }
                () = tokio::time::sleep_until(drain_until.unwrap_or(far)), if drain_until.is_some() => {
                    stdout.done = true;
                    stderr.done = true;
                }
                () = ctx.cancelled(), if kill_at.is_none() && exit.is_none() => {
                    group.signal(Signal::SIGTERM);
                    kill_at = Some(Instant::now() + KILL_GRACE);
                }
                () = tokio::time::sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() && !killed && exit.is_none() => {
                    group.signal(Signal::SIGKILL);
                    killed = true;
                }
                () = tokio::time::sleep_until(messages.progress_at.unwrap_or(far)), if messages.progress_at.is_some() => {
                    messages.report_progress(&ctx).await;
                }
                // A refreshed token goes into the file; one due is refreshed here, so a
                // long job always has a valid token even when nothing else asks.
                _ = session_state.changed() => token_file.update(&session).await,
                () = tokio::time::sleep_until(refresh_at) => token_file.update(&session).await,
            }
        }
        drop(group);
        messages.report_progress(&ctx).await;
        let (Some(status), None) = (exit, kill_at) else {
            // Stopped: the executor says why (cancelled, timed out, handed back).
            return Err(JobError::retry("stopped").with_code("cancelled"));
        };
        if status.success() {
            return Ok(messages.result.unwrap_or(Value::Null));
        }
        Err(failure(status, messages.error, &stderr_tail, &ctx))
    }

    fn stop_grace(&self) -> Duration {
        KILL_GRACE + DRAIN + Duration::from_secs(1)
    }
}

/// The failed attempt: the program's own error message when it gave one, else its
/// last standard error lines; its exit code or signal; the log's last lines.
fn failure(
    status: ExitStatus,
    error: Option<Value>,
    stderr: &VecDeque<String>,
    ctx: &JobContext,
) -> JobError {
    let (code, how) = match (status.code(), status.signal()) {
        (Some(code), _) => (format!("exit_{code}"), format!("exited with status {code}")),
        (None, Some(signal)) => {
            let name = Signal::try_from(signal)
                .map_or_else(|_| signal.to_string(), |s| s.as_str().to_string());
            (format!("signal_{name}"), format!("was killed by {name}"))
        }
        (None, None) => ("exit_unknown".to_string(), "ended".to_string()),
    };
    let error = error.unwrap_or(Value::Null);
    let given = |key: &str| error.get(key).and_then(Value::as_str).map(str::to_string);
    let message = given("message").unwrap_or_else(|| {
        if stderr.is_empty() {
            format!("the program {how}")
        } else {
            stderr.iter().cloned().collect::<Vec<_>>().join("\n")
        }
    });
    let mut details = json!({
        "exit_code": status.code(),
        "signal": status.signal(),
        "last_lines": ctx.log_tail(FAILURE_LINES),
    });
    if let Some(own) = error.get("details") {
        details["details"] = own.clone();
    }
    let permanent = error.get("permanent").and_then(Value::as_bool) == Some(true);
    let mut failed = if permanent {
        JobError::permanent(message)
    } else {
        JobError::retry(message)
    };
    failed = failed.with_code(given("code").unwrap_or(code));
    failed.with_details(details)
}

/// The program's messages on standard output.
#[derive(Debug, Default)]
struct Messages {
    result: Option<Value>,
    error: Option<Value>,
    /// Progress not yet reported, and when it will be.
    progress: Option<(f32, Option<String>)>,
    progress_at: Option<Instant>,
    last_report: Option<Instant>,
}

impl Messages {
    /// One line of standard output: a message, or a line for the log.
    fn read(&mut self, ctx: &JobContext, line: &str) {
        let message = serde_json::from_str::<Map<String, Value>>(line.trim())
            .ok()
            .filter(|m| {
                ["progress", "log", "result", "error"]
                    .iter()
                    .any(|k| m.contains_key(*k))
            });
        let Some(message) = message else {
            ctx.log_line(LogStream::Stdout, LogLevel::Info, line);
            return;
        };
        if let Some(fraction) = message.get("progress").and_then(Value::as_f64) {
            let text = message
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string);
            self.progress = Some((fraction as f32, text));
            let due = self
                .last_report
                .map_or_else(Instant::now, |last| last + PROGRESS_EVERY);
            self.progress_at.get_or_insert(due);
        }
        if let Some(log) = message.get("log") {
            let level = message
                .get("level")
                .and_then(Value::as_str)
                .and_then(LogLevel::parse)
                .unwrap_or(LogLevel::Info);
            let text = log.as_str().map_or_else(|| log.to_string(), str::to_string);
            ctx.log_line(LogStream::Log, level, &text);
        }
        if let Some(result) = message.get("result") {
            self.result = Some(result.clone());
        }
        if let Some(error) = message.get("error") {
            self.error = Some(match error {
                Value::String(message) => json!({ "message": message }),
                other => other.clone(),
            });
        }
    }

    async fn report_progress(&mut self, ctx: &JobContext) {
        self.progress_at = None;
        if let Some((fraction, text)) = self.progress.take() {
            self.last_report = Some(Instant::now());
            ctx.progress(fraction, text.as_deref()).await;
        }
    }
}

/// The program's process group; whatever is left of it is killed when this drops (an
/// attempt dropped mid-run included).
struct Group(Option<Pid>);

impl Group {
    fn signal(&self, signal: Signal) {
        if let Some(pid) = self.0 {
            // ESRCH: the group is gone already.
            let _ = killpg(pid, signal);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// Lines of a pipe, each at most [`MAX_LINE_BYTES`].
struct Lines<R> {
    reader: Option<R>,
    buffer: Vec<u8>,
    /// Skipping the rest of a line that was cut.
    skipping: bool,
    done: bool,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    fn new(reader: Option<R>) -> Self {
        Self {
            done: reader.is_none(),
            reader,
            buffer: Vec::new(),
            skipping: false,
        }
    }

    /// The next line, `None` at the end. Cancel-safe: what was read stays buffered.
    async fn next(&mut self) -> Option<String> {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if std::mem::take(&mut self.skipping) {
                    continue;
                }
                return Some(text(&line[..line.len() - 1]));
            }
            if self.buffer.len() >= MAX_LINE_BYTES {
                let line: Vec<u8> = std::mem::take(&mut self.buffer);
                let was_skipping = std::mem::replace(&mut self.skipping, true);
                if !was_skipping {
                    return Some(text(&line));
                }
                continue;
            }
            let read = match &mut self.reader {
                Some(reader) => reader.read(&mut chunk).await.unwrap_or(0),
                None => 0,
            };
            if read == 0 {
                self.reader = None;
                if self.buffer.is_empty() || self.skipping {
                    self.buffer.clear();
                    return None;
                }
                return Some(text(&std::mem::take(&mut self.buffer)));
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches('\r')
        .to_string()
}

/// The file `JOBDECK_TOKEN_FILE` names: in a folder only the user can enter, replaced
/// whole (write, then rename) so a reader never sees half a token; removed with the
/// attempt.
struct TokenFile {
    folder: tempfile::TempDir,
    path: PathBuf,
    current: Secret,
}

impl TokenFile {
    fn new(token: &Secret) -> io::Result<Self> {
        // The runtime dir is the user's own tmpfs; the temp dir otherwise.
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|dir| dir.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let folder = tempfile::Builder::new()
            .prefix("jobdeck-job-")
            .tempdir_in(base)?;
        let path = folder.path().join("access-token");
        let file = Self {
            folder,
            path,
            current: token.clone(),
        };
        file.write(token)?;
        Ok(file)
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, token: &Secret) -> io::Result<()> {
        let next = self.folder.path().join("access-token.next");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&next)?;
        io::Write::write_all(&mut file, token.expose().as_bytes())?;
        std::fs::rename(next, &self.path)
    }

    /// Writes the session's current token if it changed (refreshing one that is due).
    async fn update(&mut self, session: &Arc<crate::SessionOwner>) {
        let Ok(token) = session.access_token().await else {
            // Offline or signed out: the file keeps the last token.
            return;
        };
        if token != self.current {
            match self.write(&token) {
                Ok(()) => self.current = token,
                Err(error) => tracing::warn!(%error, "rewriting a job's token file"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_line_without_an_end_is_cut_and_the_rest_skipped() {
        let mut text = vec![b'x'; 1 << 20];
        text.extend_from_slice(b"\nnext\nlast");
        let mut lines = Lines::new(Some(&text[..]));
        let first = lines.next().await.expect("a line");
        assert_eq!(first.len(), MAX_LINE_BYTES);
        assert!(
            lines.buffer.capacity() <= 2 * MAX_LINE_BYTES,
            "memory stays bounded"
        );
        assert_eq!(lines.next().await.as_deref(), Some("next"));
        assert_eq!(lines.next().await.as_deref(), Some("last"));
        assert_eq!(lines.next().await, None);
    }

    #[test]
    fn the_environment_is_jobdecks_to_set() {
        let folder = Path::new("/kinds");
        let env = |key: &str| BTreeMap::from([(key.to_string(), "x".to_string())]);
        assert!(
            Command::new(
                vec!["a".into()],
                None,
                env("SUPABASE_SERVICE_ROLE_KEY"),
                folder
            )
            .is_err()
        );
        assert!(Command::new(vec!["a".into()], None, env("JOBDECK_TOKEN_FILE"), folder).is_err());
        let command = Command::new(
            vec!["./run.sh".into(), "x".into()],
            Some("work"),
            env("MODE"),
            folder,
        )
        .expect("a command");
        assert_eq!(command.program, Path::new("/kinds/run.sh"));
        assert_eq!(command.cwd, Path::new("/kinds/work"));
        assert_eq!(
            Command::new(vec!["python3".into()], None, BTreeMap::new(), folder)
                .expect("a command")
                .program,
            Path::new("python3")
        );
    }
}
