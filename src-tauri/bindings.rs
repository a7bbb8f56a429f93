//! `ui/src/bindings.ts`: every type that crosses to the web UI and a typed wrapper for
//! every command, generated from the Rust declarations. A test compares the committed
//! file with what [`typescript`] produces; `./x bindings` rewrites it.

use jobdeck_core::{
    Activity, ActivityBucket, ActivitySpan, Attempt, AttemptOutcome, BulkAction, ErrorBody,
    ErrorCode, Factor, Job, JobFailure, JobFilter, JobStatus, KindActivity, LogLevel, LogLine,
    LogStream, NewJob, OnMissed, Page, PausedKind, RetentionPolicy, Schedule, ScheduleSpec,
    ScheduleSummary, SessionState, TotpEnrollment, User,
    kinds::KindsProblem,
    realtime::LiveState,
    worker::{KindExecutor, KindInfo, KindSource, WorkerStatus},
};
use ts_rs::{Config, TS};

use crate::{commands, events, ipc, kinds};

/// Declares `T` as an exported TypeScript type (with its doc comment).
fn declare<T: TS>(cfg: &Config) -> String {
    let docs = T::docs()
        .map(|d| format!("{}\n", d.trim_end()))
        .unwrap_or_default();
    format!("\n{docs}export {}\n", T::decl(cfg))
}

/// The whole of `ui/src/bindings.ts`.
pub fn typescript() -> String {
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust types by `cargo test -p jobdeck-app` (see src-tauri/bindings.rs).\n\
         // Do not edit: change the Rust side and run `./x bindings`.\n\
         /* eslint-disable */\n\n\
         import { invoke } from \"@tauri-apps/api/core\";\n",
    );
    for decl in [
        declare::<serde_json::Value>(&cfg),
        declare::<ErrorCode>(&cfg),
        declare::<ErrorBody>(&cfg),
        declare::<JobStatus>(&cfg),
        declare::<JobFailure>(&cfg),
        declare::<AttemptOutcome>(&cfg),
        declare::<Attempt>(&cfg),
        declare::<Job>(&cfg),
        declare::<NewJob>(&cfg),
        declare::<JobFilter>(&cfg),
        declare::<Page>(&cfg),
        declare::<BulkAction>(&cfg),
        declare::<OnMissed>(&cfg),
        declare::<Schedule>(&cfg),
        declare::<ScheduleSpec>(&cfg),
        declare::<ScheduleSummary>(&cfg),
        declare::<PausedKind>(&cfg),
        declare::<RetentionPolicy>(&cfg),
        declare::<ActivitySpan>(&cfg),
        declare::<ActivityBucket>(&cfg),
        declare::<KindActivity>(&cfg),
        declare::<Activity>(&cfg),
        declare::<KindSource>(&cfg),
        declare::<KindExecutor>(&cfg),
        declare::<KindInfo>(&cfg),
        declare::<KindsProblem>(&cfg),
        declare::<kinds::KindsView>(&cfg),
        declare::<LogStream>(&cfg),
        declare::<LogLevel>(&cfg),
        declare::<LogLine>(&cfg),
        declare::<Factor>(&cfg),
        declare::<User>(&cfg),
        declare::<TotpEnrollment>(&cfg),
        declare::<SessionState>(&cfg),
        declare::<WorkerStatus>(&cfg),
        declare::<LiveState>(&cfg),
        declare::<ipc::AppInfo>(&cfg),
        declare::<ipc::LaunchTimings>(&cfg),
        declare::<ipc::ConnectionView>(&cfg),
        declare::<ipc::JobsOpening>(&cfg),
        declare::<ipc::SignUpOutcome>(&cfg),
        declare::<ipc::Preferences>(&cfg),
        declare::<ipc::Theme>(&cfg),
        declare::<ipc::Language>(&cfg),
        declare::<events::AppEvent>(&cfg),
    ] {
        out += &decl;
    }
    out += &format!(
        "\n/** The event every change is announced on; its payload is an `AppEvent`. */\n\
         export const APP_EVENT = \"{}\";\n",
        events::APP_EVENT
    );
    out += &commands::typescript(&cfg);
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The committed bindings are what the Rust types say; `JOBDECK_WRITE_BINDINGS=1`
    /// rewrites them (`./x bindings`).
    #[test]
    fn typescript_bindings_match_the_rust_types() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/src/bindings.ts");
        let generated = super::typescript();
        if std::env::var_os("JOBDECK_WRITE_BINDINGS").is_some() {
            std::fs::write(&path, &generated).expect("writing the bindings");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "ui/src/bindings.ts is out of date with the Rust types: run `./x bindings` and commit it"
        );
    }
}
