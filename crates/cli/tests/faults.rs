//! Faults `jobdeck worker` processes must come through: killed outright mid-job again
//! and again, PostgreSQL stopped and started under them, the sandbox restarted under
//! them. Each ends with every job finished, none lost, none run twice.
//!
//! The sizes are small here (the README's test command runs these); `./x soak` runs
//! the same tests larger through `JOBDECK_SOAK_*` and prints the figures each one
//! measured (see docs/reliability.md).

mod support;

use std::{
    collections::{HashMap, HashSet},
    process::Stdio,
    time::{Duration, Instant},
};

use jobdeck_postgres::{Cluster, ClusterOptions, RunningCluster};
use jobdeck_sandbox::testing::{
    Session, TestSandbox, email,
    reqwest::{self, Method, StatusCode},
    send,
};
use serde_json::{Value, json};
use support::{Cli, PASSWORD, sandbox_status, signal, start_sandbox};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::Child,
    sync::mpsc,
};

/// A size from the environment (the soak's), or the quick default.
fn size(name: &str, quick: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(quick)
}

/// What a worker printed, as the test saw it.
#[derive(Debug)]
enum Said {
    Line(String),
    /// Its output closed: it exited, and everything it said has been read.
    Gone,
}

/// One `jobdeck worker` process and what is running in it.
struct Worker {
    child: Child,
    running: HashSet<i64>,
    killed_at: Option<Instant>,
}

/// Worker processes, each signed in with a session of its own, whose lines all arrive
/// on one channel tagged with the worker's index.
struct Fleet {
    clis: Vec<Cli>,
    workers: Vec<Worker>,
    said: mpsc::UnboundedSender<(usize, Instant, Said)>,
    args: Vec<String>,
}

impl Fleet {
    fn new(args: &[&str]) -> (Fleet, mpsc::UnboundedReceiver<(usize, Instant, Said)>) {
        let (said, heard) = mpsc::unbounded_channel();
        let fleet = Fleet {
            clis: Vec::new(),
            workers: Vec::new(),
            said,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        (fleet, heard)
    }

    /// Starts a worker for `cli` (which it then keeps: one session per process).
    fn start(&mut self, cli: Cli) -> usize {
        let index = self.workers.len();
        let mut args = vec!["worker"];
        args.extend(self.args.iter().map(String::as_str));
        let mut child = cli
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the worker starts");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let said = self.said.clone();
        // Both streams on one channel: "trouble:" goes to stderr, job events to stdout.
        tokio::spawn(async move {
            let mut out = BufReader::new(stdout).lines();
            let mut err = BufReader::new(stderr).lines();
            let (mut out_open, mut err_open) = (true, true);
            while out_open || err_open {
                let line = tokio::select! {
                    line = out.next_line(), if out_open => line.ok().flatten().or_else(|| { out_open = false; None }),
                    line = err.next_line(), if err_open => line.ok().flatten().or_else(|| { err_open = false; None }),
                };
                if let Some(line) = line {
                    let _ = said.send((index, Instant::now(), Said::Line(line)));
                }
            }
            let _ = said.send((index, Instant::now(), Said::Gone));
        });
        self.clis.push(cli);
        self.workers.push(Worker {
            child,
            running: HashSet::new(),
            killed_at: None,
        });
        index
    }

    /// Stops every live worker with SIGTERM (the clean way).
    async fn stop(&mut self) {
        for worker in &mut self.workers {
            if worker.killed_at.is_none() && worker.child.id().is_some() {
                let status = signal(&mut worker.child, "TERM").await;
                assert!(status.success(), "a worker stops cleanly: {status}");
            }
        }
    }
}

/// Everything the workers said about the jobs, checked as it arrives: no job starts
/// while another live run of it goes on, none finishes twice.
#[derive(Default)]
struct Ledger {
    /// Per job: the worker of its current run, if one runs.
    current: HashMap<i64, usize>,
    runs: HashMap<i64, usize>,
    finished: HashSet<i64>,
    /// Jobs whose end is known without a "finished" line: a write whose answer was
    /// lost in an outage reports the job lost though it finished.
    lost: HashSet<i64>,
    /// What the workers said on stderr about reaching Supabase ("trouble: ...",
    /// "reconnected: ...").
    notes: Vec<(usize, String)>,
    /// For each job started again after its worker was killed: kill to restart.
    recoveries: Vec<Duration>,
}

impl Ledger {
    fn hear(&mut self, workers: &mut [Worker], index: usize, at: Instant, line: &str) {
        if line.starts_with("trouble: ") || line.starts_with("reconnected: ") {
            self.notes.push((index, line.to_string()));
            return;
        }
        let mut words = line.split_whitespace();
        let (Some(event), Some(id)) = (words.next(), words.next().and_then(|w| w.parse().ok()))
        else {
            return;
        };
        match event {
            "started" => {
                assert!(
                    !self.finished.contains(&id),
                    "job {id} started again after it finished"
                );
                if let Some(previous) = self.current.insert(id, index) {
                    let killed_at = workers[previous].killed_at.unwrap_or_else(|| {
                        panic!("job {id} started in worker {index} while worker {previous} still ran it")
                    });
                    workers[previous].running.remove(&id);
                    self.recoveries.push(at.duration_since(killed_at));
                }
                self.lost.remove(&id);
                *self.runs.entry(id).or_default() += 1;
                workers[index].running.insert(id);
            }
            "finished" | "failed" | "cancelled" | "waiting" | "released" | "lost" => {
                workers[index].running.remove(&id);
                if self.current.get(&id) == Some(&index) {
                    self.current.remove(&id);
                }
                match event {
                    "finished" => assert!(self.finished.insert(id), "job {id} finished twice"),
                    "lost" => {
                        self.lost.insert(id);
                    }
                    _ => panic!("job {id}: {line}"),
                }
            }
            _ => {}
        }
    }

    /// Jobs the workers said ended.
    fn ended(&self) -> usize {
        self.finished.union(&self.lost).count()
    }
}

/// A signed-in user with `n` one-second jobs waiting: answers their ids.
async fn enqueue(sandbox: &Sandbox, user: &Session, n: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let (status, job) = sandbox
            .rpc(
                user,
                "enqueue_job",
                json!({ "kind": "sleep", "context": { "seconds": 1 }, "max_attempts": 25 }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{job}");
        ids.push(job["id"].as_i64().expect("an id"));
    }
    ids
}

/// Every job as the database has it: (status, attempt).
async fn final_states(sandbox: &Sandbox, user: &Session) -> HashMap<i64, (String, i64)> {
    let (status, rows) = send(
        sandbox
            .request(user, Method::GET, "/rest/v1/jobs?select=id,status,attempt")
            .header("Range", "0-99999"),
    )
    .await;
    assert!(status.is_success(), "{rows}");
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            let id = row["id"].as_i64().expect("id");
            let status = row["status"].as_str().expect("status").to_string();
            (id, (status, row["attempt"].as_i64().expect("attempt")))
        })
        .collect()
}

/// Where the tests reach the sandbox's REST API: an in-process one, or `jobdeck dev`.
struct Sandbox {
    url: String,
    key: String,
    http: reqwest::Client,
}

impl Sandbox {
    /// The `jobdeck dev` running on `data_dir`.
    async fn running_on(data_dir: &std::path::Path) -> Sandbox {
        let env = sandbox_status(data_dir)
            .await
            .expect("the sandbox's status");
        Sandbox {
            url: env["API_URL"].clone(),
            key: env["ANON_KEY"].clone(),
            http: reqwest::Client::new(),
        }
    }

    fn of(test: &TestSandbox) -> Sandbox {
        Sandbox {
            url: test.status.api_url.clone(),
            key: test.status.anon_key.clone(),
            http: reqwest::Client::new(),
        }
    }

    fn request(&self, user: &Session, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("apikey", &self.key)
            .bearer_auth(&user.access_token)
    }

    async fn rpc(&self, user: &Session, function: &str, args: Value) -> (StatusCode, Value) {
        send(
            self.request(user, Method::POST, &format!("/rest/v1/rpc/{function}"))
                .json(&args),
        )
        .await
    }

    async fn sign_in(&self, address: &str) -> Session {
        let (status, body) = send(
            self.http
                .post(format!("{}/auth/v1/token?grant_type=password", self.url))
                .header("apikey", &self.key)
                .json(&json!({ "email": address, "password": PASSWORD })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Session::from_json(&body)
    }
}

/// Whether every job has ended, as the database says. (A worker killed just after
/// its success was written never says "finished": the database is the judge.)
async fn all_ended(sandbox: &Sandbox, user: &Session) -> bool {
    // Asked during outages too: no answer is not "all ended".
    let answer = sandbox
        .request(
            user,
            Method::GET,
            "/rest/v1/jobs?select=id&status=not.in.(finished,failed,cancelled)&limit=1",
        )
        .send()
        .await;
    match answer {
        Ok(response) if response.status().is_success() => {
            response.json::<Value>().await.ok() == Some(json!([]))
        }
        _ => false,
    }
}

/// Waits for the next thing a worker says, or `None` once `done` says every job has
/// ended (asked whenever the workers fall silent for a second). Panics when nothing
/// happens for `deadline`.
async fn next<F: Future<Output = bool>>(
    heard: &mut mpsc::UnboundedReceiver<(usize, Instant, Said)>,
    deadline: Duration,
    done: impl Fn() -> F,
) -> Option<(usize, Instant, Said)> {
    let silent_since = Instant::now();
    loop {
        tokio::select! {
            said = heard.recv() => return Some(said.expect("the workers' channel stays open")),
            // Not a wait for concurrency: the database has no channel to say a job
            // ended, and a worker killed just after writing a success never says so;
            // while the workers are silent the test asks it, once a second, within
            // `deadline`.
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if done().await {
                    return None;
                }
                assert!(
                    silent_since.elapsed() < deadline,
                    "no worker said anything for {deadline:?} and jobs are left"
                );
            }
        }
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Busy workers over a batch of jobs, and what they said.
struct Drill {
    sandbox: Sandbox,
    address: String,
    user: Session,
    ids: Vec<i64>,
    fleet: Fleet,
    heard: mpsc::UnboundedReceiver<(usize, Instant, Said)>,
    ledger: Ledger,
    /// How long the workers may say nothing before the test gives up.
    quiet: Duration,
}

impl Drill {
    /// `jobs` one-second jobs for a new user, and `workers` workers started with
    /// `args` to run them, each in a session of its own.
    async fn start(sandbox: Sandbox, jobs: usize, workers: usize, args: &[&str]) -> Drill {
        let address = email("drill");
        let (status, body) = send(
            sandbox
                .http
                .post(format!("{}/auth/v1/signup", sandbox.url))
                .header("apikey", &sandbox.key)
                .json(&json!({ "email": address, "password": PASSWORD })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let user = sandbox.sign_in(&address).await;
        let ids = enqueue(&sandbox, &user, jobs).await;
        let (fleet, heard) = Fleet::new(args);
        let mut drill = Drill {
            sandbox,
            address,
            user,
            ids,
            fleet,
            heard,
            ledger: Ledger::default(),
            quiet: Duration::from_secs(60),
        };
        for _ in 0..workers {
            drill.add_worker().await;
        }
        drill
    }

    async fn add_worker(&mut self) -> usize {
        let cli = Cli::login(&self.sandbox.url, &self.sandbox.key, &self.address).await;
        self.fleet.start(cli)
    }

    /// Takes in the next thing a worker says; `false` once every job has ended.
    async fn step(&mut self) -> bool {
        let (sandbox, user) = (&self.sandbox, &self.user);
        let Some((index, at, said)) =
            next(&mut self.heard, self.quiet, || all_ended(sandbox, user)).await
        else {
            return false;
        };
        match said {
            Said::Line(line) => self.ledger.hear(&mut self.fleet.workers, index, at, &line),
            Said::Gone => assert!(
                self.fleet.workers[index].killed_at.is_some(),
                "worker {index} exited without being killed"
            ),
        }
        true
    }

    /// Runs until the workers said `n` jobs ended.
    async fn until_ended(&mut self, n: usize) {
        while self.ledger.ended() < n {
            assert!(self.step().await, "every job ended before {n} were seen to");
        }
    }

    /// Runs until every live worker said something starting with `prefix`, counting
    /// from the `from`th note.
    async fn until_every_worker_says(&mut self, prefix: &str, from: usize) {
        loop {
            let said: HashSet<usize> = self.ledger.notes[from..]
                .iter()
                .filter(|(_, line)| line.starts_with(prefix))
                .map(|(w, _)| *w)
                .collect();
            let workers = &self.fleet.workers;
            if (0..workers.len())
                .filter(|w| workers[*w].killed_at.is_none())
                .all(|w| said.contains(&w))
            {
                return;
            }
            assert!(
                self.step().await,
                "every job ended before all workers said {prefix}"
            );
        }
    }

    /// Runs until every job has ended and stops the workers; checks that each job
    /// finished, and that the database counted every run the workers said they
    /// started. Answers the attempts beyond those: jobs a worker claimed and died
    /// before starting.
    async fn finish(&mut self) -> usize {
        while self.step().await {}
        self.fleet.stop().await;
        let states = final_states(&self.sandbox, &self.user).await;
        assert_eq!(states.len(), self.ids.len(), "no job lost, none made up");
        let mut unstarted = 0;
        for id in &self.ids {
            let (status, attempt) = &states[id];
            assert_eq!(status, "finished", "job {id}");
            let runs = self.ledger.runs[id];
            assert!(
                *attempt as usize >= runs,
                "job {id}: {runs} runs but {attempt} attempts counted"
            );
            unstarted += *attempt as usize - runs;
        }
        unstarted
    }

    fn reruns(&self) -> usize {
        self.ledger.runs.values().map(|runs| runs - 1).sum()
    }
}

#[tokio::test]
async fn workers_killed_mid_job_again_and_again_lose_nothing_and_run_nothing_twice() {
    let jobs = size("JOBDECK_SOAK_JOBS", 60);
    let kills = size("JOBDECK_SOAK_KILLS", 4);
    const LEASE: Duration = Duration::from_secs(3);
    // The longest idle wait between claims (the worker's poll_max).
    const POLL_MAX: Duration = Duration::from_secs(5);
    let test = TestSandbox::start().await;
    let mut drill = Drill::start(
        Sandbox::of(&test),
        jobs,
        3,
        &["--concurrency", "8", "--lease", "3"],
    )
    .await;
    let mut cut_short = 0;
    // Spread the kills over the run: the next comes after this many more jobs ended.
    let every = (jobs / (kills + 1)).max(1);
    for kill in 1..=kills {
        drill.until_ended(every * kill).await;
        // The busiest live worker, mid-job.
        let victim = loop {
            let workers = &drill.fleet.workers;
            let busiest = (0..workers.len())
                .filter(|&w| workers[w].killed_at.is_none())
                .max_by_key(|&w| workers[w].running.len())
                .filter(|&w| !workers[w].running.is_empty());
            match busiest {
                Some(victim) => break victim,
                None => assert!(drill.step().await, "jobs ran out before kill {kill}"),
            }
        };
        let worker = &mut drill.fleet.workers[victim];
        worker.child.start_kill().expect("SIGKILL");
        worker.killed_at = Some(Instant::now());
        worker
            .child
            .wait()
            .await
            .expect("the killed worker is reaped");
        cut_short += worker.running.len();
        drill.add_worker().await;
    }
    let unstarted = drill.finish().await;
    assert!(
        unstarted <= kills * 8,
        "{unstarted} attempts no worker started: more than the killed workers held"
    );

    let reruns = drill.reruns();
    let recoveries = &mut drill.ledger.recoveries;
    assert_eq!(
        reruns,
        recoveries.len(),
        "a job ran again only after a kill"
    );
    let worst = recoveries.iter().max().copied().unwrap_or_default();
    assert!(
        worst <= LEASE + POLL_MAX + Duration::from_secs(5),
        "a killed worker's jobs were taken back within the lease and a poll: {worst:?}"
    );
    println!(
        "crash: {jobs} jobs, {kills} workers killed mid-job, {cut_short} runs cut short, \
         {reruns} reruns, {unstarted} claims in flight at a kill; lease {LEASE:?}; kill to \
         restart median {:?} max {worst:?}; lost 0, finished twice 0",
        median(recoveries)
    );
}

/// The same outage drill for PostgreSQL and for the sandbox: busy workers, the part
/// stopped, every worker says so, the part started again; the workers carry on by
/// themselves and each job runs exactly once.
async fn through_an_outage(
    sandbox: Sandbox,
    jobs: usize,
    stop: impl AsyncFnOnce(),
    start: impl AsyncFnOnce(),
) -> String {
    let mut drill = Drill::start(sandbox, jobs, 2, &["--concurrency", "8"]).await;
    drill.until_ended(jobs / 4).await;
    let down = Instant::now();
    let before = drill.ledger.notes.len();
    stop().await;
    drill.until_every_worker_says("trouble: ", before).await;
    // The soak keeps the part down longer: past the longest wait between claims, short
    // of the lease (so running jobs keep theirs).
    let hold = Duration::from_secs(size("JOBDECK_SOAK_OUTAGE_SECONDS", 0) as u64);
    let until = tokio::time::Instant::from_std(down + hold);
    while let Ok(more) = tokio::time::timeout_at(until, drill.step()).await {
        assert!(more, "every job ended during the outage");
    }
    let said = drill.ledger.notes.len() - before;
    start().await;
    let up = Instant::now();
    let back = drill.ledger.notes.len();
    let ended_before = drill.ledger.ended();
    // Resumed: the first job to end after the restart.
    while drill.ledger.ended() == ended_before {
        assert!(drill.step().await, "jobs were left after the restart");
    }
    let resumed = up.elapsed();
    drill.until_every_worker_says("reconnected: ", back).await;
    assert_eq!(drill.finish().await, 0, "every attempt counted was a run");
    assert_eq!(
        drill.reruns(),
        0,
        "an outage shorter than the lease reruns nothing"
    );
    format!(
        "{jobs} jobs on 2 workers, down {:?}, {said} trouble messages, a job ended {resumed:?} \
         after the restart, every worker said it reconnected; lost 0, reruns 0",
        up.duration_since(down)
    )
}

#[tokio::test]
async fn busy_workers_ride_out_a_postgres_restart() {
    let jobs = size("JOBDECK_SOAK_OUTAGE_JOBS", 40);
    let dir = tempfile::tempdir().expect("a directory");
    let mut options = ClusterOptions::new(dir.path().join("postgres"));
    options.superuser_password = Some("outage".into());
    let cluster = start_cluster(options.clone()).await;
    options.port = Some(cluster.port());
    let data_dir = dir.path().join("sandbox");
    let url = cluster.url("postgres", "postgres");
    let mut sandbox = start_sandbox(&data_dir, &["--port", "0", "--db-url", &url]).await;
    let cluster = std::sync::Mutex::new(Some(cluster));
    let figures = through_an_outage(
        Sandbox::running_on(&data_dir).await,
        jobs,
        async || {
            let running = cluster
                .lock()
                .expect("the cluster")
                .take()
                .expect("running");
            tokio::task::spawn_blocking(move || running.stop())
                .await
                .expect("stopping")
                .expect("PostgreSQL stops");
        },
        async || {
            let running = start_cluster(options).await;
            *cluster.lock().expect("the cluster") = Some(running);
        },
    )
    .await;
    println!("postgres restart: {figures}");
    assert!(signal(&mut sandbox, "TERM").await.success());
}

#[tokio::test]
async fn busy_workers_ride_out_a_sandbox_restart() {
    let jobs = size("JOBDECK_SOAK_OUTAGE_JOBS", 40);
    let dir = tempfile::tempdir().expect("a directory");
    let data_dir = dir.path().join("sandbox");
    let sandbox = start_sandbox(&data_dir, &["--port", "0"]).await;
    let api = Sandbox::running_on(&data_dir).await;
    let port = api.url.rsplit(':').next().expect("a port").to_string();
    let process = std::sync::Mutex::new(Some(sandbox));
    let figures = through_an_outage(
        api,
        jobs,
        async || {
            let mut running = take(&process);
            assert!(signal(&mut running, "TERM").await.success());
        },
        async || {
            let again = start_sandbox(&data_dir, &["--port", &port]).await;
            *process.lock().expect("the sandbox") = Some(again);
        },
    )
    .await;
    println!("sandbox restart: {figures}");
    let mut last = take(&process);
    assert!(signal(&mut last, "TERM").await.success());
}

/// The running sandbox process, out of the slot the restart puts it back into (the
/// lock is released before any await).
fn take(process: &std::sync::Mutex<Option<Child>>) -> Child {
    process
        .lock()
        .expect("the sandbox")
        .take()
        .expect("running")
}

async fn start_cluster(options: ClusterOptions) -> RunningCluster {
    tokio::task::spawn_blocking(move || Cluster::new(options)?.start())
        .await
        .expect("starting")
        .expect("PostgreSQL starts")
}
