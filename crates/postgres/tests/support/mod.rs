//! Runs SQL the way PostgREST runs a request: connected as `authenticator`, one
//! transaction per call, with `role` and `request.jwt.claims` set from the caller.

use jobdeck_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use tokio_postgres::{Client, Row, types::ToSql};
use uuid::Uuid;

/// Who makes a request.
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    Anon,
    User(Uuid),
    Service,
}

impl Actor {
    fn role_and_claims(self) -> (&'static str, Value) {
        match self {
            Actor::Anon => ("anon", json!({ "role": "anon" })),
            Actor::User(id) => (
                "authenticated",
                json!({ "sub": id, "role": "authenticated", "aud": "authenticated" }),
            ),
            Actor::Service => ("service_role", json!({ "role": "service_role" })),
        }
    }
}

/// One test's database, with an admin connection for fixtures and an `authenticator`
/// connection for requests.
pub struct Db {
    pub database: TestDatabase,
    pub admin: Client,
    pub api: Client,
}

impl Db {
    pub async fn new() -> Db {
        let database = TestDatabase::new().await;
        Db {
            admin: database.admin().await,
            api: database.authenticator().await,
            database,
        }
    }

    /// A user in `auth.users`, as sign-up would create.
    pub async fn user(&self) -> Uuid {
        let id = Uuid::new_v4();
        self.admin
            .execute(
                "insert into auth.users (id, aud, role, email, created_at, updated_at)
                 values ($1, 'authenticated', 'authenticated', $2, now(), now())",
                &[&id, &format!("{id}@example.com")],
            )
            .await
            .expect("inserting a user");
        id
    }

    /// Runs `sql` as `actor` in a transaction of its own, committed on success.
    pub async fn call(
        &mut self,
        actor: Actor,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        as_actor(&mut self.api, actor, sql, params).await
    }

    /// Like [`Db::call`], expecting success.
    pub async fn ok(
        &mut self,
        actor: Actor,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Vec<Row> {
        self.call(actor, sql, params)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error:?}"))
    }

    /// Like [`Db::call`], expecting an error; answers its SQLSTATE.
    pub async fn err(&mut self, actor: Actor, sql: &str, params: &[&(dyn ToSql + Sync)]) -> String {
        match self.call(actor, sql, params).await {
            Ok(rows) => panic!(
                "{sql} succeeded with {} rows, expected an error",
                rows.len()
            ),
            Err(error) => sqlstate(&error),
        }
    }

    /// Enqueues a job for `user` through `enqueue_job`; answers its id.
    pub async fn enqueue(&mut self, user: Uuid, kind: &str, max_attempts: i32) -> i64 {
        let rows = self
            .ok(
                Actor::User(user),
                "select id from enqueue_job(kind => $1, context => '{}', max_attempts => $2)",
                &[&kind, &max_attempts],
            )
            .await;
        rows[0].get(0)
    }

    /// Claims for `user` as `worker`; answers the claimed ids.
    pub async fn claim(&mut self, user: Uuid, worker: &str, max_jobs: i32) -> Vec<i64> {
        self.ok(
            Actor::User(user),
            "select id from claim_jobs(worker => $1, max_jobs => $2, lease_seconds => 30)",
            &[&worker, &max_jobs],
        )
        .await
        .iter()
        .map(|row| row.get(0))
        .collect()
    }

    /// One job's row as JSON, read by the superuser (whatever RLS would say).
    pub async fn job(&self, id: i64) -> Value {
        self.admin
            .query_one("select to_jsonb(j) from jobs j where id = $1", &[&id])
            .await
            .expect("reading a job")
            .get(0)
    }

    /// Time passes for one job's lease: it is now expired. (Cheaper and more exact
    /// than sleeping through a real lease.)
    pub async fn expire_lease(&self, id: i64) {
        self.admin
            .execute(
                "update jobs set locked_until = now() - interval '1 second' where id = $1",
                &[&id],
            )
            .await
            .expect("expiring a lease");
    }

    /// Time passes until a waiting job is due.
    pub async fn make_due(&self, id: i64) {
        self.admin
            .execute("update jobs set run_at = now() where id = $1", &[&id])
            .await
            .expect("making a job due");
    }
}

pub async fn as_actor(
    client: &mut Client,
    actor: Actor,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let (role, claims) = actor.role_and_claims();
    let tx = client.transaction().await?;
    tx.execute(
        "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
        &[&role, &claims.to_string()],
    )
    .await?;
    let rows = tx.query(sql, params).await?;
    tx.commit().await?;
    Ok(rows)
}

pub fn sqlstate(error: &tokio_postgres::Error) -> String {
    error
        .code()
        .map(|code| code.code().to_string())
        .unwrap_or_else(|| panic!("not a database error: {error:?}"))
}
