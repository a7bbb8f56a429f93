//! The dashboard's queries at scale: `user_jobs` jobs of the signed-in user among
//! `total` jobs of a thousand users, each query made as the app makes it (the core's
//! jobs client, through the REST API, under row-level security) and timed end to end
//! over loopback, so the figure bounds the server's time from above.

use std::time::{Duration, Instant};

use chrono::Utc;
use jobdeck_core::{ActivitySpan, JobFilter, JobStatus, JobsClient};

use crate::stack::Stack;

/// The UI's page size (ui/src/state.ts).
const PAGE_SIZE: usize = 50;
const OTHER_USERS: i64 = 999;

#[derive(Debug)]
pub struct Timings {
    pub first_page: Vec<f64>,
    pub counts: Vec<f64>,
    pub changes: Vec<f64>,
    /// First page and counts requested together, as the UI loads them on opening.
    pub opening: Vec<f64>,
    /// First pages of the failed jobs, of one kind (a fifth of the user's jobs), and of
    /// a search (which matches every job's kind, so all of them are counted).
    pub by_status: Vec<f64>,
    pub by_kind: Vec<f64>,
    pub search: Vec<f64>,
    /// First pages of the jobs whose input contains `{"customer": 42}` (a thousandth
    /// of the user's jobs), and of those whose input holds the word "42" (as many,
    /// and one more), each with its total, counted from the rows.
    pub by_input: Vec<f64>,
    pub by_words: Vec<f64>,
    /// First pages of the jobs whose result contains `{"rows": 42}` (a thousandth of
    /// the finished ones), with their total.
    pub by_result: Vec<f64>,
    /// The activity screen's figures (`job_activity`) over the last hour and day: the
    /// user's jobs ended one a second, so 3,600 and up to 86,400 of them.
    pub activity_hour: Vec<f64>,
    pub activity_day: Vec<f64>,
}

/// Fills the jobs table as the superuser: `user_jobs` for the signed-in user, the rest
/// spread over other users; then lets PostgreSQL gather statistics, as autovacuum
/// would on a live database.
pub async fn seed(stack: &Stack, user_id: &str, total: i64, user_jobs: i64) -> anyhow::Result<()> {
    let admin = stack.admin("postgres").await?;
    admin
        .execute(
            "insert into auth.users (id, aud, role, email, email_confirmed_at,
                                     raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
             select gen_random_uuid(), 'authenticated', 'authenticated',
                    'other' || g || '@bench.invalid', now(), '{}', '{}', now(), now()
               from generate_series(1, $1::bigint) g",
            &[&OTHER_USERS],
        )
        .await?;
    // Most jobs ended; some failed or were cancelled, some wait (scheduled for later,
    // so that the desktop app's worker, measured next, is not busy running them).
    let insert = "
        insert into public.jobs (uuid, kind, status, context, result, error, attempt,
                                 run_at, created_at, started_at, ended_at, updated_at)
        select owner, case when g % 5 = 0 then 'bench.report' else 'bench.noop' end, status, jsonb_build_object('n', g, 'customer', g % 1000),
               case when status = 'finished' then jsonb_build_object('rows', g % 1000) end,
               case when status = 'failed' then '{\"message\": \"failed\"}'::jsonb end,
               case when status = 'waiting' then 0 else 1 end,
               case when status = 'waiting' then now() + interval '1 year' else at end,
               at, case when status <> 'waiting' then at end,
               case when status <> 'waiting' then at end, at
          from (select g, owner,
                       (array['finished','finished','finished','finished','finished','finished',
                              'finished','failed','cancelled','waiting'])[1 + g % 10] as status,
                       now() - interval '1 second' * ($2::bigint - g) as at
                  from generate_series(1, $2::bigint) g,
                       lateral (select $1::uuid as owner) o) s";
    let user: uuid::Uuid = user_id.parse()?;
    admin.execute(insert, &[&user, &user_jobs]).await?;
    let others = "
        insert into public.jobs (uuid, kind, status, context, attempt, created_at, started_at,
                                 ended_at, updated_at)
        select o.ids[1 + g % array_length(o.ids, 1)], 'bench.noop', 'finished', '{}', 1,
               now(), now(), now(), now() - interval '1 hour'
          from generate_series(1, $1::bigint) g,
               (select array_agg(id) as ids from auth.users
                 where email like 'other%@bench.invalid') o";
    let rest = total - user_jobs;
    admin.execute(others, &[&rest]).await?;
    // Separately: a multi-statement batch is one transaction, and VACUUM refuses those.
    admin.batch_execute("vacuum analyze public.jobs").await?;
    admin
        .batch_execute("vacuum analyze public.job_tallies")
        .await?;
    Ok(())
}

/// Times each query `rounds` times (ms), after one round to warm the caches.
pub async fn measure(jobs: &JobsClient, rounds: usize) -> anyhow::Result<Timings> {
    let first = JobFilter {
        limit: PAGE_SIZE,
        ..JobFilter::default()
    };
    // A cursor a minute back: the changes the live list picks up after a pause.
    let cursor = Utc::now() - chrono::Duration::minutes(1);
    let failed = JobFilter {
        statuses: vec![JobStatus::Failed],
        ..first.clone()
    };
    let one_kind = JobFilter {
        kind: Some("bench.report".into()),
        ..first.clone()
    };
    let searched = JobFilter {
        search: Some("bench".into()),
        ..first.clone()
    };
    let by_input = JobFilter {
        input: Some(serde_json::json!({ "customer": 42 })),
        ..first.clone()
    };
    let by_words = JobFilter {
        words: Some("42".into()),
        ..first.clone()
    };
    let by_result = JobFilter {
        result: Some(serde_json::json!({ "rows": 42 })),
        ..first.clone()
    };
    let mut timings = Timings {
        first_page: Vec::new(),
        counts: Vec::new(),
        changes: Vec::new(),
        opening: Vec::new(),
        by_status: Vec::new(),
        by_kind: Vec::new(),
        search: Vec::new(),
        by_input: Vec::new(),
        by_words: Vec::new(),
        by_result: Vec::new(),
        activity_hour: Vec::new(),
        activity_day: Vec::new(),
    };
    for round in 0..=rounds {
        let start = Instant::now();
        let page = jobs.list(&first).await?;
        let page_time = start.elapsed();
        let start = Instant::now();
        jobs.counts().await?;
        let counts_time = start.elapsed();
        let start = Instant::now();
        jobs.changed_since(cursor, 100).await?;
        let changes_time = start.elapsed();
        let start = Instant::now();
        let (page_again, counts) = tokio::join!(jobs.list(&first), jobs.counts());
        let opening_time = start.elapsed();
        page_again?;
        counts?;
        anyhow::ensure!(page.jobs.len() == PAGE_SIZE, "the first page is not full");
        let mut filtered = Vec::new();
        for filter in [
            &failed, &one_kind, &searched, &by_input, &by_words, &by_result,
        ] {
            let start = Instant::now();
            let page = jobs.list(filter).await?;
            filtered.push(ms(start.elapsed()));
            anyhow::ensure!(!page.jobs.is_empty(), "a filtered page is empty");
        }
        let mut activity = Vec::new();
        for span in [ActivitySpan::Hour, ActivitySpan::Day] {
            let start = Instant::now();
            let figures = jobs.activity(span).await?;
            activity.push(ms(start.elapsed()));
            anyhow::ensure!(!figures.kinds.is_empty(), "no activity over the {span:?}");
        }
        if round > 0 {
            timings.activity_hour.push(activity[0]);
            timings.activity_day.push(activity[1]);
            timings.first_page.push(ms(page_time));
            timings.counts.push(ms(counts_time));
            timings.changes.push(ms(changes_time));
            timings.opening.push(ms(opening_time));
            timings.by_status.push(filtered[0]);
            timings.by_kind.push(filtered[1]);
            timings.search.push(filtered[2]);
            timings.by_input.push(filtered[3]);
            timings.by_words.push(filtered[4]);
            timings.by_result.push(filtered[5]);
        }
    }
    Ok(timings)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
