use std::{io, path::PathBuf};

/// What can go wrong starting PostgreSQL or preparing a database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "PostgreSQL {version}+ binaries not found (looked in {looked_in}); install postgresql-15 or set JOBDECK_PG_BIN"
    )]
    BinariesNotFound { version: u32, looked_in: String },

    #[error(
        "PostgreSQL refuses to run as root and there is no `postgres` system user to run it as"
    )]
    NoUnprivilegedUser,

    #[error("PostgreSQL runs as `{user}`, which cannot enter {}: choose a data directory it can reach (or open that directory with chmod o+x)", .dir.display())]
    Unreachable { user: String, dir: PathBuf },

    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },

    #[error("`{command}` failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },

    #[error("a PostgreSQL server is already running on data directory {}", .0.display())]
    AlreadyRunning(PathBuf),

    #[error("PostgreSQL exited while starting; its log ends with:\n{log_tail}")]
    StartFailed { log_tail: String },

    #[error("PostgreSQL did not become ready within {0:?}")]
    StartTimedOut(std::time::Duration),

    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: String,
        name: String,
        #[source]
        source: tokio_postgres::Error,
    },

    #[error(
        "migration {version} ({name}) was applied from a file whose contents have changed since (recorded checksum {recorded}, file {file}); an applied migration must stay as it is: put the change in a new migration"
    )]
    MigrationChanged {
        version: String,
        name: String,
        recorded: String,
        file: String,
    },

    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}

impl Error {
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let action = action.into();
        move |source| Self::Io { action, source }
    }
}
