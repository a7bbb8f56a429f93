//! How a worker runs.

use std::time::Duration;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this worker in each job's lease (`locked_by`); unique per process.
    pub name: String,
    /// How many jobs run at once.
    pub concurrency: usize,
    /// Claim only these kinds. `None` claims the kinds of its registry: a job of a
    /// kind this worker cannot run waits for a worker that can.
    pub kinds: Option<Vec<String>>,
    /// How long a claim holds a job without a heartbeat. A worker that dies loses its
    /// jobs to others after this.
    pub lease: Duration,
    /// An attempt running longer than this fails (and is retried).
    pub attempt_timeout: Duration,
    /// The first and the longest wait between claims that found nothing (and between
    /// claims that failed).
    pub poll_min: Duration,
    pub poll_max: Duration,
}

impl WorkerConfig {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            concurrency: 4,
            kinds: None,
            // A lease and the longest idle poll together stay within 30 s: a dead
            // worker's job is running again within half a minute.
            lease: Duration::from_secs(25),
            attempt_timeout: Duration::from_secs(3600),
            poll_min: Duration::from_millis(250),
            poll_max: Duration::from_secs(5),
        }
    }

    /// A worker name unique to this process on this machine: `<role>-<host>-<random>`
    /// (`desktop-…`, `cli-…`), so the lease on a job says which machine runs it.
    pub fn unique_name(role: &str) -> String {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        format!(
            "{role}-{}-{}",
            if host.is_empty() { "host" } else { &host },
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    }

    /// The lease in whole seconds, as the job functions take it.
    pub(super) fn lease_seconds(&self) -> u32 {
        self.lease.as_secs().clamp(1, 86_400) as u32
    }
}
