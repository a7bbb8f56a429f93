//! Job kinds: typed handlers behind one erased interface, and what a handler gets.

use std::{future::Future, sync::Arc};

use futures::{FutureExt as _, future::BoxFuture};
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::logs::AttemptLog;
use crate::{Error, Job, JobsClient, LogLevel, LogStream};

/// A kind of job: its typed input (with a JSON Schema for forms), its typed output,
/// and the work.
pub trait JobKind: Send + Sync + 'static {
    /// The `kind` column's value.
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    type Input: DeserializeOwned + JsonSchema + Send;
    type Output: Serialize + Send;

    fn run(
        &self,
        input: Self::Input,
        ctx: JobContext,
    ) -> impl Future<Output = Result<Self::Output, JobError>> + Send;
}

/// Why an attempt failed. Retried with backoff unless `permanent`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    pub message: String,
    pub code: Option<String>,
    pub details: Option<Value>,
    pub permanent: bool,
}

impl JobError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: None,
            details: None,
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            permanent: true,
            ..Self::retry(message)
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut value = json!({ "message": self.message });
        if let Some(code) = &self.code {
            value["code"] = json!(code);
        }
        if let Some(details) = &self.details {
            value["details"] = details.clone();
        }
        value
    }
}

impl From<Error> for JobError {
    /// A failed call to Supabase inside a job: worth retrying unless it was refused as
    /// invalid.
    fn from(error: Error) -> Self {
        let permanent = error.code() == crate::ErrorCode::Validation;
        JobError {
            message: error.to_string(),
            code: Some(error.server_code().unwrap_or("request_failed").to_string()),
            details: None,
            permanent,
        }
    }
}

/// What a running job gets: the job, the REST client acting as the user, progress
/// reporting and cancellation.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub job: Job,
    /// Authenticated as the job's owner: everything a handler does runs under RLS.
    pub jobs: JobsClient,
    pub(crate) worker: Arc<str>,
    pub(crate) cancel: CancellationToken,
    pub(crate) events: tokio::sync::broadcast::Sender<super::WorkerEvent>,
    pub(crate) log: Arc<AttemptLog>,
}

impl JobContext {
    /// Reports how far along the job is (0 to 1). Also the quickest way to learn of a
    /// cancellation request: the answer sets [`JobContext::cancelled`].
    pub async fn progress(&self, fraction: f32, message: Option<&str>) {
        let fraction = fraction.clamp(0.0, 1.0);
        let _ = self.events.send(super::WorkerEvent::JobProgress {
            id: self.job.id,
            progress: fraction,
            message: message.map(str::to_string),
        });
        match self
            .jobs
            .report_progress(self.job.id, &self.worker, fraction, message)
            .await
        {
            Ok(true) => self.cancel.cancel(),
            Ok(false) => {}
            // The lease is gone: stop, another worker may have the job.
            Err(error) if error.server_code() == Some("JD002") => self.cancel.cancel(),
            Err(error) => tracing::debug!(%error, job = self.job.id, "reporting progress"),
        }
    }

    /// Resolves when the job should stop: cancellation was asked for, the lease was
    /// lost, or the worker is stopping.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Adds a line to this attempt's log, kept with the job and shown live. Never
    /// waits: lines are sent in batches (and past the per-attempt cap only counted).
    pub fn log(&self, level: LogLevel, line: &str) {
        self.log.push(LogStream::Log, level, line);
    }

    pub(crate) fn log_line(&self, stream: LogStream, level: LogLevel, line: &str) {
        self.log.push(stream, level, line);
    }

    /// The attempt's last log lines, oldest first (for a failure's context).
    pub(crate) fn log_tail(&self, lines: usize) -> Vec<String> {
        self.log.tail(lines)
    }
}

/// A field-level reason the input does not fit the kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    /// The path of the offending field (`seconds`, `items[2].name`), or empty.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

pub(crate) fn parse_input<T: DeserializeOwned>(input: &Value) -> Result<T, InvalidInput> {
    serde_path_to_error::deserialize(input).map_err(|error| {
        let field = error.path().to_string();
        InvalidInput {
            field: if field == "." { String::new() } else { field },
            message: error.into_inner().to_string(),
        }
    })
}

/// A kind with its types erased, as the registry holds it: a compiled-in [`JobKind`]
/// or a kind from the kinds file.
pub(crate) trait Handler: Send + Sync {
    fn schema(&self) -> Value;
    fn validate(&self, input: &Value) -> Result<(), InvalidInput>;
    fn run(&self, input: Value, ctx: JobContext) -> BoxFuture<'static, Result<Value, JobError>>;
    /// How long a stopped attempt may take to clean up before it is dropped. Dropping a
    /// Rust future stops it at once; a program needs time to end.
    fn stop_grace(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

pub(crate) struct Typed<K>(pub Arc<K>);

impl<K: JobKind> Handler for Typed<K> {
    fn schema(&self) -> Value {
        serde_json::to_value(schemars::schema_for!(K::Input)).unwrap_or(Value::Null)
    }

    fn validate(&self, input: &Value) -> Result<(), InvalidInput> {
        parse_input::<K::Input>(input).map(drop)
    }

    fn run(&self, input: Value, ctx: JobContext) -> BoxFuture<'static, Result<Value, JobError>> {
        let kind = Arc::clone(&self.0);
        async move {
            let input = parse_input::<K::Input>(&input).map_err(|e| {
                JobError::permanent(format!("invalid input: {e}")).with_code("invalid_input")
            })?;
            let output = kind.run(input, ctx).await?;
            serde_json::to_value(output).map_err(|e| {
                JobError::permanent(format!("the result is not JSON: {e}"))
                    .with_code("invalid_output")
            })
        }
        .boxed()
    }
}
