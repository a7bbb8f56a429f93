//! Jobs over Supabase's REST API, as the signed-in user.
//!
//! Built on the `postgrest` crate, which answers 4xx as `Ok`: every response's status
//! is checked here and PostgREST's `{code, message}` becomes an [`Error::Api`].
//! Row-level security scopes everything to the user; nothing here filters by owner.

use std::{collections::BTreeMap, fmt, sync::Arc};

use chrono::{DateTime, Utc};
use postgrest::Postgrest;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{Error, Project, Secret, SessionOwner};

pub mod feed;

pub use feed::ChangeFeed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Waiting,
    Running,
    Finished,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Waiting,
        JobStatus::Running,
        JobStatus::Finished,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Waiting => "waiting",
            JobStatus::Running => "running",
            JobStatus::Finished => "finished",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Finished, failed or cancelled: nothing more will happen unless retried.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Finished | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row of `public.jobs` (see supabase/migrations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Job {
    pub id: i64,
    /// The owner's user id.
    pub uuid: String,
    pub kind: String,
    pub status: JobStatus,
    /// The job's input.
    pub context: Value,
    pub result: Option<Value>,
    /// The last failure: `{message, code, details, attempt, worker, at}`.
    pub error: Option<Value>,
    /// Every attempt that ended: `[{attempt, worker, started_at, ended_at, outcome, error}]`.
    #[serde(default)]
    pub history: Vec<Value>,
    pub progress: Option<f32>,
    pub progress_message: Option<String>,
    pub attempt: i32,
    pub max_attempts: i32,
    pub priority: i16,
    pub run_at: DateTime<Utc>,
    pub locked_by: Option<String>,
    pub locked_until: Option<DateTime<Utc>>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A job to enqueue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NewJob {
    pub kind: String,
    #[serde(default)]
    pub context: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub run_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub priority: Option<i16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub max_attempts: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub idempotency_key: Option<String>,
}

/// Which jobs to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct JobFilter {
    pub statuses: Vec<JobStatus>,
    pub kind: Option<String>,
    /// Matches the kind (case-insensitively) or, when a number, the id.
    pub search: Option<String>,
    pub limit: usize,
    pub offset: usize,
    /// Only jobs older than this id: keyset paging, which stays as fast on the
    /// thousandth page as on the first (an offset makes the database walk every row
    /// before it).
    pub before: Option<i64>,
}

/// What a bulk action does to every job of a filter that it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    /// Cancels waiting jobs and asks running ones to stop.
    Cancel,
    /// Makes failed and cancelled jobs wait again.
    Retry,
}

impl BulkAction {
    /// The statuses the action applies to; jobs in others are left alone.
    pub fn applies_to(self) -> &'static [JobStatus] {
        match self {
            BulkAction::Cancel => &[JobStatus::Waiting, JobStatus::Running],
            BulkAction::Retry => &[JobStatus::Failed, JobStatus::Cancelled],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Page {
    pub jobs: Vec<Job>,
    /// How many jobs match the filter in all (those older than its `before`, if set).
    pub total: u64,
}

/// A heartbeat's answer for one job the worker still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Lease {
    pub id: i64,
    pub cancel_requested: bool,
}

#[derive(Clone)]
pub struct JobsClient {
    rest: Postgrest,
    url: String,
    session: Arc<SessionOwner>,
}

impl fmt::Debug for JobsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobsClient").finish_non_exhaustive()
    }
}

/// PostgREST's `{code, message, details}`.
fn parse_error(status: reqwest::StatusCode, body: &[u8]) -> Error {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    Error::Api {
        status: status.as_u16(),
        code: body["code"].as_str().unwrap_or("unknown").to_string(),
        message: body["message"]
            .as_str()
            .map_or_else(|| format!("the REST API answered {status}"), str::to_string),
        details: body["details"].as_str().map(str::to_string),
    }
}

/// PostgREST's answer to a JWT it cannot verify (PGRST301) or whose claims it refuses
/// (PGRST303, e.g. expired).
fn token_refused(error: &Error) -> bool {
    matches!(error, Error::Api { status: 401, code, .. } if code == "PGRST301" || code == "PGRST303")
}

/// Values inside PostgREST's `or=(...)` lists are quoted so `,.:()` stay literal.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

impl JobsClient {
    pub fn new(project: &Project, session: Arc<SessionOwner>) -> Self {
        let url = project.rest_url();
        let rest = Postgrest::new(&url).insert_header("apikey", project.key().value());
        Self { rest, url, session }
    }

    pub fn session(&self) -> &Arc<SessionOwner> {
        &self.session
    }

    /// Sends a request as the user and decodes a successful JSON answer.
    ///
    /// A 401 for a token the session owner holds as valid (the project's JWT secret
    /// rotated, the session revoked) asks the owner for one refresh and retries once
    /// with the new token; a refresh the server refuses ends the session there.
    async fn send<T: DeserializeOwned>(
        &self,
        builder: postgrest::Builder,
    ) -> Result<(T, Option<String>), Error> {
        let token = self.session.access_token().await?;
        match self.send_as(&token, builder.clone()).await {
            Err(error) if token_refused(&error) => {
                tracing::info!(%error, "the REST API refused the access token; refreshing once");
                let token = self.session.token_refused(&token).await?;
                self.send_as(&token, builder).await
            }
            answer => answer,
        }
    }

    /// Sends a request with `token` (normally the session's current one).
    async fn send_as<T: DeserializeOwned>(
        &self,
        token: &Secret,
        builder: postgrest::Builder,
    ) -> Result<(T, Option<String>), Error> {
        let request = builder.auth(token.expose()).build();
        let response = request
            .send()
            .await
            .map_err(|e| Error::network(&self.url, &e))?;
        let range = response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let value = crate::response::decode(response, &self.url, parse_error).await?;
        Ok((value, range))
    }

    async fn rpc<T: DeserializeOwned>(&self, function: &str, args: Value) -> Result<T, Error> {
        Ok(self
            .send(self.rest.rpc(function, args.to_string()))
            .await?
            .0)
    }

    /// `builder` narrowed to the jobs `filter` matches (its paging aside).
    fn filtered(mut builder: postgrest::Builder, filter: &JobFilter) -> postgrest::Builder {
        if !filter.statuses.is_empty() {
            builder = builder.in_("status", filter.statuses.iter().map(|s| s.as_str()));
        }
        if let Some(kind) = &filter.kind {
            builder = builder.eq("kind", kind);
        }
        if let Some(search) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let pattern = quoted(&format!("*{}*", search.replace('*', "")));
            builder = match search.parse::<i64>() {
                Ok(id) => builder.or(format!("kind.ilike.{pattern},id.eq.{id}")),
                Err(_) => builder.or(format!("kind.ilike.{pattern}")),
            };
        }
        builder
    }

    /// A page of the user's jobs matching `filter`, newest first, with the total.
    pub async fn list(&self, filter: &JobFilter) -> Result<Page, Error> {
        let builder = self
            .rest
            .from("jobs")
            .select("*")
            .order("id.desc")
            .exact_count();
        let mut builder = Self::filtered(builder, filter);
        if let Some(before) = filter.before {
            builder = builder.lt("id", before.to_string());
        }
        let limit = filter.limit.clamp(1, 1000);
        builder = builder.range(filter.offset, filter.offset + limit - 1);
        let (jobs, range): (Vec<Job>, _) = self.send(builder).await?;
        let total = range
            .as_deref()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse().ok())
            .unwrap_or(jobs.len() as u64);
        Ok(Page { jobs, total })
    }

    pub async fn get(&self, id: i64) -> Result<Job, Error> {
        let builder = self
            .rest
            .from("jobs")
            .select("*")
            .eq("id", id.to_string())
            .single();
        self.send(builder)
            .await
            .map(|(job, _)| job)
            .map_err(|error| match error.server_code() {
                Some("PGRST116") => Error::Api {
                    status: 404,
                    code: "JD001".into(),
                    message: format!("job {id} not found"),
                    details: None,
                },
                _ => error,
            })
    }

    /// How many of the user's jobs are in each state (every state present, 0 if none).
    pub async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>, Error> {
        #[derive(Deserialize)]
        struct Count {
            status: JobStatus,
            count: u64,
        }
        let rows: Vec<Count> = self.rpc("job_counts", json!({})).await?;
        let mut counts: BTreeMap<JobStatus, u64> = JobStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for row in rows {
            counts.insert(row.status, row.count);
        }
        Ok(counts)
    }

    /// Jobs changed after `cursor` (by `updated_at`), oldest change first. The caller
    /// keeps the last `updated_at` it saw as its next cursor.
    pub async fn changed_since(
        &self,
        cursor: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Job>, Error> {
        let builder = self
            .rest
            .from("jobs")
            .select("*")
            .gt("updated_at", cursor.to_rfc3339())
            .order("updated_at.asc")
            .limit(limit.max(1));
        Ok(self.send(builder).await?.0)
    }

    pub async fn enqueue(&self, job: &NewJob) -> Result<Job, Error> {
        self.rpc("enqueue_job", Self::job_args(job)?).await
    }

    /// A new job as the JSON the API takes, once it is known to name a kind.
    fn job_args(job: &NewJob) -> Result<Value, Error> {
        if job.kind.trim().is_empty() {
            return Err(Error::Invalid("a job needs a kind".into()));
        }
        serde_json::to_value(job).map_err(|e| Error::Invalid(e.to_string()))
    }

    /// Enqueues a job due now (no `run_at`) and, in the same call, starts it for
    /// `worker` (which has a free slot for it). The answer is running, leased to
    /// `worker`, unless the idempotency key named a job that was no longer waiting.
    pub async fn enqueue_and_start(
        &self,
        job: &NewJob,
        worker: &str,
        lease_seconds: u32,
    ) -> Result<Job, Error> {
        if job.run_at.is_some() {
            return Err(Error::Invalid(
                "a job with a run_at is enqueued, not started".into(),
            ));
        }
        let mut args = Self::job_args(job)?;
        args["worker"] = json!(worker);
        args["lease_seconds"] = json!(lease_seconds);
        self.rpc("enqueue_and_start_job", args).await
    }

    /// Enqueues many jobs in as few round trips as it can (a thousand per request,
    /// each request one insert as the user); answers the new ids in order. Nothing
    /// validates the inputs here: callers that know the kinds check them first.
    pub async fn enqueue_many(&self, jobs: &[NewJob]) -> Result<Vec<i64>, Error> {
        const CHUNK: usize = 1000;
        #[derive(Deserialize)]
        struct Id {
            id: i64,
        }
        let rows = jobs
            .iter()
            .map(Self::job_args)
            .collect::<Result<Vec<Value>, Error>>()?;
        let mut ids = Vec::with_capacity(jobs.len());
        for chunk in rows.chunks(CHUNK) {
            let body = Value::from(chunk).to_string();
            let builder = self.rest.from("jobs").select("id").insert(body);
            let (rows, _): (Vec<Id>, _) = self.send(builder).await?;
            ids.extend(rows.into_iter().map(|row| row.id));
        }
        Ok(ids)
    }

    pub async fn claim(
        &self,
        worker: &str,
        kinds: Option<&[String]>,
        max_jobs: u32,
        lease_seconds: u32,
    ) -> Result<Vec<Job>, Error> {
        self.rpc(
            "claim_jobs",
            json!({ "worker": worker, "kinds": kinds, "max_jobs": max_jobs, "lease_seconds": lease_seconds }),
        )
        .await
    }

    pub async fn heartbeat(
        &self,
        worker: &str,
        ids: &[i64],
        lease_seconds: u32,
    ) -> Result<Vec<Lease>, Error> {
        self.rpc(
            "heartbeat_jobs",
            json!({ "worker": worker, "ids": ids, "lease_seconds": lease_seconds }),
        )
        .await
    }

    pub async fn finish(&self, id: i64, worker: &str, result: &Value) -> Result<Job, Error> {
        self.rpc(
            "finish_job",
            json!({ "id": id, "worker": worker, "result": result }),
        )
        .await
    }

    /// Finishes many jobs in one call, each `(id, result)`; answers the jobs finished.
    /// One missing from the answer was no longer leased to `worker` (it was lost).
    pub async fn finish_many(
        &self,
        worker: &str,
        done: &[(i64, &Value)],
    ) -> Result<Vec<Job>, Error> {
        let jobs: Vec<Value> = done
            .iter()
            .map(|(id, result)| json!({ "id": id, "result": result }))
            .collect();
        self.rpc("finish_jobs", json!({ "worker": worker, "jobs": jobs }))
            .await
    }

    /// Records a failed attempt; `permanent` fails the job without further retries.
    pub async fn fail(
        &self,
        id: i64,
        worker: &str,
        error: &Value,
        permanent: bool,
    ) -> Result<Job, Error> {
        self.rpc(
            "fail_job",
            json!({ "id": id, "worker": worker, "error": error, "permanent": permanent }),
        )
        .await
    }

    /// Reports progress (0 to 1); answers whether cancellation was requested.
    pub async fn report_progress(
        &self,
        id: i64,
        worker: &str,
        progress: f32,
        message: Option<&str>,
    ) -> Result<bool, Error> {
        self.rpc(
            "report_progress",
            json!({ "id": id, "worker": worker, "progress": progress, "message": message }),
        )
        .await
    }

    /// Hands jobs this worker still holds back to waiting, without using an attempt.
    /// When the session has just ended, its parting token is used: that work was
    /// started under it, and must not be left running until its lease expires.
    pub async fn release(&self, worker: &str, ids: &[i64]) -> Result<Vec<Job>, Error> {
        let builder = self.rest.rpc(
            "release_jobs",
            json!({ "worker": worker, "ids": ids }).to_string(),
        );
        let token = match self.session.access_token().await {
            Ok(token) => token,
            Err(error) => self.session.parting_token().ok_or(error)?,
        };
        Ok(self.send_as(&token, builder).await?.0)
    }

    pub async fn cancel(&self, id: i64) -> Result<Job, Error> {
        self.rpc("cancel_job", json!({ "id": id })).await
    }

    pub async fn retry(&self, id: i64) -> Result<Job, Error> {
        self.rpc("retry_job", json!({ "id": id })).await
    }

    /// Enqueues a new job with the same kind, input, priority and attempts as job `id`.
    pub async fn run_again(&self, id: i64) -> Result<Job, Error> {
        let job = self.get(id).await?;
        self.enqueue(&NewJob {
            kind: job.kind,
            context: job.context,
            priority: Some(job.priority),
            max_attempts: Some(job.max_attempts),
            ..NewJob::default()
        })
        .await
    }

    /// Applies `action` to every job `filter` matches that is in a status the action
    /// applies to (its paging is ignored); answers how many jobs it changed. Works
    /// through the set in chunks, newest first, so any number of jobs takes a bounded
    /// number of round trips per thousand.
    pub async fn bulk(&self, action: BulkAction, filter: &JobFilter) -> Result<u64, Error> {
        const CHUNK: usize = 1000;
        let statuses: Vec<JobStatus> = action
            .applies_to()
            .iter()
            .copied()
            .filter(|s| filter.statuses.is_empty() || filter.statuses.contains(s))
            .collect();
        if statuses.is_empty() {
            return Ok(0);
        }
        let filter = JobFilter {
            statuses,
            ..filter.clone()
        };
        let function = match action {
            BulkAction::Cancel => "cancel_jobs",
            BulkAction::Retry => "retry_jobs",
        };
        let mut before = filter.before;
        let mut changed = 0;
        loop {
            #[derive(Deserialize)]
            struct Id {
                id: i64,
            }
            let mut builder = Self::filtered(
                self.rest.from("jobs").select("id").order("id.desc"),
                &filter,
            );
            if let Some(before) = before {
                builder = builder.lt("id", before.to_string());
            }
            let (ids, _): (Vec<Id>, _) = self.send(builder.limit(CHUNK)).await?;
            let Some(last) = ids.last() else { break };
            before = Some(last.id);
            let ids: Vec<i64> = ids.iter().map(|row| row.id).collect();
            let done: u64 = self.rpc(function, json!({ "ids": ids })).await?;
            changed += done;
            if ids.len() < CHUNK {
                break;
            }
        }
        Ok(changed)
    }

    /// Deletes the user's jobs that ended in one of `statuses` more than `older_than`
    /// ago; answers how many.
    pub async fn prune(
        &self,
        older_than: chrono::Duration,
        statuses: &[JobStatus],
    ) -> Result<u64, Error> {
        let seconds = older_than.num_seconds().max(0);
        self.rpc(
            "prune_jobs",
            json!({ "older_than": format!("{seconds} seconds"), "statuses": statuses }),
        )
        .await
    }

    /// Deletes a job that is not running; answers whether one was deleted.
    pub async fn delete(&self, id: i64) -> Result<bool, Error> {
        let builder = self
            .rest
            .from("jobs")
            .eq("id", id.to_string())
            .delete()
            .select("id");
        let (deleted, _): (Vec<Value>, _) = self.send(builder).await?;
        Ok(!deleted.is_empty())
    }
}
