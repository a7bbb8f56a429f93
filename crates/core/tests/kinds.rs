//! The user's own kinds from a kinds file, run by the worker against a real sandbox:
//! programs (their messages, logs, exit codes, timeouts, cancellation, token file and
//! input handled as data), database functions and HTTP endpoints. Every wait is on the
//! worker's events or the database, with a deadline.

mod support;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use jobdeck_core::{
    Job, JobStatus, JobsClient, LogLevel, LogStream,
    kinds::{KindsFile, builtin},
    worker::{LOG_MAX_LINE_CHARS, LOG_MAX_LINES, Registry, WorkerConfig, WorkerEvent},
};
use jobdeck_postgres::testing::TestDatabase;
use jobdeck_sandbox::testing::{TestSandbox, eventually, process_alive, write_program};
use serde_json::{Value, json};
use support::{DEADLINE, new_job, settled, signed_in, start, started, until};

fn config() -> WorkerConfig {
    WorkerConfig {
        lease: Duration::from_secs(5),
        poll_max: Duration::from_millis(500),
        ..WorkerConfig::new("kinds-test")
    }
}

/// A folder holding `kinds.toml` and the programs it names.
struct Folder {
    dir: tempfile::TempDir,
}

impl Folder {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a folder"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an executable script.
    fn program(&self, name: &str, text: &str) -> &Self {
        write_program(&self.path().join(name), text);
        self
    }

    /// The registry with the built-in kinds and those of `kinds` (TOML), which must
    /// have no problem.
    fn registry(&self, kinds: &str) -> Registry {
        let path = self.path().join("kinds.toml");
        std::fs::write(&path, kinds).expect("writes the kinds file");
        let file = KindsFile::load(&path, &builtin(), true);
        assert!(file.problems.is_empty(), "{:?}", file.problems);
        file.with_builtin(builtin())
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
}

/// Runs one job of `kind` to its end (every attempt), answering it.
async fn run_to_end(jobs: &JobsClient, registry: Registry, kind: &str, input: Value) -> Job {
    run_to_end_seeing(jobs, registry, kind, input).await.0
}

/// Runs one job of `kind` to its end, answering it and the worker's events for it.
async fn run_to_end_seeing(
    jobs: &JobsClient,
    registry: Registry,
    kind: &str,
    input: Value,
) -> (Job, Vec<WorkerEvent>) {
    let worker = start(jobs, registry, config());
    let mut events = worker.events();
    let job = worker
        .enqueue(&new_job(kind, input))
        .await
        .expect("enqueued");
    let mut seen = Vec::new();
    let ended = until(&mut events, |event| {
        seen.push(event.clone());
        match event {
            WorkerEvent::JobUpdated { job: j } if j.id == job.id && j.status.is_final() => {
                Some(j.clone())
            }
            _ => None,
        }
    })
    .await;
    worker.shutdown(Duration::from_secs(5)).await;
    (ended, seen)
}

#[tokio::test]
async fn a_command_reports_progress_logs_and_a_result_and_its_log_is_kept() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let folder = Folder::new();
    folder.program(
        "report.sh",
        r#"#!/bin/sh
read -r input
echo "got $input"
echo '{"progress": 0.5, "message": "half way"}'
echo '{"log": "careful now", "level": "warn"}'
echo "a note on stderr" >&2
env > "$ENV_DUMP"
echo "{\"result\": {\"job\": $JOBDECK_JOB_ID, \"attempt\": $JOBDECK_ATTEMPT, \"kind\": \"$JOBDECK_KIND\"}}"
"#,
    );
    let registry = folder.registry(&format!(
        r#"
[[kind]]
name = "report"
description = "Writes a report"
command = ["./report.sh"]
env = {{ ENV_DUMP = "{}" }}
input_schema = {{ type = "object", properties = {{ customer = {{ type = "integer" }} }}, required = ["customer"] }}
"#,
        folder.file("env").display()
    ));
    let (done, events) =
        run_to_end_seeing(&jobs, registry, "report", json!({ "customer": 42 })).await;
    assert_eq!(done.status, JobStatus::Finished, "{:?}", done.error);
    assert_eq!(
        done.result,
        Some(json!({ "job": done.id, "attempt": 1, "kind": "report" }))
    );
    assert!(
        events.iter().any(|e| matches!(e,
            WorkerEvent::JobProgress { id, progress, message }
                if *id == done.id && *progress == 0.5 && message.as_deref() == Some("half way"))),
        "the progress message was reported: {events:?}"
    );

    let log = jobs.logs(done.id, None, None).await.expect("the log");
    let find = |text: &str| {
        log.iter()
            .find(|l| l.line == text)
            .unwrap_or_else(|| panic!("{text:?} in {log:?}"))
    };
    assert_eq!(find(r#"got {"customer":42}"#).stream, LogStream::Stdout);
    let careful = find("careful now");
    assert_eq!(
        (careful.stream, careful.level),
        (LogStream::Log, LogLevel::Warn)
    );
    assert_eq!(find("a note on stderr").stream, LogStream::Stderr);
    assert!(
        !log.iter()
            .any(|l| l.line.contains("progress") || l.line.contains("result")),
        "messages are not log lines: {log:?}"
    );
    assert!(log.iter().all(|l| l.attempt == 1));
    let seqs: Vec<i32> = log.iter().map(|l| l.seq).collect();
    assert_eq!(
        seqs,
        (0..log.len() as i32).collect::<Vec<_>>(),
        "in order, none lost"
    );

    let env = std::fs::read_to_string(folder.file("env")).expect("the program's environment");
    let vars: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    for var in [
        "SUPABASE_URL",
        "SUPABASE_ANON_KEY",
        "SUPABASE_ACCESS_TOKEN",
        "JOBDECK_TOKEN_FILE",
        "JOBDECK_JOB_ID",
    ] {
        assert!(vars.contains(&var), "{var} in the environment");
    }
    assert!(
        !env.to_ascii_lowercase().contains("refresh"),
        "no refresh token in the environment"
    );
    assert!(env.contains(&format!("SUPABASE_URL={}", sandbox.status.api_url)));
}

#[tokio::test]
async fn a_failing_command_is_retried_then_fails_with_its_exit_code_and_last_lines() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let folder = Folder::new();
    folder.program(
        "fail.sh",
        "#!/bin/sh\necho \"attempt $JOBDECK_ATTEMPT\"\necho 'step one went fine' >&2\necho 'disk full' >&2\nexit 3\n",
    );
    let registry = folder.registry(
        r#"
[[kind]]
name = "fails"
command = ["./fail.sh"]
max_attempts = 2
"#,
    );
    let failed = run_to_end(&jobs, registry, "fails", json!({})).await;
    assert_eq!((failed.status, failed.attempt), (JobStatus::Failed, 2));
    assert_eq!(failed.history.len(), 2, "retried once, per max_attempts");
    let error = failed.error.expect("the failure");
    assert_eq!(error.code.as_deref(), Some("exit_3"));
    assert!(error.message.contains("disk full"), "{}", error.message);
    let details = error.details.expect("details");
    assert_eq!(details["exit_code"], json!(3));
    let last: Vec<&str> = details["last_lines"]
        .as_array()
        .expect("last lines")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(last, ["attempt 2", "step one went fine", "disk full"]);
    let second = jobs
        .logs(failed.id, Some(2), None)
        .await
        .expect("attempt 2's log");
    assert_eq!(second.first().map(|l| l.line.as_str()), Some("attempt 2"));
    let all = jobs
        .logs(failed.id, None, None)
        .await
        .expect("every attempt's log");
    assert_eq!(all.len(), 6, "three lines per attempt: {all:?}");
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_its_timeout_with_its_whole_process_group() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let folder = Folder::new();
    folder.program(
        "hang.sh",
        "#!/bin/sh\nsleep 600 &\necho $! > \"$PIDS/grandchild\"\necho $$ > \"$PIDS/program\"\necho started\nwait\n",
    );
    let registry = folder.registry(&format!(
        r#"
[[kind]]
name = "hangs"
command = ["./hang.sh"]
env = {{ PIDS = "{}" }}
timeout = "2s"
max_attempts = 1
"#,
        folder.path().display()
    ));
    let failed = run_to_end(&jobs, registry, "hangs", json!({})).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(
        failed.error.expect("the failure").code.as_deref(),
        Some("timeout")
    );
    for who in ["program", "grandchild"] {
        let pid = std::fs::read_to_string(folder.file(who)).expect("the pid");
        eventually(DEADLINE, &format!("the {who} ended"), || {
            !process_alive(&pid)
        })
        .await;
    }
}

#[tokio::test]
async fn a_command_cancelled_mid_run_stops_and_is_cancelled() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let folder = Folder::new();
    folder.program(
        "long.sh",
        "#!/bin/sh\necho $$ > \"$PIDS/program\"\necho working\nexec sleep 600\n",
    );
    let registry = folder.registry(&format!(
        "[[kind]]\nname = \"long\"\ncommand = [\"./long.sh\"]\nenv = {{ PIDS = \"{}\" }}\n",
        folder.path().display()
    ));
    let worker = start(&jobs, registry, config());
    let mut events = worker.events();
    let job = worker
        .enqueue(&new_job("long", json!({})))
        .await
        .expect("enqueued");
    started(&mut events, job.id).await;
    // Its first line stored: the program runs.
    until(&mut events, |event| match event {
        WorkerEvent::JobLog { id, lines } if *id == job.id => {
            lines.iter().any(|l| l.line == "working").then_some(())
        }
        _ => None,
    })
    .await;
    jobs.cancel(job.id).await.expect("asks to cancel");
    let ended = settled(&mut events, job.id).await;
    assert_eq!(ended.status, JobStatus::Cancelled);
    let pid = std::fs::read_to_string(folder.file("program")).expect("the pid");
    eventually(DEADLINE, "the program ended", || !process_alive(&pid)).await;
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_job_longer_than_three_token_lifetimes_calls_the_api_with_the_token_file_throughout() {
    let sandbox = TestSandbox::start_with(|options| options.jwt_expiry = 4).await;
    let (jobs, _) = signed_in(&sandbox).await;
    let folder = Folder::new();
    // Every half second for 14 s: read the token file, call the REST API as the user.
    folder.program(
        "long-api.sh",
        r#"#!/bin/sh
i=0
while [ $i -lt 28 ]; do
  token=$(cat "$JOBDECK_TOKEN_FILE")
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "apikey: $SUPABASE_ANON_KEY" \
    -H "Authorization: Bearer $token" "$SUPABASE_URL/rest/v1/jobs?select=id&id=eq.$JOBDECK_JOB_ID")
  if [ "$status" != 200 ]; then
    echo "{\"error\": {\"message\": \"the REST API answered $status\"}}"
    exit 1
  fi
  echo "$token" | md5sum >> "$TOKENS"
  i=$((i + 1))
  sleep 0.5
done
echo "{\"result\": {\"tokens\": $(sort -u "$TOKENS" | wc -l)}}"
"#,
    );
    let registry = folder.registry(&format!(
        "[[kind]]\nname = \"long-api\"\ncommand = [\"./long-api.sh\"]\nmax_attempts = 1\nenv = {{ TOKENS = \"{}\" }}\n",
        folder.file("tokens").display()
    ));
    let done = run_to_end(&jobs, registry, "long-api", json!({})).await;
    assert_eq!(done.status, JobStatus::Finished, "{:?}", done.error);
    let tokens = done.result.expect("a result")["tokens"]
        .as_u64()
        .expect("a count");
    assert!(
        tokens >= 3,
        "the file held {tokens} tokens over 14 s of 4 s tokens"
    );
}

#[tokio::test]
async fn input_and_arguments_with_shell_metacharacters_reach_the_program_verbatim() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let folder = Folder::new();
    folder.program(
        "verbatim.sh",
        "#!/bin/sh\ncat > \"$OUT/input\"\nprintf '%s\\n' \"$@\" > \"$OUT/args\"\n",
    );
    let pwned = folder.file("pwned");
    let registry = folder.registry(&format!(
        r#"
[[kind]]
name = "verbatim"
command = ["./verbatim.sh", "$HOME", "a;b", "*", "$(touch {pwned})"]
env = {{ OUT = "{}" }}
"#,
        folder.path().display(),
        pwned = pwned.display()
    ));
    let nasty = format!(
        "$(touch {0}); `touch {0}` | && ; 'q' \"dq\" * \\ $HOME",
        pwned.display()
    );
    let input = json!({ "text": nasty, "also": ["$PATH", ">/dev/null"] });
    let done = run_to_end(&jobs, registry, "verbatim", input.clone()).await;
    assert_eq!(done.status, JobStatus::Finished, "{:?}", done.error);
    let received: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.file("input")).expect("input"))
            .expect("JSON");
    assert_eq!(received, input);
    let args = std::fs::read_to_string(folder.file("args")).expect("args");
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "$HOME",
            "a;b",
            "*",
            &format!("$(touch {})", pwned.display())
        ]
    );
    assert!(!pwned.exists(), "nothing was interpreted");
}

#[tokio::test]
async fn a_program_printing_megabytes_is_capped() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let folder = Folder::new();
    // A 100 kB line without a newline, then 30 MB of lines.
    folder.program(
        "loud.sh",
        "#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x\necho\nyes 'a line of output, again and again' | head -c 30000000\necho\necho '{\"result\": \"done\"}'\n",
    );
    let registry = folder.registry("[[kind]]\nname = \"loud\"\ncommand = [\"./loud.sh\"]\n");
    let done = run_to_end(&jobs, registry, "loud", json!({})).await;
    assert_eq!(done.status, JobStatus::Finished, "{:?}", done.error);
    assert_eq!(
        done.result,
        Some(json!("done")),
        "messages still read past the cap"
    );
    let log = jobs.logs(done.id, None, None).await.expect("the log");
    assert_eq!(
        log.len(),
        LOG_MAX_LINES as usize + 1,
        "the cap and its marker"
    );
    assert_eq!(
        log[0].line.chars().count(),
        LOG_MAX_LINE_CHARS,
        "a long line is cut"
    );
    let marker = log.last().expect("the marker");
    assert!(marker.line.contains("lines dropped"), "{}", marker.line);
    assert_eq!(marker.level, LogLevel::Warn);
}

const FUNCTIONS: &str = r#"
create function public.add_numbers(a integer, b integer) returns jsonb
language plpgsql as $$
begin
  return jsonb_build_object('sum', a + b, 'user', auth.uid());
end
$$;
create function public.always_raises(reason text) returns void
language plpgsql as $$
begin
  raise exception 'it went wrong: %', reason using detail = 'some detail', hint = 'try less';
end
$$;
"#;

#[tokio::test]
async fn rpc_kinds_call_database_functions_as_the_user() {
    let database = TestDatabase::new().await;
    database
        .admin()
        .await
        .batch_execute(FUNCTIONS)
        .await
        .expect("creates the functions");
    let sandbox = TestSandbox::start_on(database, |_| {}).await;
    let (jobs, _) = signed_in(&sandbox).await;
    let user = jobs.session().user().expect("signed in").id;
    let folder = Folder::new();
    let kinds = r#"
[[kind]]
name = "add"
rpc = "add_numbers"
input_schema = { type = "object", properties = { a = { type = "integer" }, b = { type = "integer" } } }

[[kind]]
name = "raises"
rpc = "always_raises"
max_attempts = 2

[[kind]]
name = "missing"
rpc = "no_such_function"
max_attempts = 3
"#;
    let registry = folder.registry(kinds);
    let done = run_to_end(&jobs, registry.clone(), "add", json!({ "a": 2, "b": 3 })).await;
    assert_eq!(done.status, JobStatus::Finished, "{:?}", done.error);
    assert_eq!(done.result, Some(json!({ "sum": 5, "user": user })));

    let failed = run_to_end(&jobs, registry.clone(), "raises", json!({ "reason": "x" })).await;
    assert_eq!(
        (failed.status, failed.attempt),
        (JobStatus::Failed, 2),
        "retried"
    );
    let error = failed.error.expect("the failure");
    assert_eq!(error.code.as_deref(), Some("P0001"));
    assert_eq!(error.message, "it went wrong: x");
    let details = error.details.expect("details");
    assert_eq!(
        (details["details"].as_str(), details["hint"].as_str()),
        (Some("some detail"), Some("try less"))
    );

    let missing = run_to_end(&jobs, registry, "missing", json!({})).await;
    assert_eq!(
        (missing.status, missing.attempt),
        (JobStatus::Failed, 1),
        "permanent"
    );
    assert_eq!(
        missing.error.expect("the failure").code.as_deref(),
        Some("PGRST202")
    );
}

/// What the test endpoint saw: each request's path and Authorization header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

async fn endpoint() -> (String, Seen, tokio::task::JoinHandle<()>) {
    use axum::{
        Json, Router,
        extract::State,
        http::{HeaderMap, StatusCode, Uri},
        routing::post,
    };
    let seen: Seen = Arc::default();
    async fn answer(
        State(seen): State<Seen>,
        uri: Uri,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let path = uri.path().to_string();
        let calls = {
            let mut seen = seen.lock().expect("seen");
            seen.push((path.clone(), auth));
            seen.iter().filter(|(p, _)| *p == path).count()
        };
        match path.as_str() {
            "/flaky" if calls == 1 => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!("try again"))),
            "/bad" => (StatusCode::BAD_REQUEST, Json(json!({ "error": "nope" }))),
            _ => (StatusCode::OK, Json(json!({ "got": body }))),
        }
    }
    let app = Router::new()
        .route("/ok", post(answer))
        .route("/flaky", post(answer))
        .route("/bad", post(answer))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serves");
    });
    (url, seen, server)
}

#[tokio::test]
async fn http_kinds_retry_what_may_pass_and_send_the_token_only_where_allowed() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let (url, seen, server) = endpoint().await;
    let folder = Folder::new();
    let registry = folder.registry(&format!(
        r#"
[[kind]]
name = "ok"
http = {{ url = "{url}/ok" }}

[[kind]]
name = "ok-with-token"
http = {{ url = "{url}/ok", method = "post" }}
send_user_token = true

[[kind]]
name = "flaky-endpoint"
http = {{ url = "{url}/flaky" }}
max_attempts = 3

[[kind]]
name = "bad"
http = {{ url = "{url}/bad" }}
max_attempts = 3
"#
    ));
    let done = run_to_end(&jobs, registry.clone(), "ok", json!({ "n": 1 })).await;
    assert_eq!(done.result, Some(json!({ "got": { "n": 1 } })));
    let done = run_to_end(&jobs, registry.clone(), "ok-with-token", json!({ "n": 2 })).await;
    assert_eq!(done.status, JobStatus::Finished);
    let flaky = run_to_end(&jobs, registry.clone(), "flaky-endpoint", json!({})).await;
    assert_eq!(
        (flaky.status, flaky.attempt),
        (JobStatus::Finished, 2),
        "a 500 is retried"
    );
    let bad = run_to_end(&jobs, registry, "bad", json!({})).await;
    assert_eq!(
        (bad.status, bad.attempt),
        (JobStatus::Failed, 1),
        "a 400 is not"
    );
    let error = bad.error.expect("the failure");
    assert_eq!(error.code.as_deref(), Some("http_400"));
    assert!(
        error.details.expect("details")["body"]
            .as_str()
            .unwrap_or("")
            .contains("nope")
    );

    let seen = seen.lock().expect("seen").clone();
    let with_token: Vec<bool> = seen.iter().map(|(_, auth)| auth.is_some()).collect();
    assert_eq!(
        with_token,
        [false, true, false, false, false],
        "only the kind that says so sends the token to another origin: {seen:?}"
    );
    assert!(
        seen[1]
            .1
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer ey"))
    );
    server.abort();
}

#[tokio::test]
async fn another_user_cannot_read_a_jobs_log_and_it_goes_with_its_job() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let (other, _) = signed_in(&sandbox).await;
    let folder = Folder::new();
    folder.program("say.sh", "#!/bin/sh\necho 'a private line'\n");
    let registry = folder.registry("[[kind]]\nname = \"say\"\ncommand = [\"./say.sh\"]\n");
    let done = run_to_end(&jobs, registry, "say", json!({})).await;
    assert_eq!(done.status, JobStatus::Finished);
    assert_eq!(
        jobs.logs(done.id, None, None).await.expect("own log").len(),
        1
    );
    assert!(
        other
            .logs(done.id, None, None)
            .await
            .expect("an answer")
            .is_empty()
    );
    // Nor append to it: only the worker holding the lease may, and the job has ended.
    let error = other
        .append_logs(done.id, "kinds-test", 1, &[])
        .await
        .expect_err("refused");
    assert_eq!(error.server_code(), Some("JD002"));
    // Deleted with its job.
    assert!(jobs.delete(done.id).await.expect("deletes"));
    assert!(
        jobs.logs(done.id, None, None)
            .await
            .expect("an answer")
            .is_empty()
    );
}
