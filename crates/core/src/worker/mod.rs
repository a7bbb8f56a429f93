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
//! - `executor`: one job's attempt and its outcome;
//! - `completer`: successes written in batches;
//! - `heartbeat`: leases extended, cancellation and lost leases delivered;
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
mod producer;
pub mod registry;
mod running;
mod shared;

pub use config::WorkerConfig;
pub use events::{WorkerEvent, WorkerStatus};
pub use handle::{Worker, WorkerHandle};
pub use kind::{InvalidInput, JobContext, JobError, JobKind};
pub use registry::{EnqueueError, KindInfo, Registry};
