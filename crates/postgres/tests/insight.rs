//! Retention and activity (supabase/migrations/20261204*) against a real PostgreSQL:
//! a policy removes exactly the jobs it names and only the caller's, and the activity
//! figures are the ones the rows give.

#[allow(dead_code)] // each test file uses its own part of the helpers
mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use support::{Actor, Db};
use uuid::Uuid;

/// A job of `user`'s that ended (`status`) `minutes` ago after running `ms`, written
/// by the superuser as if it had run then.
async fn ended(db: &Db, user: Uuid, kind: &str, status: &str, minutes: f64, ms: f64) -> i64 {
    db.admin
        .query_one(
            "insert into jobs (uuid, kind, status, attempt, started_at, ended_at, updated_at)
             select $1, $2, $3, 1, e - make_interval(secs => $5::float8 / 1000), e, e
               from (select now() - make_interval(secs => $4::float8 * 60) as e) t
             returning id",
            &[&user, &kind, &status, &minutes, &ms],
        )
        .await
        .expect("an ended job")
        .get(0)
}

/// The ids of `user`'s jobs, as the superuser sees them.
async fn ids(db: &Db, user: Uuid) -> BTreeSet<i64> {
    db.admin
        .query("select id from jobs where uuid = $1", &[&user])
        .await
        .expect("reading jobs")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Calls apply_retention as `user` in batches of `batch` until one removes fewer;
/// answers how many were removed and in how many calls.
async fn apply(db: &mut Db, user: Uuid, batch: i32) -> (i64, usize) {
    let (mut removed, mut calls) = (0, 0);
    loop {
        let rows = db
            .ok(
                Actor::User(user),
                "select apply_retention(batch => $1)",
                &[&batch],
            )
            .await;
        let now: i64 = rows[0].get(0);
        removed += now;
        calls += 1;
        if now < i64::from(batch) {
            return (removed, calls);
        }
    }
}

#[tokio::test]
async fn retention_removes_exactly_what_the_policy_says_and_only_the_callers() {
    let mut db = Db::new().await;
    let (alice, bob) = (db.user().await, db.user().await);

    // Alice: five old ended jobs of `report` (40 days), three recent ones, one recent
    // `mail`, and a waiting and a running job older than any limit.
    let day = 24.0 * 60.0;
    let mut old = BTreeSet::new();
    for status in ["finished", "failed", "cancelled", "finished", "finished"] {
        old.insert(ended(&db, alice, "report", status, 40.0 * day, 10.0).await);
    }
    let mut recent = Vec::new();
    for _ in 0..3 {
        recent.push(ended(&db, alice, "report", "finished", 60.0, 10.0).await);
    }
    let mail = ended(&db, alice, "mail", "finished", 30.0, 10.0).await;
    let running = db.enqueue(alice, "report", 3).await;
    let waiting = db.enqueue(alice, "report", 3).await;
    assert_eq!(db.claim(alice, "w", 1).await, [running]);
    db.admin
        .execute(
            "update jobs set created_at = now() - interval '90 days' where uuid = $1 and ended_at is null",
            &[&alice],
        )
        .await
        .expect("aging the unfinished jobs");
    // Bob: old ended jobs of his own, and a policy-free account.
    let bobs: BTreeSet<i64> = [
        ended(&db, bob, "report", "finished", 40.0 * day, 10.0).await,
        ended(&db, bob, "report", "failed", 40.0 * day, 10.0).await,
    ]
    .into();

    // No policy: nothing goes.
    assert_eq!(apply(&mut db, alice, 500).await, (0, 1));

    // Keep 30 days, applied two at a time: the five old ones go in three calls.
    db.ok(
        Actor::User(alice),
        "select set_retention(keep_days => 30)",
        &[],
    )
    .await;
    let before = ids(&db, alice).await;
    assert_eq!(apply(&mut db, alice, 2).await, (5, 3));
    let after = ids(&db, alice).await;
    assert_eq!(
        before.difference(&after).copied().collect::<BTreeSet<_>>(),
        old
    );
    assert_eq!(ids(&db, bob).await, bobs, "bob's jobs stay");
    // Bob applying his (absent) policy removes nothing of anyone's.
    assert_eq!(apply(&mut db, bob, 500).await, (0, 1));

    // Keep the last 2 of each kind: the oldest recent `report` goes; `mail` (one) and
    // the unfinished jobs stay.
    db.ok(
        Actor::User(alice),
        "select set_retention(keep_last => 2)",
        &[],
    )
    .await;
    assert_eq!(apply(&mut db, alice, 500).await, (1, 1));
    let expected: BTreeSet<i64> = [recent[1], recent[2], mail, waiting, running].into();
    assert_eq!(ids(&db, alice).await, expected);
    assert_eq!(db.job(running).await["status"], "running");

    // Another user can neither read nor change alice's policy.
    let seen = db
        .ok(Actor::User(bob), "select * from retention_policies", &[])
        .await;
    assert!(seen.is_empty(), "bob sees no policy of alice's");
    let changed = db
        .ok(
            Actor::User(bob),
            "update retention_policies set keep_last = 1 returning uuid",
            &[],
        )
        .await;
    assert!(changed.is_empty(), "bob changes no policy of alice's");
    assert_eq!(
        db.err(
            Actor::User(bob),
            "insert into retention_policies (uuid, keep_last) values ($1, 1)",
            &[&alice]
        )
        .await,
        "42501",
        "bob cannot set a policy for alice"
    );
    assert_eq!(
        apply(&mut db, alice, 500).await,
        (0, 1),
        "still keep_last 2"
    );

    // Out-of-range limits and batches are refused; clearing keeps everything.
    for sql in [
        "select set_retention(keep_days => 0)",
        "select set_retention(keep_last => -1)",
        "select apply_retention(batch => 0)",
        "select apply_retention(batch => 100000)",
    ] {
        assert_eq!(db.err(Actor::User(alice), sql, &[]).await, "22023", "{sql}");
    }
    db.ok(Actor::User(alice), "select set_retention()", &[])
        .await;
    let left = db
        .ok(Actor::User(alice), "select * from retention_policies", &[])
        .await;
    assert!(left.is_empty(), "cleared");
    assert_eq!(ids(&db, alice).await, expected);
}

/// `p` of `values` (sorted) as PostgreSQL's percentile_cont computes it.
fn percentile(values: &[f64], p: f64) -> f64 {
    let rank = p * (values.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    values[low] + (values[high] - values[low]) * (rank - low as f64)
}

#[tokio::test]
async fn the_activity_figures_are_the_ones_the_rows_give() {
    let mut db = Db::new().await;
    let (alice, bob) = (db.user().await, db.user().await);
    // Alice's jobs over the last two hours: finished and failed, of two kinds, at
    // various minutes and durations; a job retried twice in the hour; jobs of bob's.
    for (i, minutes) in [0.2, 1.5, 1.7, 5.0, 12.0, 33.3, 59.0, 75.0, 110.0]
        .into_iter()
        .enumerate()
    {
        let status = if i % 3 == 2 { "failed" } else { "finished" };
        let kind = if i % 2 == 0 { "report" } else { "mail" };
        ended(&db, alice, kind, status, minutes, 100.0 * (i + 1) as f64).await;
    }
    let retried = db.enqueue(alice, "report", 5).await;
    db.admin
        .execute(
            "update jobs set history = jsonb_build_array(
               jsonb_build_object('attempt', 1, 'outcome', 'retry', 'ended_at', now() - interval '20 minutes'),
               jsonb_build_object('attempt', 2, 'outcome', 'lost', 'ended_at', now() - interval '3 minutes'),
               jsonb_build_object('attempt', 3, 'outcome', 'retry', 'ended_at', now() - interval '3 hours'))
             where id = $1",
            &[&retried],
        )
        .await
        .expect("a history of retries");
    for minutes in [1.0, 2.0, 3.0] {
        ended(&db, bob, "report", "failed", minutes, 5.0).await;
    }

    let activity: Value = db
        .ok(Actor::User(alice), "select job_activity('hour')", &[])
        .await[0]
        .get(0);
    assert_eq!(activity["bucket_seconds"], 60);
    let buckets = activity["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 60, "an hour of minutes");

    // The same figures from alice's rows, read by the superuser.
    let rows = db
        .admin
        .query(
            "select kind, status, extract(epoch from ended_at)::float8,
                    extract(epoch from ended_at - started_at)::float8 * 1000,
                    extract(epoch from now())::float8
               from jobs where uuid = $1 and status in ('finished', 'failed')",
            &[&alice],
        )
        .await
        .expect("alice's rows");
    let now: f64 = rows[0].get(4);
    let minute = |epoch: f64| (epoch / 60.0).floor() as i64;
    let from = minute(now) - 59;
    let mut per_minute: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new();
    let mut durations: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for row in &rows {
        let (kind, status, at, ms): (String, String, f64, f64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if minute(at) < from {
            continue;
        }
        let bucket = per_minute.entry(minute(at)).or_default();
        if status == "finished" {
            bucket.0 += 1;
        } else {
            bucket.1 += 1;
        }
        durations.entry(kind).or_default().push(ms);
    }
    for ago in [20.0, 3.0] {
        per_minute.entry(minute(now - ago * 60.0)).or_default().2 += 1;
    }
    let charted: BTreeMap<i64, (i64, i64, i64)> = buckets
        .iter()
        .enumerate()
        .filter(|(_, b)| b["finished"] != 0 || b["failed"] != 0 || b["retried"] != 0)
        .map(|(i, b)| {
            let figure = |name: &str| b[name].as_i64().expect("a count");
            (
                from + i as i64,
                (figure("finished"), figure("failed"), figure("retried")),
            )
        })
        .collect();
    assert_eq!(charted, per_minute);
    let total: i64 = charted.values().map(|(f, x, _)| f + x).sum();
    assert_eq!(
        total, 7,
        "seven of alice's nine ended in the hour; none of bob's"
    );

    let kinds = activity["kinds"].as_array().expect("kinds");
    let names: Vec<&str> = kinds.iter().filter_map(|k| k["kind"].as_str()).collect();
    assert_eq!(names, ["mail", "report"]);
    for kind in kinds {
        let mut values = durations[kind["kind"].as_str().unwrap_or_default()].clone();
        values.sort_by(f64::total_cmp);
        let close = |name: &str, expected: f64| {
            let charted = kind[name].as_f64().expect("a duration");
            assert!(
                (charted - expected).abs() < 0.1,
                "{}: {name} {charted} vs {expected}",
                kind["kind"]
            );
        };
        close("p50_ms", percentile(&values, 0.5));
        close("p90_ms", percentile(&values, 0.9));
        close("max_ms", values[values.len() - 1]);
        let counted = kind["finished"].as_i64().unwrap_or(0) + kind["failed"].as_i64().unwrap_or(0);
        assert_eq!(counted, values.len() as i64);
    }

    // A day is counted per hour; a span it does not know is refused, and anon reads
    // nothing.
    let day: Value = db
        .ok(Actor::User(alice), "select job_activity('day')", &[])
        .await[0]
        .get(0);
    assert_eq!(day["bucket_seconds"], 3600);
    assert_eq!(day["buckets"].as_array().map(Vec::len), Some(24));
    let ended_in_day: i64 = day["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| b["finished"].as_i64().unwrap_or(0) + b["failed"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(ended_in_day, 9);
    assert_eq!(
        db.err(Actor::User(alice), "select job_activity('year')", &[])
            .await,
        "22023"
    );
    assert_eq!(
        db.err(Actor::Anon, "select job_activity('hour')", &[])
            .await,
        "42501"
    );
}
