//! The peers, on the sandbox's own PostgreSQL in the same run: graphile-worker (driven
//! by `bench/graphile/bench.mjs`, in a database of its own) and pgbench's ceiling for a
//! job's smallest possible life, one INSERT and one UPDATE in a transaction.

use std::{path::Path, process::Stdio};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use tokio::process::Command;

use crate::{cpu, stack::Stack};

pub const DATABASE: &str = "bench_peers";

/// Creates the peers' database (once per run).
pub async fn prepare(stack: &Stack) -> anyhow::Result<()> {
    let admin = stack.admin("postgres").await?;
    admin
        .batch_execute(&format!("create database {DATABASE}"))
        .await?;
    let peers = stack.admin(DATABASE).await?;
    peers
        .batch_execute(
            "create table ceiling (
               id bigserial primary key,
               status text not null default 'waiting',
               payload jsonb not null default '{}',
               ended_at timestamptz
             )",
        )
        .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
struct Drained {
    seconds: f64,
}

#[derive(Debug, Deserialize)]
struct Latencies {
    latencies_ms: Vec<f64>,
}

/// Runs the graphile-worker script with `args`; answers what it printed last (JSON).
async fn graphile<T: for<'de> Deserialize<'de>>(
    stack: &Stack,
    dir: &Path,
    args: &[String],
) -> anyhow::Result<T> {
    let mut node = Command::new("node");
    node.arg("bench.mjs")
        .args(args)
        .current_dir(dir)
        .env("DATABASE_URL", stack.db_url(DATABASE));
    let stdout = stdout_of(&mut node, "graphile-worker's script").await?;
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("reading the script's answer: {last}"))
}

/// graphile-worker draining `n` no-op jobs added in bulk, with `concurrency`; answers
/// jobs per second and the CPU the drain took (its worker: the node process, start-up
/// included).
pub async fn graphile_throughput(
    stack: &Stack,
    dir: &Path,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, cpu::PerThousand)> {
    let _: serde_json::Value = graphile(stack, dir, &["enqueue".into(), n.to_string()]).await?;
    let before = cpu::Sample::take(stack.sandbox_pid());
    let args = ["drain".into(), n.to_string(), concurrency.to_string()];
    let drained: Drained = graphile(stack, dir, &args).await?;
    let cpu = before.per_thousand(&cpu::Sample::take(stack.sandbox_pid()), n, false);
    Ok((n as f64 / drained.seconds, cpu))
}

/// graphile-worker's add-job-to-start latency (ms), woken by LISTEN/NOTIFY.
pub async fn graphile_latency(stack: &Stack, dir: &Path, samples: u64) -> anyhow::Result<Vec<f64>> {
    let args = ["latency".to_string(), samples.to_string()];
    let answer: Latencies = graphile(stack, dir, &args).await?;
    Ok(answer.latencies_ms)
}

/// pgbench with `clients` connections for `seconds`: transactions per second of one
/// INSERT and one UPDATE of the row it inserted, and the CPU per 1000 of them.
pub async fn pgbench(
    stack: &Stack,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<(f64, cpu::PerThousand)> {
    let script = stack.dir.join("ceiling.sql");
    std::fs::write(
        &script,
        "BEGIN;\n\
         INSERT INTO ceiling (payload) VALUES ('{}') RETURNING id \\gset\n\
         UPDATE ceiling SET status = 'finished', ended_at = now() WHERE id = :id;\n\
         END;\n",
    )?;
    let pgbench = jobdeck_postgres::find_bin_dir()?.join("pgbench");
    let before = cpu::Sample::take(stack.sandbox_pid());
    let mut command = Command::new(&pgbench);
    command
        .args(["--no-vacuum", "--protocol=prepared"])
        .arg(format!("--client={clients}"))
        .arg(format!("--jobs={}", clients.min(2)))
        .arg(format!("--time={seconds}"))
        .arg(format!("--file={}", script.display()))
        .arg(stack.db_url(DATABASE));
    let stdout = stdout_of(&mut command, "pgbench").await?;
    let after = cpu::Sample::take(stack.sandbox_pid());
    let tps: f64 = stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("tps = ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| format!("no tps in pgbench's output: {stdout}"))?;
    let transactions = (tps * seconds as f64).max(1.0) as usize;
    Ok((tps, before.per_thousand(&after, transactions, false)))
}

/// Runs `command` to its end; answers what it printed, or fails with all it said.
async fn stdout_of(command: &mut Command, what: &str) -> anyhow::Result<String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {what}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "{what} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}
