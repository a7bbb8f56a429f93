//! Where the CPU time goes: counters read from /proc before and after a measurement,
//! split into the worker (this process or the peer's), the REST API (the sandbox
//! process) and PostgreSQL (the sandbox's server processes). A coarse profile,
//! but it is the split that decides what to optimise next.

use crate::procs;

/// Cumulative CPU time, in clock ticks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// This process, with the children it waited for (the programs a kind ran).
    this: u64,
    /// The sandbox process itself (HTTP, JSON, JWTs, the pool).
    api: u64,
    /// Every process below the sandbox: PostgreSQL's.
    postgres: u64,
    /// The whole machine, for what runs outside the three (a peer's worker).
    machine: u64,
}

/// CPU milliseconds per 1000 jobs, by part.
#[derive(Debug, Clone, Copy)]
pub struct PerThousand {
    pub worker: f64,
    pub api: f64,
    pub postgres: f64,
}

impl PerThousand {
    pub fn total(&self) -> f64 {
        self.worker + self.api + self.postgres
    }
}

impl Sample {
    pub fn take(sandbox: u32) -> Sample {
        let table = procs::table();
        let own = |pid: u32| table.get(&pid).map_or(0, |p| p.ticks);
        // With the children each waited for: backends of closed connections.
        let postgres = procs::descendants(&table, sandbox)
            .into_iter()
            .filter_map(|pid| table.get(&pid))
            .map(|p| p.ticks + p.waited_for)
            .sum();
        Sample {
            this: table
                .get(&std::process::id())
                .map_or(0, |p| p.ticks + p.waited_for),
            api: own(sandbox),
            postgres,
            machine: machine_busy(),
        }
    }

    /// The time from `self` to `later` per 1000 of `jobs`. `in_this_process` says
    /// whether the worker is this process; otherwise it is whatever the machine did
    /// beyond the API, PostgreSQL and this process.
    pub fn per_thousand(&self, later: &Sample, jobs: usize, in_this_process: bool) -> PerThousand {
        let ms = |ticks: u64| ticks as f64 * 1000.0 / ticks_per_second() * 1000.0 / jobs as f64;
        let api = later.api.saturating_sub(self.api);
        let postgres = later.postgres.saturating_sub(self.postgres);
        let worker = if in_this_process {
            later.this.saturating_sub(self.this)
        } else {
            later
                .machine
                .saturating_sub(self.machine)
                .saturating_sub(api + postgres + later.this.saturating_sub(self.this))
        };
        PerThousand {
            worker: ms(worker),
            api: ms(api),
            postgres: ms(postgres),
        }
    }
}

/// Busy ticks of every CPU: user, nice, system, irq, softirq, steal.
fn machine_busy() -> u64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum()
}

/// USER_HZ: 100 on every Linux this runs on (the kernel's ABI for /proc).
fn ticks_per_second() -> f64 {
    100.0
}
