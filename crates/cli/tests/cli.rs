//! The `jobdeck` binary against a real sandbox: sign-in to finished jobs, failure
//! history, `--wait` exit codes, a worker handing jobs back on SIGTERM, bad input.

mod support;

use std::process::Stdio;

use jobdeck_sandbox::testing::{TestSandbox, email, totp_code};
use serde_json::{Value, json};
use support::{Cli, DEADLINE, code, worker_says};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader},
    process::Command,
};

#[tokio::test]
async fn from_login_to_finished_and_failed_jobs_with_wait_exit_codes() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_in(&sandbox).await;
    let who = cli.json(&["whoami"]).await;
    assert!(who["email"].as_str().is_some_and(|e| e.starts_with("cli-")));
    let (mut worker, mut said) = cli.worker("5");

    let out = cli
        .run(&["enqueue", "hello", "--set", "name=Ada", "--wait"])
        .await;
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Hello, Ada!"));

    let out = cli
        .run(&[
            "--json",
            "enqueue",
            "flaky",
            "--input",
            r#"{"fail_times":3}"#,
            "--max-attempts",
            "1",
            "--wait",
        ])
        .await;
    assert_eq!(
        code(&out),
        8,
        "a failed job: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed: Value = serde_json::from_slice(&out.stdout).expect("the job as JSON");
    let id = failed["id"].as_i64().expect("an id");
    let shown =
        String::from_utf8_lossy(&cli.run(&["show", &id.to_string()]).await.stdout).into_owned();
    assert!(
        shown.contains("history:") && shown.contains("planned failures"),
        "{shown}"
    );

    let listed = cli.json(&["jobs", "--status", "failed"]).await;
    assert_eq!(listed["total"], 1);
    let retried = cli.json(&["retry", &id.to_string()]).await;
    assert_eq!(retried["status"], "waiting");
    worker_says(&mut said, "failed", id).await;

    // A job cancelled while someone waits on it: `--wait` says which job it enqueued.
    let mut waiting = cli
        .command(&["enqueue", "sleep", "--set", "seconds=600", "--wait"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut progress = BufReader::new(waiting.stderr.take().expect("stderr")).lines();
    let first = tokio::time::timeout(DEADLINE, progress.next_line())
        .await
        .expect("--wait speaks in time")
        .expect("reads")
        .expect("a line");
    let sleeping: i64 = first
        .strip_prefix("Enqueued job ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not the enqueue line: {first}"));
    tokio::spawn(async move { while let Ok(Some(_)) = progress.next_line().await {} });
    worker_says(&mut said, "started", sleeping).await;
    assert!(
        cli.run(&["cancel", &sleeping.to_string()])
            .await
            .status
            .success()
    );
    let status = tokio::time::timeout(DEADLINE, waiting.wait())
        .await
        .expect("--wait ends")
        .expect("exit");
    assert_eq!(status.code(), Some(9), "a cancelled job");

    let _ = Command::new("kill")
        .args(["-TERM", &worker.id().expect("pid").to_string()])
        .status()
        .await;
    let _ = tokio::time::timeout(DEADLINE, worker.wait()).await;
}

#[tokio::test]
async fn the_worker_hands_unfinished_jobs_back_on_sigterm() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_in(&sandbox).await;
    let (mut worker, mut said) = cli.worker("0");
    let job = cli
        .json(&["enqueue", "sleep", "--set", "seconds=600"])
        .await;
    let id = job["id"].as_i64().expect("an id");
    worker_says(&mut said, "started", id).await;

    let killed = Command::new("kill")
        .args(["-TERM", &worker.id().expect("pid").to_string()])
        .status()
        .await;
    assert!(killed.expect("kill runs").success());
    let exit = tokio::time::timeout(DEADLINE, worker.wait())
        .await
        .expect("stops")
        .expect("an exit status");
    assert!(exit.success(), "a clean stop");
    let job = cli.json(&["show", &id.to_string()]).await;
    assert_eq!(
        (job["status"].as_str(), job["attempt"].as_i64()),
        (Some("waiting"), Some(0)),
        "{job}"
    );
    assert_eq!(job["history"][0]["outcome"], "released");
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_no_job() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_in(&sandbox).await;
    for (args, says) in [
        (
            vec!["enqueue", "mystery", "--input", "{}"],
            "unknown job kind",
        ),
        (
            vec!["enqueue", "hello", "--input", "{not json"],
            "not valid JSON",
        ),
        (
            vec!["enqueue", "hello", "--input", "{}"],
            "missing field `name`",
        ),
        (vec!["enqueue", "sleep", "--set", "seconds=soon"], "seconds"),
        (vec!["enqueue", "hello", "--set", "name"], "key=value"),
    ] {
        let out = cli.run(&args).await;
        assert_eq!(code(&out), 2, "{args:?} is a validation error");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
    let jobs = cli.json(&["jobs"]).await;
    assert_eq!(jobs["total"], 0, "nothing was enqueued");
    let kinds = cli.json(&["kinds"]).await;
    let hello = kinds
        .as_array()
        .and_then(|k| k.iter().find(|k| k["name"] == "hello"))
        .cloned();
    assert_eq!(
        hello.map(|h| h["input_schema"]["required"].clone()),
        Some(serde_json::json!(["name"]))
    );

    let out = cli.run(&["--json", "show", "424242"]).await;
    assert_eq!(code(&out), 5);
    let error: Value = serde_json::from_slice(&out.stderr).expect("{code, message}");
    assert_eq!(error["code"], "not_found");
}

#[tokio::test]
async fn auth_and_network_failures_have_their_own_exit_codes() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_in(&sandbox).await;
    assert!(cli.run(&["logout"]).await.status.success());
    let out = cli.run(&["--json", "whoami"]).await;
    assert_eq!(code(&out), 3, "signed out");
    let error: Value = serde_json::from_slice(&out.stderr).expect("{code, message}");
    assert_eq!(error["code"], "auth_expired");

    let out = cli
        .run_with_stdin(
            &["login", "nobody@example.com", "--password-stdin"],
            "wrong\n",
        )
        .await;
    assert_eq!(code(&out), 3, "wrong credentials");

    let mut offline = cli.command(&["whoami"]);
    offline.env("SUPABASE_URL", "http://127.0.0.1:9");
    let out = offline.output().await.expect("runs");
    assert_ne!(code(&out), 0);
    let mut login = cli.command(&["login", "x@example.com", "--password-stdin"]);
    login
        .env("SUPABASE_URL", "http://127.0.0.1:9")
        .stdin(Stdio::null());
    let out = login.output().await.expect("runs");
    assert_eq!(
        code(&out),
        4,
        "unreachable: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn login_with_an_emailed_code_and_watch_the_live_table() {
    use tokio::io::AsyncWriteExt as _;
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_in(&sandbox).await;
    let address = email("otp");
    let mut login = cli.spawn_piped(&["login", &address, "--otp"]);
    // The CLI asks for the code once it was sent: by then the sandbox's inbox has it.
    let mut prompt = login.stderr.take().expect("stderr");
    tokio::time::timeout(DEADLINE, async {
        let mut said = Vec::new();
        let mut buffer = [0u8; 256];
        while !String::from_utf8_lossy(&said).contains("Enter the code") {
            let read = prompt.read(&mut buffer).await.expect("reads the prompt");
            assert!(
                read > 0,
                "login ended before asking: {}",
                String::from_utf8_lossy(&said)
            );
            said.extend_from_slice(&buffer[..read]);
        }
    })
    .await
    .expect("the prompt came in time");
    let inbox: Value = sandbox
        .http
        .get(sandbox.url(&format!("/inbox?email={address}")))
        .send()
        .await
        .expect("the inbox answers")
        .json()
        .await
        .expect("json");
    let code = inbox[0]["code"]
        .as_str()
        .expect("a code in the inbox")
        .to_string();
    let mut stdin = login.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{code}\n").as_bytes())
        .await
        .expect("types the code");
    drop(stdin);
    let out = login.wait_with_output().await.expect("finishes");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cli.json(&["whoami"]).await["email"], address.as_str());

    let job = cli
        .json(&["enqueue", "hello", "--set", "name=watched"])
        .await;
    let id = job["id"].as_i64().expect("an id").to_string();
    let mut watch = cli
        .command(&["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs");
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().expect("stdout")).lines();
    tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.expect("reads") {
            if line.trim_start().starts_with(&id) && line.contains("waiting") {
                return;
            }
        }
        panic!("watch ended without showing the job");
    })
    .await
    .expect("the table shows the job");
    let pid = watch.id().expect("pid").to_string();
    let _ = Command::new("kill").args(["-INT", &pid]).status().await;
    let status = tokio::time::timeout(DEADLINE, watch.wait())
        .await
        .expect("stops")
        .expect("exit");
    assert!(status.success(), "Ctrl-C ends watch cleanly");
}

#[tokio::test]
async fn login_with_a_provider_prints_the_url_and_signs_in_from_the_browser() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_out(&sandbox.status.api_url, &sandbox.status.anon_key);

    let out = cli
        .run(&["login", "--provider", "github", "--no-browser"])
        .await;
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 2, "{said}");
    assert!(
        said.contains("github is not enabled") && said.contains("sandbox"),
        "{said}"
    );

    let mut login = cli
        .command(&["--json", "login", "--provider", "sandbox", "--no-browser"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut lines = BufReader::new(login.stderr.take().expect("stderr")).lines();
    let url = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.expect("reads") {
            if let Some(url) = line.trim().strip_prefix("http") {
                return format!("http{url}");
            }
        }
        panic!("login ended without printing a URL");
    })
    .await
    .expect("the URL is printed in time");
    let address = email("browser");
    let landed = sandbox.consent(&url, Some(&address)).await;
    let page = jobdeck_sandbox::testing::reqwest::get(&landed)
        .await
        .expect("the CLI's listener answers")
        .text()
        .await
        .expect("a page");
    assert!(page.contains("You are signed in"), "{page}");
    let mut stdout = String::new();
    login
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .await
        .expect("reads");
    let status = tokio::time::timeout(DEADLINE, login.wait())
        .await
        .expect("login ends")
        .expect("waits");
    assert!(status.success(), "{stdout}");
    let printed: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(printed["email"].as_str(), Some(address.as_str()));
    let who = cli.json(&["whoami"]).await;
    assert_eq!(who["email"].as_str(), Some(address.as_str()));
}

#[tokio::test]
async fn an_authenticator_app_is_enrolled_then_asked_for_at_login() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_in(&sandbox).await;
    let address = cli.json(&["whoami"]).await["email"]
        .as_str()
        .expect("an address")
        .to_string();
    let enrolled = cli.json(&["mfa", "enroll", "--name", "phone"]).await;
    let factor = enrolled["factor_id"]
        .as_str()
        .expect("a factor")
        .to_string();
    let secret = enrolled["secret"].as_str().expect("a secret").to_string();
    assert!(
        enrolled["uri"]
            .as_str()
            .expect("a URI")
            .starts_with("otpauth://totp/")
    );
    let human = cli.run(&["mfa", "enroll", "--name", "tablet"]).await;
    let shown = String::from_utf8_lossy(&human.stdout);
    assert!(
        shown.contains("▀") || shown.contains("█"),
        "a QR code: {shown}"
    );
    assert!(shown.contains("jobdeck mfa confirm"), "{shown}");

    let out = cli
        .run_with_stdin(
            &["mfa", "confirm", &factor],
            &format!("{}\n", totp_code(&secret)),
        )
        .await;
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let listed = cli.json(&["mfa", "list"]).await;
    let verified: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter(|f| f["status"] == "verified")
        .map(|f| f["id"].as_str().expect("an id"))
        .collect();
    assert_eq!(verified, [factor.as_str()], "{listed}");

    // Another machine: a wrong code leaves it signed out; the right one signs it in.
    let other = Cli::signed_out(&sandbox.status.api_url, &sandbox.status.anon_key);
    let login = ["login", address.as_str(), "--password-stdin"];
    let out = other
        .run_with_stdin(&login, &format!("{}\n000000\n", support::PASSWORD))
        .await;
    assert_eq!(code(&out), 2, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid TOTP code"));
    assert_eq!(code(&other.run(&["whoami"]).await), 3, "not signed in");
    let out = other
        .run_with_stdin(
            &login,
            &format!("{}\n{}\n", support::PASSWORD, totp_code(&secret)),
        )
        .await;
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(other.json(&["whoami"]).await["email"], address.as_str());

    let out = other.run(&["mfa", "remove", &factor]).await;
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let out = Cli::signed_out(&sandbox.status.api_url, &sandbox.status.anon_key)
        .run_with_stdin(&login, &format!("{}\n", support::PASSWORD))
        .await;
    assert_eq!(
        code(&out),
        0,
        "no code asked once removed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_publishable_key_alone_runs_jobs_and_a_secret_key_is_refused() {
    let sandbox = TestSandbox::start().await;
    let address = email("pk");
    sandbox.sign_up(&address, support::PASSWORD).await;
    let cli = Cli::login(
        &sandbox.status.api_url,
        &sandbox.status.publishable_key,
        &address,
    )
    .await;
    assert_eq!(cli.json(&["whoami"]).await["email"], address.as_str());
    let (mut worker, _said) = cli.worker("5");
    let out = cli
        .run(&["enqueue", "hello", "--set", "name=Ada", "--wait"])
        .await;
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Hello, Ada!"));
    let _ = worker.kill().await;

    let secret = Cli::signed_out(&sandbox.status.api_url, &sandbox.status.secret_key);
    let out = secret.run(&["whoami"]).await;
    assert_eq!(code(&out), 2, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("secret key"));
}

#[tokio::test]
async fn login_with_the_emailed_link_followed_in_the_browser() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_out(&sandbox.status.api_url, &sandbox.status.anon_key);
    let address = email("link");
    // No terminal: standard input at its end, so only the link can sign in.
    let mut login = cli
        .command(&["login", &address, "--otp"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut prompt = login.stderr.take().expect("stderr");
    tokio::time::timeout(DEADLINE, async {
        let mut said = Vec::new();
        let mut buffer = [0u8; 256];
        while !String::from_utf8_lossy(&said).contains("follow the link") {
            let read = prompt.read(&mut buffer).await.expect("reads the prompt");
            assert!(read > 0, "login ended: {}", String::from_utf8_lossy(&said));
            said.extend_from_slice(&buffer[..read]);
        }
    })
    .await
    .expect("the prompt came in time");
    let mail = sandbox.latest_mail(&address).await;
    let landed = sandbox
        .follow_link(mail["link"].as_str().expect("a link"))
        .await;
    assert!(landed.starts_with("http://127.0.0.1:"), "{landed}");
    let page = reqwest::get(&landed)
        .await
        .expect("the CLI's listener answers")
        .text()
        .await
        .expect("a page");
    assert!(page.contains("You are signed in"), "{page}");
    let out = tokio::time::timeout(DEADLINE, login.wait_with_output())
        .await
        .expect("finishes")
        .expect("exit");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("Signed in as {address}")));
    assert_eq!(cli.json(&["whoami"]).await["email"], address.as_str());
}

#[tokio::test]
async fn schedules_from_add_to_delete_and_a_kind_paused_then_resumed() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_in(&sandbox).await;
    let made = cli
        .json(&[
            "schedules",
            "add",
            "hello",
            "--cron",
            "*/5 * * * *",
            "--tz",
            "Asia/Tokyo",
            "--set",
            "name=Ada",
            "--name",
            "greet",
            "--missed",
            "skip",
        ])
        .await;
    let id = made["id"].as_i64().expect("an id").to_string();
    assert_eq!(
        (
            &made["timezone"],
            &made["on_missed"],
            &made["context"]["name"]
        ),
        (
            &Value::from("Asia/Tokyo"),
            &Value::from("skip"),
            &Value::from("Ada")
        )
    );
    assert!(made["next_run_at"].is_string(), "its first tick: {made}");
    for (args, says) in [
        (
            vec!["schedules", "add", "hello", "--cron", "every day"],
            "not valid",
        ),
        (
            vec![
                "schedules",
                "add",
                "hello",
                "--cron",
                "@daily",
                "--tz",
                "Mars/Base",
            ],
            "time zone",
        ),
        (
            vec![
                "schedules",
                "add",
                "sleep",
                "--cron",
                "@daily",
                "--set",
                "seconds=soon",
            ],
            "seconds",
        ),
        (
            vec!["schedules", "edit", &id, "--cron", "61 * * * *"],
            "not valid",
        ),
    ] {
        let out = cli.run(&args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let listed = String::from_utf8_lossy(&cli.run(&["schedules"]).await.stdout).into_owned();
    assert!(
        listed.contains("greet") && listed.contains("Asia/Tokyo") && listed.contains("active"),
        "{listed}"
    );
    assert_eq!(
        cli.json(&["schedules", "list"])
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let (mut worker, mut said) = cli.worker("5");
    let job = cli.json(&["schedules", "run", &id]).await;
    let job_id = job["id"].as_i64().expect("a job");
    assert_eq!(job["schedule_id"].to_string(), id);
    worker_says(&mut said, "finished", job_id).await;
    let shown = cli.json(&["schedules", "show", &id]).await;
    assert_eq!(shown["jobs"][0]["id"], job_id);
    assert_eq!(shown["jobs"][0]["status"], "finished");
    assert_eq!(shown["upcoming"].as_array().map(Vec::len), Some(5));

    let paused = cli.json(&["schedules", "pause", &id]).await;
    assert_eq!(
        (&paused["enabled"], &paused["next_run_at"]),
        (&Value::Bool(false), &Value::Null)
    );
    let resumed = cli.json(&["schedules", "resume", &id]).await;
    assert!(resumed["enabled"] == true && resumed["next_run_at"].is_string());
    let edited = cli
        .json(&["schedules", "edit", &id, "--cron", "@hourly"])
        .await;
    assert_eq!(
        (&edited["cron"], &edited["name"]),
        (&Value::from("@hourly"), &Value::from("greet"))
    );

    cli.json(&["kinds", "pause", "hello"]).await;
    let kinds = cli.json(&["kinds", "paused"]).await;
    assert_eq!(kinds[0]["kind"], "hello");
    let waiting = cli.json(&["enqueue", "hello", "--set", "name=Bo"]).await;
    let resumed = cli.json(&["kinds", "resume", "hello"]).await;
    assert_eq!(resumed["was_paused"], true);
    worker_says(
        &mut said,
        "finished",
        waiting["id"].as_i64().expect("a job"),
    )
    .await;

    cli.json(&["schedules", "delete", &id]).await;
    let out = cli.run(&["schedules", "show", &id]).await;
    assert_eq!(code(&out), 5, "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli.run(&["schedules", "delete", &id]).await;
    assert_eq!(code(&out), 5);
    let kept = cli.json(&["show", &job_id.to_string()]).await;
    assert_eq!(kept["schedule_id"], Value::Null, "its jobs stay, unlinked");
    worker.kill().await.expect("stops the worker");
}

#[tokio::test]
async fn bulk_cancel_and_retry_by_filter_run_again_with_changes_delete_and_prune() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_in(&sandbox).await;
    let mut ids = Vec::new();
    for name in ["Ada", "Bo", "Cy"] {
        let job = cli
            .json(&["enqueue", "hello", "--set", &format!("name={name}")])
            .await;
        ids.push(job["id"].as_i64().expect("an id"));
    }
    let other = cli.json(&["enqueue", "sleep", "--set", "seconds=1"]).await;

    let out = cli.run(&["cancel"]).await;
    assert_eq!(code(&out), 2, "every job of the user takes a flag");
    let out = cli.run(&["cancel", "1", "--kind", "hello"]).await;
    assert_eq!(code(&out), 2, "an id or a filter, not both");
    let cancelled = cli.json(&["cancel", "--kind", "hello"]).await;
    assert_eq!(cancelled["changed"], 3);
    assert_eq!(
        cli.json(&["show", &other["id"].to_string()]).await["status"],
        "waiting"
    );
    let retried = cli
        .json(&["retry", "--status", "cancelled", "--search", "hel"])
        .await;
    assert_eq!(retried["changed"], 3);
    let listed = cli.json(&["jobs", "--status", "waiting"]).await;
    assert_eq!(listed["total"], 4);

    let again = cli
        .json(&["run-again", &ids[0].to_string(), "--set", "name=Dee"])
        .await;
    assert_eq!(
        (&again["kind"], &again["context"]["name"]),
        (&Value::from("hello"), &Value::from("Dee"))
    );
    let out = cli
        .run(&[
            "run-again",
            &other["id"].to_string(),
            "--set",
            "seconds=soon",
        ])
        .await;
    assert_eq!(
        code(&out),
        2,
        "the changed input is checked: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let deleted = cli.json(&["delete", &ids[1].to_string()]).await;
    assert_eq!(deleted["deleted"], ids[1]);
    assert_eq!(code(&cli.run(&["show", &ids[1].to_string()]).await), 5);

    // Prune: only ended jobs, only as old as asked.
    cli.json(&["cancel", &ids[2].to_string()]).await;
    let kept = cli
        .json(&["prune", "--older-than", "1h", "--status", "cancelled"])
        .await;
    assert_eq!(kept["deleted"], 0, "an hour old: nothing yet");
    let out = cli.run(&["prune", "--status", "waiting"]).await;
    assert_eq!(code(&out), 2);
    let pruned = cli
        .json(&["prune", "--older-than", "0s", "--status", "cancelled"])
        .await;
    assert_eq!(pruned["deleted"], 1);
    // Five made, one deleted, one pruned.
    assert_eq!(cli.json(&["jobs"]).await["total"], 3);
    let dee = cli.json(&["jobs", "--input", r#"{"name": "Dee"}"#]).await;
    assert_eq!(
        (&dee["total"], &dee["jobs"][0]["id"]),
        (&Value::from(1), &again["id"])
    );
    assert_eq!(cli.json(&["jobs", "--words", "ada"]).await["total"], 1);
    let out = cli.run(&["jobs", "--input", "[1]"]).await;
    assert_eq!(code(&out), 2, "{}", String::from_utf8_lossy(&out.stderr));

    // Piped, `--wait` prints the outcome and no progress bar escapes.
    // Its output is kept open: a worker whose stdout is gone ends, as any Unix tool.
    let (mut worker, _said) = cli.worker("5");
    let out = cli
        .run(&["enqueue", "hello", "--set", "name=Eve", "--wait"])
        .await;
    assert_eq!(code(&out), 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\r'),
        "{stderr:?}"
    );
    let greeted = cli
        .json(&["jobs", "--result", r#"{"greeting": "Hello, Eve!"}"#])
        .await;
    assert_eq!(
        (&greeted["total"], &greeted["jobs"][0]["context"]["name"]),
        (&Value::from(1), &Value::from("Eve"))
    );
    worker.kill().await.expect("stops the worker");
}

#[tokio::test]
async fn retention_set_on_the_cli_is_applied_by_the_worker_and_activity_counts_what_ran() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_in(&sandbox).await;
    let (mut worker, mut said) = cli.worker("5");
    let mut ids = Vec::new();
    for name in ["Ada", "Bo", "Cy"] {
        let job = cli
            .json(&["enqueue", "hello", "--set", &format!("name={name}")])
            .await;
        let id = job["id"].as_i64().expect("an id");
        worker_says(&mut said, "finished", id).await;
        ids.push(id);
    }

    let activity = cli.json(&["activity"]).await;
    let finished: i64 = activity["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| b["finished"].as_i64())
        .sum();
    assert_eq!(finished, 3);
    assert_eq!(
        (
            &activity["kinds"][0]["kind"],
            &activity["kinds"][0]["finished"]
        ),
        (&Value::from("hello"), &Value::from(3))
    );
    let human =
        String::from_utf8_lossy(&cli.run(&["activity", "--span", "day"]).await.stdout).into_owned();
    assert!(
        human.contains("3 finished") && human.contains("hello"),
        "{human}"
    );
    assert_eq!(code(&cli.run(&["activity", "--span", "year"]).await), 2);

    assert_eq!(
        cli.json(&["retention"]).await,
        json!({ "keep_days": null, "keep_last": null })
    );
    for (args, says) in [
        (vec!["retention", "set"], "--keep-days"),
        (vec!["retention", "set", "--keep-days", "0"], "keep days"),
    ] {
        let out = cli.run(&args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let set = cli.json(&["retention", "set", "--keep-last", "1"]).await;
    assert_eq!(set["keep_last"], 1);
    // The worker hears of the policy and removes the two older greetings.
    worker_says(&mut said, "removed", 2).await;
    let left = cli.json(&["jobs"]).await;
    assert_eq!(
        (&left["total"], &left["jobs"][0]["id"]),
        (&Value::from(1), &Value::from(ids[2]))
    );
    let shown = String::from_utf8_lossy(&cli.run(&["retention"]).await.stdout).into_owned();
    assert!(shown.contains("last 1"), "{shown}");
    assert_eq!(
        cli.json(&["retention", "clear"]).await,
        json!({ "keep_days": null, "keep_last": null })
    );
    worker.kill().await.expect("stops the worker");
}
