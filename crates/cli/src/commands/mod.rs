//! One module per group of subcommands; each is a thin layer over a library crate.

pub mod auth;
pub mod dev;
pub mod insight;
pub mod jobs;
pub mod kinds;
pub mod logs;
pub mod schedules;
pub mod table;
pub mod worker;

use std::sync::Arc;

use jobdeck_core::{
    AuthClient, FileStore, JobsClient, KeychainStore, Project, SessionOwner, SessionStore,
};
use serde::Serialize;

/// What every command that talks to Supabase needs.
#[derive(Debug)]
pub struct Context {
    pub project: Project,
    /// `--json`: machine-readable output, and errors as `{code, message}`.
    pub json: bool,
    /// The kinds file.
    pub kinds: kinds::KindsSource,
}

impl Context {
    /// The CLI's own session: in the OS keychain under an entry of its own (never the
    /// desktop app's), in its private file where no keychain answers, or only in the
    /// file `JOBDECK_SESSION_FILE` names.
    pub fn session(&self) -> anyhow::Result<Arc<SessionOwner>> {
        let (file, chosen) = crate::config::session_file(&self.project)?;
        let file: Arc<dyn SessionStore> = Arc::new(FileStore::new(file));
        let store = if chosen {
            file
        } else {
            Arc::new(KeychainStore::new(
                format!("cli:{}", self.project.url()),
                file,
            ))
        };
        Ok(SessionOwner::new(
            AuthClient::connect(self.project.clone()),
            store,
        )?)
    }

    pub fn jobs(&self) -> anyhow::Result<JobsClient> {
        Ok(JobsClient::new(&self.project, self.session()?))
    }

    /// Prints `value` as JSON with `--json`, else `human`.
    pub fn print(&self, value: &impl Serialize, human: &str) {
        if self.json {
            out(&serde_json::to_string_pretty(value).unwrap_or_default());
        } else {
            out(human);
        }
    }
}

/// Writes a line to standard output. A reader that went away (`jobdeck jobs | head`)
/// ends the program quietly, as for any Unix tool, instead of a panic.
pub fn out(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing the output: {error}");
    }
}
