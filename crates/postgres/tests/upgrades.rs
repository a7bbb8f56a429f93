//! The migrations where they meet databases they did not create: a hosted Supabase
//! project (its roles, grants and default privileges, from Supabase's own public
//! sources) with and without the original pattern's `jobs` table, a sandbox of
//! Jobdeck 0.1.0, and a migration edited after it was applied.

#[allow(dead_code)] // each test file uses its own part of the helpers
mod support;

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
};

use jobdeck_postgres::{
    Cluster, ClusterOptions, Error, MIGRATIONS, RunningCluster, apply_bootstrap, apply_migrations,
    testing::{TestCluster, TestDatabase, connect},
};
use serde_json::{Value, json};
use support::{Actor, as_actor, sqlstate};
use tokio_postgres::Client;
use uuid::Uuid;

const HOSTED_PROJECT: &str = include_str!("fixtures/hosted_project.sql");
const JOBDECK_0_1_0: &str = include_str!("fixtures/jobdeck-0.1.0.sql");
const OWNER: &str = "00000000-0000-0000-0000-00000000000a";

/// A cluster of its own whose superuser is `supabase_admin`, so that `postgres` can be
/// the ordinary role it is on a hosted project. Stopped when dropped.
struct HostedCluster {
    cluster: Option<RunningCluster>,
    dir: PathBuf,
}

impl HostedCluster {
    fn start() -> HostedCluster {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jobdeck-hosted-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("creating the cluster's directory");
        // The server's user (not us, when we are root) must reach its data.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("opening it");
        let mut options = ClusterOptions::new(dir.join("data"));
        options.durable = false;
        options.superuser = "supabase_admin".into();
        let cluster = Cluster::new(options)
            .and_then(Cluster::start)
            .expect("starting a hosted-shaped cluster");
        HostedCluster {
            cluster: Some(cluster),
            dir,
        }
    }

    async fn connect(&self, user: &str, database: &str) -> Client {
        let cluster = self.cluster.as_ref().expect("running");
        connect(&cluster.url(user, database)).await
    }

    /// A new database shaped like a fresh hosted project.
    async fn project(&self, name: &str) {
        let admin = self.connect("supabase_admin", "postgres").await;
        admin
            .batch_execute(&format!("create database {name}"))
            .await
            .expect("creating the project's database");
        self.connect("supabase_admin", name)
            .await
            .batch_execute(HOSTED_PROJECT)
            .await
            .expect("shaping the database like a hosted project");
    }
}

impl Drop for HostedCluster {
    fn drop(&mut self) {
        drop(self.cluster.take());
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A new, empty database on the shared test cluster, as its superuser.
async fn empty_database(name: &str) -> Client {
    let port = TestCluster::shared().port();
    let server = connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres")).await;
    server
        .batch_execute(&format!("create database {name}"))
        .await
        .expect("creating the database");
    connect(&format!("postgres://postgres@127.0.0.1:{port}/{name}")).await
}

async fn scalar<T: for<'a> tokio_postgres::types::FromSql<'a>>(client: &Client, sql: &str) -> T {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error:?}"))
        .get(0)
}

/// What anon and authenticated may do with the id sequence, as `[role:privilege]`
/// entries that are granted.
async fn sequence_privileges(client: &Client) -> Vec<String> {
    scalar(
        client,
        "select coalesce(array_agg(r || ':' || p order by r, p), '{}')
           from unnest(array['anon', 'authenticated']) r,
                unnest(array['SELECT', 'UPDATE', 'USAGE']) p
          where has_sequence_privilege(r, pg_get_serial_sequence('public.jobs', 'id'), p)",
    )
    .await
}

/// One job of the owner's through each way a job is made: enqueue_job,
/// enqueue_and_start_job and a direct insert. Answers their ids and statuses.
async fn enqueue_every_way(api: &mut Client, owner: Uuid) -> Vec<(i64, String)> {
    let user = Actor::User(owner);
    let mut made = Vec::new();
    for sql in [
        "select id, status from enqueue_job(kind => 'hello', context => '{\"name\":\"a\"}')",
        "select id, status from enqueue_and_start_job(kind => 'hello', worker => 'w1')",
        "insert into jobs (kind, context) values ('hello', '{}') returning id, status",
    ] {
        let rows = as_actor(api, user, sql, &[])
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error:?}"));
        made.push((rows[0].get(0), rows[0].get(1)));
    }
    made
}

#[tokio::test]
async fn on_a_hosted_project_the_original_table_is_adopted_with_every_row_and_new_jobs_can_be_made()
{
    let hosted = HostedCluster::start();
    hosted.project("adopted").await;
    // The original pattern's table as a user makes it in the dashboard (as `postgres`):
    // a plain int8 key without identity, varchar status, json context.
    let mut owner_db = hosted.connect("postgres", "adopted").await;
    owner_db
        .batch_execute(&format!(
            "insert into auth.users (id, aud, role, email, created_at, updated_at)
               values ('{OWNER}', 'authenticated', 'authenticated', 'a@example.com', now(), now());
             create table public.jobs (
               id int8 primary key,
               uuid uuid references auth.users (id),
               status varchar,
               context json,
               started_at timestamptz, ended_at timestamptz,
               created_at timestamptz default now());
             insert into public.jobs (id, uuid, status, context, started_at, ended_at) values
               (1, '{OWNER}', 'finished', '{{\"n\": 1}}', now() - interval '2 days', now() - interval '2 days'),
               (7, '{OWNER}', 'running', '{{\"name\": \"stuck\"}}', now() - interval '1 day', null),
               (41, '{OWNER}', 'failed', '[1, 2]', now(), now());"
        ))
        .await
        .expect("creating the original table");
    assert_eq!(
        sequence_privileges(&owner_db).await,
        Vec::<String>::new(),
        "no sequence yet"
    );

    let applied = apply_migrations(&mut owner_db)
        .await
        .expect("the migrations apply as `postgres`, who is no superuser");
    assert_eq!(applied.len(), MIGRATIONS.len());

    let kept: Value = scalar(
        &owner_db,
        "select jsonb_agg(jsonb_build_array(id, status, context) order by id) from jobs",
    )
    .await;
    assert_eq!(
        kept,
        json!([
            [1, "finished", { "n": 1 }],
            [7, "running", { "name": "stuck" }],
            [41, "failed", [1, 2]]
        ]),
        "every row is kept, its input as it was"
    );
    let types: Vec<String> = scalar(
        &owner_db,
        "select array_agg(column_name || ' ' || data_type || ' ' || is_identity order by column_name)
           from information_schema.columns
          where table_schema = 'public' and table_name = 'jobs'
            and column_name in ('id', 'context', 'status')",
    )
    .await;
    assert_eq!(
        types,
        ["context jsonb NO", "id bigint YES", "status text NO"]
    );
    assert_eq!(
        sequence_privileges(&owner_db).await,
        Vec::<String>::new(),
        "Supabase's default privileges on the new sequence are revoked"
    );

    let mut api = hosted.connect("authenticator", "adopted").await;
    let owner = Uuid::parse_str(OWNER).expect("a uuid");
    let claimed = as_actor(
        &mut api,
        Actor::User(owner),
        "select id, context from claim_jobs('w0')",
        &[],
    )
    .await
    .expect("claiming");
    assert_eq!(claimed.len(), 1, "the stuck job is taken back");
    assert_eq!(
        (claimed[0].get::<_, i64>(0), claimed[0].get::<_, Value>(1)),
        (7, json!({ "name": "stuck" }))
    );
    assert_eq!(
        enqueue_every_way(&mut api, owner).await,
        [
            (42, "waiting".to_string()),
            (43, "running".to_string()),
            (44, "waiting".to_string())
        ],
        "new ids continue after the highest one"
    );
    // The counts start from the adopted rows and follow what happened since.
    let counts: Vec<(String, i64)> = as_actor(
        &mut api,
        Actor::User(owner),
        "select status, count from job_counts() order by status",
        &[],
    )
    .await
    .expect("counting")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(
        counts,
        [
            ("failed".to_string(), 1),
            ("finished".to_string(), 1),
            ("running".to_string(), 2),
            ("waiting".to_string(), 2)
        ]
    );
    let err = as_actor(&mut api, Actor::Anon, "select * from jobs", &[])
        .await
        .expect_err("anon reads nothing");
    assert_eq!(sqlstate(&err), "42501");
}

#[tokio::test]
async fn on_a_fresh_hosted_project_the_migrations_apply_and_anon_holds_nothing() {
    let hosted = HostedCluster::start();
    hosted.project("fresh").await;
    let mut owner_db = hosted.connect("postgres", "fresh").await;
    owner_db
        .batch_execute(&format!(
            "insert into auth.users (id, aud, role, email, created_at, updated_at)
               values ('{OWNER}', 'authenticated', 'authenticated', 'a@example.com', now(), now())"
        ))
        .await
        .expect("a user");
    apply_migrations(&mut owner_db)
        .await
        .expect("the migrations apply as `postgres`");

    let published: Vec<String> = scalar(
        &owner_db,
        "select coalesce(array_agg(tablename::text order by tablename), '{}')
           from pg_publication_tables where pubname = 'supabase_realtime'",
    )
    .await;
    assert_eq!(
        published,
        [
            "job_logs",
            "jobs",
            "paused_kinds",
            "retention_policies",
            "schedules"
        ],
        "Realtime serves the jobs, their logs, schedules, paused kinds and retention"
    );
    assert_eq!(sequence_privileges(&owner_db).await, Vec::<String>::new());
    let callable_by_anon: Vec<String> = scalar(
        &owner_db,
        "select coalesce(array_agg(p.proname::text order by p.proname), '{}') from pg_proc p
          where p.pronamespace = 'public'::regnamespace
            and has_function_privilege('anon', p.oid, 'execute')",
    )
    .await;
    assert_eq!(callable_by_anon, Vec::<String>::new());
    let anon_table: Vec<String> = scalar(
        &owner_db,
        "select coalesce(array_agg(t || ' ' || p order by t, p), '{}')
           from unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p,
                unnest(array['public.jobs', 'public.schedules', 'public.paused_kinds',
                              'public.retention_policies']) t
          where has_table_privilege('anon', t, p)",
    )
    .await;
    assert_eq!(anon_table, Vec::<String>::new());

    let mut api = hosted.connect("authenticator", "fresh").await;
    let owner = Uuid::parse_str(OWNER).expect("a uuid");
    assert_eq!(
        enqueue_every_way(&mut api, owner).await,
        [
            (1, "waiting".to_string()),
            (2, "running".to_string()),
            (3, "waiting".to_string())
        ]
    );
}

#[tokio::test]
async fn a_sandbox_of_jobdeck_0_1_0_upgrades_and_then_records_only_todays_files() {
    // A database as a 0.1.0 sandbox left it: its bootstrap, its five migrations
    // recorded the way its runner recorded them (no checksums), and a job in flight.
    let port = TestCluster::shared().port();
    let mut old = empty_database("sandbox_0_1_0").await;
    apply_bootstrap(&old).await.expect("the bootstrap");
    old.batch_execute(&format!(
        "{JOBDECK_0_1_0}
         create schema supabase_migrations;
         create table supabase_migrations.schema_migrations (
           version text primary key, statements text[], name text);
         insert into supabase_migrations.schema_migrations (version, name) values
           ('20261128000000', 'jobs'), ('20261128010000', 'release_jobs'),
           ('20261128020000', 'bulk_actions'), ('20261128030000', 'batched_finish'),
           ('20261129000000', 'context_is_object');
         insert into auth.users (id) values ('{OWNER}');"
    ))
    .await
    .expect("Jobdeck 0.1.0's schema");
    let mut api = connect(&format!(
        "postgres://authenticator@127.0.0.1:{port}/sandbox_0_1_0"
    ))
    .await;
    let owner = Uuid::parse_str(OWNER).expect("a uuid");
    let user = Actor::User(owner);
    as_actor(
        &mut api,
        user,
        "select enqueue_job('hello', '{\"name\":\"before\"}')",
        &[],
    )
    .await
    .expect("enqueuing on 0.1.0");
    let running: i64 = as_actor(&mut api, user, "select id from claim_jobs('w0')", &[])
        .await
        .expect("claiming on 0.1.0")[0]
        .get(0);

    let applied = apply_migrations(&mut old).await.expect("upgrading");
    assert_eq!(applied.len(), MIGRATIONS.len());
    let recorded: Vec<String> = scalar(
        &old,
        "select array_agg(version order by version) from supabase_migrations.schema_migrations
          where checksum is not null",
    )
    .await;
    let todays: Vec<String> = MIGRATIONS.iter().map(|m| m.version.to_string()).collect();
    assert_eq!(recorded, todays, "0.1.0's records are replaced");
    assert!(apply_migrations(&mut old).await.expect("again").is_empty());

    // The job that was running when the sandbox stopped finishes after the upgrade.
    let finished = as_actor(
        &mut api,
        user,
        "select id, status from finish_jobs('w0', jsonb_build_array(jsonb_build_object('id', $1::bigint)))",
        &[&running],
    )
    .await
    .expect("finishing after the upgrade");
    assert_eq!(finished[0].get::<_, String>(1), "finished");
    assert_eq!(
        enqueue_every_way(&mut api, owner).await.len(),
        3,
        "new jobs are made every way"
    );
}

#[tokio::test]
async fn on_a_plain_postgresql_without_the_realtime_publication_the_migrations_apply() {
    let mut admin = empty_database("no_realtime").await;
    apply_bootstrap(&admin).await.expect("the bootstrap");
    admin
        .batch_execute("drop publication supabase_realtime")
        .await
        .expect("dropping the publication");
    let applied = apply_migrations(&mut admin)
        .await
        .expect("the migrations apply");
    assert_eq!(applied.len(), MIGRATIONS.len());
}

#[tokio::test]
async fn a_migration_edited_after_it_was_applied_is_refused_naming_it() {
    let database = TestDatabase::new().await;
    let mut admin = database.admin().await;
    let first = &MIGRATIONS[0];
    let recorded: String = scalar(
        &admin,
        &format!(
            "select checksum from supabase_migrations.schema_migrations where version = '{}'",
            first.version
        ),
    )
    .await;
    assert_eq!(recorded, first.checksum(), "the checksum is recorded");

    admin
        .execute(
            "update supabase_migrations.schema_migrations set checksum = 'edited' where version = $1",
            &[&first.version],
        )
        .await
        .expect("pretending the file changed");
    let error = apply_migrations(&mut admin)
        .await
        .expect_err("a changed migration");
    assert!(
        matches!(&error, Error::MigrationChanged { version, .. } if version == first.version),
        "{error:?}"
    );
    assert!(error.to_string().contains(first.version), "{error}");

    // One recorded before checksums existed is trusted once, then checked.
    admin
        .execute(
            "update supabase_migrations.schema_migrations set checksum = null where version = $1",
            &[&first.version],
        )
        .await
        .expect("a record without a checksum");
    assert!(
        apply_migrations(&mut admin)
            .await
            .expect("nothing to apply")
            .is_empty()
    );
    let filled: String = scalar(
        &admin,
        &format!(
            "select checksum from supabase_migrations.schema_migrations where version = '{}'",
            first.version
        ),
    )
    .await;
    assert_eq!(filled, first.checksum());
}
