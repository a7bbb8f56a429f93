//! Realtime's delivery: changes to the user's jobs made at a steady rate, heard by
//! one or many subscribers of the user (each its own session and socket, as each of
//! the user's devices has), timed from just before the change's INSERT is sent until a subscriber
//! has it decoded; and the sandbox's CPU (its Realtime server, PostgreSQL) per change.

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::{Context as _, ensure};
use jobdeck_core::{
    JobsClient,
    realtime::{ChangeKind, LiveState, Realtime, RealtimeEvent},
};
use tokio::{sync::mpsc, time::Instant};

use crate::{
    cpu,
    stack::{self, Stack},
};

/// A kind no worker claims, so the rows only change when this module changes them.
const KIND: &str = "bench.live";

pub struct Delivery {
    /// Milliseconds, one per change and subscriber.
    pub latencies: Vec<f64>,
    /// Changes made, and the rate they were made at.
    pub changes: usize,
    pub per_second: f64,
    pub cpu: cpu::PerThousand,
}

/// `subscribers` sockets of the user, then `rate` inserts a second for `seconds`;
/// every subscriber must hear every insert.
pub async fn delivery(
    stack: &Stack,
    jobs: &JobsClient,
    subscribers: usize,
    rate: u32,
    seconds: u64,
) -> anyhow::Result<Delivery> {
    let project = stack.project()?;
    let (heard, mut hearing) = mpsc::unbounded_channel::<(i64, Instant)>();
    let mut sockets = Vec::new();
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..subscribers {
        // A session each, as each device has: no two subscribers share a token.
        let device = stack::jobs_client(project.clone(), stack::EMAIL, stack::PASSWORD).await?;
        let realtime = Realtime::jobs(&project, Arc::clone(device.session()));
        let mut events = realtime.subscribe();
        let heard = heard.clone();
        readers.spawn(async move {
            while let Ok(event) = events.recv().await {
                if let RealtimeEvent::Change(change) = event
                    && change.kind == ChangeKind::Insert
                    && change.record["kind"] == KIND
                    && let Some(id) = change.record["id"].as_i64()
                {
                    let _ = heard.send((id, Instant::now()));
                }
            }
        });
        sockets.push(realtime);
    }
    drop(heard);
    for realtime in &sockets {
        tokio::time::timeout(
            Duration::from_secs(30),
            realtime.state().wait_for(|s| *s == LiveState::Live),
        )
        .await
        .context("a subscriber was not live within 30 s")??;
    }

    let user = jobs.session().user().context("signed out")?;
    let owner: uuid::Uuid = user.id.parse()?;
    let admin = stack.admin("postgres").await?;
    let insert = admin
        .prepare("insert into public.jobs (uuid, kind, context) values ($1, $2, '{}') returning id")
        .await?;
    let n = (u64::from(rate) * seconds) as usize;
    let mut sent: HashMap<i64, Instant> = HashMap::with_capacity(n);
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate);
    let before = cpu::Sample::take(stack.sandbox_pid());
    let start = Instant::now();
    for _ in 0..n {
        ticks.tick().await;
        let at = Instant::now();
        let row = admin.query_one(&insert, &[&owner, &KIND]).await?;
        sent.insert(row.get(0), at);
    }
    let made_in = start.elapsed();

    let mut latencies = Vec::with_capacity(n * subscribers);
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.len() < n * subscribers {
        let Ok(Some((id, at))) = tokio::time::timeout_at(deadline, hearing.recv()).await else {
            break;
        };
        if let Some(sent) = sent.get(&id) {
            latencies.push(at.duration_since(*sent).as_secs_f64() * 1000.0);
        }
    }
    let cpu = before.per_thousand(&cpu::Sample::take(stack.sandbox_pid()), n, true);
    for realtime in &sockets {
        realtime.shutdown().await;
    }
    readers.shutdown().await;
    admin
        .execute("delete from public.jobs where kind = $1", &[&KIND])
        .await?;
    ensure!(
        latencies.len() == n * subscribers,
        "{} of {} deliveries arrived within 30 s",
        latencies.len(),
        n * subscribers
    );
    Ok(Delivery {
        latencies,
        changes: n,
        per_second: n as f64 / made_in.as_secs_f64(),
        cpu,
    })
}
