//! What a kinds file's executors cost beside a kind compiled into the worker: the
//! same no-op drained as a program (`command`, `true` spawned per job) and as a
//! database function (`rpc`, a function that does nothing, called through the REST
//! API as the user).

use std::time::Duration;

use anyhow::{Context as _, ensure};
use jobdeck_core::{JobsClient, kinds::KindsFile, worker::Registry};
use serde_json::json;

use crate::{cpu, jobdeck, stack::Stack};

const COMMAND: &str = "bench.command";
const RPC: &str = "bench.rpc";
const FUNCTION: &str = "bench_noop";

/// Jobs per second and CPU of each: the built-in no-op, the no-op program, the no-op
/// function, `n` jobs each at `concurrency`.
pub struct Overhead {
    pub builtin: (f64, cpu::PerThousand),
    pub command: (f64, cpu::PerThousand),
    pub rpc: (f64, cpu::PerThousand),
}

pub async fn overhead(
    stack: &Stack,
    jobs: &JobsClient,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Overhead> {
    // Created as a user creates theirs (in the SQL editor, as the owner); the REST
    // API's schema cache hears of it from the DDL's event trigger.
    stack
        .admin("postgres")
        .await?
        .batch_execute(&format!(
            "create or replace function public.{FUNCTION}() returns void
               language sql as 'select'"
        ))
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Err(error) = jobs.call(FUNCTION, &json!({})).await {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the REST API did not serve {FUNCTION} within 10 s: {error}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let path = stack.dir.join("kinds.toml");
    let text = format!(
        "[[kind]]\nname = \"{COMMAND}\"\ncommand = [\"true\"]\n\n\
         [[kind]]\nname = \"{RPC}\"\nrpc = \"{FUNCTION}\"\n"
    );
    std::fs::write(&path, &text).context("writing the kinds file")?;
    let file = KindsFile::load(&path, &Registry::new(), true);
    ensure!(
        file.problems.is_empty(),
        "the kinds file: {:?}",
        file.problems
    );
    let registry = || file.with_builtin(Registry::new());

    Ok(Overhead {
        builtin: jobdeck::throughput(stack, jobs, n, concurrency).await?,
        command: jobdeck::drain(stack, jobs, registry(), COMMAND, n, concurrency).await?,
        rpc: jobdeck::drain(stack, jobs, registry(), RPC, n, concurrency).await?,
    })
}
