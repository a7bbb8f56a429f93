//! Schedules and paused kinds with real workers on a real sandbox: each tick becomes
//! one job however many of the user's devices race for it, missed ticks are caught up
//! once or skipped as the schedule says, and a paused kind waits on every device.
//! Every wait is on events or on the database's state, with a deadline.

mod support;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{Timelike, Utc};
use jobdeck_core::{
    JobStatus, JobsClient, OnMissed, ScheduleSpec,
    kinds::builtin,
    realtime::Realtime,
    worker::{Worker, WorkerConfig, WorkerEvent, WorkerHandle},
};
use jobdeck_sandbox::testing::reqwest::Method;
use jobdeck_sandbox::testing::{TestSandbox, send};
use serde_json::json;
use support::{DEADLINE, new_job, second_session, settled, signed_in, until};
use tokio::sync::broadcast::error::RecvError;

fn config(name: &str) -> WorkerConfig {
    WorkerConfig {
        lease: Duration::from_secs(3),
        poll_max: Duration::from_millis(500),
        ..WorkerConfig::new(name)
    }
}

/// A worker on `jobs`'s device, woken by Realtime as the app's and the CLI's are.
fn worker(jobs: &JobsClient, name: &str) -> (WorkerHandle, Realtime) {
    let realtime = Realtime::jobs(jobs.project(), Arc::clone(jobs.session()));
    let handle = Worker::new(config(name), builtin(), jobs.clone())
        .woken_by(&realtime)
        .start();
    (handle, realtime)
}

/// Sets `next_run_at` of schedules `ids` as the service role would (time passing).
async fn due_at(sandbox: &TestSandbox, ids: &[i64], at: chrono::DateTime<Utc>) {
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let (status, body) = send(
        sandbox
            .service(Method::PATCH, &format!("/rest/v1/schedules?id=in.({list})"))
            .json(&json!({ "next_run_at": at })),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_devices_make_one_job_per_tick_over_many_ticks() {
    const SCHEDULES: usize = 10;
    const ROUNDS: usize = 3;
    let sandbox = TestSandbox::start().await;
    let (jobs, address) = signed_in(&sandbox).await;
    let mut ids = Vec::new();
    for n in 0..SCHEDULES {
        let spec = ScheduleSpec {
            name: format!("greet {n}"),
            context: json!({ "name": format!("tick {n}") }),
            ..ScheduleSpec::new("hello", "* * * * *")
        };
        let schedule = jobs.create_schedule(&spec).await.expect("created");
        assert!(schedule.next_run_at.expect("a first tick") > Utc::now());
        ids.push(schedule.id);
    }
    let devices = [
        jobs.clone(),
        second_session(&sandbox, &address).await,
        second_session(&sandbox, &address).await,
    ];
    let workers: Vec<(WorkerHandle, Realtime)> = devices
        .iter()
        .enumerate()
        .map(|(n, jobs)| worker(jobs, &format!("device-{n}")))
        .collect();
    let (fired_tx, mut fired_rx) = tokio::sync::mpsc::unbounded_channel();
    for (handle, _) in &workers {
        let mut events = handle.events();
        let fired_tx = fired_tx.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(WorkerEvent::ScheduleFired { schedule_id, job }) => {
                        if fired_tx.send((schedule_id, job.id)).is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }
    let mut made: BTreeMap<i64, usize> = BTreeMap::new();
    for round in 0..ROUNDS {
        // A tick of every schedule comes now, heard by all three devices at once.
        due_at(&sandbox, &ids, Utc::now()).await;
        tokio::time::timeout(DEADLINE, async {
            for _ in 0..SCHEDULES {
                let (schedule, _) = fired_rx.recv().await.expect("the workers' events");
                *made.entry(schedule).or_default() += 1;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: every tick made a job in time"));
        assert!(
            made.values().all(|n| *n == round + 1),
            "round {round}: one job per schedule and tick: {made:?}"
        );
    }
    for (handle, _) in &workers {
        handle.shutdown(Duration::from_secs(5)).await;
    }
    for id in &ids {
        let made = jobs.schedule_jobs(*id, 100).await.expect("its jobs");
        assert_eq!(made.len(), ROUNDS, "schedule {id}: a job per tick, no more");
        assert!(made.iter().all(|job| job.schedule_id == Some(*id)));
        let schedule = jobs.schedule(*id).await.expect("the schedule");
        assert_eq!(schedule.last_job_id, Some(made[0].id));
        assert!(schedule.next_run_at.expect("a next tick") > Utc::now());
    }
    assert!(fired_rx.try_recv().is_err(), "no device made a second job");
    let finished = jobs
        .schedule_jobs(ids[0], 100)
        .await
        .expect("its jobs")
        .iter()
        .filter(|job| job.status == JobStatus::Finished)
        .count();
    assert_eq!(finished, ROUNDS, "the scheduled jobs ran as ordinary jobs");
}

#[tokio::test]
async fn after_downtime_one_catch_up_or_none_and_a_paused_schedule_makes_nothing() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let hourly = |on_missed| ScheduleSpec {
        on_missed,
        ..ScheduleSpec::new("hello", "@hourly")
    };
    let catch_up = jobs
        .create_schedule(&hourly(OnMissed::RunOnce))
        .await
        .expect("created");
    let skip = jobs
        .create_schedule(&hourly(OnMissed::Skip))
        .await
        .expect("created");
    let paused = jobs
        .create_schedule(&ScheduleSpec {
            enabled: false,
            ..hourly(OnMissed::RunOnce)
        })
        .await
        .expect("created");
    assert_eq!(
        paused.next_run_at, None,
        "a paused schedule waits for no tick"
    );
    // Every worker was off for three hours.
    let now = Utc::now();
    let hour = now
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .expect("the hour");
    let three_hours_ago = hour - chrono::TimeDelta::hours(3);
    due_at(
        &sandbox,
        &[catch_up.id, skip.id, paused.id],
        three_hours_ago,
    )
    .await;

    let (handle, _realtime) = worker(&jobs, "back");
    let mut events = handle.events();
    let (schedule_id, job) = until(&mut events, |event| match event {
        WorkerEvent::ScheduleFired { schedule_id, job } => Some((*schedule_id, job.clone())),
        _ => None,
    })
    .await;
    assert_eq!(schedule_id, catch_up.id);
    settled(&mut events, job.id).await;
    // The skipping one moves on in the same pass; wait for it with a deadline.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let skip_now = loop {
        let schedule = jobs.schedule(skip.id).await.expect("the schedule");
        if schedule.next_run_at.is_some_and(|at| at > now) {
            break schedule;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the skipping schedule moved on"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    handle.shutdown(Duration::from_secs(5)).await;

    let next_hour = hour + chrono::TimeDelta::hours(1);
    let caught_up = jobs.schedule(catch_up.id).await.expect("the schedule");
    assert_eq!(
        caught_up.last_run_at,
        Some(hour),
        "one job, for the latest missed tick"
    );
    assert_eq!(caught_up.next_run_at, Some(next_hour));
    assert_eq!(
        jobs.schedule_jobs(catch_up.id, 10)
            .await
            .expect("jobs")
            .len(),
        1
    );
    assert_eq!(
        (skip_now.next_run_at, skip_now.last_run_at),
        (Some(next_hour), None)
    );
    assert!(
        jobs.schedule_jobs(skip.id, 10)
            .await
            .expect("jobs")
            .is_empty()
    );
    assert!(
        jobs.schedule_jobs(paused.id, 10)
            .await
            .expect("jobs")
            .is_empty()
    );
    assert_eq!(
        jobs.schedule(paused.id)
            .await
            .expect("the schedule")
            .next_run_at,
        Some(three_hours_ago),
        "no worker touched the paused schedule"
    );

    // Run now makes a job of the paused one, its ticks left alone.
    let ran = jobs.run_schedule(paused.id).await.expect("runs now");
    assert_eq!(
        (ran.schedule_id, ran.kind.as_str()),
        (Some(paused.id), "hello")
    );
    let resumed = jobs
        .set_schedule_enabled(paused.id, true)
        .await
        .expect("resumed");
    assert_eq!(
        resumed.next_run_at,
        Some(next_hour),
        "resumed, it waits for the next tick"
    );
}

#[tokio::test]
async fn a_bad_expression_is_refused_and_one_saved_by_hand_is_reported_on_the_schedule() {
    let sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let error = jobs
        .create_schedule(&ScheduleSpec::new("hello", "every day"))
        .await
        .expect_err("refused");
    assert_eq!(error.code(), jobdeck_core::ErrorCode::Validation);
    let error = jobs
        .create_schedule(&ScheduleSpec {
            timezone: "Europe/Atlantis".into(),
            ..ScheduleSpec::new("hello", "@daily")
        })
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("time zone"), "{error}");
    assert!(
        jobs.schedules().await.expect("listed").is_empty(),
        "nothing saved"
    );

    // Through the REST API by hand, with a pattern the worker cannot read.
    let spec = ScheduleSpec::new("hello", "@daily");
    let saved = jobs.create_schedule(&spec).await.expect("created");
    let (status, body) = send(
        sandbox
            .service(
                Method::PATCH,
                &format!("/rest/v1/schedules?id=eq.{}", saved.id),
            )
            .json(&json!({ "cron": "whenever" })),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    let (handle, _realtime) = worker(&jobs, "reader");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let problem = loop {
        let schedule = jobs.schedule(saved.id).await.expect("the schedule");
        if let Some(problem) = schedule.problem {
            break problem;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the problem was reported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    handle.shutdown(Duration::from_secs(5)).await;
    assert!(problem.contains("whenever"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_kind_waits_on_every_device_until_resumed() {
    let sandbox = TestSandbox::start().await;
    let (jobs, address) = signed_in(&sandbox).await;
    let other = second_session(&sandbox, &address).await;
    jobs.pause_kind("hello").await.expect("paused");
    jobs.pause_kind("hello")
        .await
        .expect("pausing again changes nothing");
    let kinds = other.paused_kinds().await.expect("listed");
    assert_eq!(kinds.len(), 1, "the other device sees the pause");
    let mut waiting = Vec::new();
    for n in 0..5 {
        let job = jobs
            .enqueue(&new_job("hello", json!({ "name": format!("w{n}") })))
            .await
            .expect("enqueued while paused");
        waiting.push(job.id);
    }
    let workers = [worker(&jobs, "laptop"), worker(&other, "desktop")];
    let (mut laptop, mut desktop) = (workers[0].0.events(), workers[1].0.events());
    // A job of another kind, enqueued after them, runs: the claims passed them over.
    let later = jobs
        .enqueue(&new_job("sleep", json!({ "seconds": 0 })))
        .await
        .expect("enqueued");
    tokio::time::timeout(DEADLINE, async {
        loop {
            let event = tokio::select! {
                event = laptop.recv() => event,
                event = desktop.recv() => event,
            };
            if let Ok(WorkerEvent::JobUpdated { job }) = event
                && job.id == later.id
                && job.status == JobStatus::Finished
            {
                return;
            }
        }
    })
    .await
    .expect("the other kind ran");
    for id in &waiting {
        assert_eq!(
            jobs.get(*id).await.expect("the job").status,
            JobStatus::Waiting
        );
    }
    assert!(other.resume_kind("hello").await.expect("resumed"));
    assert!(!other.resume_kind("hello").await.expect("resuming again"));
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let counts = jobs.counts().await.expect("counts");
        if counts[&JobStatus::Finished] == 6 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the paused jobs ran once resumed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (handle, _) in &workers {
        handle.shutdown(Duration::from_secs(5)).await;
    }
}
