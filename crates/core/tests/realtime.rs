//! The core's Realtime client, the live change feed and the worker woken by Realtime,
//! against a real sandbox.

mod support;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use jobdeck_core::{
    ChangeFeed, LiveFeed, NewJob,
    realtime::{ChangeKind, LiveState, Realtime, RealtimeEvent, Subscription},
    worker::WorkerConfig,
};
use jobdeck_sandbox::testing::TestSandbox;
use serde_json::json;
use support::{DEADLINE, new_job, project, second_session, settled, signed_in};
use tokio::sync::{Notify, broadcast, watch};

async fn state_becomes(
    state: &mut watch::Receiver<LiveState>,
    wanted: impl Fn(&LiveState) -> bool,
) {
    tokio::time::timeout(DEADLINE, state.wait_for(|s| wanted(s)))
        .await
        .expect("the state came before the deadline")
        .expect("the client runs");
}

async fn next_change(
    events: &mut broadcast::Receiver<RealtimeEvent>,
) -> jobdeck_core::realtime::Change {
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let RealtimeEvent::Change(change) = events.recv().await.expect("events") {
                return change;
            }
        }
    })
    .await
    .expect("a change came before the deadline")
}

#[tokio::test]
async fn hears_changes_and_misses_none_across_a_sandbox_restart() {
    let mut sandbox = TestSandbox::start().await;
    let (jobs, _) = signed_in(&sandbox).await;
    let realtime = Realtime::start_with(
        &project(&sandbox),
        Arc::clone(jobs.session()),
        vec![Subscription::table("jobs")],
        Duration::from_secs(1),
    );
    let mut state = realtime.state();
    let mut events = realtime.subscribe();
    state_becomes(&mut state, |s| *s == LiveState::Live).await;

    let job = jobs
        .enqueue(&new_job("hello", json!({"name": "Ada"})))
        .await
        .expect("enqueues");
    let change = next_change(&mut events).await;
    assert_eq!(
        (change.table.as_str(), change.kind),
        ("jobs", ChangeKind::Insert)
    );
    assert_eq!(change.record["id"], json!(job.id));
    assert_eq!(change.record["context"], json!({"name": "Ada"}));

    // The poll is an hour away: what arrives below was pushed, or read on rejoin.
    let mut feed = LiveFeed::new(
        ChangeFeed::new(jobs.clone(), Utc::now()),
        &realtime,
        Duration::from_secs(3600),
        Arc::new(Notify::new()),
    );
    let cancelled = jobs.cancel(job.id).await.expect("cancels");
    let update = tokio::time::timeout(DEADLINE, feed.next())
        .await
        .expect("in time")
        .expect("an update");
    assert_eq!(
        update.jobs.last().map(|j| (j.id, j.status)),
        Some((job.id, cancelled.status))
    );

    // Stopped, changed meanwhile (straight in the database, as nothing serves the API),
    // started again: the client reconnects and reads what it missed.
    sandbox.stop_serving().await;
    state_becomes(&mut state, |s| matches!(s, LiveState::Down { .. })).await;
    let admin = sandbox.database.admin().await;
    admin
        .execute(
            "update public.jobs set priority = 7 where id = $1",
            &[&job.id],
        )
        .await
        .expect("updates");
    sandbox.serve_again().await;
    state_becomes(&mut state, |s| *s == LiveState::Live).await;
    // (Versions pushed before the stop may come first.)
    tokio::time::timeout(DEADLINE, async {
        loop {
            let update = feed.next().await.expect("an update");
            if update
                .jobs
                .iter()
                .any(|j| j.id == job.id && j.priority == 7)
            {
                return;
            }
        }
    })
    .await
    .expect("the change made while away arrived");

    // Deleted: the feed says so.
    assert!(jobs.delete(job.id).await.expect("deletes"));
    tokio::time::timeout(DEADLINE, async {
        while !feed
            .next()
            .await
            .expect("an update")
            .deleted
            .contains(&job.id)
        {}
    })
    .await
    .expect("the deletion arrived");
    realtime.shutdown().await;
}

#[tokio::test]
async fn a_worker_is_woken_for_jobs_enqueued_elsewhere_and_when_they_become_due() {
    let sandbox = TestSandbox::start().await;
    let (jobs, address) = signed_in(&sandbox).await;
    let realtime = Realtime::jobs(&project(&sandbox), Arc::clone(jobs.session()));
    let mut state = realtime.state();
    state_becomes(&mut state, |s| *s == LiveState::Live).await;
    // Polls an hour apart: only Realtime can wake it in time.
    let mut config = WorkerConfig::new("woken");
    config.poll_min = Duration::from_secs(3600);
    config.poll_max = Duration::from_secs(3600);
    let worker =
        jobdeck_core::worker::Worker::new(config, jobdeck_core::kinds::builtin(), jobs.clone())
            .woken_by(&realtime)
            .start();
    let mut worker_events = worker.events();

    let elsewhere = second_session(&sandbox, &address).await;
    let now = elsewhere
        .enqueue(&new_job("hello", json!({"name": "Ada"})))
        .await
        .expect("enqueues");
    assert_eq!(
        settled(&mut worker_events, now.id).await.status,
        jobdeck_core::JobStatus::Finished
    );

    let run_at = Utc::now() + chrono::TimeDelta::seconds(2);
    let later = elsewhere
        .enqueue(&NewJob {
            run_at: Some(run_at),
            ..new_job("hello", json!({"name": "Grace"}))
        })
        .await
        .expect("enqueues");
    let finished = settled(&mut worker_events, later.id).await;
    assert_eq!(finished.status, jobdeck_core::JobStatus::Finished);
    assert!(
        finished.started_at.expect("started") >= run_at,
        "not before its time"
    );
    worker.shutdown(Duration::from_secs(5)).await;
    realtime.shutdown().await;
}
