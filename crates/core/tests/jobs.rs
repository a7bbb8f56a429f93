//! The jobs client against a real sandbox, as the signed-in user under RLS.

mod support;

use jobdeck_core::{BulkAction, ChangeFeed, ErrorCode, JobFilter, JobStatus, NewJob};
use jobdeck_sandbox::testing::TestSandbox;
use serde_json::json;
use support::{new_job, signed_in, signed_in_with_a_refused_token};

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
    assert_eq!(searched.total, 1);
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
    assert_eq!(by_id.total, 1);

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

    // A search's total is read from the tallies, by the kinds its pattern matches plus
    // the job whose id it is: it must equal the rows the search lists, however the
    // two overlap. A kind named after a job's id is matched both ways.
    let named = alice
        .enqueue(&new_job(&format!("n{}", ids[0]), json!({})))
        .await
        .expect("enqueued");
    bob.enqueue(&new_job("hello", json!({})))
        .await
        .expect("bob's");
    let searches = [
        "hell",
        "HELL",
        "slee",
        "zzz",
        "%",
        "_",
        "e_l",
        "*",
        &ids[0].to_string(),
        &ids[2].to_string(),
        &sleeper.id.to_string(),
        &named.id.to_string(),
    ];
    for search in searches {
        for (statuses, kind) in [
            (vec![], None),
            (vec![JobStatus::Waiting], None),
            (vec![JobStatus::Cancelled, JobStatus::Failed], None),
            (vec![], Some("hello")),
        ] {
            let filter = JobFilter {
                search: Some(search.into()),
                statuses,
                kind: kind.map(str::to_string),
                limit: 1000,
                ..JobFilter::default()
            };
            let page = alice.list(&filter).await.expect("a page");
            assert_eq!(
                page.total,
                page.jobs.len() as u64,
                "the total of {filter:?} is what it lists"
            );
        }
    }
    let both = alice
        .list(&JobFilter {
            search: Some(ids[0].to_string()),
            limit: 50,
            ..JobFilter::default()
        })
        .await
        .expect("a page");
    assert_eq!(both.total, 2, "its id and the kind named after it");
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
        failed.error.as_ref().map(|e| e.message.as_str()),
        Some("boom")
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

#[tokio::test]
async fn keyset_pages_bulk_actions_and_run_again() {
    let sandbox = TestSandbox::start().await;
    let alice = signed_in(&sandbox).await.0;
    let bob = signed_in(&sandbox).await.0;
    let mut ids = Vec::new();
    for n in 0..7 {
        let job = alice
            .enqueue(&new_job("hello", json!({ "name": format!("n{n}") })))
            .await
            .expect("enqueued");
        ids.push(job.id);
    }
    let bobs = bob
        .enqueue(&new_job("hello", json!({ "name": "bob" })))
        .await
        .expect("enqueued");

    // Keyset paging: each page starts below the last id of the one before.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = alice
            .list(&JobFilter {
                limit: 3,
                before,
                ..JobFilter::default()
            })
            .await
            .expect("a page");
        assert_eq!(page.total, 7, "the total is the whole list's on every page");
        let Some(last) = page.jobs.last() else { break };
        before = Some(last.id);
        seen.extend(page.jobs.iter().map(|j| j.id));
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    // A search is counted row by row, and its total too ignores the page.
    let searched = alice
        .list(&JobFilter {
            search: Some("HELL".into()),
            limit: 2,
            before: Some(ids[4]),
            ..JobFilter::default()
        })
        .await
        .expect("a page");
    assert_eq!(
        searched.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[3], ids[2]]
    );
    assert_eq!(searched.total, 7);

    // Cancelling the filtered set cancels alice's waiting jobs, and nothing of bob's.
    let cancelled = alice
        .bulk(BulkAction::Cancel, &JobFilter::default())
        .await
        .expect("bulk cancel");
    assert_eq!(cancelled, 7);
    let counts = alice.counts().await.expect("counts");
    assert_eq!(counts[&JobStatus::Cancelled], 7);
    assert_eq!(
        bob.get(bobs.id).await.expect("bob's job").status,
        JobStatus::Waiting
    );
    assert_eq!(
        bob.bulk(BulkAction::Retry, &JobFilter::default())
            .await
            .expect("bob's bulk retry"),
        0,
        "bob's retry reaches none of alice's cancelled jobs"
    );

    // Retrying only what a search matches.
    let retried = alice
        .bulk(
            BulkAction::Retry,
            &JobFilter {
                search: Some(ids[2].to_string()),
                ..JobFilter::default()
            },
        )
        .await
        .expect("bulk retry");
    assert_eq!(retried, 1);
    assert_eq!(
        alice.get(ids[2]).await.expect("job").status,
        JobStatus::Waiting
    );
    assert_eq!(
        alice
            .bulk(
                BulkAction::Retry,
                &JobFilter {
                    statuses: vec![JobStatus::Waiting],
                    ..JobFilter::default()
                },
            )
            .await
            .expect("nothing to retry"),
        0,
        "waiting jobs are not retried"
    );

    let again = alice.run_again(ids[0]).await.expect("run again");
    assert_ne!(again.id, ids[0]);
    assert_eq!(again.kind, "hello");
    assert_eq!(again.context, json!({ "name": "n0" }));
    assert_eq!(again.status, JobStatus::Waiting);
    let not_found = bob.run_again(ids[0]).await.expect_err("not bob's");
    assert_eq!(not_found.code(), ErrorCode::NotFound);
}

#[tokio::test]
async fn the_change_feed_delivers_every_change_once() {
    let sandbox = TestSandbox::start().await;
    let (alice, _) = signed_in(&sandbox).await;
    let bob = signed_in(&sandbox).await.0;
    let since = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    let mut feed = ChangeFeed::new(alice.clone(), since);
    assert!(feed.poll().await.expect("poll").is_empty());

    let first = alice
        .enqueue(&new_job("hello", json!({ "name": "a" })))
        .await
        .expect("enqueued");
    let second = alice
        .enqueue(&new_job("hello", json!({ "name": "b" })))
        .await
        .expect("enqueued");
    bob.enqueue(&new_job("hello", json!({ "name": "bob" })))
        .await
        .expect("bob's");
    let changed = feed.poll().await.expect("poll");
    assert_eq!(
        changed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![first.id, second.id],
        "alice's two new jobs, oldest first, and nothing of bob's"
    );
    assert!(
        feed.poll().await.expect("poll").is_empty(),
        "a change is delivered once"
    );

    let cancelled = alice.cancel(first.id).await.expect("cancelled");
    let changed = feed.poll().await.expect("poll");
    assert_eq!(
        changed,
        vec![cancelled],
        "the new version of the changed job"
    );

    // More changes than one request reads are all delivered.
    let many: Vec<NewJob> = (0..600)
        .map(|n| new_job("hello", json!({ "name": format!("m{n}") })))
        .collect();
    for job in &many {
        alice.enqueue(job).await.expect("enqueued");
    }
    let changed = feed.poll().await.expect("poll");
    assert_eq!(changed.len(), 600);
}

#[tokio::test]
async fn a_refused_access_token_is_refreshed_once_and_the_request_retried() {
    let sandbox = TestSandbox::start().await;
    let (mine, address) = signed_in(&sandbox).await;
    let job = mine
        .enqueue(&new_job("hello", json!({ "name": "Ada" })))
        .await
        .expect("enqueued");
    let (jobs, owner) = signed_in_with_a_refused_token(&sandbox, &address).await;
    let filter = JobFilter::default();
    let (listed, counts) = tokio::join!(jobs.list(&filter), jobs.counts());
    assert_eq!(listed.expect("listed after one refresh").jobs[0].id, job.id);
    assert_eq!(counts.expect("counted")[&JobStatus::Waiting], 1);
    assert_eq!(
        owner.refresh_count(),
        1,
        "two requests refused the same token; one refresh"
    );
}

#[tokio::test]
async fn search_by_input_words_time_and_schedule_finds_only_the_users_matching_jobs() {
    let sandbox = TestSandbox::start().await;
    let alice = signed_in(&sandbox).await.0;
    let bob = signed_in(&sandbox).await.0;
    let mut ids = Vec::new();
    for (customer, name) in [(42, "Acme Corp"), (42, "Globex"), (7, "Acme Labs")] {
        let job = alice
            .enqueue(&new_job(
                "report",
                json!({ "customer": customer, "name": name, "nested": { "tier": "gold" } }),
            ))
            .await
            .expect("enqueued");
        ids.push(job.id);
    }
    // Bob's job matches every search too: he must not show in Alice's answers.
    bob.enqueue(&new_job(
        "report",
        json!({ "customer": 42, "name": "Acme Corp" }),
    ))
    .await
    .expect("enqueued");
    let search = |filter: JobFilter| {
        let alice = alice.clone();
        async move {
            // No limit named: the default page, not one row.
            let page = alice.list(&filter).await.expect("listed");
            let found: Vec<i64> = page.jobs.iter().map(|j| j.id).collect();
            (found, page.total)
        }
    };
    let by_input = |input| JobFilter {
        input: Some(input),
        ..JobFilter::default()
    };
    assert_eq!(
        search(by_input(json!({ "customer": 42 }))).await,
        (vec![ids[1], ids[0]], 2)
    );
    assert_eq!(
        search(by_input(json!({ "customer": 42, "name": "Globex" }))).await,
        (vec![ids[1]], 1)
    );
    assert_eq!(
        search(by_input(json!({ "nested": { "tier": "gold" } })))
            .await
            .1,
        3,
        "containment reaches into nested objects"
    );
    assert_eq!(
        search(by_input(json!({ "customer": 43 }))).await,
        (vec![], 0)
    );
    let by_words = |words: &str| JobFilter {
        words: Some(words.into()),
        ..JobFilter::default()
    };
    assert_eq!(search(by_words("acme")).await, (vec![ids[2], ids[0]], 2));
    assert_eq!(search(by_words("acme -labs")).await, (vec![ids[0]], 1));
    assert_eq!(search(by_words("\"acme corp\"")).await, (vec![ids[0]], 1));
    assert_eq!(
        search(by_words("7")).await.0,
        vec![ids[2]],
        "numbers are words too"
    );
    assert_eq!(search(by_words("customer")).await.1, 0, "keys are not");
    assert_eq!(
        search(by_words("   ")).await.1,
        3,
        "blank words filter nothing"
    );

    let created = alice.get(ids[1]).await.expect("a job").created_at;
    let from = search(JobFilter {
        created_from: Some(created),
        ..JobFilter::default()
    })
    .await;
    assert_eq!(from.0, vec![ids[2], ids[1]]);
    let until = search(JobFilter {
        created_until: Some(created),
        ..JobFilter::default()
    })
    .await;
    assert_eq!(until.0, vec![ids[0]]);
    alice.cancel(ids[0]).await.expect("cancelled");
    let ended = search(JobFilter {
        ended_from: Some(created),
        statuses: vec![JobStatus::Cancelled],
        ..JobFilter::default()
    })
    .await;
    assert_eq!(ended, (vec![ids[0]], 1));

    // Bulk actions take the same filter.
    let changed = alice
        .bulk(BulkAction::Cancel, &by_words("acme"))
        .await
        .expect("bulk");
    assert_eq!(changed, 1, "only the waiting match of the two");

    let schedule = alice
        .create_schedule(&jobdeck_core::ScheduleSpec::new("report", "@daily"))
        .await
        .expect("a schedule");
    let made = alice.run_schedule(schedule.id).await.expect("run now");
    let of_schedule = search(JobFilter {
        schedule_id: Some(schedule.id),
        ..JobFilter::default()
    })
    .await;
    assert_eq!(of_schedule, (vec![made.id], 1));

    // A result by containment, alone or with the input's.
    let export = alice
        .enqueue(&new_job("export", json!({ "customer": 42 })))
        .await
        .expect("enqueued");
    let export_kind = ["export".to_string()];
    let claimed = alice
        .claim("w1", Some(&export_kind), 1, 30)
        .await
        .expect("claimed");
    assert_eq!(claimed.len(), 1);
    alice
        .finish(export.id, "w1", &json!({ "rows": 3, "file": "acme.csv" }))
        .await
        .expect("finished");
    let by_result = |result| JobFilter {
        result: Some(result),
        ..JobFilter::default()
    };
    assert_eq!(
        search(by_result(json!({ "rows": 3 }))).await,
        (vec![export.id], 1)
    );
    assert_eq!(
        search(JobFilter {
            input: Some(json!({ "customer": 42 })),
            words: Some("acme".into()),
            ..by_result(json!({ "rows": 3 }))
        })
        .await,
        (vec![], 0),
        "every condition holds together: the export's input has no word acme"
    );
    assert_eq!(
        search(JobFilter {
            input: Some(json!({ "customer": 42 })),
            ..by_result(json!({ "file": "acme.csv" }))
        })
        .await,
        (vec![export.id], 1)
    );
    assert_eq!(search(by_result(json!({ "rows": 4 }))).await.1, 0);
}
