//! Running one API request in PostgreSQL the way PostgREST does: one transaction, the
//! caller's role and JWT claims set locally, then the statement.
//!
//! The four messages (BEGIN, the settings, the statement, COMMIT) are pipelined over one
//! pooled connection, so a request costs one network round trip to the database. The
//! settings statement is prepared once per connection. A request's own statement is
//! either prepared too (when its text repeats: see [`ApiRequest::repeated`]), or sent
//! with its parameter types (all text, cast in SQL), which skips the separate prepare
//! round trip. COMMIT after a failed statement is PostgreSQL's ROLLBACK, so
//! pipelining never commits half a request.
//!
//! Connections go back to the pool without a cleaning query (that would be a second
//! round trip per request): a request's settings are transaction-local, and a request
//! abandoned mid-transaction (its HTTP client went away) closes its connection instead
//! of returning it, so no request inherits another's transaction.

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, QueueMode, RecyclingMethod};
use tokio_postgres::{
    NoTls, Row, Statement,
    types::{ToSql, Type},
};

/// Who the request runs as.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The database role from the JWT's `role` claim (anon without a user JWT).
    pub role: String,
    /// The JWT's claims as JSON text, for `request.jwt.claims`.
    pub claims: String,
}

impl Caller {
    /// Who a verified JWT's claims say the caller is (anon without a `role`).
    pub fn from_claims(claims: &serde_json::Value) -> Self {
        Caller {
            role: claims["role"].as_str().unwrap_or("anon").to_string(),
            claims: claims.to_string(),
        }
    }
}

/// One API request for the database: who runs which statement, how.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    pub caller: &'a Caller,
    /// The HTTP method and path, for `request.method` and `request.path`.
    pub method: &'a str,
    pub path: &'a str,
    /// GET, HEAD and stable functions run in a READ ONLY transaction.
    pub read_only: bool,
    pub finish: Finish,
    pub sql: &'a str,
    /// Every value as text; the SQL casts it to its column's type.
    pub params: &'a [String],
    /// The same SQL text runs again and again (Realtime's row checks, a worker's
    /// calls of the job functions): prepared once per connection, so PostgreSQL parses
    /// and plans it once rather than on every request. Reads and table writes, whose
    /// SQL varies with their query strings and whose best plans depend on the values
    /// they filter by, are sent unprepared.
    pub repeated: bool,
}

/// How the transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Commit,
    /// `Prefer: tx=rollback`: run everything, keep nothing.
    Rollback,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Query(#[from] tokio_postgres::Error),
}

/// Statements one connection keeps prepared at most. Past it the connection's cache
/// starts again empty, so callers whose SQL never repeats cannot grow it without end.
const PREPARED_PER_CONNECTION: usize = 256;

/// Connections as the `authenticator` role.
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
}

impl Db {
    pub fn new(config: tokio_postgres::Config, max_connections: usize) -> Result<Self, DbError> {
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // Only closed connections are replaced; see `Checkout` for the rest.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            // The connection used last serves next: at low load one PostgreSQL backend,
            // its caches (compiled functions, plans, memory) hot, answers request after
            // request, rather than each in turn of a rotation that keeps them all cold.
            .queue_mode(QueueMode::Lifo)
            .build()
            .map_err(|error| DbError::Unavailable(error.to_string()))?;
        Ok(Self { pool })
    }

    pub async fn client(&self) -> Result<deadpool_postgres::Object, DbError> {
        self.pool
            .get()
            .await
            .map_err(|error| DbError::Unavailable(error.to_string()))
    }

    /// Runs the request's statement as its caller in one transaction.
    pub async fn run(&self, request: &ApiRequest<'_>) -> Result<Vec<Row>, DbError> {
        Ok(self.transaction(request, None).await?.0)
    }

    /// Like [`Db::run`], and `explain` (an `EXPLAIN (FORMAT JSON)` taking the same
    /// parameters) after it in the same transaction and round trip: the planner's
    /// estimate of the rows of its plan.
    pub async fn run_and_estimate(
        &self,
        request: &ApiRequest<'_>,
        explain: &str,
    ) -> Result<(Vec<Row>, Option<i64>), DbError> {
        let (rows, plan) = self.transaction(request, Some(explain)).await?;
        let estimate = plan
            .as_deref()
            .and_then(|rows| rows.first())
            .and_then(|row| row.try_get::<_, serde_json::Value>(0).ok())
            .and_then(|plan| plan[0]["Plan"]["Plan Rows"].as_f64())
            .map(|rows| rows as i64);
        Ok((rows, estimate))
    }

    async fn transaction(
        &self,
        request: &ApiRequest<'_>,
        explain: Option<&str>,
    ) -> Result<(Vec<Row>, Option<Vec<Row>>), DbError> {
        let checkout = Checkout(Some(self.client().await?));
        let client = checkout.client();
        let begin = if request.read_only {
            "BEGIN READ ONLY"
        } else {
            "BEGIN"
        };
        let end = match request.finish {
            Finish::Commit => "COMMIT",
            Finish::Rollback => "ROLLBACK",
        };
        let set_caller = client
            .prepare_typed_cached(SET_CALLER, &SET_CALLER_TYPES)
            .await?;
        let settings = settings(request);
        let typed = typed(request.params);
        let prepared = prepared(client, request).await?;
        let statement = query(client, request, prepared.as_ref(), &typed);
        let explained = async {
            match explain {
                Some(sql) => client.query_typed(sql, &typed).await.map(Some),
                None => Ok(None),
            }
        };
        let (begun, set, rows, explained, ended) = tokio::join!(
            client.batch_execute(begin),
            client.query(&set_caller, &settings),
            statement,
            explained,
            client.batch_execute(end),
        );
        checkout.finished();
        begun?;
        set?;
        let rows = rows?;
        let explained = explained?;
        ended?;
        Ok((rows, explained))
    }

    /// Like [`Db::run`], but `decide` sees the rows before the transaction ends and may
    /// refuse them (the transaction then rolls back). Costs a second round trip, so it
    /// is used only where PostgREST must look at a write's result first.
    pub async fn run_checked<T>(
        &self,
        request: &ApiRequest<'_>,
        decide: impl FnOnce(&[Row]) -> Result<T, T>,
    ) -> Result<Result<T, T>, DbError> {
        let checkout = Checkout(Some(self.client().await?));
        let client = checkout.client();
        let set_caller = client
            .prepare_typed_cached(SET_CALLER, &SET_CALLER_TYPES)
            .await?;
        let settings = settings(request);
        let typed = typed(request.params);
        let prepared = prepared(client, request).await?;
        let (begun, set, rows) = tokio::join!(
            client.batch_execute("BEGIN"),
            client.query(&set_caller, &settings),
            query(client, request, prepared.as_ref(), &typed),
        );
        let rows = match begun.and(set).and(rows) {
            Ok(rows) => rows,
            Err(error) => {
                client.batch_execute("ROLLBACK").await?;
                checkout.finished();
                return Err(error.into());
            }
        };
        let decision = decide(&rows);
        let end = match (&decision, request.finish) {
            (Ok(_), Finish::Commit) => "COMMIT",
            _ => "ROLLBACK",
        };
        client.batch_execute(end).await?;
        checkout.finished();
        Ok(decision)
    }
}

/// A pooled connection in the middle of a request's transaction. Dropped before
/// [`Checkout::finished`] (the request was abandoned, or ending the transaction
/// failed), the connection leaves the pool and closes, and its transaction with it.
struct Checkout(Option<Object>);

impl Checkout {
    fn client(&self) -> &Object {
        self.0.as_ref().expect("present until finished or dropped")
    }

    /// The transaction ended: the connection may serve the next request.
    fn finished(mut self) {
        drop(self.0.take());
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(Object::take(object));
        }
    }
}

type Param<'a> = (&'a (dyn ToSql + Sync), Type);

/// What PostgREST sets for each request, transaction-local. The one statement every
/// request runs, so each connection prepares it once (the pool's statement cache)
/// rather than PostgreSQL parsing it for every request.
const SET_CALLER: &str = "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true), \
                          set_config('request.method', $3, true), set_config('request.path', $4, true)";
const SET_CALLER_TYPES: [Type; 4] = [Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT];

fn settings<'a>(request: &'a ApiRequest<'a>) -> [&'a (dyn ToSql + Sync); 4] {
    [
        &request.caller.role,
        &request.caller.claims,
        &request.method,
        &request.path,
    ]
}

/// The request's statement prepared on this connection, if its text repeats.
async fn prepared(
    client: &Object,
    request: &ApiRequest<'_>,
) -> Result<Option<Statement>, tokio_postgres::Error> {
    if !request.repeated {
        return Ok(None);
    }
    if client.statement_cache.size() >= PREPARED_PER_CONNECTION {
        client.statement_cache.clear();
    }
    let types = vec![Type::TEXT; request.params.len()];
    Ok(Some(
        client.prepare_typed_cached(request.sql, &types).await?,
    ))
}

/// Runs the request's statement: `prepared`, or sent with its parameters' types.
async fn query(
    client: &Object,
    request: &ApiRequest<'_>,
    prepared: Option<&Statement>,
    typed: &[Param<'_>],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    match prepared {
        Some(statement) => {
            let values: Vec<&(dyn ToSql + Sync)> = typed.iter().map(|(value, _)| *value).collect();
            client.query(statement, &values).await
        }
        None => client.query_typed(request.sql, typed).await,
    }
}

/// Every value travels as text; the SQL casts it to the column's type.
fn typed(params: &[String]) -> Vec<Param<'_>> {
    params
        .iter()
        .map(|p| (p as &(dyn ToSql + Sync), Type::TEXT))
        .collect()
}
