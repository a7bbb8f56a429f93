//! Schedules and paused kinds (supabase/migrations/20261203*) against a real
//! PostgreSQL: a tick becomes one job however many workers race for it, another user
//! can neither see nor touch a schedule, and a paused kind is claimed by nobody.

#[allow(dead_code)] // each test file uses its own part of the helpers
mod support;

use std::collections::BTreeSet;

use support::{Actor, Db, as_actor};
use tokio_postgres::Client;
use uuid::Uuid;

/// A schedule of `user`'s, due at `due` (an SQL expression).
async fn schedule(db: &mut Db, user: Uuid, due: &str) -> i64 {
    let rows = db
        .ok(
            Actor::User(user),
            &format!(
                "insert into schedules (kind, context, cron, next_run_at) \
                 values ('hello', '{{\"name\": \"tick\"}}', '* * * * *', {due}) returning id"
            ),
            &[],
        )
        .await;
    rows[0].get(0)
}

async fn schedule_jobs(db: &Db, id: i64) -> Vec<(i64, Option<String>)> {
    db.admin
        .query(
            "select id, idempotency_key from jobs where schedule_id = $1 order by id",
            &[&id],
        )
        .await
        .expect("reading a schedule's jobs")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[tokio::test]
async fn each_tick_becomes_one_job_however_many_workers_race_for_it() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let id = schedule(
        &mut db,
        alice,
        "date_trunc('minute', now()) - interval '100 minutes'",
    )
    .await;
    let mut workers: Vec<Client> = Vec::new();
    for _ in 0..3 {
        workers.push(db.database.authenticator().await);
    }
    // 100 ticks, a minute apart, each fired by three workers at once: every worker reads
    // the tick as due and asks for it; the database decides.
    let start: String = db
        .admin
        .query_one(
            "select next_run_at::text from schedules where id = $1",
            &[&id],
        )
        .await
        .expect("reading the schedule")
        .get(0);
    let mut made = 0;
    for n in 0..100 {
        let fired = race(&mut workers, alice, id, &start, n).await;
        assert_eq!(
            fired, 1,
            "tick {n}: exactly one of three workers made its job"
        );
        made += fired;
    }
    let jobs = schedule_jobs(&db, id).await;
    assert_eq!(jobs.len(), made);
    let keys: BTreeSet<&Option<String>> = jobs.iter().map(|(_, key)| key).collect();
    assert_eq!(
        keys.len(),
        100,
        "one job per tick, each under its tick's key"
    );
    let row = db
        .admin
        .query_one(
            "select last_job_id, last_run_at = $2::text::timestamptz + interval '99 minutes' \
               from schedules where id = $1",
            &[&id, &start],
        )
        .await
        .expect("reading the schedule");
    assert_eq!(row.get::<_, i64>(0), jobs[99].0);
    assert!(row.get::<_, bool>(1), "the last tick run is the hundredth");

    // A tick fired again (a worker that read it long ago) makes nothing.
    assert_eq!(race(&mut workers[..1], alice, id, &start, 0).await, 0);
    assert_eq!(schedule_jobs(&db, id).await.len(), 100);
}

/// Every worker fires tick `n` (`n` minutes after `start`) at once; answers how many
/// made a job.
async fn race(workers: &mut [Client], user: Uuid, id: i64, start: &str, n: i32) -> usize {
    let calls = workers.iter_mut().map(|client| async move {
        as_actor(
            client,
            Actor::User(user),
            "select count(*) from (select $2::text::timestamptz + make_interval(mins => $3) as t) tick, \
               fire_schedule($1, t, t + interval '1 minute', t)",
            &[&id, &start, &n],
        )
        .await
        .expect("firing a tick")[0]
            .get::<_, i64>(0)
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .sum::<i64>() as usize
}

#[tokio::test]
async fn a_skipped_tick_moves_on_without_a_job_and_a_paused_schedule_makes_nothing() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    let id = schedule(&mut db, alice, "now() - interval '1 hour'").await;
    let skipped = db
        .ok(
            Actor::User(alice),
            "select count(*) from fire_schedule($1, (select next_run_at from schedules where id = $1), \
                     now() + interval '1 minute')",
            &[&id],
        )
        .await;
    assert_eq!(skipped[0].get::<_, i64>(0), 0);
    assert!(schedule_jobs(&db, id).await.is_empty());
    let moved: bool = db
        .admin
        .query_one(
            "select next_run_at > now() from schedules where id = $1",
            &[&id],
        )
        .await
        .expect("reading the schedule")
        .get(0);
    assert!(moved, "the schedule waits for its next tick");

    db.admin
        .execute(
            "update schedules set next_run_at = now() - interval '1 minute' where id = $1",
            &[&id],
        )
        .await
        .expect("making it due");
    db.ok(
        Actor::User(alice),
        "update schedules set enabled = false where id = $1",
        &[&id],
    )
    .await;
    let paused = db
        .ok(
            Actor::User(alice),
            "select count(*) from fire_schedule($1, (select next_run_at from schedules where id = $1), \
                     now() + interval '1 minute', now() - interval '1 minute')",
            &[&id],
        )
        .await;
    assert_eq!(paused[0].get::<_, i64>(0), 0);
    assert!(
        schedule_jobs(&db, id).await.is_empty(),
        "a paused schedule makes nothing"
    );

    // Resumed, it forgets its old tick: the next worker computes one from now.
    db.ok(
        Actor::User(alice),
        "update schedules set enabled = true where id = $1",
        &[&id],
    )
    .await;
    let forgotten: bool = db
        .admin
        .query_one(
            "select next_run_at is null from schedules where id = $1",
            &[&id],
        )
        .await
        .expect("reading the schedule")
        .get(0);
    assert!(forgotten);

    // Run now makes a job whatever the ticks say, linked to the schedule.
    let now = db
        .ok(Actor::User(alice), "select (run_schedule($1)).id", &[&id])
        .await;
    let job: i64 = now[0].get(0);
    assert_eq!(schedule_jobs(&db, id).await, vec![(job, None)]);
    let last: i64 = db
        .admin
        .query_one("select last_job_id from schedules where id = $1", &[&id])
        .await
        .expect("reading the schedule")
        .get(0);
    assert_eq!(last, job);
}

#[tokio::test]
async fn another_user_can_neither_see_nor_touch_a_schedule() {
    let mut db = Db::new().await;
    let (alice, bob) = (db.user().await, db.user().await);
    let id = schedule(&mut db, alice, "now() - interval '1 minute'").await;
    let bob_actor = Actor::User(bob);
    assert!(
        db.ok(bob_actor, "select * from schedules", &[])
            .await
            .is_empty()
    );
    for sql in [
        "update schedules set cron = '@daily' where id = $1 returning id",
        "delete from schedules where id = $1 returning id",
    ] {
        assert!(
            db.ok(bob_actor, sql, &[&id]).await.is_empty(),
            "{sql} by bob"
        );
    }
    let due: String = db
        .admin
        .query_one(
            "select next_run_at::text from schedules where id = $1",
            &[&id],
        )
        .await
        .expect("reading the schedule")
        .get(0);
    let fired = db
        .ok(
            bob_actor,
            "select count(*) from fire_schedule($1, $2::text::timestamptz, now() + interval '1 minute', \
                     $2::text::timestamptz)",
            &[&id, &due],
        )
        .await;
    assert_eq!(fired[0].get::<_, i64>(0), 0, "bob fires nothing of alice's");
    assert_eq!(
        db.err(bob_actor, "select run_schedule($1)", &[&id]).await,
        "JD001",
        "bob cannot run alice's schedule"
    );
    assert_eq!(
        db.err(
            bob_actor,
            "insert into schedules (uuid, kind, cron) values ($1, 'hello', '@hourly')",
            &[&alice]
        )
        .await,
        "42501",
        "bob cannot make a schedule for alice"
    );
    assert_eq!(
        db.err(
            Actor::User(alice),
            "update schedules set last_job_id = 1 where id = $1",
            &[&id]
        )
        .await,
        "42501",
        "what a schedule made is the database's to write"
    );
    assert!(schedule_jobs(&db, id).await.is_empty());
    let row = db
        .admin
        .query_one(
            "select cron, next_run_at < now() from schedules where id = $1",
            &[&id],
        )
        .await
        .expect("reading the schedule");
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, bool>(1)),
        ("* * * * *".into(), true)
    );
}

#[tokio::test]
async fn a_schedule_needs_a_known_zone_and_forgets_its_tick_when_its_expression_changes() {
    let mut db = Db::new().await;
    let alice = db.user().await;
    assert_eq!(
        db.err(
            Actor::User(alice),
            "insert into schedules (kind, cron, timezone) values ('hello', '@hourly', 'Mars/Olympus')",
            &[]
        )
        .await,
        "22023"
    );
    let id = schedule(&mut db, alice, "now() + interval '1 minute'").await;
    db.ok(
        Actor::User(alice),
        "update schedules set cron = '@daily', timezone = 'Asia/Tokyo' where id = $1",
        &[&id],
    )
    .await;
    let forgotten: bool = db
        .admin
        .query_one(
            "select next_run_at is null from schedules where id = $1",
            &[&id],
        )
        .await
        .expect("reading the schedule")
        .get(0);
    assert!(forgotten, "the old expression's tick is gone");
    assert_eq!(
        db.err(
            Actor::User(alice),
            "select fire_schedule($1, now(), now() + interval '1 hour', now() + interval '1 hour')",
            &[&id]
        )
        .await,
        "22023",
        "a tick that has not come is refused"
    );
}

#[tokio::test]
async fn a_paused_kind_is_claimed_by_none_of_the_users_workers_until_resumed() {
    let mut db = Db::new().await;
    let (alice, bob) = (db.user().await, db.user().await);
    let paused = db.enqueue(alice, "report", 3).await;
    let other = db.enqueue(alice, "hello", 3).await;
    let bobs = db.enqueue(bob, "report", 3).await;
    db.ok(
        Actor::User(alice),
        "insert into paused_kinds (kind) values ('report')",
        &[],
    )
    .await;
    assert!(
        db.ok(Actor::User(bob), "select * from paused_kinds", &[])
            .await
            .is_empty(),
        "bob does not see alice's paused kinds"
    );
    assert_eq!(db.claim(alice, "alice-laptop", 10).await, vec![other]);
    assert!(db.claim(alice, "alice-desktop", 10).await.is_empty());
    let service = db
        .ok(
            Actor::Service,
            "select id from claim_jobs(worker => 'shared', max_jobs => 10)",
            &[],
        )
        .await;
    let ids: Vec<i64> = service.iter().map(|row| row.get(0)).collect();
    assert_eq!(
        ids,
        vec![bobs],
        "bob's kind is not paused; alice's is, for every worker"
    );
    let started = db
        .ok(
            Actor::User(alice),
            "select status from enqueue_and_start_job('report', 'alice-laptop')",
            &[],
        )
        .await;
    assert_eq!(started[0].get::<_, String>(0), "waiting");
    // Lost while paused: taken back only once resumed.
    db.ok(
        Actor::User(alice),
        "delete from paused_kinds where kind = 'report'",
        &[],
    )
    .await;
    let resumed = db.claim(alice, "alice-desktop", 1).await;
    assert_eq!(resumed, vec![paused]);
    db.ok(
        Actor::User(alice),
        "insert into paused_kinds (kind) values ('report')",
        &[],
    )
    .await;
    db.expire_lease(paused).await;
    assert!(db.claim(alice, "alice-laptop", 10).await.is_empty());
    db.ok(
        Actor::User(alice),
        "delete from paused_kinds where kind = 'report'",
        &[],
    )
    .await;
    assert_eq!(db.claim(alice, "alice-laptop", 1).await, vec![paused]);
    assert_eq!(
        db.err(
            Actor::User(bob),
            "insert into paused_kinds (uuid, kind) values ($1, 'hello')",
            &[&alice]
        )
        .await,
        "42501",
        "bob cannot pause alice's kinds"
    );
}
