//! The jobs contract (supabase/migrations) against a real PostgreSQL: row-level
//! security, the state machine, leases, backoff and the error codes clients map.

mod support;

use std::collections::{BTreeSet, HashSet};

use jobdeck_postgres::{apply_migrations, testing::TestDatabase};
use serde_json::{Value, json};
use support::{Actor, Db, as_actor, sqlstate};
use uuid::Uuid;

const JOB_NOT_FOUND: &str = "JD001";
const LEASE_LOST: &str = "JD002";
const INVALID_TRANSITION: &str = "JD003";
const INVALID_ARGUMENT: &str = "22023";
const NOT_ALLOWED: &str = "42501";

#[tokio::test]
async fn a_user_can_neither_see_nor_touch_another_users_jobs() {
    let mut db = Db::new().await;
    let (alice, bob) = (db.user().await, db.user().await);
    let running = db.enqueue(alice, "hello", 3).await;
    assert_eq!(db.claim(alice, "alice-worker", 1).await, vec![running]);
    let waiting = db.enqueue(alice, "hello", 3).await;

    let bob_actor = Actor::User(bob);
    let seen = db.ok(bob_actor, "select id from jobs", &[]).await;
    assert!(seen.is_empty(), "bob sees none of alice's jobs");
    let counts = db.ok(bob_actor, "select * from job_counts()", &[]).await;
    assert!(
        counts.is_empty(),
        "bob's counts include none of alice's jobs"
    );
    assert!(
        db.claim(bob, "bob-worker", 10).await.is_empty(),
        "bob claims none of alice's jobs"
    );

    for (sql, id) in [
        ("select finish_job($1, 'alice-worker', '{}')", running),
        (
            "select fail_job($1, 'alice-worker', '{\"message\":\"x\"}')",
            running,
        ),
        ("select report_progress($1, 'alice-worker', 0.5)", running),
        ("select cancel_job($1)", waiting),
        ("select cancel_job($1)", running),
        ("select retry_job($1)", waiting),
    ] {
        assert_eq!(
            db.err(bob_actor, sql, &[&id]).await,
            JOB_NOT_FOUND,
            "{sql} by bob"
        );
    }
    let beats = db
        .ok(
            bob_actor,
            "select * from heartbeat_jobs('alice-worker', array[$1::bigint])",
            &[&running],
        )
        .await;
    assert!(beats.is_empty(), "bob cannot extend alice's lease");
    let append = "select append_job_logs($1, 'alice-worker', 1, '[{\"seq\": 0, \"line\": \"x\"}]')";
    assert_eq!(
        db.err(bob_actor, append, &[&running]).await,
        "JD002",
        "bob cannot write to alice's job's log"
    );
    db.ok(Actor::User(alice), append, &[&running]).await;
    let read = db
        .ok(
            bob_actor,
            "select line from job_logs where job_id = $1",
            &[&running],
        )
        .await;
    assert!(read.is_empty(), "bob cannot read alice's job's log");

    let ended = db.enqueue(alice, "hello", 3).await;
    db.ok(Actor::User(alice), "select cancel_job($1)", &[&ended])
        .await;
    let alice_ids = vec![running, waiting, ended];
    for sql in [
        "select * from finish_jobs('alice-worker', \
         (select jsonb_agg(jsonb_build_object('id', i)) from unnest($1::bigint[]) i))",
        "select * from release_jobs('alice-worker', $1)",
    ] {
        let touched = db.ok(bob_actor, sql, &[&alice_ids]).await;
        assert!(touched.is_empty(), "{sql} by bob touches nothing");
    }
    for sql in ["select cancel_jobs($1) as n", "select retry_jobs($1) as n"] {
        let changed = db.ok(bob_actor, sql, &[&alice_ids]).await;
        assert_eq!(
            changed[0].get::<_, i64>("n"),
            0,
            "{sql} by bob changes nothing"
        );
    }
    let pruned = db
        .ok(bob_actor, "select prune_jobs('0 seconds') as n", &[])
        .await;
    assert_eq!(
        pruned[0].get::<_, i64>("n"),
        0,
        "bob prunes none of alice's jobs"
    );
    // Every one of alice's jobs matches `{}`, and a search reads as the table's owner.
    let searched = db
        .ok(
            bob_actor,
            "select count(*) as n from search_jobs(input => '{}', result => null) \
              where uuid <> $1",
            &[&bob],
        )
        .await;
    assert_eq!(
        searched[0].get::<_, i64>("n"),
        0,
        "search_jobs finds none of alice's jobs for bob"
    );
    let own = db
        .ok(
            bob_actor,
            "select uuid, status from enqueue_and_start_job('hello', 'bob-worker')",
            &[],
        )
        .await;
    assert_eq!(
        (
            own[0].get::<_, Uuid>("uuid"),
            own[0].get::<_, String>("status")
        ),
        (bob, "running".to_string()),
        "enqueue_and_start_job starts only bob's own new job"
    );

    // Every function a signed-in user may call is one of those tried above.
    let callable: BTreeSet<String> = db
        .ok(
            Actor::Service,
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
             where n.nspname = 'public' \
               and has_function_privilege('authenticated', p.oid, 'execute')",
            &[],
        )
        .await
        .iter()
        .map(|row| row.get::<_, String>("proname"))
        .collect();
    let tried: BTreeSet<String> = [
        "append_job_logs",
        "claim_jobs",
        "heartbeat_jobs",
        "finish_job",
        "finish_jobs",
        "fail_job",
        "report_progress",
        "cancel_job",
        "cancel_jobs",
        "retry_job",
        "retry_jobs",
        "release_jobs",
        "prune_jobs",
        "job_counts",
        "enqueue_job",
        "enqueue_and_start_job",
        // Their isolation cases are in tests/schedules.rs.
        "fire_schedule",
        "run_schedule",
        // A computed field over the caller's own rows: row-level security scopes
        // every read it filters (tests/jobs.rs in the core searches as two users).
        "input_words",
        "search_jobs",
        // Theirs are in tests/insight.rs.
        "set_retention",
        "apply_retention",
        "job_activity",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        callable, tried,
        "a new function needs its isolation case here"
    );

    let deleted = db.ok(bob_actor, "delete from jobs returning id", &[]).await;
    assert!(deleted.is_empty(), "bob deletes none of alice's jobs");
    assert_eq!(
        db.err(
            bob_actor,
            "update jobs set status = 'finished' where id = $1",
            &[&waiting]
        )
        .await,
        NOT_ALLOWED,
        "no one updates rows directly"
    );
    assert_eq!(
        db.err(
            bob_actor,
            "insert into jobs (uuid, kind) values ($1, 'hello')",
            &[&alice]
        )
        .await,
        NOT_ALLOWED,
        "bob cannot insert a job owned by alice"
    );
    assert_eq!(
        db.err(
            bob_actor,
            "select enqueue_job(kind => 'hello', owner => $1)",
            &[&alice]
        )
        .await,
        NOT_ALLOWED,
        "bob cannot enqueue for alice"
    );

    // Nothing bob tried changed alice's jobs.
    assert_eq!(db.job(running).await["status"], "running");
    assert_eq!(db.job(waiting).await["status"], "waiting");
    assert_eq!(db.job(ended).await["status"], "cancelled");
    let alice_sees = db.ok(Actor::User(alice), "select id from jobs", &[]).await;
    assert_eq!(alice_sees.len(), 3);
}

#[tokio::test]
async fn anon_can_do_nothing_at_all() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let id = db.enqueue(alice, "hello", 3).await;
    for sql in [
        "select * from jobs",
        "insert into jobs (kind) values ('hello')",
        "update jobs set status = 'cancelled'",
        "delete from jobs",
        "select enqueue_job('hello')",
        "select * from claim_jobs('w')",
        "select * from heartbeat_jobs('w', array[1::bigint])",
        "select finish_job(1, 'w')",
        "select * from finish_jobs('w', '[{\"id\": 1}]')",
        "select fail_job(1, 'w', '{}')",
        "select report_progress(1, 'w', 0.5)",
        "select cancel_job(1)",
        "select retry_job(1)",
        "select prune_jobs()",
        "select * from job_counts()",
        "select * from release_jobs('w', array[1::bigint])",
        "select cancel_jobs(array[1::bigint])",
        "select retry_jobs(array[1::bigint])",
        "select enqueue_and_start_job('hello', 'w')",
        "select * from schedules",
        "insert into schedules (kind, cron) values ('hello', '@hourly')",
        "select fire_schedule(1, now(), now() + interval '1 hour')",
        "select run_schedule(1)",
        "select * from paused_kinds",
        "insert into paused_kinds (kind) values ('hello')",
        "select * from retention_policies",
        "select set_retention(keep_days => 1)",
        "select apply_retention()",
        "select job_activity()",
    ] {
        assert_eq!(
            db.err(Actor::Anon, sql, &[]).await,
            NOT_ALLOWED,
            "anon: {sql}"
        );
    }
    assert_eq!(db.job(id).await["status"], "waiting");
    let open_to_anon = db
        .ok(
            Actor::Service,
            "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
             where n.nspname = 'public' and has_function_privilege('anon', p.oid, 'execute')",
            &[],
        )
        .await;
    let names: Vec<String> = open_to_anon.iter().map(|row| row.get("proname")).collect();
    assert_eq!(names, Vec::<String>::new(), "no function is open to anon");
}

#[tokio::test]
async fn a_signed_in_user_may_insert_only_the_input_columns_of_a_waiting_job() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let user = Actor::User(alice);
    let rows = db
        .ok(
            user,
            "insert into jobs (kind, context, priority) values ('hello', '{\"name\":\"Ada\"}', 5)
             returning id, uuid, status, attempt",
            &[],
        )
        .await;
    let (id, owner, status, attempt): (i64, uuid::Uuid, String, i32) = (
        rows[0].get(0),
        rows[0].get(1),
        rows[0].get(2),
        rows[0].get(3),
    );
    assert_eq!((owner, status.as_str(), attempt), (alice, "waiting", 0));
    for sql in [
        "insert into jobs (kind, status) values ('hello', 'finished')",
        "insert into jobs (kind, attempt) values ('hello', 7)",
        "insert into jobs (kind, locked_by) values ('hello', 'me')",
    ] {
        assert_eq!(db.err(user, sql, &[]).await, NOT_ALLOWED, "{sql}");
    }
    assert_eq!(
        db.err(
            user,
            "update jobs set status = 'finished' where id = $1",
            &[&id]
        )
        .await,
        NOT_ALLOWED
    );
    // The row inserted directly is an ordinary job: it can be claimed.
    assert_eq!(db.claim(alice, "w", 5).await, vec![id]);
}

#[tokio::test]
async fn service_role_sees_and_acts_on_every_users_jobs() {
    let mut db = Db::new().await;
    let (alice, bob) = (db.user().await, db.user().await);
    let a = db.enqueue(alice, "hello", 3).await;
    let b = db.enqueue(bob, "hello", 3).await;
    let all = db
        .ok(Actor::Service, "select id from jobs order by id", &[])
        .await;
    assert_eq!(
        all.iter().map(|r| r.get::<_, i64>(0)).collect::<Vec<_>>(),
        vec![a, b]
    );
    let claimed = db
        .ok(
            Actor::Service,
            "select id from claim_jobs('fleet', max_jobs => 10)",
            &[],
        )
        .await;
    assert_eq!(claimed.len(), 2);
    let made = db
        .ok(
            Actor::Service,
            "select uuid from enqueue_job('hello', owner => $1)",
            &[&bob],
        )
        .await;
    assert_eq!(made[0].get::<_, uuid::Uuid>(0), bob);
    assert_eq!(
        db.err(Actor::Service, "select enqueue_job('hello')", &[])
            .await,
        INVALID_ARGUMENT,
        "service_role must name the owner"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_share_a_job_and_skip_none() {
    const JOBS: i64 = 3000;
    const WORKERS: usize = 6;
    let mut db = Db::new().await;
    let alice = db.user().await;
    db.ok(
        Actor::User(alice),
        "select enqueue_job('noop') from generate_series(1, $1::bigint)",
        &[&JOBS],
    )
    .await;

    let mut tasks = Vec::new();
    for n in 0..WORKERS {
        let database = db.database.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = database.authenticator().await;
            let worker = format!("worker-{n}");
            let mut mine = Vec::new();
            loop {
                let rows = as_actor(
                    &mut client,
                    Actor::User(alice),
                    "select id from claim_jobs($1, max_jobs => 25)",
                    &[&worker],
                )
                .await
                .expect("claiming");
                if rows.is_empty() {
                    break;
                }
                for row in rows {
                    let id: i64 = row.get(0);
                    as_actor(
                        &mut client,
                        Actor::User(alice),
                        "select finish_job($1, $2, '{}')",
                        &[&id, &worker],
                    )
                    .await
                    .expect("finishing");
                    mine.push(id);
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a claimer task"));
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "a job was claimed twice");
    assert_eq!(all.len() as i64, JOBS, "every job was claimed once");
    let unfinished: i64 = db
        .admin
        .query_one(
            "select count(*) from jobs where status <> 'finished' or attempt <> 1",
            &[],
        )
        .await
        .expect("counting")
        .get(0);
    assert_eq!(unfinished, 0);
}

#[tokio::test]
async fn an_expired_lease_is_taken_back_and_the_old_worker_is_locked_out() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let user = Actor::User(alice);
    let id = db.enqueue(alice, "sleep", 3).await;
    assert_eq!(db.claim(alice, "first", 1).await, vec![id]);
    // While the lease holds, nobody else gets the job.
    assert!(db.claim(alice, "second", 1).await.is_empty());

    db.expire_lease(id).await;
    assert_eq!(db.claim(alice, "second", 1).await, vec![id], "taken back");
    let job = db.job(id).await;
    assert_eq!(
        (job["locked_by"].as_str(), job["attempt"].as_i64()),
        (Some("second"), Some(2))
    );
    assert_eq!(job["history"][0]["outcome"], "lost");
    assert_eq!(job["history"][0]["worker"], "first");
    assert_eq!(job["error"]["code"], "worker_lost");

    for sql in [
        "select finish_job($1, 'first', '{}')",
        "select fail_job($1, 'first', '{\"message\":\"late\"}')",
        "select report_progress($1, 'first', 0.9)",
    ] {
        assert_eq!(db.err(user, sql, &[&id]).await, LEASE_LOST, "{sql}");
    }
    let beats = db
        .ok(
            user,
            "select * from heartbeat_jobs('first', array[$1::bigint])",
            &[&id],
        )
        .await;
    assert!(
        beats.is_empty(),
        "the old worker's heartbeat extends nothing"
    );
    assert_eq!(
        db.job(id).await["locked_by"],
        "second",
        "the old worker changed nothing"
    );

    // The new holder finishes normally.
    db.ok(
        user,
        "select finish_job($1, 'second', '{\"ok\":true}')",
        &[&id],
    )
    .await;
    let job = db.job(id).await;
    assert_eq!(job["status"], "finished");
    assert_eq!(job["result"], json!({ "ok": true }));
}

#[tokio::test]
async fn a_lost_job_without_attempts_left_ends_failed_saying_its_worker_was_lost() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let id = db.enqueue(alice, "sleep", 1).await;
    db.claim(alice, "first", 1).await;
    db.expire_lease(id).await;
    assert!(
        db.claim(alice, "second", 1).await.is_empty(),
        "not run again"
    );
    let job = db.job(id).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "worker_lost");
    assert!(job["ended_at"].is_string());
    assert!(job["locked_by"].is_null());
}

#[tokio::test]
async fn finish_jobs_finishes_a_batch_but_only_what_the_worker_still_holds() {
    let mut db = Db::new().await;
    let (alice, bob) = (db.user().await, db.user().await);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(db.enqueue(alice, "hello", 3).await);
    }
    let bobs = db.enqueue(bob, "hello", 3).await;
    assert_eq!(db.claim(alice, "w", 3).await.len(), 3);
    assert_eq!(db.claim(bob, "w", 1).await, vec![bobs]);
    let (kept, expired, unclaimed) = (ids[0], ids[1], ids[3]);
    db.expire_lease(expired).await;

    // Alice's batch names a job she holds, one whose lease ran out, one she never
    // claimed, and one of bob's (held by a worker of the same name).
    let batch = json!([
        { "id": kept, "result": { "n": 1 } },
        { "id": expired, "result": { "n": 2 } },
        { "id": unclaimed },
        { "id": bobs, "result": { "n": 4 } },
    ]);
    let done = db
        .ok(
            Actor::User(alice),
            "select id from finish_jobs('w', $1)",
            &[&batch],
        )
        .await;
    let done: Vec<i64> = done.iter().map(|row| row.get(0)).collect();
    assert_eq!(
        done,
        vec![kept],
        "only the job still leased to w is finished"
    );
    let job = db.job(kept).await;
    assert_eq!(
        (
            job["status"].as_str(),
            job["result"].clone(),
            job["progress"].as_f64()
        ),
        (Some("finished"), json!({ "n": 1 }), Some(1.0))
    );
    assert_eq!(job["history"][0]["outcome"], "finished");
    assert_eq!(db.job(expired).await["status"], "running");
    assert_eq!(db.job(unclaimed).await["status"], "waiting");
    assert_eq!(
        db.job(bobs).await["status"],
        "running",
        "bob's job is untouched"
    );

    for bad in [json!({ "id": kept }), json!(vec![json!({ "id": 1 }); 1001])] {
        assert_eq!(
            db.err(Actor::User(alice), "select finish_jobs('w', $1)", &[&bad])
                .await,
            INVALID_ARGUMENT,
            "a batch that is not an array of at most 1000 is refused"
        );
    }
}

#[tokio::test]
async fn heartbeats_extend_only_live_leases_and_report_cancellation() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let user = Actor::User(alice);
    let a = db.enqueue(alice, "sleep", 3).await;
    let b = db.enqueue(alice, "sleep", 3).await;
    db.claim(alice, "w", 2).await;
    let before = db.job(a).await["locked_until"].clone();
    db.ok(user, "select cancel_job($1)", &[&b]).await;
    let rows = db
        .ok(
            user,
            "select id, cancel_requested from heartbeat_jobs('w', array[$1, $2, 999999]::bigint[], 600)
             order by id",
            &[&a, &b],
        )
        .await;
    let beats: Vec<(i64, bool)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(beats, vec![(a, false), (b, true)]);
    assert_ne!(db.job(a).await["locked_until"], before, "lease extended");
}

#[tokio::test]
async fn failures_back_off_exponentially_then_fail_at_max_attempts() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let user = Actor::User(alice);
    let id = db.enqueue(alice, "flaky", 3).await;
    let fail =
        "select status, extract(epoch from run_at - now())::float8 from fail_job($1, 'w', $2)";

    let mut delays = Vec::new();
    for attempt in 1..=3 {
        assert_eq!(db.claim(alice, "w", 1).await, vec![id], "attempt {attempt}");
        let error = json!({ "message": format!("boom {attempt}"), "code": "flaky" });
        let row = &db.ok(user, fail, &[&id, &error]).await[0];
        let (status, delay): (String, f64) = (row.get(0), row.get(1));
        if attempt < 3 {
            assert_eq!(status, "waiting");
            assert!(
                db.claim(alice, "w", 1).await.is_empty(),
                "not due during its backoff"
            );
            db.make_due(id).await;
        } else {
            assert_eq!(status, "failed");
        }
        delays.push(delay);
    }
    assert_eq!(&delays[..2], &[2.0, 4.0], "2^attempt seconds");

    let job = db.job(id).await;
    assert!(job["ended_at"].is_string());
    assert_eq!(job["error"]["message"], "boom 3");
    assert_eq!(job["error"]["attempt"], 3);
    let outcomes: Vec<&str> = job["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|entry| entry["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(outcomes, ["retry", "retry", "failed"]);
    assert_eq!(job["history"][1]["error"]["message"], "boom 2");
    assert!(job["history"][1]["started_at"].is_string());
}

#[tokio::test]
async fn the_backoff_is_capped_at_one_hour_and_a_caller_may_choose_it() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let user = Actor::User(alice);
    let id = db.enqueue(alice, "flaky", 20).await;
    db.admin
        .execute("update jobs set attempt = 14 where id = $1", &[&id])
        .await
        .expect("fast-forwarding attempts");
    db.claim(alice, "w", 1).await;
    let delay: f64 = db
        .ok(
            user,
            "select extract(epoch from run_at - now())::float8 from fail_job($1, 'w', '\"x\"')",
            &[&id],
        )
        .await[0]
        .get(0);
    assert_eq!(delay, 3600.0);
    db.make_due(id).await;
    db.claim(alice, "w", 1).await;
    let delay: f64 = db
        .ok(
            user,
            "select extract(epoch from run_at - now())::float8 from fail_job($1, 'w', '{}', retry_in_seconds => 0.5)",
            &[&id],
        )
        .await[0]
        .get(0);
    assert_eq!(delay, 0.5);
}

#[tokio::test]
async fn a_permanent_error_fails_the_job_at_once() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let id = db.enqueue(alice, "hello", 5).await;
    db.claim(alice, "w", 1).await;
    let status: String = db
        .ok(
            Actor::User(alice),
            "select status from fail_job($1, 'w', '{\"message\":\"bad input\"}', permanent => true)",
            &[&id],
        )
        .await[0]
        .get(0);
    assert_eq!(status, "failed");
}

#[tokio::test]
async fn cancelling_a_waiting_job_ends_it_and_a_running_one_is_ended_by_its_worker() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let user = Actor::User(alice);
    let waiting = db.enqueue(alice, "sleep", 3).await;
    let running = db.enqueue(alice, "sleep", 3).await;
    db.admin
        .execute("update jobs set priority = 1 where id = $1", &[&running])
        .await
        .expect("prioritising");
    assert_eq!(db.claim(alice, "w", 1).await, vec![running]);

    let status: String = db
        .ok(user, "select status from cancel_job($1)", &[&waiting])
        .await[0]
        .get(0);
    assert_eq!(status, "cancelled");
    assert!(db.job(waiting).await["ended_at"].is_string());
    assert!(
        db.claim(alice, "w", 5).await.is_empty(),
        "a cancelled job is never claimed"
    );

    let row = &db
        .ok(
            user,
            "select status, cancel_requested_at is not null from cancel_job($1)",
            &[&running],
        )
        .await[0];
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, bool>(1)),
        ("running".into(), true)
    );
    // Asking twice is harmless.
    db.ok(user, "select cancel_job($1)", &[&running]).await;
    let told: bool = db
        .ok(user, "select report_progress($1, 'w', 0.3)", &[&running])
        .await[0]
        .get(0);
    assert!(told, "progress reports tell the worker");
    let status: String = db
        .ok(
            user,
            "select status from fail_job($1, 'w', '{\"message\":\"cancelled\",\"code\":\"cancelled\"}')",
            &[&running],
        )
        .await[0]
        .get(0);
    assert_eq!(status, "cancelled");
    assert_eq!(db.job(running).await["history"][0]["outcome"], "cancelled");
}

#[tokio::test]
async fn a_lost_job_that_was_asked_to_cancel_ends_cancelled_not_rerun() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let id = db.enqueue(alice, "sleep", 3).await;
    db.claim(alice, "w", 1).await;
    db.ok(Actor::User(alice), "select cancel_job($1)", &[&id])
        .await;
    db.expire_lease(id).await;
    assert!(db.claim(alice, "other", 1).await.is_empty());
    assert_eq!(db.job(id).await["status"], "cancelled");
}

#[tokio::test]
async fn retry_puts_failed_and_cancelled_jobs_back_with_their_history() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let user = Actor::User(alice);
    let id = db.enqueue(alice, "flaky", 1).await;
    db.claim(alice, "w", 1).await;
    db.ok(
        user,
        "select fail_job($1, 'w', '{\"message\":\"once\"}')",
        &[&id],
    )
    .await;
    assert_eq!(db.job(id).await["status"], "failed");

    let row = &db
        .ok(
            user,
            "select status, max_attempts from retry_job($1)",
            &[&id],
        )
        .await[0];
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i32>(1)),
        ("waiting".into(), 2)
    );
    assert_eq!(db.claim(alice, "w", 1).await, vec![id], "due at once");
    db.ok(user, "select finish_job($1, 'w')", &[&id]).await;
    let job = db.job(id).await;
    assert_eq!(
        (job["status"].as_str(), job["attempt"].as_i64()),
        (Some("finished"), Some(2))
    );
    assert_eq!(job["history"].as_array().map(Vec::len), Some(2));

    let cancelled = db.enqueue(alice, "hello", 3).await;
    db.ok(user, "select cancel_job($1)", &[&cancelled]).await;
    let status: String = db
        .ok(user, "select status from retry_job($1)", &[&cancelled])
        .await[0]
        .get(0);
    assert_eq!(status, "waiting");
    assert!(db.job(cancelled).await["cancel_requested_at"].is_null());
}

#[tokio::test]
async fn every_invalid_transition_fails_with_its_code() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let user = Actor::User(alice);
    let waiting = db.enqueue(alice, "hello", 3).await;
    let finished = db.enqueue(alice, "hello", 3).await;
    db.admin
        .execute("update jobs set priority = 1 where id = $1", &[&finished])
        .await
        .expect("prioritising");
    db.claim(alice, "w", 1).await;
    db.ok(user, "select finish_job($1, 'w')", &[&finished])
        .await;

    let cases: &[(&str, i64, &str)] = &[
        ("select retry_job($1)", waiting, INVALID_TRANSITION),
        ("select retry_job($1)", finished, INVALID_TRANSITION),
        ("select cancel_job($1)", finished, INVALID_TRANSITION),
        ("select finish_job($1, 'w')", waiting, LEASE_LOST),
        ("select finish_job($1, 'w')", finished, LEASE_LOST),
        ("select fail_job($1, 'w', '{}')", finished, LEASE_LOST),
        ("select report_progress($1, 'w', 0.5)", waiting, LEASE_LOST),
        ("select cancel_job($1)", 987_654, JOB_NOT_FOUND),
        ("select retry_job($1)", 987_654, JOB_NOT_FOUND),
    ];
    for (sql, id, code) in cases {
        assert_eq!(&db.err(user, sql, &[id]).await, code, "{sql} on job {id}");
    }

    for sql in [
        "select * from claim_jobs('w', max_jobs => 0)",
        "select * from claim_jobs('w', max_jobs => 1001)",
        "select * from claim_jobs('w', lease_seconds => 0)",
        "select * from claim_jobs('')",
        "select enqueue_job('')",
        "select enqueue_job('hello', max_attempts => 0)",
        "select enqueue_job('hello', priority => 40000)",
        "select enqueue_job('hello', idempotency_key => '')",
        "select prune_jobs(statuses => array['running'])",
        "select prune_jobs(older_than => '-1 day')",
    ] {
        assert_eq!(db.err(user, sql, &[]).await, INVALID_ARGUMENT, "{sql}");
    }
    db.claim(alice, "w", 1).await;
    assert_eq!(
        db.err(user, "select report_progress($1, 'w', 1.5)", &[&waiting])
            .await,
        INVALID_ARGUMENT
    );
    // A failed call changed nothing.
    assert_eq!(db.job(waiting).await["progress"], Value::Null);
}

#[tokio::test]
async fn claims_take_due_jobs_by_priority_then_age_and_only_the_kinds_asked_for() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let user = Actor::User(alice);
    let mut ids = Vec::new();
    for (kind, priority, delay) in [
        ("hello", 0, "0"),
        ("hello", 5, "0"),
        ("sleep", 9, "0"),
        ("hello", 5, "0"),
        ("hello", 99, "1 hour"),
    ] {
        let id: i64 = db
            .ok(
                user,
                "select id from enqueue_job($1, priority => $2, run_at => now() + $3::text::interval)",
                &[&kind, &priority, &delay],
            )
            .await[0]
            .get(0);
        ids.push(id);
    }
    let claimed = db
        .ok(
            user,
            "select id from claim_jobs('w', kinds => array['hello'], max_jobs => 10)",
            &[],
        )
        .await;
    let order: Vec<i64> = claimed.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        order.iter().copied().collect::<BTreeSet<_>>(),
        [ids[0], ids[1], ids[3]].into(),
        "due hello jobs only: not the sleep job, not the one scheduled in an hour"
    );
    let first: i64 = db
        .ok(
            user,
            "select id from claim_jobs('w2', kinds => array['sleep'])",
            &[],
        )
        .await[0]
        .get(0);
    assert_eq!(first, ids[2]);

    // Claim order: priority, then age.
    let mut db = Db::new().await;
    let alice = db.user().await;
    let low = db.enqueue(alice, "hello", 3).await;
    let high_old = db.enqueue(alice, "hello", 3).await;
    let high_new = db.enqueue(alice, "hello", 3).await;
    db.admin
        .execute(
            "update jobs set priority = 5 where id in ($1, $2)",
            &[&high_old, &high_new],
        )
        .await
        .expect("prioritising");
    let mut order = Vec::new();
    for _ in 0..3 {
        order.extend(db.claim(alice, "w", 1).await);
    }
    assert_eq!(order, vec![high_old, high_new, low]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_gives_one_job_per_owner_even_under_concurrency() {
    let mut db = Db::new().await;
    let (alice, bob) = (db.user().await, db.user().await);
    let sql = "select id from enqueue_job('hello', '{\"n\":1}', idempotency_key => 'order-42')";
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let database = db.database.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = database.authenticator().await;
            let rows = as_actor(&mut client, Actor::User(alice), sql, &[])
                .await
                .expect("enqueue");
            rows[0].get::<_, i64>(0)
        }));
    }
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.expect("an enqueue task"));
    }
    assert_eq!(ids.len(), 1, "every call answered the same job");
    let bobs: i64 = db.ok(Actor::User(bob), sql, &[]).await[0].get(0);
    assert!(!ids.contains(&bobs), "keys are per owner");
    let total: i64 = db
        .admin
        .query_one("select count(*) from jobs", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(total, 2);
}

#[tokio::test]
async fn prune_deletes_only_the_callers_old_ended_jobs() {
    let mut db = Db::new().await;
    let (alice, bob) = (db.user().await, db.user().await);
    let old = db.enqueue(alice, "hello", 3).await;
    let recent = db.enqueue(alice, "hello", 3).await;
    let bobs = db.enqueue(bob, "hello", 3).await;
    let waiting = db.enqueue(alice, "hello", 3).await;
    db.admin
        .execute(
            "update jobs set status = 'finished', ended_at = now() - interval '40 days' where id in ($1, $2);
             ",
            &[&old, &bobs],
        )
        .await
        .expect("ageing jobs");
    db.admin
        .execute(
            "update jobs set status = 'finished', ended_at = now() where id = $1",
            &[&recent],
        )
        .await
        .expect("finishing");
    let deleted: i64 = db.ok(Actor::User(alice), "select prune_jobs()", &[]).await[0].get(0);
    assert_eq!(deleted, 1);
    let left: Vec<i64> = db
        .admin
        .query("select id from jobs order by id", &[])
        .await
        .expect("listing")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, vec![recent, bobs, waiting]);
}

#[tokio::test]
async fn owners_delete_ended_jobs_but_not_running_ones() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let user = Actor::User(alice);
    let running = db.enqueue(alice, "sleep", 3).await;
    db.claim(alice, "w", 1).await;
    let waiting = db.enqueue(alice, "sleep", 3).await;
    let deleted: Vec<i64> = db
        .ok(
            user,
            "delete from jobs where id in ($1, $2) returning id",
            &[&running, &waiting],
        )
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(deleted, vec![waiting]);
    assert_eq!(db.job(running).await["status"], "running");
}

#[tokio::test]
async fn counts_per_status_and_changes_since_a_cursor() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let user = Actor::User(alice);
    let a = db.enqueue(alice, "hello", 3).await;
    let _b = db.enqueue(alice, "hello", 3).await;
    let c = db.enqueue(alice, "sleep", 3).await;
    let cursor: String = db
        .ok(user, "select max(updated_at)::text from jobs", &[])
        .await[0]
        .get(0);
    db.ok(user, "select cancel_job($1)", &[&c]).await;
    db.claim(alice, "w", 1).await;

    let changed: Vec<i64> = db
        .ok(
            user,
            "select id from jobs where updated_at > $1::text::timestamptz order by updated_at",
            &[&cursor],
        )
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        changed,
        vec![c, a],
        "exactly the changed jobs, in the order they changed"
    );

    let counts: Vec<(String, i64)> = db
        .ok(
            user,
            "select status, count from job_counts() order by status",
            &[],
        )
        .await
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("cancelled".into(), 1),
            ("running".into(), 1),
            ("waiting".into(), 1)
        ]
    );
    let hello_only: i64 = db
        .ok(
            user,
            "select sum(count)::bigint from job_counts(array['hello'])",
            &[],
        )
        .await[0]
        .get(0);
    assert_eq!(hello_only, 2);

    // The search box's pattern, matched as ILIKE on the kinds; another user's jobs of
    // a matching kind are not counted.
    let bob = db.user().await;
    db.enqueue(bob, "hello", 3).await;
    let matching = |pattern: &'static str| {
        format!("select coalesce(sum(count), 0)::bigint from job_counts(null, '{pattern}')")
    };
    for (pattern, expected) in [
        ("%ELL%", 2_i64),
        ("%ll%", 2),
        ("s%", 1),
        ("%e%", 3),
        ("x%", 0),
    ] {
        let counted: i64 = db.ok(user, &matching(pattern), &[]).await[0].get(0);
        assert_eq!(counted, expected, "jobs of kinds like {pattern}");
    }
    let both: i64 = db
        .ok(
            user,
            "select coalesce(sum(count), 0)::bigint from job_counts(array['hello'], '%l%')
              where status = 'waiting'",
            &[],
        )
        .await[0]
        .get(0);
    assert_eq!(both, 1, "kinds and pattern together, one state");
}

#[tokio::test]
async fn migrations_apply_once_and_again_is_a_no_op() {
    let database = TestDatabase::new().await;
    let mut admin = database.admin().await;
    assert!(
        apply_migrations(&mut admin)
            .await
            .expect("re-applying")
            .is_empty()
    );
    let versions: i64 = admin
        .query_one(
            "select count(*) from supabase_migrations.schema_migrations",
            &[],
        )
        .await
        .expect("counting")
        .get(0);
    assert_eq!(versions as usize, jobdeck_postgres::MIGRATIONS.len());
}

#[tokio::test]
async fn the_migration_adopts_a_table_of_the_original_shape_and_frees_stuck_jobs() {
    let database = TestDatabase::new().await;
    let admin = database.admin().await;
    // A database where the original pattern's table came first.
    admin
        .batch_execute(
            "drop table public.jobs cascade;
             delete from supabase_migrations.schema_migrations;
             create table public.jobs (
               id bigint generated by default as identity primary key,
               uuid uuid references auth.users (id),
               status text, context jsonb,
               started_at timestamptz, ended_at timestamptz, created_at timestamptz default now());
             insert into auth.users (id) values ('00000000-0000-0000-0000-00000000000a');
             insert into public.jobs (uuid, status, context, started_at) values
               ('00000000-0000-0000-0000-00000000000a', 'running', '{\"name\":\"stuck\"}', now() - interval '1 day'),
               ('00000000-0000-0000-0000-00000000000a', 'finished', '{}', now());",
        )
        .await
        .expect("creating the original table");
    let mut admin = admin;
    apply_migrations(&mut admin)
        .await
        .expect("adopting the table");

    let mut api = database.authenticator().await;
    let owner = uuid::Uuid::parse_str("00000000-0000-0000-0000-00000000000a").expect("a uuid");
    let rows = as_actor(
        &mut api,
        Actor::User(owner),
        "select id, context from claim_jobs('w')",
        &[],
    )
    .await
    .expect("claiming");
    assert_eq!(rows.len(), 1, "the stuck job is taken back");
    assert_eq!(rows[0].get::<_, Value>(1), json!({ "name": "stuck" }));
    let err = as_actor(&mut api, Actor::Anon, "select * from jobs", &[])
        .await
        .expect_err("anon");
    assert_eq!(sqlstate(&err), NOT_ALLOWED);
}

#[tokio::test]
async fn a_released_job_waits_again_without_using_an_attempt() {
    let mut db = Db::new().await;
    let (alice, bob) = (db.user().await, db.user().await);
    let user = Actor::User(alice);
    let id = db.enqueue(alice, "sleep", 1).await;
    let asked_to_cancel = db.enqueue(alice, "sleep", 1).await;
    db.claim(alice, "w", 2).await;
    db.ok(user, "select cancel_job($1)", &[&asked_to_cancel])
        .await;

    let none = db
        .ok(
            Actor::User(bob),
            "select id from release_jobs('w', array[$1::bigint])",
            &[&id],
        )
        .await;
    assert!(none.is_empty(), "bob cannot release alice's job");
    let other = db
        .ok(
            user,
            "select id from release_jobs('other', array[$1::bigint])",
            &[&id],
        )
        .await;
    assert!(other.is_empty(), "only the lease holder releases");

    let released = db
        .ok(
            user,
            "select id from release_jobs('w', array[$1, $2]::bigint[]) order by id",
            &[&id, &asked_to_cancel],
        )
        .await;
    assert_eq!(released.len(), 2);
    let job = db.job(id).await;
    assert_eq!(
        (job["status"].as_str(), job["attempt"].as_i64()),
        (Some("waiting"), Some(0))
    );
    assert_eq!(job["history"][0]["outcome"], "released");
    assert_eq!(db.job(asked_to_cancel).await["status"], "cancelled");
    assert_eq!(
        db.claim(alice, "w2", 5).await,
        vec![id],
        "its one attempt is still there"
    );
    assert_eq!(
        db.err(
            Actor::Anon,
            "select * from release_jobs('w', array[1::bigint])",
            &[]
        )
        .await,
        NOT_ALLOWED
    );
}

/// Each user's counts as `job_counts` answers them and as their rows say.
async fn counts_and_rows(db: &mut Db, user: Uuid) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
    let counted = db
        .ok(
            Actor::User(user),
            "select status, count from job_counts() order by status",
            &[],
        )
        .await
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let rows = db
        .admin
        .query(
            "select status, count(*) from jobs where uuid = $1 group by status order by status",
            &[&user],
        )
        .await
        .expect("counting rows")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    (counted, rows)
}

#[tokio::test]
async fn counts_follow_every_change_made_by_concurrent_workers() {
    const JOBS: i64 = 600;
    const WORKERS: usize = 4;
    let mut db = Db::new().await;
    let alice = db.user().await;
    let bob = db.user().await;
    let carol = db.user().await;
    db.ok(
        Actor::User(alice),
        "select enqueue_job(case when g % 3 = 0 then 'sleep' else 'hello' end, max_attempts => 1)
           from generate_series(1, $1::bigint) g",
        &[&JOBS],
    )
    .await;
    db.enqueue(carol, "hello", 3).await;

    // Workers claim in batches and end each job one statement at a time, finished,
    // failed or cancelled, while bob enqueues his own.
    let mut tasks = Vec::new();
    for n in 0..WORKERS {
        let database = db.database.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = database.authenticator().await;
            let worker = format!("worker-{n}");
            let me = Actor::User(alice);
            loop {
                let rows = as_actor(
                    &mut client,
                    me,
                    "select id from claim_jobs($1, max_jobs => 7)",
                    &[&worker],
                )
                .await
                .expect("claiming");
                if rows.is_empty() {
                    break;
                }
                for row in rows {
                    let id: i64 = row.get(0);
                    if id % 4 == 1 {
                        // Asked to cancel while running: its worker's failure ends it
                        // cancelled.
                        as_actor(&mut client, me, "select cancel_job($1)", &[&id])
                            .await
                            .expect("cancelling");
                    }
                    let sql = match id % 4 {
                        0 | 1 => "select fail_job($1, $2, '{\"message\": \"no\"}')",
                        _ => "select finish_job($1, $2, '{}')",
                    };
                    as_actor(&mut client, me, sql, &[&id, &worker])
                        .await
                        .expect("ending a job");
                }
            }
        }));
    }
    let database = db.database.clone();
    tasks.push(tokio::spawn(async move {
        let mut client = database.authenticator().await;
        for _ in 0..50 {
            as_actor(
                &mut client,
                Actor::User(bob),
                "select enqueue_job('hello')",
                &[],
            )
            .await
            .expect("enqueuing");
        }
    }));
    for task in tasks {
        task.await.expect("a task");
    }
    // Then deletions, a retry of everything failed, an owner and a kind changed by
    // service_role, and a user deleted.
    db.ok(
        Actor::User(alice),
        "delete from jobs where id in (select id from jobs where status = 'finished' limit 40)",
        &[],
    )
    .await;
    db.ok(
        Actor::User(alice),
        "select retry_jobs(array(select id from jobs where status = 'failed'))",
        &[],
    )
    .await;
    db.ok(
        Actor::Service,
        "update jobs set uuid = $1, kind = 'moved'
          where id in (select id from jobs where uuid = $2 and status = 'cancelled' limit 10)",
        &[&bob, &alice],
    )
    .await;
    db.admin
        .execute("delete from auth.users where id = $1", &[&carol])
        .await
        .expect("deleting a user");

    for user in [alice, bob, carol] {
        let (counted, rows) = counts_and_rows(&mut db, user).await;
        assert_eq!(counted, rows, "the counts are the rows' counts");
    }
    let (counted, _) = counts_and_rows(&mut db, carol).await;
    assert!(counted.is_empty(), "a deleted user has no jobs left");
    let moved: i64 = db
        .ok(
            Actor::User(bob),
            "select sum(count)::bigint from job_counts(array['moved'])",
            &[],
        )
        .await[0]
        .get(0);
    assert_eq!(moved, 10);

    // Hundreds of statements later the tallies have been folded, not kept one per
    // statement (unfolded, alice's would be over 1,200 rows: two for each job ended
    // alone, and the claims'); and nobody reads another user's. A fold comes with one
    // statement in 32 at random and is skipped while another holds its lock, so the
    // rows left since the last one vary (446 once): the bound is half the unfolded.
    let tally_rows: i64 = db
        .admin
        .query_one(
            "select count(*) from job_tallies where uuid = $1",
            &[&alice],
        )
        .await
        .expect("counting tallies")
        .get(0);
    assert!(tally_rows < 600, "{tally_rows} tally rows for alice");
    let seen_by_bob: i64 = db
        .ok(
            Actor::User(bob),
            "select count(*) from job_tallies where uuid <> $1",
            &[&bob],
        )
        .await[0]
        .get(0);
    assert_eq!(seen_by_bob, 0);
    let denied = db
        .err(
            Actor::User(bob),
            "insert into job_tallies values ($1, 'hello', 'finished', 1000)",
            &[&bob],
        )
        .await;
    assert_eq!(denied, NOT_ALLOWED);
}
