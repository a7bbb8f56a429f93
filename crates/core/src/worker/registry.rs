//! The job kinds a worker can run, registered in one place.

use std::{collections::BTreeMap, fmt, sync::Arc};

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

/// A kind as the UI and `jobdeck kinds` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KindInfo {
    pub name: String,
    pub description: String,
    /// The input's JSON Schema.
    pub input_schema: Value,
}

#[derive(Clone, Default)]
pub struct Registry {
    handlers: BTreeMap<&'static str, Arc<dyn Handler>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.handlers.keys()).finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind; a second kind with the same name replaces the first.
    pub fn register<K: JobKind>(mut self, kind: K) -> Self {
        self.handlers
            .insert(K::NAME, Arc::new(Typed(Arc::new(kind))));
        self
    }

    pub fn names(&self) -> Vec<String> {
        self.handlers.keys().map(|k| k.to_string()).collect()
    }

    pub fn kinds(&self) -> Vec<KindInfo> {
        self.handlers
            .iter()
            .map(|(name, handler)| KindInfo {
                name: name.to_string(),
                description: handler.description().to_string(),
                input_schema: handler.schema(),
            })
            .collect()
    }

    /// Checks `input` against `kind`'s input type, field by field.
    pub fn validate(&self, kind: &str, input: &Value) -> Result<(), InvalidInput> {
        match self.handlers.get(kind) {
            Some(handler) => handler.validate(input),
            None => Err(InvalidInput {
                field: "kind".into(),
                message: format!(
                    "unknown job kind \"{kind}\" (known: {})",
                    self.names().join(", ")
                ),
            }),
        }
    }

    /// Checks the job's input against its kind, then enqueues it: nothing invalid
    /// reaches the database. (A worker's own enqueue may also start the job at once:
    /// [`super::WorkerHandle::enqueue`].)
    pub async fn enqueue(&self, jobs: &JobsClient, job: &NewJob) -> Result<Job, EnqueueError> {
        self.validate(&job.kind, &job.context)
            .map_err(EnqueueError::Invalid)?;
        Ok(jobs.enqueue(job).await?)
    }

    pub(crate) fn get(&self, kind: &str) -> Option<Arc<dyn Handler>> {
        self.handlers.get(kind).cloned()
    }
}
