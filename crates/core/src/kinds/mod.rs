//! Job kinds: the built-in ones, and the user's own from a kinds file.
//!
//! # Layout
//! - [`builtin`](mod@builtin): the demo kinds compiled in (hello, sleep, flaky,
//!   summarize).
//! - `file`: the kinds file (TOML) read into kinds, with a problem (file, line, key)
//!   for each entry it cannot take; the valid ones still load.
//! - `schema`: a declared input JSON Schema, compiled and checked.
//! - the three executors a kinds file can name, each running as the signed-in user:
//!   `command` (a program, its input on stdin, its messages on stdout), `rpc` (a
//!   database function through the REST API), `http` (an endpoint or an Edge
//!   Function).

pub mod builtin;
mod command;
mod file;
mod http;
mod rpc;
mod schema;

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures::{FutureExt as _, future::BoxFuture};
use serde_json::Value;

pub use builtin::builtin;
pub use file::{KindsFile, KindsProblem};

use crate::worker::{InvalidInput, JobContext, JobError, kind::Handler};

/// The kinds file at [`kinds_path`], read. A file named by `--kinds` or
/// `JOBDECK_KINDS` must exist; the default one need not (it is then empty).
pub fn load(explicit: Option<&Path>) -> KindsFile {
    let named =
        explicit.is_some() || std::env::var_os("JOBDECK_KINDS").is_some_and(|p| !p.is_empty());
    match kinds_path(explicit) {
        Some(path) => KindsFile::load(&path, &builtin(), named),
        None => KindsFile::default(),
    }
}

/// Where the kinds file is: `explicit` (`--kinds FILE`), else `JOBDECK_KINDS`, else
/// `kinds.toml` in Jobdeck's folder of the XDG config dir (`~/.config/jobdeck/`).
pub fn kinds_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("JOBDECK_KINDS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(config.join("jobdeck").join("kinds.toml"))
}

/// What runs a kinds file's job: one of the three executors.
pub(crate) trait Execute: Send + Sync + 'static {
    fn run(
        self: Arc<Self>,
        input: Value,
        ctx: JobContext,
    ) -> impl Future<Output = Result<Value, JobError>> + Send + 'static;

    /// How long a stopped attempt may take to clean up (see [`Handler::stop_grace`]).
    fn stop_grace(&self) -> Duration {
        Duration::ZERO
    }
}

/// A kinds file's kind: its input schema and its executor.
pub(crate) struct FileKind<E> {
    input: schema::InputSchema,
    exec: Arc<E>,
}

impl<E: Execute> Handler for FileKind<E> {
    fn schema(&self) -> Value {
        self.input.schema().clone()
    }

    fn validate(&self, input: &Value) -> Result<(), InvalidInput> {
        self.input.validate(input)
    }

    fn run(&self, input: Value, ctx: JobContext) -> BoxFuture<'static, Result<Value, JobError>> {
        if let Err(invalid) = self.input.validate(&input) {
            // Enqueued by a client that does not know the schema.
            let error =
                JobError::permanent(format!("invalid input: {invalid}")).with_code("invalid_input");
            return async move { Err(error) }.boxed();
        }
        Arc::clone(&self.exec).run(input, ctx).boxed()
    }

    fn stop_grace(&self) -> Duration {
        self.exec.stop_grace()
    }
}
