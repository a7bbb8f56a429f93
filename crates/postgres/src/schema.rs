//! The SQL that makes a database a Jobdeck database.
//!
//! Applied versions are recorded in `supabase_migrations.schema_migrations`, the table
//! the Supabase CLI keeps, so a database migrated here and one migrated by
//! `supabase db push` agree on what has been applied. Each record also carries the
//! SHA-256 of the file it was applied from: a migration edited after it was applied
//! would leave databases that differ while claiming the same version, so the runner
//! refuses one.

use sha2::{Digest as _, Sha256};
use tokio_postgres::Client;

use crate::Error;

/// `supabase/bootstrap.sql`: the roles, auth schema and grants of a fresh Supabase
/// project. Never applied to a real Supabase project, which has them already.
pub const BOOTSTRAP: &str = include_str!("../../../supabase/bootstrap.sql");

/// One file of `supabase/migrations/`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The timestamp the file name starts with; migrations apply in this order.
    pub version: &'static str,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration in `supabase/migrations/`, oldest first.
pub const MIGRATIONS: &[Migration] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The versions of Jobdeck 0.1.0's migrations, which the baseline replaced. A database
/// that recorded them (a sandbox of that version) has their schema already; the
/// baseline applies over it (every statement checks what exists), and the records of
/// the replaced versions are removed in the same transaction as the first baseline
/// file, so the database then records exactly the files that exist.
pub const REPLACED: &[&str] = &[
    "20261128000000",
    "20261128010000",
    "20261128020000",
    "20261128030000",
    "20261129000000",
];

impl Migration {
    /// The SHA-256 of the file, in hex, as recorded when it is applied.
    pub fn checksum(&self) -> String {
        Sha256::digest(self.sql.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// Any number would do; it only has to be the same for every process that migrates.
const MIGRATION_LOCK: i64 = 0x006a_6f62_6465_636b; // "jobdeck" in ASCII

/// Serializes role changes across the whole cluster until the transaction ends.
/// Roles are shared by every database of a cluster while advisory locks are not, so
/// the lock is taken on the role catalog itself (this needs a superuser, as creating
/// the roles does).
const LOCK_ROLES: &str = "lock table pg_catalog.pg_authid in share row exclusive mode";

/// Makes a plain PostgreSQL database look like a fresh Supabase project. Safe to run
/// again, also concurrently on several databases of one cluster.
pub async fn apply_bootstrap(client: &Client) -> Result<(), Error> {
    client
        .batch_execute(&format!("begin;\n{LOCK_ROLES};\n{BOOTSTRAP}\ncommit;"))
        .await?;
    Ok(())
}

/// Applies the migrations this database has not seen yet, each in its own transaction,
/// and answers the versions it applied. Concurrent callers wait for each other. A
/// recorded migration whose file has changed since is refused with
/// [`Error::MigrationChanged`] before anything is applied.
pub async fn apply_migrations(client: &mut Client) -> Result<Vec<&'static str>, Error> {
    client
        .batch_execute(
            "create schema if not exists supabase_migrations;
             create table if not exists supabase_migrations.schema_migrations (
               version text primary key, statements text[], name text);
             alter table supabase_migrations.schema_migrations
               add column if not exists checksum text;",
        )
        .await?;
    client
        .execute("select pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = apply_pending(client).await;
    client
        .execute("select pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    result
}

async fn apply_pending(client: &mut Client) -> Result<Vec<&'static str>, Error> {
    let recorded: Vec<(String, Option<String>)> = client
        .query(
            "select version, checksum from supabase_migrations.schema_migrations",
            &[],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    for migration in MIGRATIONS {
        let Some((_, checksum)) = recorded.iter().find(|(v, _)| v == migration.version) else {
            continue;
        };
        let file = migration.checksum();
        match checksum {
            Some(recorded) if *recorded != file => {
                return Err(Error::MigrationChanged {
                    version: migration.version.into(),
                    name: migration.name.into(),
                    recorded: recorded.clone(),
                    file,
                });
            }
            Some(_) => {}
            // Recorded before checksums were: trust it, and check from now on.
            None => {
                client
                    .execute(
                        "update supabase_migrations.schema_migrations set checksum = $2
                          where version = $1",
                        &[&migration.version, &file],
                    )
                    .await?;
            }
        }
    }

    let mut done = Vec::new();
    for migration in MIGRATIONS {
        if recorded
            .iter()
            .any(|(version, _)| version == migration.version)
        {
            continue;
        }
        let failed = |source| Error::Migration {
            version: migration.version.to_string(),
            name: migration.name.to_string(),
            source,
        };
        let tx = client.transaction().await.map_err(failed)?;
        tx.batch_execute(migration.sql).await.map_err(failed)?;
        tx.execute(
            "insert into supabase_migrations.schema_migrations (version, name, checksum)
             values ($1, $2, $3)",
            &[&migration.version, &migration.name, &migration.checksum()],
        )
        .await
        .map_err(failed)?;
        if done.is_empty() {
            let replaced: Vec<String> = REPLACED.iter().map(|v| v.to_string()).collect();
            tx.execute(
                "delete from supabase_migrations.schema_migrations where version = any ($1)",
                &[&replaced],
            )
            .await
            .map_err(failed)?;
        }
        tx.commit().await.map_err(failed)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
        done.push(migration.version);
    }
    Ok(done)
}

/// Lets `role` log in with `password`, serialized with every other role change.
pub async fn set_login_password(client: &Client, role: &str, password: &str) -> Result<(), Error> {
    // ALTER ROLE takes no parameters; quote both as PostgreSQL's own functions do.
    let sql: String = client
        .query_one(
            "select format('alter role %I with login password %L', $1::text, $2::text)",
            &[&role, &password],
        )
        .await?
        .get(0);
    client
        .batch_execute(&format!("begin; {LOCK_ROLES}; {sql}; commit;"))
        .await?;
    Ok(())
}
