//! Running the user's jobs in background tasks.
//!
//! - [`kind`]: the [`JobKind`] trait (typed input with a JSON Schema, typed output),
//!   the [`JobContext`] a handler gets, [`JobError`].
//! - [`registry`]: the kinds a worker runs, registered in one place.
//! - [`runtime`]: the [`Worker`] and its [`WorkerHandle`].

pub mod kind;
pub mod registry;
pub mod runtime;

pub use kind::{InvalidInput, JobContext, JobError, JobKind};
pub use registry::{KindInfo, Registry};
pub use runtime::{EnqueueError, Worker, WorkerConfig, WorkerEvent, WorkerHandle, WorkerStatus};
