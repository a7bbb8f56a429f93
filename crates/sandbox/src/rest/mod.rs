//! `/rest/v1`: PostgREST's protocol for the tables, views and functions of `public`.
//!
//! # Layout
//! - [`query`]: the query-string grammar (select, filters, order, paging).
//! - [`schema`]: what `public` holds, loaded at start and on `NOTIFY pgrst`.
//! - [`sql`]: one SQL statement per request, values bound, names checked.
//! - [`error`]: PostgREST's error bodies and statuses.
//!
//! Each request runs as the caller's role with their JWT claims, in one transaction
//! ([`crate::db`]); PostgreSQL's grants and row-level security decide what it may do.

pub mod error;
pub mod query;
pub mod schema;
pub mod sql;

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::{FromRequestParts, Path, RawQuery, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
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

/// What the request's headers ask for.
#[derive(Debug, Default)]
struct Prefer {
    representation: bool,
    count: bool,
    rollback: bool,
    object: bool,
    /// `Range: 0-19` (or `items=0-19`) as (offset, limit).
    range: Option<(u64, Option<u64>)>,
}

impl Prefer {
    fn from(headers: &HeaderMap) -> Self {
        let mut prefer = Prefer::default();
        for value in headers.get_all("prefer") {
            for item in value.to_str().unwrap_or_default().split(',') {
                match item.trim() {
                    "return=representation" => prefer.representation = true,
                    "count=exact" | "count=planned" | "count=estimated" => prefer.count = true,
                    "tx=rollback" => prefer.rollback = true,
                    _ => {}
                }
            }
        }
        prefer.object = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/vnd.pgrst.object"));
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

    fn shape(&self) -> Shape {
        if self.object {
            Shape::Object
        } else {
            Shape::Array
        }
    }

    fn finish(&self) -> Finish {
        if self.rollback {
            Finish::Rollback
        } else {
            Finish::Commit
        }
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

fn json_response(status: StatusCode, body: String, range: Option<String>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(range) = range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        headers.insert(header::CONTENT_RANGE, range);
    }
    response
}

fn content_range(offset: u64, page: i64, total: Option<i64>) -> String {
    let total = total.map_or("*".to_string(), |t| t.to_string());
    if page <= 0 {
        format!("*/{total}")
    } else {
        format!("{offset}-{}/{total}", offset + page as u64 - 1)
    }
}

/// Runs `statement` as the caller, answering the rows or PostgREST's error.
async fn run(
    state: &AppState,
    caller: &Caller,
    (method, path): (&Method, &str),
    read_only: bool,
    finish: Finish,
    statement: &Statement,
) -> Result<Vec<Row>, RestError> {
    let request = ApiRequest {
        caller,
        method: method.as_str(),
        path,
        read_only,
        finish,
        sql: &statement.sql,
        params: &statement.params,
        repeated: false,
    };
    state
        .db
        .run(&request)
        .await
        .map_err(|source| db_error(caller, source))
}

fn db_error(caller: &Caller, source: DbError) -> RestError {
    RestError::Db {
        source,
        anon: caller.role == "anon",
    }
}

/// Runs a write whose result must be exactly one row when an object was asked for;
/// anything else rolls back.
async fn run_write(
    state: &AppState,
    request: &TableRequest,
    statement: &Statement,
) -> Result<(i64, Option<String>), RestError> {
    let (caller, prefer, path) = (&request.caller, &request.prefer, request.path());
    if !(prefer.object && prefer.representation) {
        let rows = run(
            state,
            caller,
            (&request.method, &path),
            false,
            prefer.finish(),
            statement,
        )
        .await?;
        let (_, count, body) = outcome(&rows);
        return Ok((count, body));
    }
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
    let decided = state
        .db
        .run_checked(&api, |rows| {
            let (_, count, body) = outcome(rows);
            if count == 1 {
                Ok((count, body))
            } else {
                Err((count, body))
            }
        })
        .await
        .map_err(|source| db_error(caller, source))?;
    decided.map_err(|(rows, _)| RestError::NotSingular { rows })
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

/// Who calls, and the relation or function the path names.
async fn caller_and_name(
    parts: &mut Parts,
    state: &Arc<AppState>,
) -> Result<(Caller, String), RestError> {
    let caller = Caller::from_request_parts(parts, state).await?;
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
        Ok(Self {
            caller,
            method: parts.method.clone(),
            schema,
            name,
            prefer: Prefer::from(&parts.headers),
            query: Query::parse(&pairs(parts.uri.query()), |_| false)?,
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
}

async fn read(
    State(state): State<Arc<AppState>>,
    mut request: TableRequest,
) -> Result<Response, RestError> {
    apply_range(&mut request.query, &request.prefer);
    let prefer = &request.prefer;
    let statement = sql::select(
        request.relation(),
        &request.query,
        prefer.count,
        prefer.shape(),
    )?;
    let rows = run(
        &state,
        &request.caller,
        (&request.method, &request.path()),
        true,
        Finish::Commit,
        &statement,
    )
    .await?;
    page_response(&request.query, prefer, rows)
}

/// A read's answer: the body, its `Content-Range`, 206 for part of a counted set.
fn page_response(query: &Query, prefer: &Prefer, rows: Vec<Row>) -> Result<Response, RestError> {
    let (total, page, body) = outcome(&rows);
    let offset = query.offset.unwrap_or(0);
    if let Some(total) = total
        && total > 0
        && offset >= total as u64
    {
        return Err(RestError::RangeNotSatisfiable { total });
    }
    if prefer.object && page != 1 {
        return Err(RestError::NotSingular { rows: page });
    }
    // Part of a counted set: 206, as PostgREST answers.
    let status = match total {
        Some(total) if offset + (page as u64) < total as u64 || offset > 0 => {
            StatusCode::PARTIAL_CONTENT
        }
        _ => StatusCode::OK,
    };
    let body = body.unwrap_or_else(|| "null".into());
    Ok(json_response(
        status,
        body,
        Some(content_range(offset, page, total)),
    ))
}

/// A JSON body: an object or an array of objects with the same keys.
fn payload(body: &Bytes) -> Result<(Vec<String>, String), RestError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RestError::InvalidBody(format!("Empty or invalid json: {e}")))?;
    let objects = match &value {
        Value::Object(_) => vec![&value],
        Value::Array(items) => items.iter().collect(),
        _ => {
            return Err(RestError::InvalidBody(
                "Expected a JSON object or an array of objects".into(),
            ));
        }
    };
    let mut columns: Option<Vec<String>> = None;
    for object in &objects {
        let Value::Object(map) = object else {
            return Err(RestError::InvalidBody(
                "Expected a JSON object or an array of objects".into(),
            ));
        };
        let mut keys: Vec<String> = map.keys().cloned().collect();
        keys.sort();
        match &columns {
            None => columns = Some(keys),
            Some(first) if *first != keys => {
                return Err(RestError::InvalidBody("All object keys must match".into()));
            }
            Some(_) => {}
        }
    }
    let text = match value {
        Value::Array(_) => String::from_utf8_lossy(body).into_owned(),
        object => Value::Array(vec![object]).to_string(),
    };
    Ok((columns.unwrap_or_default(), text))
}

fn returning(prefer: &Prefer) -> Returning {
    if prefer.representation {
        Returning::Rows(prefer.shape())
    } else {
        Returning::Nothing
    }
}

async fn insert(
    State(state): State<Arc<AppState>>,
    request: TableRequest,
    body: Bytes,
) -> Result<Response, RestError> {
    let prefer = &request.prefer;
    let (columns, payload) = payload(&body)?;
    if payload == "[]" {
        let body = if prefer.representation { "[]" } else { "" };
        return Ok(json_response(
            StatusCode::CREATED,
            body.into(),
            Some("*/*".into()),
        ));
    }
    let statement = sql::insert(
        request.relation(),
        &request.query,
        &columns,
        payload,
        returning(prefer),
    )?;
    let (_, body) = run_write(&state, &request, &statement).await?;
    let body = if prefer.representation {
        body.unwrap_or_else(|| "[]".into())
    } else {
        String::new()
    };
    Ok(json_response(StatusCode::CREATED, body, Some("*/*".into())))
}

async fn update(
    State(state): State<Arc<AppState>>,
    request: TableRequest,
    body: Bytes,
) -> Result<Response, RestError> {
    if request.query.filters.is_empty() {
        return Err(RestError::UnsafeWrite("UPDATE"));
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&body) else {
        return Err(RestError::InvalidBody("PATCH takes one JSON object".into()));
    };
    let prefer = &request.prefer;
    if object.is_empty() {
        return Ok(write_response(prefer, StatusCode::OK, Some("[]".into())));
    }
    let columns: Vec<String> = object.keys().cloned().collect();
    let payload = Value::Object(object).to_string();
    let statement = sql::update(
        request.relation(),
        &request.query,
        &columns,
        payload,
        returning(prefer),
    )?;
    let (_, body) = run_write(&state, &request, &statement).await?;
    Ok(write_response(prefer, StatusCode::OK, body))
}

async fn delete(
    State(state): State<Arc<AppState>>,
    request: TableRequest,
) -> Result<Response, RestError> {
    if request.query.filters.is_empty() {
        return Err(RestError::UnsafeWrite("DELETE"));
    }
    let prefer = &request.prefer;
    let statement = sql::delete(request.relation(), &request.query, returning(prefer))?;
    let (_, body) = run_write(&state, &request, &statement).await?;
    Ok(write_response(prefer, StatusCode::OK, body))
}

/// PATCH and DELETE answer 204, or `status` with the rows when asked for them.
fn write_response(prefer: &Prefer, status: StatusCode, body: Option<String>) -> Response {
    if prefer.representation {
        json_response(
            status,
            body.unwrap_or_else(|| "[]".into()),
            Some("*/*".into()),
        )
    } else {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(range) = HeaderValue::from_str("*/*") {
            response.headers_mut().insert(header::CONTENT_RANGE, range);
        }
        response
    }
}

/// What every function call starts with: who calls which function, asking what.
struct RpcRequest {
    caller: Caller,
    method: Method,
    name: String,
    prefer: Prefer,
}

impl FromRequestParts<Arc<AppState>> for RpcRequest {
    type Rejection = RestError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let (caller, name) = caller_and_name(parts, state).await?;
        Ok(Self {
            caller,
            method: parts.method.clone(),
            name,
            prefer: Prefer::from(&parts.headers),
        })
    }
}

async fn call_post(
    State(state): State<Arc<AppState>>,
    request: RpcRequest,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, RestError> {
    let args = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(RestError::InvalidBody(
                    "RPC arguments are one JSON object".into(),
                ));
            }
            Err(e) => {
                return Err(RestError::InvalidBody(format!(
                    "Empty or invalid json: {e}"
                )));
            }
        }
    };
    let query = Query::parse(&pairs(raw.as_deref()), |_| false)?;
    call(&state, request, args, query, false).await
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
    call(&state, request, args, query, true).await
}

async fn call(
    state: &AppState,
    request: RpcRequest,
    args: serde_json::Map<String, Value>,
    mut query: Query,
    via_get: bool,
) -> Result<Response, RestError> {
    let RpcRequest {
        caller,
        method,
        name,
        prefer,
    } = request;
    let schema = state.schema();
    let mut given: Vec<&str> = args.keys().map(String::as_str).collect();
    given.sort_unstable();
    let function = schema
        .functions
        .get(&name)
        .and_then(|overloads| overloads.iter().find(|f| f.accepts(&given)))
        .ok_or_else(|| RestError::UnknownFunction {
            name: name.clone(),
            args: given.join(", "),
        })?;
    if via_get && !function.read_only {
        return Err(RestError::VolatileGet);
    }
    apply_range(&mut query, &prefer);
    let statement = sql::call(
        function,
        &given,
        Value::Object(args.clone()).to_string(),
        &query,
        prefer.count,
        prefer.shape(),
    )?;
    let path = format!("/rpc/{name}");
    let rows = run(
        state,
        &caller,
        (&method, &path),
        function.read_only,
        prefer.finish(),
        &statement,
    )
    .await?;
    match function.returns {
        Returns::Void => Ok(StatusCode::NO_CONTENT.into_response()),
        Returns::Scalar | Returns::Row => {
            let (_, _, body) = outcome(&rows);
            Ok(json_response(
                StatusCode::OK,
                body.unwrap_or_else(|| "null".into()),
                None,
            ))
        }
        Returns::Rows => page_response(&query, &prefer, rows),
    }
}
