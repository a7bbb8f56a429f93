//! Retention and activity with real workers on a real sandbox: a policy set on one
//! device is applied by the worker on another, removing exactly what it names, and
//! the activity figures count what the worker did. Every wait is on the worker's
//! events, with a deadline.

mod support;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use jobdeck_core::{
    ActivitySpan, JobFilter, JobStatus, NewJob, RetentionPolicy,
    kinds::builtin,
    realtime::Realtime,
    worker::{Worker, WorkerConfig, WorkerEvent},
};
use jobdeck_sandbox::testing::TestSandbox;
use serde_json::json;
use support::{new_job, second_session, signed_in, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_set_on_one_device_is_applied_by_the_worker_on_another() {
    let sandbox = TestSandbox::start().await;
    let (jobs, address) = signed_in(&sandbox).await;
    let realtime = Realtime::jobs(jobs.project(), Arc::clone(jobs.session()));
    let worker = Worker::new(
        WorkerConfig {
            lease: Duration::from_secs(3),
            poll_max: Duration::from_millis(500),
            ..WorkerConfig::new("desktop")
        },
        builtin(),
        jobs.clone(),
    )
    .woken_by(&realtime)
    .start();
    let mut events = worker.events();

    // Five greetings finish; a flaky job is retried once and finishes; another fails
    // for good on its only attempt.
    let mut hello = Vec::new();
    for n in 0..5 {
        let job = worker
            .enqueue(&new_job("hello", json!({ "name": format!("n{n}") })))
            .await
            .expect("enqueued");
        hello.push(job.id);
    }
    let retried = worker
        .enqueue(&new_job("flaky", json!({ "fail_times": 1 })))
        .await
        .expect("enqueued");
    let failed = worker
        .enqueue(&NewJob {
            max_attempts: Some(1),
            ..new_job("flaky", json!({ "fail_times": 5 }))
        })
        .await
        .expect("enqueued");
    let mut ended: BTreeMap<i64, JobStatus> = BTreeMap::new();
    while ended.len() < 7 {
        let job = until(&mut events, |event| match event {
            WorkerEvent::JobUpdated { job } if job.status.is_final() => Some(job.clone()),
            _ => None,
        })
        .await;
        ended.insert(job.id, job.status);
    }
    assert_eq!(ended[&failed.id], JobStatus::Failed);
    assert_eq!(ended[&retried.id], JobStatus::Finished);
    assert!(hello.iter().all(|id| ended[id] == JobStatus::Finished));

    // The activity of the last hour, counted by the database.
    let activity = jobs.activity(ActivitySpan::Hour).await.expect("activity");
    assert_eq!(activity.buckets.len(), 60);
    let sum = |pick: fn(&jobdeck_core::ActivityBucket) -> u64| {
        activity.buckets.iter().map(pick).sum::<u64>()
    };
    assert_eq!(
        (sum(|b| b.finished), sum(|b| b.failed), sum(|b| b.retried)),
        (6, 1, 1)
    );
    let kinds: Vec<(&str, u64, u64)> = activity
        .kinds
        .iter()
        .map(|k| (k.kind.as_str(), k.finished, k.failed))
        .collect();
    assert_eq!(kinds, [("flaky", 1, 1), ("hello", 5, 0)]);
    assert!(activity.kinds.iter().all(|k| k.p50_ms.is_some()));

    // Another device keeps the last two of each kind: this device's worker hears of
    // it through Realtime and removes the three oldest greetings.
    let phone = second_session(&sandbox, &address).await;
    assert_eq!(
        phone.retention().await.expect("read"),
        RetentionPolicy::default()
    );
    let policy = RetentionPolicy {
        keep_days: None,
        keep_last: Some(2),
    };
    phone.set_retention(&policy).await.expect("set");
    assert_eq!(jobs.retention().await.expect("read"), policy);
    let removed = until(&mut events, |event| match event {
        WorkerEvent::JobsRemoved { count } => Some(*count),
        _ => None,
    })
    .await;
    assert_eq!(removed, 3);
    let left: Vec<i64> = jobs
        .list(&JobFilter {
            limit: 50,
            ..JobFilter::default()
        })
        .await
        .expect("listed")
        .jobs
        .iter()
        .map(|job| job.id)
        .collect();
    assert_eq!(left, [failed.id, retried.id, hello[4], hello[3]]);

    // A limit out of range is refused with a clear error, and the policy stays.
    let refused = jobs
        .set_retention(&RetentionPolicy {
            keep_days: Some(0),
            keep_last: None,
        })
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("keep days"), "{refused}");
    assert_eq!(jobs.retention().await.expect("read"), policy);
    jobs.set_retention(&RetentionPolicy::default())
        .await
        .expect("cleared");
    assert!(phone.retention().await.expect("read").is_empty());
    worker.shutdown(Duration::from_secs(5)).await;
}
