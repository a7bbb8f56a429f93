//! The worker against a real sandbox: jobs run as their user, retried, cancelled,
//! recovered from a dead worker, never run twice. Every wait is on the worker's own
//! events, with a deadline.

mod support;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use jobdeck_core::{
    AttemptOutcome, AuthClient, JobFilter, JobStatus, JobsClient, MemoryStore, NewJob,
    SessionOwner, SessionStore,
    kinds::builtin,
    worker::{
        EnqueueError, JobContext, JobError, JobKind, Registry, WorkerConfig, WorkerEvent,
        WorkerHandle,
    },
};
use jobdeck_sandbox::testing::{TestSandbox, email};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use support::{
    DEADLINE, new_job, project, settled, signed_in, signed_in_with_a_refused_token, start, started,
    until, until_within,
};
use tokio::sync::broadcast::error::RecvError;

fn config(name: &str) -> WorkerConfig {
    WorkerConfig {
        lease: Duration::from_secs(3),
        poll_max: Duration::from_millis(500),
        ..WorkerConfig::new(name)
    }
}

#[tokio::test]
async fn a_job_enqueued_here_starts_in_the_same_call_and_finishes_as_its_user() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let worker = start(&jobs, builtin(), config("w1"));
    let mut events = worker.events();
    let job = worker
        .enqueue(&new_job("hello", json!({ "name": "Ada" })))
        .await
        .expect("enqueued");
    assert_eq!(
        (job.status, job.locked_by.as_deref(), job.attempt),
        (JobStatus::Running, Some("w1"), 1),
        "with a slot free, the enqueue itself starts the job for this worker"
    );
    started(&mut events, job.id).await;
    let done = settled(&mut events, job.id).await;
    assert_eq!(done.status, JobStatus::Finished);
    assert_eq!(done.result, Some(json!({ "greeting": "Hello, Ada!" })));
    assert!(done.started_at.is_some() && done.ended_at.is_some());
    assert!(done.started_at <= done.ended_at);
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn invalid_input_is_refused_at_enqueue_with_the_field_and_no_job() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let worker = start(&jobs, builtin(), config("w1"));
    for (kind, input, field) in [
        ("hello", json!({}), ""),
        ("sleep", json!({ "seconds": "soon" }), "seconds"),
        ("sleep", json!({ "seconds": 1, "extra": true }), "extra"),
        ("nope", json!({}), "kind"),
    ] {
        match worker.enqueue(&new_job(kind, input.clone())).await {
            Err(EnqueueError::Invalid(invalid)) => {
                assert_eq!(invalid.field, field, "{kind} {input}: {invalid}");
                assert!(!invalid.message.is_empty());
            }
            other => panic!("{kind} {input}: expected a validation error, got {other:?}"),
        }
    }
    let page = jobs
        .list(&JobFilter {
            limit: 10,
            ..JobFilter::default()
        })
        .await
        .expect("a page");
    assert_eq!(page.total, 0, "nothing was enqueued");
    let kinds = worker.registry().kinds();
    let sleep = kinds
        .iter()
        .find(|k| k.name == "sleep")
        .expect("sleep is registered");
    assert_eq!(
        sleep.input_schema["properties"]["seconds"]["type"], "integer",
        "a schema a form can use"
    );
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_kind_this_worker_does_not_run_waits_for_one_that_does() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let worker = start(&jobs, builtin(), config("w1"));
    let mut events = worker.events();
    // Enqueued by some other client that knows a kind this worker does not.
    let mystery = jobs
        .enqueue(&new_job("mystery", json!({})))
        .await
        .expect("enqueued");
    let next = jobs
        .enqueue(&new_job("hello", json!({ "name": "still here" })))
        .await
        .expect("enqueued");
    worker.wake();
    assert_eq!(
        settled(&mut events, next.id).await.status,
        JobStatus::Finished
    );
    // The claim that took the later job passed the earlier one by: it waits, unharmed.
    let mystery = jobs.get(mystery.id).await.expect("read");
    assert_eq!((mystery.status, mystery.attempt), (JobStatus::Waiting, 0));
    worker.shutdown(Duration::from_secs(5)).await;

    // A worker told to claim the kind though it has no handler fails it clearly, once.
    let mut told = config("w2");
    told.kinds = Some(vec!["mystery".into()]);
    let worker = start(&jobs, builtin(), told);
    let mut events = worker.events();
    worker.wake();
    let failed = settled(&mut events, mystery.id).await;
    assert_eq!(
        failed.status,
        JobStatus::Failed,
        "no retries for a kind nobody here can run"
    );
    let error = failed.error.expect("an error");
    assert_eq!(error.code.as_deref(), Some("unknown_kind"));
    assert!(error.message.contains("mystery"));
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn retries_back_off_and_keep_the_failure_history() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let worker = start(&jobs, builtin(), config("w1"));
    let mut events = worker.events();
    let job = worker
        .enqueue(&new_job("flaky", json!({ "fail_times": 1 })))
        .await
        .expect("enqueued");

    let first = settled(&mut events, job.id).await;
    assert_eq!(
        (first.status, first.attempt),
        (JobStatus::Waiting, 1),
        "waits for a retry"
    );
    assert!(
        first.run_at > first.updated_at - chrono::Duration::milliseconds(1),
        "backed off"
    );
    let second = settled(&mut events, job.id).await;
    assert_eq!((second.status, second.attempt), (JobStatus::Finished, 2));
    assert_eq!(second.result, Some(json!({ "succeeded_on_attempt": 2 })));
    let outcomes: Vec<&str> = second.history.iter().map(|h| h.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retry", "finished"]);
    assert_eq!(
        second.history[0]
            .error
            .as_ref()
            .and_then(|e| e.code.as_deref()),
        Some("planned_failure")
    );
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn cancel_a_running_job_and_a_waiting_one() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let worker = start(&jobs, builtin(), config("w1"));
    let mut events = worker.events();
    let running = worker
        .enqueue(&new_job("sleep", json!({ "seconds": 600 })))
        .await
        .expect("enqueued");
    started(&mut events, running.id).await;
    jobs.cancel(running.id).await.expect("cancel requested");
    let cancelled = settled(&mut events, running.id).await;
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(cancelled.ended_at.is_some());

    worker.pause();
    let waiting = worker
        .enqueue(&new_job("sleep", json!({ "seconds": 600 })))
        .await
        .expect("enqueued");
    let cancelled = jobs.cancel(waiting.id).await.expect("cancelled");
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(cancelled.started_at.is_none(), "it never ran");
    assert!(worker.status().paused);
    worker.resume();
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_dead_workers_job_is_finished_by_another_after_the_lease() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let first = start(&jobs, builtin(), config("dies"));
    let mut first_events = first.events();
    let job = first
        .enqueue(&new_job("sleep", json!({ "seconds": 2 })))
        .await
        .expect("enqueued");
    started(&mut first_events, job.id).await;
    first.abort();

    let second = start(&jobs, builtin(), config("takes-over"));
    let mut events = second.events();
    let done = settled(&mut events, job.id).await;
    assert_eq!(done.status, JobStatus::Finished);
    assert_eq!(done.attempt, 2);
    assert_eq!(done.history[0].outcome, AttemptOutcome::Lost);
    assert_eq!(done.history[0].worker.as_deref(), Some("dies"));
    assert_eq!(done.history[1].worker.as_deref(), Some("takes-over"));
    second.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_hands_running_jobs_back_without_using_an_attempt() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let worker = start(&jobs, builtin(), config("w1"));
    let mut events = worker.events();
    let job = worker
        .enqueue(&new_job("sleep", json!({ "seconds": 600 })))
        .await
        .expect("enqueued");
    started(&mut events, job.id).await;
    worker.shutdown(Duration::ZERO).await;
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    let released = jobs.get(job.id).await.expect("the job");
    assert_eq!(
        (released.status, released.attempt),
        (JobStatus::Waiting, 0),
        "{released:?}\n{seen:?}"
    );
    assert_eq!(released.history[0].outcome, AttemptOutcome::Released);
}

/// Counts how often each job's handler ran.
#[derive(Debug, Clone, Default)]
struct Count(Arc<Mutex<HashMap<i64, u32>>>);

#[derive(Debug, Deserialize, JsonSchema)]
struct CountInput {}

impl JobKind for Count {
    const NAME: &'static str = "count";
    const DESCRIPTION: &'static str = "Counts its own runs (tests).";
    type Input = CountInput;
    type Output = ();

    async fn run(&self, _input: CountInput, ctx: JobContext) -> Result<(), JobError> {
        *self
            .0
            .lock()
            .expect("the counter")
            .entry(ctx.job.id)
            .or_default() += 1;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_workers_over_many_jobs_run_each_job_exactly_once() {
    const JOBS: usize = 400;
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let mut ids = Vec::new();
    for _ in 0..JOBS {
        ids.push(
            jobs.enqueue(&new_job("count", json!({})))
                .await
                .expect("enqueued")
                .id,
        );
    }
    let count = Count::default();
    let workers: Vec<WorkerHandle> = (0..3)
        .map(|n| {
            let mut config = config(&format!("w{n}"));
            config.concurrency = 8;
            start(&jobs, Registry::new().register(count.clone()), config)
        })
        .collect();
    // One stream of every worker's finished jobs.
    let (finished_tx, mut finished_rx) = tokio::sync::mpsc::unbounded_channel();
    for mut events in workers.iter().map(WorkerHandle::events) {
        let finished_tx = finished_tx.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(WorkerEvent::JobUpdated { job }) if job.status == JobStatus::Finished => {
                        if finished_tx.send(job.id).is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }
    tokio::time::timeout(DEADLINE, async {
        for _ in 0..JOBS {
            finished_rx.recv().await.expect("the workers' events");
        }
    })
    .await
    .expect("every job finished before the deadline");
    for worker in workers {
        worker.shutdown(Duration::from_secs(5)).await;
    }
    let runs = count.0.lock().expect("the counter").clone();
    assert_eq!(runs.len(), JOBS, "every job ran");
    assert!(runs.values().all(|n| *n == 1), "no job ran twice");
    let counts = jobs.counts().await.expect("counts");
    assert_eq!(counts[&JobStatus::Finished], JOBS as u64);
}

#[tokio::test]
async fn short_jobs_claimed_ahead_of_a_busy_slot_go_back_for_another_worker() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let count = Count::default();
    let kinds = || builtin().register(count.clone());
    let mut config_a = config("wA");
    config_a.concurrency = 1;
    let a = start(&jobs, kinds(), config_a);
    let mut events = a.events();
    // A few short jobs first: worker A learns its jobs are short and claims ahead.
    let warm = jobs
        .enqueue_many(&vec![new_job("count", json!({})); 5])
        .await
        .expect("enqueued");
    a.wake();
    for id in &warm {
        assert_eq!(settled(&mut events, *id).await.status, JobStatus::Finished);
    }
    // A long job before ten short ones, in one claim: the long one takes A's only
    // slot and the short ones wait in A's queue.
    let long = NewJob {
        priority: Some(10),
        ..new_job("sleep", json!({ "seconds": 600 }))
    };
    let mut batch = vec![long];
    batch.extend(vec![new_job("count", json!({})); 10]);
    let ids = jobs.enqueue_many(&batch).await.expect("enqueued");
    let (long, short) = (ids[0], ids[1..].to_vec());
    a.wake();
    started(&mut events, long).await;
    // They go back to waiting well inside their lease, no attempt used...
    let mut back = Vec::new();
    until(&mut events, |event| {
        if let WorkerEvent::JobReleased { id } = event {
            back.push(*id);
        }
        (back.len() == short.len()).then_some(())
    })
    .await;
    back.sort_unstable();
    assert_eq!(
        back, short,
        "A handed back the short jobs it could not start"
    );
    // ...so another worker runs them while A is still busy.
    let b = start(&jobs, kinds(), config("wB"));
    let mut b_events = b.events();
    b.wake();
    for &id in &short {
        let done = settled(&mut b_events, id).await;
        let outcomes: Vec<_> = done
            .history
            .iter()
            .map(|a| (a.outcome, a.worker.clone()))
            .collect();
        assert_eq!(
            (done.status, done.attempt),
            (JobStatus::Finished, 1),
            "{done:?}"
        );
        assert_eq!(
            outcomes,
            [
                (AttemptOutcome::Released, Some("wA".to_string())),
                (AttemptOutcome::Finished, Some("wB".to_string()))
            ]
        );
    }
    assert_eq!(
        jobs.get(long)
            .await
            .expect("the long job")
            .locked_by
            .as_deref(),
        Some("wA"),
        "A still runs its long job"
    );
    let runs = count.0.lock().expect("the counter").clone();
    assert!(runs.values().all(|n| *n == 1), "no job ran twice: {runs:?}");
    a.shutdown(Duration::ZERO).await;
    b.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_long_jobs_outlive_short_tokens_with_one_refresh_at_a_time() {
    const LIFETIME: u64 = 4;
    const JOBS: usize = 50;
    // `./x soak` runs them for longer.
    let seconds: u64 = std::env::var("JOBDECK_SOAK_TOKEN_JOB_SECONDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3 * LIFETIME);
    // Strict: any reuse of a rotated refresh token would revoke the session.
    let sandbox = TestSandbox::start_with(|o| {
        o.jwt_expiry = LIFETIME;
        o.refresh_reuse_interval = 0.0;
    })
    .await;
    let (jobs, address) = signed_in(&sandbox).await;
    let admin = sandbox.database.admin().await;
    let issued = async || -> i64 {
        admin
            .query_one(
                "select count(*) from auth.refresh_tokens t \
                 join auth.users u on u.id::text = t.user_id where u.email = $1",
                &[&address],
            )
            .await
            .expect("counting")
            .get(0)
    };
    let before = issued().await;
    let began = std::time::Instant::now();
    let worker = start(
        &jobs,
        builtin(),
        WorkerConfig {
            concurrency: JOBS,
            ..config("w1")
        },
    );
    let mut events = worker.events();
    let mut waiting = std::collections::HashSet::new();
    for _ in 0..JOBS {
        let job = worker
            .enqueue(&new_job("sleep", json!({ "seconds": seconds })))
            .await
            .expect("enqueued");
        waiting.insert(job.id);
    }
    let mut troubles = Vec::new();
    let mut most_at_once = 0;
    let deadline = Duration::from_secs(seconds) + DEADLINE;
    until_within(deadline, &mut events, |event| {
        match event {
            WorkerEvent::JobStarted { .. } => {
                most_at_once = most_at_once.max(worker.status().running.len())
            }
            WorkerEvent::JobUpdated { job } => {
                assert_eq!(job.status, JobStatus::Finished, "{job:?}");
                waiting.remove(&job.id);
            }
            WorkerEvent::Trouble { message } | WorkerEvent::SessionEnded { reason: message } => {
                troubles.push(message.clone())
            }
            _ => {}
        }
        waiting.is_empty().then_some(())
    })
    .await;
    let elapsed = began.elapsed().as_secs();
    worker.shutdown(Duration::from_secs(5)).await;

    assert!(troubles.is_empty(), "no auth failures: {troubles:?}");
    assert_eq!(most_at_once, JOBS, "all ran at once");
    let refreshes = jobs.session().refresh_count();
    let issued = issued().await - before;
    assert_eq!(
        issued as u64, refreshes,
        "one request per refresh, however many jobs needed a token at that moment"
    );
    // A token is refreshed once, at half its life: never more often than that.
    let most = elapsed / (LIFETIME / 2) + 1;
    assert!(
        (2..=most).contains(&refreshes),
        "{refreshes} refreshes in {elapsed} s of {LIFETIME} s tokens"
    );
    jobs.session()
        .auth()
        .user(&jobs.session().access_token().await.expect("a token"))
        .await
        .expect("the session is alive: no reuse was detected");
    println!(
        "tokens: {JOBS} jobs of {seconds} s at once on {LIFETIME} s tokens: {refreshes} refreshes in \
         {elapsed} s, {issued} refresh tokens issued, auth failures 0, reuse detections 0"
    );
}

#[tokio::test]
async fn a_job_reads_only_its_users_rows() {
    let sandbox = TestSandbox::start().await;
    let (alice, _) = signed_in(&sandbox).await;
    let (bob, _) = signed_in(&sandbox).await;
    for _ in 0..3 {
        bob.enqueue(&new_job("hello", json!({ "name": "bob" })))
            .await
            .expect("enqueued");
    }
    alice
        .enqueue(&new_job("hello", json!({ "name": "alice" })))
        .await
        .expect("enqueued");
    let worker = start(&alice, builtin(), config("w1"));
    let mut events = worker.events();
    let job = worker
        .enqueue(&new_job("summarize", json!({})))
        .await
        .expect("enqueued");
    let done = settled(&mut events, job.id).await;
    let total = done.result.as_ref().map(|r| r["total"].clone());
    assert_eq!(
        total,
        Some(json!(2)),
        "alice's two jobs, none of bob's: {:?}",
        done.result
    );
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_revoked_session_stops_claiming() {
    let sandbox = TestSandbox::start_with(|o| o.jwt_expiry = 3).await;
    let (jobs, address) = signed_in(&sandbox).await;
    let worker = start(&jobs, builtin(), config("w1"));
    let mut events = worker.events();
    let admin = sandbox.database.admin().await;
    admin
        .execute(
            "delete from auth.sessions where user_id = (select id from auth.users where email = $1)",
            &[&address],
        )
        .await
        .expect("revoking");
    until(&mut events, |event| {
        matches!(event, WorkerEvent::SessionEnded { .. }).then_some(())
    })
    .await;
    assert!(matches!(
        *jobs.session().watch().borrow(),
        jobdeck_core::SessionState::Ended { .. }
    ));
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn reuse_detection_ends_the_session_and_running_jobs_go_back_to_waiting() {
    let sandbox = TestSandbox::start_with(|o| {
        o.jwt_expiry = 4;
        o.refresh_reuse_interval = 0.0;
    })
    .await;
    let project = project(&sandbox);
    let store = Arc::new(MemoryStore::default());
    let owner = SessionOwner::new(
        AuthClient::new(project.clone(), reqwest::Client::new()),
        store.clone(),
    )
    .expect("an owner");
    let address = email("victim");
    sandbox.sign_up(&address, "correct horse").await;
    owner
        .sign_in_with_password(&address, "correct horse")
        .await
        .expect("signs in");
    let jobs = JobsClient::new(&project, owner);
    let worker = start(&jobs, builtin(), config("w1"));
    let mut events = worker.events();
    let job = worker
        .enqueue(&new_job("sleep", json!({ "seconds": 600 })))
        .await
        .expect("enqueued");
    started(&mut events, job.id).await;

    // Someone replays the stored refresh token twice: the owner's copy is now a reused
    // one, and its next refresh (the token lives 4 s) makes the server revoke it all.
    let stolen = store
        .load()
        .expect("loads")
        .expect("a session")
        .refresh_token;
    let thief = AuthClient::new(project, reqwest::Client::new());
    let once = thief.refresh(&stolen).await.expect("the thief refreshes");
    thief.refresh(&once.refresh_token).await.expect("and again");

    until(&mut events, |event| {
        matches!(event, WorkerEvent::SessionEnded { .. }).then_some(())
    })
    .await;
    until(&mut events, |event| match event {
        WorkerEvent::JobReleased { id } if *id == job.id => Some(()),
        _ => None,
    })
    .await;
    let admin = sandbox.database.admin().await;
    let row = admin
        .query_one("select status, attempt from jobs where id = $1", &[&job.id])
        .await
        .expect("the job");
    let (status, attempt): (String, i32) = (row.get(0), row.get(1));
    assert_eq!(
        (status.as_str(), attempt),
        ("waiting", 0),
        "back to waiting, not failed"
    );
    worker.shutdown(Duration::from_secs(5)).await;
}

/// Never finishes by itself.
#[derive(Debug, Clone, Copy)]
struct Stall;

impl JobKind for Stall {
    const NAME: &'static str = "stall";
    const DESCRIPTION: &'static str = "Waits forever (tests).";
    type Input = CountInput;
    type Output = ();

    async fn run(&self, _input: CountInput, _ctx: JobContext) -> Result<(), JobError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn an_attempt_that_runs_too_long_times_out() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let worker = start(
        &jobs,
        Registry::new().register(Stall),
        WorkerConfig {
            attempt_timeout: Duration::from_secs(1),
            ..config("w1")
        },
    );
    let mut events = worker.events();
    let job = worker
        .enqueue(&NewJob {
            max_attempts: Some(1),
            ..new_job("stall", json!({}))
        })
        .await
        .expect("enqueued");
    let failed = settled(&mut events, job.id).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(
        failed.error.and_then(|e| e.code),
        Some("timeout".to_string())
    );
    worker.shutdown(Duration::from_secs(5)).await;
}

/// Waits until the test opens its gate.
#[derive(Debug, Clone)]
struct Gate(Arc<tokio::sync::Semaphore>);

impl Gate {
    fn closed() -> Self {
        Gate(Arc::new(tokio::sync::Semaphore::new(0)))
    }
}

impl JobKind for Gate {
    const NAME: &'static str = "gate";
    const DESCRIPTION: &'static str = "Finishes when the test opens the gate (tests).";
    type Input = CountInput;
    type Output = ();

    async fn run(&self, _input: CountInput, _ctx: JobContext) -> Result<(), JobError> {
        self.0.acquire().await.expect("the gate").forget();
        Ok(())
    }
}

// The bug: a job's last event was sent before the job left `running`, and shutdown
// waited for events while jobs ran, so a shutdown begun as the last job ended could
// wait out its whole grace period for an event that would never come.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regression_shutdown_waited_out_its_grace_when_the_last_job_ended_as_it_began() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    for round in 0..10 {
        let gate = Gate::closed();
        let worker = Arc::new(start(
            &jobs,
            Registry::new().register(gate.clone()),
            config(&format!("w{round}")),
        ));
        let status = worker.status_reader();
        let mut events = worker.events();
        let job = worker
            .enqueue(&new_job("gate", json!({})))
            .await
            .expect("enqueued");
        started(&mut events, job.id).await;

        let stopping = tokio::spawn({
            let worker = Arc::clone(&worker);
            async move { worker.shutdown(Duration::from_secs(3600)).await }
        });
        gate.0.add_permits(1);
        let done = settled(&mut events, job.id).await;
        assert_eq!(done.status, JobStatus::Finished);
        assert!(
            !status().running.contains(&job.id),
            "round {round}: the job's last event came while it still counted as running"
        );
        tokio::time::timeout(DEADLINE, stopping)
            .await
            .unwrap_or_else(|_| {
                panic!("round {round}: shutdown waited on after the last job had ended")
            })
            .expect("the shutdown task");
    }
}

// The bug: a REST 401 (PGRST301) for an access token the session owner still held as
// valid, as after the project's JWT secret rotated, never reached the owner; the claim
// loop took it for "session ended" while the owner said active, and claimed again at
// once, in a loop, without ever refreshing.
#[tokio::test]
async fn regression_a_refused_access_token_made_the_claim_loop_spin_instead_of_refreshing() {
    let sandbox = TestSandbox::start().await;
    let (enqueuer, address) = signed_in(&sandbox).await;

    // The worker's own session of the same user, whose access token the server now
    // refuses though it has an hour to run.
    let (jobs, owner) = signed_in_with_a_refused_token(&sandbox, &address).await;

    let job = enqueuer
        .enqueue(&new_job("hello", json!({ "name": "Ada" })))
        .await
        .expect("enqueued elsewhere");
    let worker = start(&jobs, builtin(), config("w1"));
    let mut events = worker.events();
    let done = until(&mut events, |event| match event {
        WorkerEvent::SessionEnded { reason } => panic!("the session did not end: {reason}"),
        WorkerEvent::JobUpdated { job: done } if done.id == job.id => Some(done.clone()),
        _ => None,
    })
    .await;
    assert_eq!(done.status, JobStatus::Finished);
    assert_eq!(
        owner.refresh_count(),
        1,
        "one refresh for the refused token"
    );
    worker.shutdown(Duration::from_secs(5)).await;
}
