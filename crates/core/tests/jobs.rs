//! The jobs client against a real sandbox, as the signed-in user under RLS.

mod support;

use jobdeck_core::{ErrorCode, JobFilter, JobStatus, NewJob};
use jobdeck_sandbox::testing::TestSandbox;
use serde_json::json;
use support::{new_job, signed_in};

#[tokio::test]
async fn enqueue_list_filter_count_and_page_as_the_user() {
    let sandbox = TestSandbox::start().await;
    let alice = signed_in(&sandbox).await.0;
    let bob = signed_in(&sandbox).await.0;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            alice
                .enqueue(&new_job("hello", json!({ "name": n })))
                .await
                .expect("enqueued")
                .id,
        );
    }
    let sleeper = alice
        .enqueue(&new_job("sleep", json!({ "seconds": 1 })))
        .await
        .expect("enqueued");
    alice.cancel(sleeper.id).await.expect("cancelled");

    let page = alice
        .list(&JobFilter {
            limit: 2,
            offset: 1,
            ..JobFilter::default()
        })
        .await
        .expect("a page");
    assert_eq!(page.total, 6);
    assert_eq!(
        page.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[4], ids[3]],
        "newest first"
    );

    let waiting = alice
        .list(&JobFilter {
            statuses: vec![JobStatus::Waiting],
            kind: Some("hello".into()),
            limit: 50,
            ..JobFilter::default()
        })
        .await
        .expect("a page");
    assert_eq!(waiting.total, 5);
    let searched = alice
        .list(&JobFilter {
            search: Some("slee".into()),
            limit: 50,
            ..JobFilter::default()
        })
        .await
        .expect("a page");
    assert_eq!(
        searched.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![sleeper.id]
    );
    let by_id = alice
        .list(&JobFilter {
            search: Some(ids[2].to_string()),
            limit: 50,
            ..JobFilter::default()
        })
        .await
        .expect("a page");
    assert_eq!(
        by_id.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[2]]
    );

    let counts = alice.counts().await.expect("counts");
    assert_eq!(counts[&JobStatus::Waiting], 5);
    assert_eq!(counts[&JobStatus::Cancelled], 1);
    assert_eq!(counts[&JobStatus::Finished], 0);

    let theirs = bob
        .list(&JobFilter {
            limit: 50,
            ..JobFilter::default()
        })
        .await
        .expect("a page");
    assert_eq!(theirs.total, 0, "bob sees none of alice's jobs");
    let not_found = bob.get(ids[0]).await.expect_err("not bob's");
    assert_eq!(not_found.code(), ErrorCode::NotFound);
    assert_eq!(
        bob.cancel(ids[0]).await.expect_err("not bob's").code(),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn the_worker_side_functions_and_their_errors() {
    let sandbox = TestSandbox::start().await;
    let jobs = signed_in(&sandbox).await.0;
    let enqueued = jobs
        .enqueue(&new_job("flaky", json!({ "fail_times": 1 })))
        .await
        .expect("enqueued");
    let claimed = jobs
        .claim("w1", Some(&["flaky".to_string()]), 10, 30)
        .await
        .expect("claimed");
    assert_eq!(
        claimed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![enqueued.id]
    );
    assert_eq!(claimed[0].status, JobStatus::Running);

    let leases = jobs
        .heartbeat("w1", &[enqueued.id], 30)
        .await
        .expect("heartbeat");
    assert_eq!(leases.len(), 1);
    assert!(!leases[0].cancel_requested);
    assert!(
        !jobs
            .report_progress(enqueued.id, "w1", 0.5, Some("half"))
            .await
            .expect("progress")
    );

    let failed = jobs
        .fail(
            enqueued.id,
            "w1",
            &json!({ "message": "boom", "code": "flaky" }),
            false,
        )
        .await
        .expect("failed once");
    assert_eq!(failed.status, JobStatus::Waiting, "retried later");
    assert_eq!(failed.history.len(), 1);
    assert_eq!(
        failed.error.as_ref().map(|e| e["message"].clone()),
        Some(json!("boom"))
    );

    let lost = jobs
        .finish(enqueued.id, "w1", &json!({}))
        .await
        .expect_err("no longer leased");
    assert_eq!(
        (lost.code(), lost.server_code()),
        (ErrorCode::Conflict, Some("JD002"))
    );
    let invalid = jobs.claim("w1", None, 0, 30).await.expect_err("max_jobs 0");
    assert_eq!(invalid.code(), ErrorCode::Validation);

    let cancelled = jobs.cancel(enqueued.id).await.expect("cancelled");
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    let retried = jobs.retry(enqueued.id).await.expect("retried");
    assert_eq!(retried.status, JobStatus::Waiting);
    let again = jobs.retry(enqueued.id).await.expect_err("already waiting");
    assert_eq!(
        (again.code(), again.server_code()),
        (ErrorCode::Conflict, Some("JD003"))
    );
    assert!(jobs.delete(enqueued.id).await.expect("deleted"));
    assert!(!jobs.delete(enqueued.id).await.expect("nothing left"));

    let ended = jobs
        .enqueue(&new_job("hello", json!({})))
        .await
        .expect("enqueued");
    jobs.cancel(ended.id).await.expect("cancelled");
    let kept = jobs
        .prune(chrono::Duration::hours(1), &[JobStatus::Cancelled])
        .await
        .expect("pruned");
    assert_eq!(kept, 0, "ended just now: younger than an hour");
    let pruned = jobs
        .prune(chrono::Duration::zero(), &[JobStatus::Cancelled])
        .await
        .expect("pruned");
    assert_eq!(pruned, 1);
}

#[tokio::test]
async fn changes_since_a_cursor_and_idempotent_enqueue() {
    let sandbox = TestSandbox::start().await;
    let jobs = signed_in(&sandbox).await.0;
    let first = jobs
        .enqueue(&new_job("hello", json!({})))
        .await
        .expect("enqueued");
    let cursor = first.updated_at;
    let keyed = NewJob {
        idempotency_key: Some("report:2026-11".into()),
        ..new_job("hello", json!({ "month": 11 }))
    };
    let second = jobs.enqueue(&keyed).await.expect("enqueued");
    let same = jobs.enqueue(&keyed).await.expect("the same job");
    assert_eq!(same.id, second.id, "an idempotency key gives one job");
    jobs.cancel(first.id).await.expect("cancelled");

    let changed = jobs.changed_since(cursor, 100).await.expect("changes");
    assert_eq!(
        changed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![second.id, first.id]
    );
    let last = changed.last().expect("a change").updated_at;
    assert!(
        jobs.changed_since(last, 100)
            .await
            .expect("changes")
            .is_empty(),
        "nothing after the cursor"
    );

    let blank = jobs
        .enqueue(&new_job(" ", json!({})))
        .await
        .expect_err("a kind is required");
    assert_eq!(blank.code(), ErrorCode::Validation);
}
