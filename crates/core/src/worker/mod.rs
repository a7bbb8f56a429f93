//! Running the user's jobs in background tasks.
//!
//! # Layout
//! The public surface:
//! - [`kind`]: the [`JobKind`] trait (typed input with a JSON Schema, typed output),
//!   the [`JobContext`] a handler gets, [`JobError`]; [`registry`]: the kinds a worker
//!   runs, registered in one place.
//! - `config`, `events`, `handle`: [`WorkerConfig`], [`WorkerEvent`] and
//!   [`WorkerStatus`], the [`Worker`] and its [`WorkerHandle`].
//!
//! The machinery, each part with its own small state, after River's layout:
//! - `producer`: the claim loop and the enqueue fast path, which get jobs into slots
//!   (`claims`: its state);
//! - `running`: the jobs running here and the tracker their tasks run in;
//! - `executor`: one job's attempt and its outcome; `logs`: the attempt's log, sent
//!   in batches beside it;
//! - `completer`: successes written in batches;
//! - `heartbeat`: leases extended, cancellation and lost leases delivered;
//! - `scheduler`: due schedule ticks made into jobs (one job per tick, decided by
//!   the database, however many workers race);
//! - `retention`: the user's retention policy applied in small batches;
//! - `live`: the claim loop, the scheduler and retention woken by Realtime for jobs
//!   enqueued, schedules and the policy changed anywhere;
//! - `shared`: what the parts share, each part's state side by side.
//!
//! Stopping is two-level: [`WorkerHandle::shutdown`] stops claiming and waits for the
//! job tasks within a grace period, then stops them and hands them back.

mod claims;
mod completer;
mod config;
mod events;
mod executor;
mod handle;
mod heartbeat;
pub mod kind;
mod live;
mod logs;
mod producer;
pub mod registry;
mod retention;
mod running;
mod scheduler;
mod shared;

pub use config::WorkerConfig;
pub use events::{WorkerEvent, WorkerStatus};
pub use handle::{Worker, WorkerHandle};
pub use kind::{InvalidInput, JobContext, JobError, JobKind};
pub use logs::{
    MAX_BYTES as LOG_MAX_BYTES, MAX_LINE_CHARS as LOG_MAX_LINE_CHARS, MAX_LINES as LOG_MAX_LINES,
};
pub use registry::{EnqueueError, KindExecutor, KindInfo, KindOptions, KindSource, Registry};
