//! The PostgreSQL side of Jobdeck that runs outside a hosted Supabase project.
//!
//! # Layout
//! - [`cluster`]: a private PostgreSQL server in a data directory of its own, started
//!   from the machine's PostgreSQL binaries (as the `postgres` system user when the
//!   caller is root, since PostgreSQL refuses to run as root) and stopped cleanly.
//! - [`schema`]: the SQL that makes a database a Jobdeck database: the Supabase
//!   bootstrap (`supabase/bootstrap.sql`) and the project's migrations
//!   (`supabase/migrations/`), embedded at build time and applied at most once each.
//! - [`testing`] (feature `testing`): one cluster per test process and a fresh,
//!   migrated database per test, for every crate's tests against a real PostgreSQL.

pub mod cluster;
mod error;
pub mod schema;
#[cfg(feature = "testing")]
pub mod testing;

pub use cluster::{Cluster, ClusterOptions, RunningCluster, find_bin_dir};
pub use error::Error;
pub use schema::{
    MIGRATIONS, Migration, REPLACED, apply_bootstrap, apply_migrations, set_login_password,
};
