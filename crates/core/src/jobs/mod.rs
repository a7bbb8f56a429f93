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
mod insight;
pub mod logs;
mod schedules;

pub use feed::{ChangeFeed, FeedUpdate, LiveFeed};
pub use insight::{Activity, ActivityBucket, ActivitySpan, KindActivity, RetentionPolicy};
pub use logs::{LogLevel, LogLine, LogStream};
pub use schedules::{PausedKind, ScheduleSummary};

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
    /// The last failure.
    #[serde(default, deserialize_with = "lenient::failure")]
    pub error: Option<JobFailure>,
    /// Every attempt that ended, oldest first.
    #[serde(default, deserialize_with = "lenient::attempts")]
    pub history: Vec<Attempt>,
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
    /// The schedule that made it, if one did.
    #[serde(default)]
    pub schedule_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Why an attempt failed, as the worker reported it (`{message, code, details}`) and
/// the database stamped it (`attempt`, `worker`, `at`). Other clients may write any
/// JSON object there: what is missing is empty, and a value of another type is read
/// as its text, so one odd row never hides the rest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct JobFailure {
    #[serde(deserialize_with = "lenient::text")]
    pub message: String,
    /// A machine-readable code (`timeout`, `worker_lost`, a handler's own).
    #[serde(deserialize_with = "lenient::optional_text")]
    pub code: Option<String>,
    pub details: Option<Value>,
    #[serde(deserialize_with = "lenient::optional_number")]
    pub attempt: Option<i32>,
    #[serde(deserialize_with = "lenient::optional_text")]
    pub worker: Option<String>,
    #[serde(deserialize_with = "lenient::optional_text")]
    pub at: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Finished,
    /// Failed and waits for another attempt.
    Retry,
    Failed,
    Cancelled,
    /// Its worker stopped renewing the lease.
    Lost,
    /// Handed back by a stopping worker, without using an attempt.
    Released,
    /// Written by a newer version of the job functions.
    #[serde(other)]
    Other,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Finished => "finished",
            AttemptOutcome::Retry => "retry",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Cancelled => "cancelled",
            AttemptOutcome::Lost => "lost",
            AttemptOutcome::Released => "released",
            AttemptOutcome::Other => "other",
        }
    }
}

/// One attempt that ended, from the job's `history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Attempt {
    #[serde(default, deserialize_with = "lenient::optional_number")]
    pub attempt: Option<i32>,
    #[serde(default, deserialize_with = "lenient::optional_text")]
    pub worker: Option<String>,
    #[serde(default, deserialize_with = "lenient::optional_text")]
    pub started_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::optional_text")]
    pub ended_at: Option<String>,
    pub outcome: AttemptOutcome,
    #[serde(default, deserialize_with = "lenient::failure")]
    pub error: Option<JobFailure>,
}

/// Reading the JSON columns other clients may also write, without failing on a value
/// of an unexpected type.
mod lenient {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    fn as_text(value: Value) -> Option<String> {
        match value {
            Value::Null => None,
            Value::String(text) => Some(text),
            other => Some(other.to_string()),
        }
    }

    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(as_text(Value::deserialize(d)?).unwrap_or_default())
    }

    pub fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(as_text(Value::deserialize(d)?))
    }

    pub fn optional_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
        Ok(Value::deserialize(d)?
            .as_i64()
            .and_then(|n| i32::try_from(n).ok()))
    }

    /// A failure object, or any other JSON value as its message.
    pub fn failure<'de, D: Deserializer<'de>>(d: D) -> Result<Option<super::JobFailure>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Null => None,
            object @ Value::Object(_) => serde_json::from_value(object).ok(),
            other => Some(super::JobFailure {
                message: as_text(other).unwrap_or_default(),
                ..Default::default()
            }),
        })
    }

    /// The attempts that read as attempts; an entry of another shape is left out.
    pub fn attempts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<super::Attempt>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(entries) => entries
                .into_iter()
                .filter_map(|entry| serde_json::from_value(entry).ok())
                .collect(),
            _ => Vec::new(),
        })
    }
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
    /// The page's size, at most 1,000; 0 (the default) for the UI's page of 50.
    pub limit: usize,
    pub offset: usize,
    /// Only jobs older than this id: keyset paging, which stays as fast on the
    /// thousandth page as on the first (an offset makes the database walk every row
    /// before it).
    pub before: Option<i64>,
    /// Only jobs whose input contains this JSON object (`{"customer": 42}` matches an
    /// input with that field among others).
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub input: Option<Value>,
    /// Only jobs whose input's values hold these words (web search syntax: `acme
    /// -test`, `"exact phrase"`, `this or that`).
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub words: Option<String>,
    /// Only jobs whose result contains this JSON object.
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub result: Option<Value>,
    /// Only jobs created, or ended, in these ranges (from inclusive, until exclusive).
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub created_from: Option<DateTime<Utc>>,
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub created_until: Option<DateTime<Utc>>,
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub ended_from: Option<DateTime<Utc>>,
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub ended_until: Option<DateTime<Utc>>,
    /// Only the jobs this schedule made.
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub schedule_id: Option<i64>,
}

/// A request to the REST API: the crate's builder, and query parameters it has no
/// method for.
#[derive(Clone)]
struct Request {
    builder: postgrest::Builder,
    query: Vec<(&'static str, String)>,
}

impl From<postgrest::Builder> for Request {
    fn from(builder: postgrest::Builder) -> Self {
        Self {
            builder,
            query: Vec::new(),
        }
    }
}

/// The search box's text resolved (see [`JobsClient::search`]).
struct Search {
    /// The kinds whose names hold the text, in order.
    kinds: Vec<String>,
    /// Those kinds' jobs per state, summed from the tallies they were found in.
    counts: BTreeMap<(String, JobStatus), i64>,
    id: Option<i64>,
}

/// A read of jobs before its page: of the table, or of a function's rows.
struct Matching {
    builder: postgrest::Builder,
    function: bool,
}

impl Matching {
    /// `limit` rows from `offset`. A function is called with POST, for which PostgREST
    /// reads no `Range` header, so its page goes in `limit` and `offset` parameters.
    fn page(self, offset: usize, limit: usize) -> Request {
        let builder = self.builder.range(offset, offset + limit - 1);
        let query = if self.function {
            vec![("limit", limit.to_string()), ("offset", offset.to_string())]
        } else {
            Vec::new()
        };
        Request { builder, query }
    }
}

/// The search box's text as PostgREST's `ilike` pattern: anywhere in the kind (its own
/// `*`s dropped, as they would be wildcards).
fn kind_pattern(search: &str) -> String {
    format!("*{}*", search.replace('*', ""))
}

impl JobFilter {
    /// The page's size when the filter names none (the UI's).
    pub const PAGE: usize = 50;

    /// What the dashboard's job list opens with: every job, the first page of
    /// [`JobFilter::PAGE`].
    pub fn opening() -> Self {
        Self {
            limit: Self::PAGE,
            ..Self::default()
        }
    }

    /// The page's size asked for.
    fn page_size(&self) -> usize {
        match self.limit {
            0 => Self::PAGE,
            limit => limit.min(1000),
        }
    }

    /// The words, if more than blanks.
    fn words_text(&self) -> Option<&str> {
        self.words
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Whether the filter looks at more than what the tallies count (states and
    /// kinds): then the list's total is counted from the rows.
    fn counts_rows(&self) -> bool {
        self.searched().is_some()
            || self.created_from.is_some()
            || self.created_until.is_some()
            || self.ended_from.is_some()
            || self.ended_until.is_some()
            || self.schedule_id.is_some()
    }

    /// The arguments of `search_jobs` when the filter looks into inputs or results.
    fn searched(&self) -> Option<Value> {
        let mut args = serde_json::Map::new();
        if let Some(input) = &self.input {
            args.insert("input".into(), input.clone());
        }
        if let Some(words) = self.words_text() {
            args.insert("words".into(), words.into());
        }
        if let Some(result) = &self.result {
            args.insert("result".into(), result.clone());
        }
        (!args.is_empty()).then_some(Value::Object(args))
    }

    /// The search, if it has more than blanks.
    fn search_text(&self) -> Option<&str> {
        self.search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
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
    /// How many jobs match the filter in all, on every page (its `before` and
    /// `offset` aside).
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
    project: Project,
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
        hint: body["hint"].as_str().map(str::to_string),
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
        Self {
            rest,
            url,
            project: project.clone(),
            session,
        }
    }

    pub fn session(&self) -> &Arc<SessionOwner> {
        &self.session
    }

    /// The project this client talks to.
    pub fn project(&self) -> &Project {
        &self.project
    }

    /// Calls the database function `function` with named `args`, as the user: any
    /// function the user's role may execute (`POST /rest/v1/rpc/<function>`).
    pub async fn call(&self, function: &str, args: &Value) -> Result<Value, Error> {
        self.rpc(function, args.clone()).await
    }

    /// Sends a request as the user and decodes a successful JSON answer.
    ///
    /// A 401 for a token the session owner holds as valid (the project's JWT secret
    /// rotated, the session revoked) asks the owner for one refresh and retries once
    /// with the new token; a refresh the server refuses ends the session there.
    async fn send<T: DeserializeOwned>(
        &self,
        request: impl Into<Request>,
    ) -> Result<(T, Option<String>), Error> {
        let request = request.into();
        let token = self.session.access_token().await?;
        match self.send_as(&token, request.clone()).await {
            Err(error) if token_refused(&error) => {
                tracing::info!(%error, "the REST API refused the access token; refreshing once");
                let token = self.session.token_refused(&token).await?;
                self.send_as(&token, request).await
            }
            answer => answer,
        }
    }

    /// Sends a request with `token` (normally the session's current one).
    async fn send_as<T: DeserializeOwned>(
        &self,
        token: &Secret,
        request: Request,
    ) -> Result<(T, Option<String>), Error> {
        let response = request
            .builder
            .auth(token.expose())
            .build()
            .query(&request.query)
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

    /// The `columns` of the user's jobs that `filter` matches, newest first, its paging
    /// aside. A filter that looks into inputs or results reads `search_jobs`, which
    /// finds them through the indexes (row-level security would keep the table's
    /// indexes for `@>` and `@@` out of use, see its migration); the rest of the
    /// filter narrows what either answers.
    fn matching(&self, columns: &str, filter: &JobFilter, search: Option<&Search>) -> Matching {
        let (builder, function) = match filter.searched() {
            Some(args) => (self.rest.rpc("search_jobs", args.to_string()), true),
            None => (self.rest.from("jobs"), false),
        };
        let builder = Self::filtered(builder.select(columns).order("id.desc"), filter, search);
        Matching { builder, function }
    }

    /// The search box's text of `filter` as the list reads it: the kinds of the user's
    /// jobs whose names hold it, from the tallies, and the id it may be. A list by
    /// `kind = any(...)` is planned from the table's statistics and read from its
    /// indexes; by `kind ilike`, which row-level security keeps from both (it is not
    /// leakproof), a search matching most jobs sorted all of them for one page.
    ///
    /// The same read sums those kinds' tallies per state, for the list's total.
    async fn search(&self, filter: &JobFilter) -> Result<Option<Search>, Error> {
        #[derive(Deserialize)]
        struct Tally {
            kind: String,
            status: JobStatus,
            jobs: i64,
        }
        let Some(text) = filter.search_text() else {
            return Ok(None);
        };
        let builder = self
            .rest
            .from("job_tallies")
            .select("kind,status,jobs")
            .ilike("kind", kind_pattern(text));
        let (tallies, _): (Vec<Tally>, _) = self.send(builder).await?;
        let mut counts = BTreeMap::new();
        for tally in tallies {
            *counts.entry((tally.kind, tally.status)).or_default() += tally.jobs;
        }
        let mut kinds: Vec<String> = counts.keys().map(|(kind, _)| kind.clone()).collect();
        kinds.dedup();
        Ok(Some(Search {
            kinds,
            counts,
            id: text.parse().ok(),
        }))
    }

    /// `builder` narrowed by `filter`'s statuses, kind, time ranges and schedule, and
    /// by its `search` as resolved (its inputs and results are `matching`'s).
    fn filtered(
        mut builder: postgrest::Builder,
        filter: &JobFilter,
        search: Option<&Search>,
    ) -> postgrest::Builder {
        // One status as `eq`, not `in`: PostgreSQL 15 reads `status = any(...)` from the
        // owner's (uuid, status, id desc) index without its order, so it would fetch
        // and sort every job of that status for one page.
        builder = match filter.statuses.as_slice() {
            [] => builder,
            [status] => builder.eq("status", status.as_str()),
            statuses => builder.in_("status", statuses.iter().map(|s| s.as_str())),
        };
        if let Some(kind) = &filter.kind {
            builder = builder.eq("kind", kind);
        }
        if let Some(at) = filter.created_from {
            builder = builder.gte("created_at", at.to_rfc3339());
        }
        if let Some(at) = filter.created_until {
            builder = builder.lt("created_at", at.to_rfc3339());
        }
        if let Some(at) = filter.ended_from {
            builder = builder.gte("ended_at", at.to_rfc3339());
        }
        if let Some(at) = filter.ended_until {
            builder = builder.lt("ended_at", at.to_rfc3339());
        }
        if let Some(schedule) = filter.schedule_id {
            builder = builder.eq("schedule_id", schedule.to_string());
        }
        if let Some(search) = search {
            let kinds: Vec<String> = search.kinds.iter().map(|k| quoted(k)).collect();
            let kinds = kinds.join(",");
            builder = match (search.id, search.kinds.as_slice()) {
                // One kind by `eq`: its (uuid, kind, id desc) index gives the page in order.
                (None, [kind]) => builder.eq("kind", kind),
                (None, _) => builder.or(format!("kind.in.({kinds})")),
                (Some(id), _) => builder.or(format!("kind.in.({kinds}),id.eq.{id}")),
            };
        }
        builder
    }

    /// A page of the user's jobs matching `filter`, newest first, with how many match
    /// in all. The page and the total are asked for together.
    pub async fn list(&self, filter: &JobFilter) -> Result<Page, Error> {
        let search = self.search(filter).await?;
        let mut matching = self.matching("*", filter, search.as_ref());
        if let Some(before) = filter.before {
            matching.builder = matching.builder.lt("id", before.to_string());
        }
        let counted = filter.counts_rows();
        if counted {
            // Before the page: the crate's count asks for no rows (`Range: 0-0`).
            matching.builder = matching.builder.exact_count();
        }
        let request = matching.page(filter.offset, filter.page_size());
        if counted {
            // What only the rows can say is counted with the page, in one request
            // (the indexes find the matches; the tallies know none of this).
            let (jobs, range) = self.send::<Vec<Job>>(request).await?;
            let total = range
                .as_deref()
                .and_then(|r| r.rsplit_once('/'))
                .and_then(|(_, n)| n.parse().ok())
                .unwrap_or(jobs.len() as u64);
            return Ok(Page { jobs, total });
        }
        let page = async { Ok(self.send::<Vec<Job>>(request).await?.0) };
        let (jobs, total) = tokio::try_join!(page, self.total(filter, search.as_ref()))?;
        Ok(Page { jobs, total })
    }

    /// How many of the user's jobs match `filter`, its paging aside, read from the
    /// database's tallies (no row is counted): a `search` matches kinds, whose tallies
    /// it was resolved from, plus the one job whose id it may be.
    async fn total(&self, filter: &JobFilter, search: Option<&Search>) -> Result<u64, Error> {
        let wanted =
            |status: &JobStatus| filter.statuses.is_empty() || filter.statuses.contains(status);
        let by_kind = async {
            let Some(search) = search else {
                let counts = self.counts_of(filter.kind.as_slice()).await?;
                return Ok(counts
                    .iter()
                    .filter(|(s, _)| wanted(s))
                    .map(|(_, n)| n)
                    .sum());
            };
            let sum: i64 = search
                .counts
                .iter()
                .filter(|((kind, status), _)| {
                    filter.kind.as_ref().is_none_or(|k| k == kind) && wanted(status)
                })
                .map(|(_, jobs)| jobs)
                .sum();
            Ok::<u64, Error>(sum.max(0) as u64)
        };
        let by_id = async {
            let Some((search, id)) = filter.search_text().zip(search.and_then(|s| s.id)) else {
                return Ok(0);
            };
            let unsearched = JobFilter {
                search: None,
                ..filter.clone()
            };
            let builder = self
                .matching("id", &unsearched, None)
                .builder
                .eq("id", id.to_string())
                .not("ilike", "kind", quoted(&kind_pattern(search)));
            let (rows, _): (Vec<Value>, _) = self.send(builder).await?;
            Ok(rows.len() as u64)
        };
        let (by_kind, by_id) = tokio::try_join!(by_kind, by_id)?;
        Ok(by_kind + by_id)
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
                    hint: None,
                },
                _ => error,
            })
    }

    /// How many of the user's jobs are in each state (every state present, 0 if none).
    pub async fn counts(&self) -> Result<BTreeMap<JobStatus, u64>, Error> {
        self.counts_of(&[]).await
    }

    /// [`Self::counts`] of the jobs of `kinds` only (all jobs if empty).
    async fn counts_of(&self, kinds: &[String]) -> Result<BTreeMap<JobStatus, u64>, Error> {
        #[derive(Deserialize)]
        struct Count {
            status: JobStatus,
            count: u64,
        }
        let mut args = json!({});
        if !kinds.is_empty() {
            args["kinds"] = json!(kinds);
        }
        let rows: Vec<Count> = self.rpc("job_counts", args).await?;
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
        // PostgREST inserts a JSON array only if every object has the same keys
        // (PGRST102 otherwise), so jobs that set different options go in separate
        // requests, in order.
        let keys = |row: &Value| {
            row.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
        };
        let mut chunks: Vec<&[Value]> = Vec::new();
        let mut rest = rows.as_slice();
        while !rest.is_empty() {
            let first = keys(&rest[0]);
            let len = rest
                .iter()
                .take(CHUNK)
                .take_while(|row| keys(row) == first)
                .count();
            let (chunk, after) = rest.split_at(len);
            chunks.push(chunk);
            rest = after;
        }
        let mut ids = Vec::with_capacity(jobs.len());
        for chunk in chunks {
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
        Ok(self.send_as(&token, builder.into()).await?.0)
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
        let search = self.search(&filter).await?;
        let mut before = filter.before;
        let mut changed = 0;
        loop {
            #[derive(Deserialize)]
            struct Id {
                id: i64,
            }
            let mut matching = self.matching("id", &filter, search.as_ref());
            if let Some(before) = before {
                matching.builder = matching.builder.lt("id", before.to_string());
            }
            let (ids, _): (Vec<Id>, _) = self.send(matching.page(0, CHUNK)).await?;
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{AttemptOutcome, Job};

    #[test]
    fn a_failure_or_history_written_by_another_client_still_reads() {
        let job: Job = serde_json::from_value(json!({
            "id": 1, "uuid": "u", "kind": "k", "status": "failed", "context": {},
            "result": null, "error": { "message": 42, "code": ["odd"], "extra": true },
            "history": [
                { "attempt": 1, "outcome": "retry", "error": "plain text" },
                "not an attempt",
                { "attempt": 2, "outcome": "something_new" }
            ],
            "progress": null, "progress_message": null, "attempt": 2, "max_attempts": 2,
            "priority": 0, "run_at": "2026-01-01T00:00:00Z", "locked_by": null,
            "locked_until": null, "cancel_requested_at": null, "idempotency_key": null,
            "created_at": "2026-01-01T00:00:00Z", "started_at": null, "ended_at": null,
            "updated_at": "2026-01-01T00:00:00Z"
        }))
        .expect("the job reads");
        let error = job.error.expect("a failure");
        assert_eq!(
            (error.message.as_str(), error.code.as_deref()),
            ("42", Some("[\"odd\"]"))
        );
        let outcomes: Vec<_> = job.history.iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, [AttemptOutcome::Retry, AttemptOutcome::Other]);
        assert_eq!(
            job.history[0].error.as_ref().map(|e| e.message.as_str()),
            Some("plain text")
        );
    }
}
