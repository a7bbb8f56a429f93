//! `jobdeck dev` as a user runs it: the real binary, its own PostgreSQL, real HTTP.

mod support;

use std::{collections::HashMap, path::Path, process::ExitStatus};

use serde_json::{Value, json};
use support::{JOBDECK, sandbox_status as status, signal};
use tokio::process::{Child, Command};

async fn start(data_dir: &Path) -> Child {
    support::start_sandbox(data_dir, &["--port", "0"]).await
}

async fn stop(mut child: Child) -> ExitStatus {
    signal(&mut child, "TERM").await
}

async fn post(url: &str, key: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("apikey", key)
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the sandbox answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET /rest/v1/jobs?{query}` as the signed-in `session`.
async fn jobs(env: &HashMap<String, String>, session: &Value, query: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/rest/v1/jobs?{query}", env["API_URL"]))
        .header("apikey", &env["ANON_KEY"])
        .header("Range", "0-999999")
        .bearer_auth(session["access_token"].as_str().expect("a token"))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("json")
}

async fn sign_in(env: &HashMap<String, String>, email: &str) -> (u16, Value) {
    post(
        &format!("{}/auth/v1/token?grant_type=password", env["API_URL"]),
        &env["ANON_KEY"],
        None,
        json!({ "email": email, "password": "correct horse" }),
    )
    .await
}

#[tokio::test]
async fn start_status_refuse_a_second_stop_and_restart_with_everything_kept() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().join("sandbox");

    let first = start(&data_dir).await;
    let env = status(&data_dir).await.expect("status while running");
    for key in [
        "API_URL",
        "ANON_KEY",
        "SERVICE_ROLE_KEY",
        "JWT_SECRET",
        "DB_URL",
    ] {
        assert!(
            env.get(key).is_some_and(|v| !v.is_empty()),
            "{key} in `dev status -o env`"
        );
    }

    let (code, session) = sign_in(&env, "seed@example.com").await;
    assert_eq!(code, 200, "the seeded user signs in: {session}");
    let token = session["access_token"].as_str().expect("a token");
    let (code, job) = post(
        &format!("{}/rest/v1/rpc/enqueue_job", env["API_URL"]),
        &env["ANON_KEY"],
        Some(token),
        json!({ "kind": "hello", "context": { "name": "kept" } }),
    )
    .await;
    assert_eq!(code, 200, "{job}");
    let (code, _) = post(
        &format!("{}/auth/v1/signup", env["API_URL"]),
        &env["ANON_KEY"],
        None,
        json!({ "email": "later@example.com", "password": "correct horse" }),
    )
    .await;
    assert_eq!(code, 200);

    let second = Command::new(JOBDECK)
        .args(["dev", "--port", "0", "--data-dir"])
        .arg(&data_dir)
        .output()
        .await
        .expect("a second jobdeck dev runs");
    assert!(
        !second.status.success(),
        "a second sandbox on the same data is refused"
    );
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("already running"), "it says why: {said}");

    assert!(stop(first).await.success(), "SIGTERM is a clean stop");
    let err = status(&data_dir).await.expect_err("no status once stopped");
    assert!(err.contains("no sandbox is running"), "{err}");
    assert!(
        !data_dir.join("postgres/postmaster.pid").exists(),
        "PostgreSQL stopped with it"
    );

    let again = start(&data_dir).await;
    let env2 = status(&data_dir).await.expect("status after restart");
    assert_eq!(env2["ANON_KEY"], env["ANON_KEY"], "keys survive a restart");
    assert_eq!(env2["JWT_SECRET"], env["JWT_SECRET"]);
    let (code, session) = sign_in(&env2, "later@example.com").await;
    assert_eq!(code, 200, "users survive a restart: {session}");
    let (code, session) = sign_in(&env2, "seed@example.com").await;
    assert_eq!(code, 200);
    assert_eq!(
        jobs(&env2, &session, "select=context").await,
        json!([{ "context": { "name": "kept" } }]),
        "jobs survive a restart"
    );
    assert!(stop(again).await.success());
}

#[tokio::test]
async fn a_sandbox_killed_outright_starts_again_with_its_users_and_jobs() {
    // `./x soak` kills it more often.
    let rounds: usize = std::env::var("JOBDECK_SOAK_SANDBOX_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().join("sandbox");
    let mut acknowledged = Vec::new();
    let mut sandbox = start(&data_dir).await;
    let keys = status(&data_dir).await.expect("status while running");
    for round in 0..rounds {
        let env = status(&data_dir).await.expect("status while running");
        assert_eq!(env["ANON_KEY"], keys["ANON_KEY"], "keys survive");
        let (code, session) = sign_in(&env, "seed@example.com").await;
        assert_eq!(code, 200, "the user survives: {session}");
        let token = session["access_token"]
            .as_str()
            .expect("a token")
            .to_string();

        // Enqueue without pause, and kill the sandbox while requests are in flight:
        // every job it acknowledged must be there after the restart.
        let url = format!("{}/rest/v1/rpc/enqueue_job", env["API_URL"]);
        let key = env["ANON_KEY"].clone();
        let (acked, mut heard) = tokio::sync::mpsc::unbounded_channel();
        let writer = tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 0.. {
                let sent = client
                    .post(&url)
                    .header("apikey", &key)
                    .bearer_auth(&token)
                    .json(
                        &json!({ "kind": "hello", "context": { "name": format!("{round}.{n}") } }),
                    )
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                let Ok(job) = response.json::<Value>().await else {
                    return;
                };
                if acked.send(job["id"].as_i64().expect("an id")).is_err() {
                    return;
                }
            }
        });
        for _ in 0..20 {
            acknowledged.push(heard.recv().await.expect("acknowledged jobs"));
        }
        // No clean stop: no request finishes, nothing is flushed, PostgreSQL is left
        // to notice on its own that its parent is gone.
        assert!(!signal(&mut sandbox, "KILL").await.success());
        writer.await.expect("the writer stops at the first refusal");
        while let Ok(id) = heard.try_recv() {
            acknowledged.push(id);
        }
        let err = status(&data_dir)
            .await
            .expect_err("no status for a dead sandbox");
        assert!(err.contains("no sandbox is running"), "{err}");
        sandbox = start(&data_dir).await;
    }

    let env = status(&data_dir).await.expect("status after restart");
    let (code, session) = sign_in(&env, "seed@example.com").await;
    assert_eq!(code, 200, "the user survives: {session}");
    let rows = jobs(&env, &session, "select=id").await;
    let kept: std::collections::HashSet<i64> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_i64().expect("an id"))
        .collect();
    let lost: Vec<&i64> = acknowledged
        .iter()
        .filter(|id| !kept.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged jobs lost: {lost:?}");
    println!(
        "sandbox kill -9: {rounds} kills with writes in flight, {} jobs acknowledged, \
         {} kept, lost 0",
        acknowledged.len(),
        kept.len()
    );
    assert!(stop(sandbox).await.success());
}
