//! `kinds`, `kinds check`: the job kinds this CLI runs, built-in and from the kinds
//! file; and the kinds file the other commands read.

use std::{path::PathBuf, process::ExitCode};

use clap::Subcommand;
use jobdeck_core::{
    kinds::{KindsFile, builtin},
    worker::Registry,
};
use serde_json::json;

use super::out;
use crate::exit;

#[derive(Debug, Subcommand)]
pub enum KindsCommand {
    /// Check the kinds file; exits non-zero if anything in it is wrong.
    Check,
    #[command(flatten)]
    Paused(super::schedules::PauseCommand),
}

/// The kinds file: `--kinds FILE`, `JOBDECK_KINDS`, or the default location.
#[derive(Debug, Clone, Default)]
pub struct KindsSource {
    pub explicit: Option<PathBuf>,
}

impl KindsSource {
    /// The kinds file as read now (empty: no file at the default location).
    pub fn read(&self) -> KindsFile {
        jobdeck_core::kinds::load(self.explicit.as_deref())
    }

    /// Every kind this CLI runs; what is wrong in the kinds file is printed as a
    /// warning (the valid kinds still load).
    pub fn registry(&self) -> Registry {
        let file = self.read();
        for problem in &file.problems {
            eprintln!("warning: {problem}");
        }
        file.with_builtin(builtin())
    }
}

/// `context` is asked for only by the commands that talk to Supabase (pausing); the
/// others read the kinds file alone.
pub async fn run(
    source: &KindsSource,
    command: Option<KindsCommand>,
    json: bool,
    context: impl FnOnce() -> anyhow::Result<super::Context>,
) -> anyhow::Result<ExitCode> {
    let file = source.read();
    match command {
        Some(KindsCommand::Paused(command)) => super::schedules::kinds(&context()?, command).await,
        Some(KindsCommand::Check) => {
            let count = file.registry.names().len();
            if json {
                out(&serde_json::to_string_pretty(&json!({
                    "file": file.path,
                    "kinds": file.registry.names(),
                    "problems": file.problems,
                }))?);
            } else {
                for problem in &file.problems {
                    eprintln!("error: {problem}");
                }
                if file.problems.is_empty() {
                    out(&format!(
                        "{}: {count} kinds, no problems.",
                        file.path.display()
                    ));
                }
            }
            if file.problems.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(exit::VALIDATION))
            }
        }
        None => {
            for problem in &file.problems {
                eprintln!("warning: {problem}");
            }
            let kinds = file.with_builtin(builtin()).kinds();
            if json {
                out(&serde_json::to_string_pretty(&kinds)?);
                return Ok(ExitCode::SUCCESS);
            }
            for kind in kinds {
                let source = match kind.source {
                    jobdeck_core::worker::KindSource::BuiltIn => "built-in".to_string(),
                    jobdeck_core::worker::KindSource::File => file.path.display().to_string(),
                };
                out(&format!(
                    "{:<16} {:<8} {}\n{:<16} from {source}\n{:<16} input: {}",
                    kind.name,
                    kind.executor.as_str(),
                    kind.description,
                    "",
                    "",
                    kind.input_schema
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
