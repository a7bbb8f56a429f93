//! `/rest/v1`: PostgREST's protocol for the tables, views and functions of `public`.
//!
//! # Layout
//! - [`query`]: the query-string grammar (select, filters, order, paging).
//! - [`media`]: `Accept` and `Content-Type`: JSON, one object, CSV, forms.
//! - [`schema`]: what `public` holds, loaded at start and on `NOTIFY pgrst`.
//! - [`sql`]: one SQL statement per request, values bound, names checked.
//! - [`error`]: PostgREST's error bodies and statuses.
//!
//! Each request runs as the caller's role with their JWT claims, in one transaction
//! ([`crate::db`]); PostgreSQL's grants and row-level security decide what it may do.

pub mod error;
pub mod media;
pub mod query;
pub mod schema;
pub mod sql;

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::{FromRequestParts, Path, RawQuery, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::Value;
use tokio_postgres::Row;

use crate::{
    AppState,
    db::{ApiRequest, Caller, DbError, Finish},
};
use error::RestError;
use query::Query;
use schema::{Relation, Returns, Schema};
use sql::{Returning, Shape, Statement};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/rpc/{function}", get(call_get).post(call_post))
        .route(
            "/{relation}",
            get(read).post(insert).patch(update).delete(delete),
        )
}

/// What a `Prefer: resolution=...` asks of an insert whose key is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Merge,
    Ignore,
}

/// What the request's headers ask for: `Prefer` (as PostgREST reads it: the first of
/// each kind counts, unknown ones are ignored unless `handling=strict`), `Accept` and
/// `Range`.
#[derive(Debug, Default)]
struct Prefer {
    representation: bool,
    /// `return=...` as given.
    returned: Option<&'static str>,
    /// `count=...` as given.
    count: Option<&'static str>,
    resolution: Option<Resolution>,
    /// `missing=default` (true) or `missing=null`.
    missing_default: Option<bool>,
    strict: Option<bool>,
    rollback: Option<bool>,
    max_affected: Option<i64>,
    invalid: Vec<String>,
    /// The answer's form, from `Accept`.
    shape: Shape,
    /// `Accept` named only media types PostgREST does not write.
    unacceptable: Option<Vec<String>>,
    /// `Range: 0-19` (or `items=0-19`) as (offset, limit).
    range: Option<(u64, Option<u64>)>,
}

/// What a request does, for the preferences that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Read,
    /// An insert, and whether its `resolution` applies (the table has a key).
    Insert {
        resolves: bool,
    },
    Update,
    Delete,
    Call,
}

impl Prefer {
    fn from(headers: &HeaderMap) -> Self {
        let mut prefer = Prefer::default();
        for value in headers.get_all("prefer") {
            for item in value.to_str().unwrap_or_default().split(',') {
                prefer.take(item.trim());
            }
        }
        match media::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())) {
            Ok(shape) => prefer.shape = shape,
            Err(types) => prefer.unacceptable = Some(types),
        }
        prefer.range = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|range| {
                let (first, last) = range.trim_start_matches("items=").split_once('-')?;
                let first = first.trim().parse::<u64>().ok()?;
                let limit = last
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .map(|last| last.saturating_sub(first) + 1);
                Some((first, limit))
            });
        prefer
    }

    fn take(&mut self, item: &str) {
        fn first<T>(slot: &mut Option<T>, value: T) {
            slot.get_or_insert(value);
        }
        match item {
            "" => {}
            "return=representation" => first(&mut self.returned, "return=representation"),
            "return=minimal" => first(&mut self.returned, "return=minimal"),
            "return=headers-only" => first(&mut self.returned, "return=headers-only"),
            "count=exact" => first(&mut self.count, "count=exact"),
            "count=planned" => first(&mut self.count, "count=planned"),
            "count=estimated" => first(&mut self.count, "count=estimated"),
            "resolution=merge-duplicates" => first(&mut self.resolution, Resolution::Merge),
            "resolution=ignore-duplicates" => first(&mut self.resolution, Resolution::Ignore),
            "missing=default" => first(&mut self.missing_default, true),
            "missing=null" => first(&mut self.missing_default, false),
            "handling=strict" => first(&mut self.strict, true),
            "handling=lenient" => first(&mut self.strict, false),
            "tx=rollback" => first(&mut self.rollback, true),
            "tx=commit" => first(&mut self.rollback, false),
            // Accepted as PostgREST accepts it; the database's time zone stays.
            _ if item.starts_with("timezone=") => {}
            _ => match item.strip_prefix("max-affected=").map(str::parse::<i64>) {
                Some(Ok(n)) => first(&mut self.max_affected, n),
                Some(Err(_)) => {}
                None => self.invalid.push(item.to_string()),
            },
        }
        self.representation = self.returned == Some("return=representation");
    }

    /// `handling=strict` refuses a request with preferences it does not know.
    fn check(&self) -> Result<(), RestError> {
        if let Some(types) = &self.unacceptable {
            return Err(RestError::UnacceptableMedia(types.clone()));
        }
        if self.strict == Some(true) && !self.invalid.is_empty() {
            return Err(RestError::InvalidPreferences(self.invalid.clone()));
        }
        Ok(())
    }

    /// `max-affected`, which holds only with `handling=strict`.
    fn max_affected(&self) -> Option<i64> {
        self.max_affected.filter(|_| self.strict == Some(true))
    }

    /// The `Preference-Applied` header: what of the request's preferences applied.
    fn applied(&self, operation: Operation) -> Option<String> {
        let writes = matches!(
            operation,
            Operation::Insert { .. } | Operation::Update | Operation::Delete
        );
        let resolution = match (operation, self.resolution) {
            (Operation::Insert { resolves: true }, Some(Resolution::Merge)) => {
                Some("resolution=merge-duplicates")
            }
            (Operation::Insert { resolves: true }, Some(Resolution::Ignore)) => {
                Some("resolution=ignore-duplicates")
            }
            _ => None,
        };
        let missing = match (operation, self.missing_default) {
            (Operation::Insert { .. } | Operation::Update, Some(true)) => Some("missing=default"),
            (Operation::Insert { .. } | Operation::Update, Some(false)) => Some("missing=null"),
            _ => None,
        };
        let max_affected = matches!(
            operation,
            Operation::Update | Operation::Delete | Operation::Call
        )
        .then(|| self.max_affected().map(|n| format!("max-affected={n}")))
        .flatten();
        let values: Vec<String> = [
            resolution,
            missing,
            self.returned.filter(|_| writes),
            self.count,
            self.rollback
                .map(|r| if r { "tx=rollback" } else { "tx=commit" }),
            self.strict.map(|s| {
                if s {
                    "handling=strict"
                } else {
                    "handling=lenient"
                }
            }),
        ]
        .into_iter()
        .flatten()
        .map(str::to_string)
        .chain(max_affected)
        .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    fn shape(&self) -> Shape {
        self.shape
    }

    /// `Accept: application/vnd.pgrst.object+json`: exactly one row.
    fn singular(&self) -> bool {
        matches!(self.shape, Shape::Object { .. })
    }

    /// Whether the rows are counted: `count=exact`, and `count=estimated`, which
    /// is exact here (the sandbox sets no `db-max-rows`) unless the planner guesses more.
    fn exact_count(&self) -> bool {
        matches!(self.count, Some("count=exact" | "count=estimated"))
    }

    /// Whether a read asks the planner for its rows' number: `count=planned`, and
    /// `count=estimated`, which answers the larger of the two as PostgREST does.
    fn planned_count(&self) -> bool {
        matches!(self.count, Some("count=planned" | "count=estimated"))
    }

    fn finish(&self) -> Finish {
        if self.rollback == Some(true) {
            Finish::Rollback
        } else {
            Finish::Commit
        }
    }
}

/// Only `public` is exposed: asking for another schema by `Accept-Profile` (reads)
/// or `Content-Profile` (writes) is refused, as PostgREST refuses it.
fn check_profile(parts: &Parts) -> Result<(), RestError> {
    let name = if matches!(parts.method, Method::GET | Method::HEAD) {
        "accept-profile"
    } else {
        "content-profile"
    };
    match parts.headers.get(name).map(|v| v.to_str().unwrap_or("?")) {
        Some(schema) if schema != "public" => Err(RestError::UnacceptableSchema(schema.into())),
        _ => Ok(()),
    }
}

fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The request's `Range` as the query's offset and limit, unless the query sets them.
fn apply_range(query: &mut Query, prefer: &Prefer) {
    if query.limit.is_some() || query.offset.is_some() {
        return;
    }
    if let Some((offset, limit)) = prefer.range {
        query.offset = Some(offset);
        query.limit = limit;
    }
}

/// The single row every statement answers: (total, rows in page, body).
fn outcome(rows: &[Row]) -> (Option<i64>, i64, Option<String>) {
    rows.first()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .unwrap_or((None, 0, None))
}

/// What a write did: rows written (the new ones among them), the body if asked.
struct Written {
    count: i64,
    inserted: i64,
    body: Option<String>,
}

impl Written {
    fn of(rows: &[Row]) -> Self {
        let (_, count, body) = outcome(rows);
        let inserted = rows.first().map_or(0, |row| row.get(3));
        Self {
            count,
            inserted,
            body,
        }
    }
}

/// A response with PostgREST's headers: the body (none for 204) as the media type
/// negotiated, `Content-Range`, `Preference-Applied`.
fn respond(
    prefer: &Prefer,
    status: StatusCode,
    body: Option<String>,
    range: Option<String>,
    applied: Option<String>,
) -> Response {
    let has_body = body.is_some();
    let mut response = (status, body.unwrap_or_default()).into_response();
    let headers = response.headers_mut();
    if has_body {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(media::content_type(prefer.shape())),
        );
    }
    for (name, value) in [
        (header::CONTENT_RANGE, range),
        (HeaderName::from_static("preference-applied"), applied),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    response
}

/// `Content-Range` of `page` rows from `offset`, out of `total` when counted.
fn content_range(offset: u64, page: i64, total: Option<i64>) -> String {
    let total_text = total.map_or("*".to_string(), |t| t.to_string());
    if page <= 0 || total == Some(0) {
        format!("*/{total_text}")
    } else {
        format!("{offset}-{}/{total_text}", offset + page as u64 - 1)
    }
}

/// A database error as PostgREST reports it to this caller.
fn db_error(caller: &Caller, source: DbError) -> RestError {
    RestError::Db {
        source,
        anon: caller.role == "anon",
    }
}

/// Runs a write, rolling it back when its rows break what was asked: exactly one
/// for an object, at most `max-affected`.
async fn run_write(
    state: &AppState,
    request: &TableRequest,
    statement: &Statement,
) -> Result<Written, RestError> {
    let (caller, prefer, path) = (&request.caller, &request.prefer, request.path());
    let api = ApiRequest {
        caller,
        method: request.method.as_str(),
        path: &path,
        read_only: false,
        finish: prefer.finish(),
        sql: &statement.sql,
        params: &statement.params,
        repeated: false,
    };
    let single = prefer.singular() && prefer.representation;
    let max_affected = prefer.max_affected();
    if !single && max_affected.is_none() {
        // Nothing to look at before the end: COMMIT goes in the same round trip.
        let rows = state
            .db
            .run(&api)
            .await
            .map_err(|source| db_error(caller, source))?;
        return Ok(Written::of(&rows));
    }
    let decided = state
        .db
        .run_checked(&api, |rows| {
            let written = Written::of(rows);
            if single && written.count != 1 {
                return Err(Err(RestError::NotSingular {
                    rows: written.count,
                }));
            }
            if let Some(max) = max_affected
                && written.count > max
            {
                return Err(Err(RestError::MaxAffected {
                    rows: written.count,
                }));
            }
            Ok(Ok(written))
        })
        .await
        .map_err(|source| db_error(caller, source))?;
    decided.unwrap_or_else(|refused| refused)
}

/// The caller of a REST request, taken from its headers (and `?apikey=`).
impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = RestError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        state.rest_caller(&parts.headers, parts.uri.query())
    }
}

/// Who calls, and the relation or function the path names, in which schema.
async fn caller_and_name(
    parts: &mut Parts,
    state: &Arc<AppState>,
) -> Result<(Caller, String), RestError> {
    let caller = Caller::from_request_parts(parts, state).await?;
    check_profile(parts)?;
    let Path(name) = Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|e| RestError::InvalidBody(e.to_string()))?;
    Ok((caller, name))
}

/// What every table request starts with: who calls, on which relation, asking what.
struct TableRequest {
    caller: Caller,
    method: Method,
    schema: Arc<Schema>,
    name: String,
    prefer: Prefer,
    query: Query,
    /// The body's `Content-Type`, as given.
    content_type: Option<String>,
}

impl FromRequestParts<Arc<AppState>> for TableRequest {
    type Rejection = RestError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let (caller, name) = caller_and_name(parts, state).await?;
        let schema = state.schema();
        if !schema.relations.contains_key(&name) {
            return Err(RestError::UnknownRelation(name));
        }
        let prefer = Prefer::from(&parts.headers);
        prefer.check()?;
        Ok(Self {
            caller,
            method: parts.method.clone(),
            schema,
            name,
            prefer,
            query: Query::parse(&pairs(parts.uri.query()), |_| false)?,
            content_type: content_type(parts).map(str::to_string),
        })
    }
}

impl TableRequest {
    fn relation(&self) -> &Relation {
        // Checked in `new` against this request's schema, which a reload never changes.
        &self.schema.relations[&self.name]
    }

    fn path(&self) -> String {
        format!("/{}", self.name)
    }

    /// The objects the body holds, read as its `Content-Type` says.
    fn objects(&self, body: &Bytes) -> Result<Vec<serde_json::Map<String, Value>>, RestError> {
        let content_type = self.content_type.as_deref();
        media::objects(media::Payload::of(content_type), content_type, body)
    }
}

fn content_type(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

async fn read(
    State(state): State<Arc<AppState>>,
    mut request: TableRequest,
) -> Result<Response, RestError> {
    apply_range(&mut request.query, &request.prefer);
    let prefer = &request.prefer;
    let statement = sql::select(
        &request.schema,
        request.relation(),
        &request.query,
        prefer.exact_count(),
        prefer.shape(),
    )?;
    let path = request.path();
    let api = ApiRequest {
        caller: &request.caller,
        method: request.method.as_str(),
        path: &path,
        read_only: true,
        finish: Finish::Commit,
        sql: &statement.sql,
        params: &statement.params,
        repeated: false,
    };
    let (rows, estimate) = match statement.explain.as_deref() {
        Some(explain) if prefer.planned_count() => state.db.run_and_estimate(&api, explain).await,
        _ => state.db.run(&api).await.map(|rows| (rows, None)),
    }
    .map_err(|source| db_error(&request.caller, source))?;
    let total = match prefer.count {
        Some("count=planned") => estimate,
        Some("count=estimated") => outcome(&rows).0.max(estimate),
        _ => outcome(&rows).0,
    };
    page_response(&request.query, prefer, Operation::Read, &rows, total)
}

/// A read's answer: the body, its `Content-Range`, 206 for part of a counted set.
fn page_response(
    query: &Query,
    prefer: &Prefer,
    operation: Operation,
    rows: &[Row],
    total: Option<i64>,
) -> Result<Response, RestError> {
    let (_, page, body) = outcome(rows);
    let offset = query.offset.unwrap_or(0);
    if let Some(total) = total
        && total > 0
        && offset >= total as u64
    {
        return Err(RestError::RangeNotSatisfiable { total });
    }
    if prefer.singular() && page != 1 {
        return Err(RestError::NotSingular { rows: page });
    }
    // Part of a counted set: 206, as PostgREST answers.
    let status = match total {
        Some(total) if offset + (page as u64) < total as u64 || offset > 0 => {
            StatusCode::PARTIAL_CONTENT
        }
        _ => StatusCode::OK,
    };
    Ok(respond(
        prefer,
        status,
        Some(body.unwrap_or_else(|| "null".into())),
        Some(content_range(offset, page, total)),
        prefer.applied(operation),
    ))
}

/// An insert's rows, grouped by the columns they give. Without `columns=`, every
/// object must have the same keys (PGRST102). With it, those are the columns; a key
/// an object lacks is null, or with `missing=default` the column's default (its
/// objects then go in a group of their own).
fn insert_rows(
    objects: Vec<serde_json::Map<String, Value>>,
    columns: Option<&[String]>,
    missing_default: bool,
) -> Result<sql::Rows, RestError> {
    let mut groups: Vec<(Vec<String>, Vec<Value>)> = Vec::new();
    for object in objects {
        let mut keys: Vec<String> = match columns {
            Some(columns) if missing_default => columns
                .iter()
                .filter(|c| object.contains_key(*c))
                .cloned()
                .collect(),
            Some(columns) => columns.to_vec(),
            None => object.keys().cloned().collect(),
        };
        keys.sort();
        match groups.iter().position(|(k, _)| *k == keys) {
            Some(i) => groups[i].1.push(Value::Object(object)),
            None if columns.is_none() && !groups.is_empty() => {
                return Err(RestError::InvalidBody("All object keys must match".into()));
            }
            None => groups.push((keys, vec![Value::Object(object)])),
        }
    }
    Ok(sql::Rows {
        groups: groups
            .into_iter()
            .map(|(keys, rows)| (keys, Value::Array(rows).to_string()))
            .collect(),
    })
}

fn returning(prefer: &Prefer) -> Returning {
    if prefer.representation {
        Returning::Rows(prefer.shape())
    } else {
        Returning::Nothing
    }
}

/// A write's answer: `status` with the rows when asked for them, else 204 (201 for
/// an insert, which has no 204).
fn write_response(
    prefer: &Prefer,
    operation: Operation,
    status: StatusCode,
    written: Written,
    range: String,
) -> Response {
    let applied = prefer.applied(operation);
    if prefer.representation {
        let body = written.body.unwrap_or_else(|| "[]".into());
        respond(prefer, status, Some(body), Some(range), applied)
    } else if matches!(operation, Operation::Insert { .. }) {
        respond(prefer, status, None, Some(range), applied)
    } else {
        respond(prefer, StatusCode::NO_CONTENT, None, Some(range), applied)
    }
}

async fn insert(
    State(state): State<Arc<AppState>>,
    request: TableRequest,
    body: Bytes,
) -> Result<Response, RestError> {
    let (prefer, query, relation) = (&request.prefer, &request.query, request.relation());
    let rows = insert_rows(
        request.objects(&body)?,
        query.columns.as_deref(),
        prefer.missing_default == Some(true),
    )?;
    // The key an upsert resolves on: `on_conflict`, else the primary key.
    let keys = query
        .on_conflict
        .clone()
        .or_else(|| (!relation.primary_key.is_empty()).then(|| relation.primary_key.clone()));
    let conflict = match (prefer.resolution, keys) {
        (Some(Resolution::Merge), Some(keys)) => sql::Conflict::Merge(keys),
        (Some(Resolution::Ignore), Some(keys)) => sql::Conflict::Ignore(keys),
        _ => sql::Conflict::Fail,
    };
    let operation = Operation::Insert {
        resolves: conflict != sql::Conflict::Fail,
    };
    let written = if rows.groups.is_empty() {
        Written {
            count: 0,
            inserted: 0,
            body: Some("[]".into()),
        }
    } else {
        let statement = sql::insert(
            &request.schema,
            relation,
            query,
            rows,
            &conflict,
            returning(prefer),
        )?;
        run_write(&state, &request, &statement).await?
    };
    // Only updated rows, no new ones: 200, as PostgREST answers a merging upsert.
    let status = if matches!(conflict, sql::Conflict::Merge(_)) && written.inserted == 0 {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let total = prefer.exact_count().then_some(written.count);
    let range = content_range(0, 0, total);
    Ok(write_response(prefer, operation, status, written, range))
}

async fn update(
    State(state): State<Arc<AppState>>,
    request: TableRequest,
    body: Bytes,
) -> Result<Response, RestError> {
    if request.query.filters.is_empty() {
        return Err(RestError::UnsafeWrite("UPDATE"));
    }
    let mut objects = request.objects(&body)?;
    let (Some(object), None) = (objects.pop(), objects.pop()) else {
        return Err(RestError::InvalidBody("PATCH takes one object".into()));
    };
    let prefer = &request.prefer;
    let written = if object.is_empty() {
        Written {
            count: 0,
            inserted: 0,
            body: Some("[]".into()),
        }
    } else {
        let columns: Vec<String> = object.keys().cloned().collect();
        let payload = Value::Object(object).to_string();
        let statement = sql::update(
            &request.schema,
            request.relation(),
            &request.query,
            &columns,
            payload,
            returning(prefer),
        )?;
        run_write(&state, &request, &statement).await?
    };
    let range = content_range(
        0,
        written.count,
        prefer.exact_count().then_some(written.count),
    );
    Ok(write_response(
        prefer,
        Operation::Update,
        StatusCode::OK,
        written,
        range,
    ))
}

async fn delete(
    State(state): State<Arc<AppState>>,
    request: TableRequest,
) -> Result<Response, RestError> {
    if request.query.filters.is_empty() {
        return Err(RestError::UnsafeWrite("DELETE"));
    }
    let prefer = &request.prefer;
    let statement = sql::delete(
        &request.schema,
        request.relation(),
        &request.query,
        returning(prefer),
    )?;
    let written = run_write(&state, &request, &statement).await?;
    let range = content_range(0, 0, prefer.exact_count().then_some(written.count));
    Ok(write_response(
        prefer,
        Operation::Delete,
        StatusCode::OK,
        written,
        range,
    ))
}

/// What every function call starts with: who calls which function, asking what.
struct RpcRequest {
    caller: Caller,
    method: Method,
    name: String,
    prefer: Prefer,
    /// What the body is: named arguments in JSON or a form, or the argument itself.
    payload: media::Payload,
}

impl FromRequestParts<Arc<AppState>> for RpcRequest {
    type Rejection = RestError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let (caller, name) = caller_and_name(parts, state).await?;
        let prefer = Prefer::from(&parts.headers);
        prefer.check()?;
        Ok(Self {
            caller,
            method: parts.method.clone(),
            name,
            prefer,
            payload: media::Payload::of(content_type(parts)),
        })
    }
}

/// The body of a call: named arguments, or the body itself for a function of one
/// unnamed argument.
enum Body {
    Named(serde_json::Map<String, Value>),
    Whole(String),
}

async fn call_post(
    State(state): State<Arc<AppState>>,
    request: RpcRequest,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, RestError> {
    let query = Query::parse(&pairs(raw.as_deref()), |_| false)?;
    let text = String::from_utf8_lossy(&body).into_owned();
    let body = if request.payload == media::Payload::Text {
        Body::Whole(text)
    } else if request.payload == media::Payload::Form {
        Body::Named(media::form_object(&body))
    } else if body.iter().all(u8::is_ascii_whitespace) {
        Body::Named(serde_json::Map::new())
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => {
                let schema = state.schema();
                // PostgREST passes the whole object to `f(json)` when no function
                // takes its keys by name.
                let overloads = schema.functions.get(&request.name).map(Vec::as_slice);
                let given: Vec<&str> = map.keys().map(String::as_str).collect();
                let takes_whole = overloads
                    .unwrap_or_default()
                    .iter()
                    .all(|f| !f.accepts(&given))
                    && overloads
                        .unwrap_or_default()
                        .iter()
                        .any(|f| matches!(f.takes_body_as(), Some("json" | "jsonb")));
                if takes_whole {
                    Body::Whole(text)
                } else {
                    Body::Named(map)
                }
            }
            Ok(_) => Body::Whole(text),
            Err(e) => {
                return Err(RestError::InvalidBody(format!(
                    "Empty or invalid json: {e}"
                )));
            }
        }
    };
    call(&state, request, body, query, false).await
}

async fn call_get(
    State(state): State<Arc<AppState>>,
    request: RpcRequest,
    RawQuery(raw): RawQuery,
) -> Result<Response, RestError> {
    let schema = state.schema();
    let is_argument = |key: &str| {
        schema
            .functions
            .get(&request.name)
            .is_some_and(|fs| fs.iter().any(|f| f.arguments.iter().any(|a| a.name == key)))
    };
    let query = Query::parse(&pairs(raw.as_deref()), is_argument)?;
    let args = query
        .other
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    call(&state, request, Body::Named(args), query, true).await
}

/// The one function a call means: the overload that takes the given keys (or the
/// body itself), PGRST203 when more than one does, PGRST202 when none.
fn resolve<'s>(
    schema: &'s Schema,
    name: &str,
    body: &Body,
    plain_text: bool,
) -> Result<&'s schema::Function, RestError> {
    let overloads = schema
        .functions
        .get(name)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let (fits, given): (Vec<&schema::Function>, Vec<&str>) = match body {
        Body::Named(args) => {
            let given: Vec<&str> = args.keys().map(String::as_str).collect();
            (
                overloads.iter().filter(|f| f.accepts(&given)).collect(),
                given,
            )
        }
        Body::Whole(_) => {
            let types: &[&str] = if plain_text {
                &["text"]
            } else {
                &["json", "jsonb"]
            };
            let fits = overloads
                .iter()
                .filter(|f| f.takes_body_as().is_some_and(|t| types.contains(&t)))
                .collect();
            (fits, Vec::new())
        }
    };
    match fits.as_slice() {
        [only] => Ok(only),
        [] => {
            let mut given = given;
            given.sort_unstable();
            Err(RestError::UnknownFunction {
                name: name.to_string(),
                args: given.join(", "),
            })
        }
        many => Err(RestError::AmbiguousFunction(
            many.iter()
                .map(|f| {
                    let arguments: Vec<String> = f
                        .arguments
                        .iter()
                        .map(|a| format!("{} => {}", a.name, a.type_name))
                        .collect();
                    format!("public.{}({})", f.name, arguments.join(", "))
                })
                .collect(),
        )),
    }
}

async fn call(
    state: &AppState,
    request: RpcRequest,
    body: Body,
    mut query: Query,
    via_get: bool,
) -> Result<Response, RestError> {
    let RpcRequest {
        caller,
        method,
        name,
        prefer,
        payload,
    } = request;
    let schema = state.schema();
    let function = resolve(&schema, &name, &body, payload == media::Payload::Text)?;
    if via_get && !function.read_only {
        return Err(RestError::VolatileGet);
    }
    let max_affected = prefer.max_affected();
    if max_affected.is_some() && !matches!(function.returns, Returns::Rows | Returns::Values) {
        return Err(RestError::MaxAffectedNotASet);
    }
    apply_range(&mut query, &prefer);
    let given: Vec<&str>;
    let arguments = match &body {
        Body::Named(args) => {
            given = args.keys().map(String::as_str).collect();
            sql::Arguments::Named {
                given: &given,
                json: Value::Object(args.clone()).to_string(),
            }
        }
        Body::Whole(text) => sql::Arguments::Body(text.clone()),
    };
    let statement = sql::call(
        &schema,
        function,
        arguments,
        &query,
        prefer.exact_count(),
        prefer.shape(),
    )?;
    let path = format!("/rpc/{name}");
    let api = ApiRequest {
        caller: &caller,
        method: method.as_str(),
        path: &path,
        read_only: function.read_only,
        finish: prefer.finish(),
        sql: &statement.sql,
        params: &statement.params,
        // A volatile function is what a worker calls for every batch (claims,
        // finishes, enqueues): the same text each time. PostgreSQL never inlines one
        // into its call, so a plan kept for the call loses nothing.
        repeated: !function.read_only,
    };
    let rows = match max_affected {
        // Nothing to look at before the end: COMMIT goes in the same round trip.
        None => state.db.run(&api).await.map(Ok),
        Some(max) => state
            .db
            .run_checked(&api, |rows| {
                let (_, page, _) = outcome(rows);
                if page > max {
                    Err(Err(RestError::MaxAffected { rows: page }))
                } else {
                    Ok(Ok(rows.to_vec()))
                }
            })
            .await
            .map(|decided| decided.unwrap_or_else(|refused| refused)),
    }
    .map_err(|source| db_error(&caller, source))??;
    let applied = prefer.applied(Operation::Call);
    match function.returns {
        Returns::Void => Ok(respond(
            &prefer,
            StatusCode::NO_CONTENT,
            None,
            None,
            applied,
        )),
        Returns::Scalar | Returns::Row => {
            let (_, _, body) = outcome(&rows);
            Ok(respond(
                &prefer,
                StatusCode::OK,
                Some(body.unwrap_or_else(|| "null".into())),
                Some(content_range(0, 1, None)),
                applied,
            ))
        }
        Returns::Rows | Returns::Values => {
            let total = outcome(&rows).0;
            page_response(&query, &prefer, Operation::Call, &rows, total)
        }
    }
}
