//! The kinds file through the `jobdeck` binary: `kinds`, `kinds check`, `logs`, and a
//! worker whose program must die with it.

mod support;

use std::time::Duration;

use jobdeck_sandbox::testing::{TestSandbox, eventually, process_alive, write_program};
use serde_json::Value;
use support::{Cli, DEADLINE, code, signal, worker_says};

#[tokio::test]
async fn kinds_lists_every_kind_with_its_source_and_check_names_each_problem() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_in(&sandbox).await;
    let dir = tempfile::tempdir().expect("a folder");
    let file = dir.path().join("kinds.toml");
    std::fs::write(
        &file,
        "[[kind]]\nname = \"export\"\ncommand = [\"./export.sh\"]\n\n[[kind]]\nname = \"typo\"\ncomand = [\"x\"]\n",
    )
    .expect("writes");
    let path = file.to_str().expect("a path");
    let out = cli.run(&["--kinds", path, "kinds", "check"]).await;
    assert_eq!(code(&out), 2, "a problem fails the check");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("{path}:7: comand: unknown key")),
        "{said}"
    );

    let kinds = cli.json(&["--kinds", path, "kinds"]).await;
    let find = |name: &str| {
        kinds
            .as_array()
            .and_then(|k| k.iter().find(|k| k["name"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        (
            find("hello")["source"].as_str(),
            find("hello")["executor"].as_str()
        ),
        (Some("built_in"), Some("rust"))
    );
    assert_eq!(
        (
            find("export")["source"].as_str(),
            find("export")["executor"].as_str()
        ),
        (Some("file"), Some("command"))
    );
    assert_eq!(find("typo"), Value::Null, "the wrong entry is not loaded");

    std::fs::write(
        &file,
        "[[kind]]\nname = \"export\"\ncommand = [\"./export.sh\"]\n",
    )
    .expect("writes");
    let out = cli.run(&["--kinds", path, "kinds", "check"]).await;
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    // A kind the kinds file does not declare is refused at enqueue, naming the kinds.
    let out = cli.run(&["--kinds", path, "enqueue", "typo"]).await;
    assert_eq!(code(&out), 2);
}

#[tokio::test]
async fn a_worker_killed_while_its_program_runs_takes_it_along_and_the_job_runs_again_once() {
    let sandbox = TestSandbox::start().await;
    let cli = Cli::signed_in(&sandbox).await;
    let dir = tempfile::tempdir().expect("a folder");
    // The first attempt hangs; the next one prints and finishes.
    write_program(
        &dir.path().join("once.sh"),
        "#!/bin/sh\necho \"$JOBDECK_ATTEMPT $$\" >> \"$RUNS\"\nif [ \"$JOBDECK_ATTEMPT\" = 1 ]; then exec sleep 600; fi\necho 'second time lucky'\n",
    );
    let runs = dir.path().join("runs");
    let file = dir.path().join("kinds.toml");
    std::fs::write(
        &file,
        format!(
            "[[kind]]\nname = \"once\"\ncommand = [\"./once.sh\"]\nenv = {{ RUNS = \"{}\" }}\n",
            runs.display()
        ),
    )
    .expect("writes");
    let path = file.to_str().expect("a path");
    let worker = |cli: &Cli| cli.worker_with(&["--kinds", path, "worker", "--lease", "3"]);
    let (mut first, mut first_says) = worker(&cli);
    let job = cli.json(&["--kinds", path, "enqueue", "once"]).await;
    let id = job["id"].as_i64().expect("an id");
    worker_says(&mut first_says, "started", id).await;
    // The file is there once the program has written its attempt and pid to it (not
    // merely created it).
    eventually(DEADLINE, "the program started", || {
        std::fs::read_to_string(&runs).is_ok_and(|text| text.split_whitespace().count() >= 2)
    })
    .await;
    let pid = std::fs::read_to_string(&runs)
        .expect("runs")
        .split_whitespace()
        .nth(1)
        .expect("a pid")
        .to_string();
    assert!(process_alive(&pid));
    signal(&mut first, "KILL").await;
    eventually(
        Duration::from_secs(1),
        "the program died with its worker",
        || !process_alive(&pid),
    )
    .await;

    // Another CLI session (a second device) picks the job up once its lease lapses.
    let second_cli = Cli::login(
        &sandbox.status.api_url,
        &sandbox.status.anon_key,
        &cli_email(&cli).await,
    )
    .await;
    let (mut second, mut second_says) = worker(&second_cli);
    worker_says(&mut second_says, "finished", id).await;
    let runs = std::fs::read_to_string(&runs).expect("runs");
    let attempts: Vec<&str> = runs
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(attempts, ["1", "2"], "ran again exactly once");

    let log = cli.run(&["logs", &id.to_string(), "--attempt", "2"]).await;
    assert!(log.status.success());
    assert!(String::from_utf8_lossy(&log.stdout).contains("second time lucky"));
    signal(&mut second, "TERM").await;
}

async fn cli_email(cli: &Cli) -> String {
    let me = cli.json(&["whoami"]).await;
    me["email"].as_str().expect("an email").to_string()
}
