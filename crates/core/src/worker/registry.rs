//! The job kinds a worker can run, registered in one place: the ones compiled in
//! (built-in, or an embedding program's own through [`JobKind`]) and the ones a kinds
//! file declares.

use std::{collections::BTreeMap, fmt, sync::Arc, time::Duration};

use serde::Serialize;
use serde_json::Value;

use super::kind::{Handler, InvalidInput, JobKind, Typed};
use crate::{Error, ErrorBody, ErrorCode, Job, JobsClient, NewJob};

/// Why enqueueing refused a job.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("invalid input: {0}")]
    Invalid(InvalidInput),
    #[error(transparent)]
    Api(#[from] Error),
}

impl EnqueueError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EnqueueError::Invalid(_) => ErrorCode::Validation,
            EnqueueError::Api(error) => error.code(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        match self {
            EnqueueError::Invalid(invalid) => ErrorBody {
                code: ErrorCode::Validation,
                message: self.to_string(),
                field: Some(invalid.field.clone()).filter(|f| !f.is_empty()),
            },
            EnqueueError::Api(error) => error.body(),
        }
    }
}

/// Where a kind comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum KindSource {
    /// Compiled into the program (Jobdeck's own, or an embedding program's).
    BuiltIn,
    /// Declared in the kinds file.
    File,
}

/// What runs a kind's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum KindExecutor {
    /// Rust code in this program.
    Rust,
    /// A program the worker starts.
    Command,
    /// A database function, called through the REST API.
    Rpc,
    /// An HTTP endpoint or an Edge Function.
    Http,
}

impl KindExecutor {
    pub fn as_str(self) -> &'static str {
        match self {
            KindExecutor::Rust => "rust",
            KindExecutor::Command => "command",
            KindExecutor::Rpc => "rpc",
            KindExecutor::Http => "http",
        }
    }
}

/// The per-kind settings a kinds file may give; unset means the worker's or the
/// database's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindOptions {
    /// An attempt running longer fails (and is retried).
    pub timeout: Option<Duration>,
    /// New jobs of the kind get this many attempts unless the enqueuer says otherwise.
    pub max_attempts: Option<i32>,
    /// New jobs of the kind get this priority unless the enqueuer says otherwise.
    pub priority: Option<i16>,
    /// At most this many of the kind run at once in one worker.
    pub concurrency: Option<usize>,
}

/// A kind as the UI and `jobdeck kinds` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KindInfo {
    pub name: String,
    pub description: String,
    /// The input's JSON Schema.
    pub input_schema: Value,
    pub source: KindSource,
    pub executor: KindExecutor,
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub timeout_seconds: Option<u64>,
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub max_attempts: Option<i32>,
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub priority: Option<i16>,
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub concurrency: Option<usize>,
}

/// One registered kind: its handler and how it is described and run.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) description: String,
    pub(crate) source: KindSource,
    pub(crate) executor: KindExecutor,
    pub(crate) options: KindOptions,
}

#[derive(Clone, Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.entries.keys()).finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind compiled into this program; a second kind with the same name
    /// replaces the first.
    pub fn register<K: JobKind>(mut self, kind: K) -> Self {
        self.entries.insert(
            K::NAME.to_string(),
            Entry {
                handler: Arc::new(Typed(Arc::new(kind))),
                description: K::DESCRIPTION.to_string(),
                source: KindSource::BuiltIn,
                executor: KindExecutor::Rust,
                options: KindOptions::default(),
            },
        );
        self
    }

    /// Adds a kind declared in a kinds file (the loader has refused names taken).
    pub(crate) fn insert(&mut self, name: String, entry: Entry) {
        self.entries.insert(name, entry);
    }

    /// Every kind of `self`, then those of `other` whose names are free.
    pub fn merged(mut self, other: &Registry) -> Self {
        for (name, entry) in &other.entries {
            self.entries
                .entry(name.clone())
                .or_insert_with(|| entry.clone());
        }
        self
    }

    pub fn contains(&self, kind: &str) -> bool {
        self.entries.contains_key(kind)
    }

    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    pub fn kinds(&self) -> Vec<KindInfo> {
        self.entries
            .iter()
            .map(|(name, entry)| KindInfo {
                name: name.clone(),
                description: entry.description.clone(),
                input_schema: entry.handler.schema(),
                source: entry.source,
                executor: entry.executor,
                timeout_seconds: entry.options.timeout.map(|t| t.as_secs()),
                max_attempts: entry.options.max_attempts,
                priority: entry.options.priority,
                concurrency: entry.options.concurrency,
            })
            .collect()
    }

    /// Checks `input` against `kind`'s input type, field by field.
    pub fn validate(&self, kind: &str, input: &Value) -> Result<(), InvalidInput> {
        match self.entries.get(kind) {
            Some(entry) => entry.handler.validate(input),
            None => Err(InvalidInput {
                field: "kind".into(),
                message: format!(
                    "unknown job kind \"{kind}\" (known: {})",
                    self.names().join(", ")
                ),
            }),
        }
    }

    /// `job` checked against its kind, with the kind's default priority and attempts
    /// where the job gives none.
    pub fn prepare(&self, job: &NewJob) -> Result<NewJob, InvalidInput> {
        self.validate(&job.kind, &job.context)?;
        let options = self.entries.get(&job.kind).map(|e| &e.options);
        Ok(NewJob {
            priority: job.priority.or(options.and_then(|o| o.priority)),
            max_attempts: job.max_attempts.or(options.and_then(|o| o.max_attempts)),
            ..job.clone()
        })
    }

    /// Checks the job's input against its kind, then enqueues it: nothing invalid
    /// reaches the database. (A worker's own enqueue may also start the job at once:
    /// [`super::WorkerHandle::enqueue`].)
    pub async fn enqueue(&self, jobs: &JobsClient, job: &NewJob) -> Result<Job, EnqueueError> {
        let job = self.prepare(job).map_err(EnqueueError::Invalid)?;
        Ok(jobs.enqueue(&job).await?)
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&Entry> {
        self.entries.get(kind)
    }
}
