//! The IPC surface: how commands are declared, how they fail, and the app's own types
//! that cross to the web UI (the core's cross too; see `bindings`).
//!
//! [`commands!`] turns each declaration into a Tauri command *and* into its typed
//! TypeScript wrapper, so the UI's bindings (`ui/src/bindings.ts`) are generated from
//! the same signatures Tauri registers and cannot drift from them unnoticed.

use std::collections::BTreeMap;

use jobdeck_core::{
    ErrorBody, JobStatus, Page, SessionState, realtime::LiveState, worker::WorkerStatus,
};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::kinds::KindsView;

#[derive(Debug, Clone, Serialize, TS)]
pub struct AppInfo {
    pub name: String,
    pub version: String,
}

/// What the UI shows about the connection.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectionView {
    pub url: String,
    /// Whether this is the local sandbox.
    pub sandbox: bool,
    pub session: SessionState,
    pub worker: WorkerStatus,
    /// Whether changes made elsewhere are pushed (Realtime) or polled.
    pub live: LiveState,
}

/// What the jobs screen opens with: its filter's choices, its first page and the
/// counts, read in one go (at launch, while the page loads).
#[derive(Debug, Clone, Serialize, TS)]
pub struct JobsOpening {
    /// Every kind this app runs (built-in and the kinds file's), with their input
    /// schemas, and what is wrong in the kinds file.
    pub kinds: KindsView,
    pub page: Page,
    pub counts: BTreeMap<JobStatus, u64>,
    /// How many events about jobs the app had sent the UI when the reads began: if more
    /// have been sent by the time the UI listens, it may have missed one, and reads again.
    pub job_events_sent: u64,
}

/// When the UI reached each step of its start, in ms from its page's time origin (the
/// webview's navigation start), as `performance` tells them: the app logs them beside
/// the time since launch, so a slow start says which part was slow.
#[derive(Debug, Clone, Copy, Deserialize, TS)]
pub struct LaunchTimings {
    /// The page's time origin itself, in ms since the Unix epoch (`performance.timeOrigin`):
    /// it places the steps on the app's clock.
    pub time_origin_ms: f64,
    /// The page's HTML had arrived.
    pub page_loaded_ms: f64,
    /// The UI's script began to run, its modules loaded.
    pub script_ms: f64,
    /// The restored connection (and with it the session) answered.
    pub connection_ms: f64,
    /// The first page of jobs and the counts answered.
    pub list_ms: f64,
    /// The frame that drew the list had been painted.
    pub painted_ms: f64,
}

/// How a sign-up ended.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SignUpOutcome {
    SignedIn {
        session: SessionState,
    },
    /// The project confirms email addresses first: follow the link, then sign in.
    ConfirmationSent {
        email: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// The system's language when it is one the app speaks, else English.
    #[default]
    System,
    En,
    Ja,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct Preferences {
    pub theme: Theme,
    pub language: Language,
}

/// How every command fails: `{code, message, field?}`, the core's error body.
#[derive(Debug)]
pub struct CommandError(pub ErrorBody);

impl Serialize for CommandError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl From<jobdeck_core::Error> for CommandError {
    fn from(error: jobdeck_core::Error) -> Self {
        CommandError(error.body())
    }
}

impl From<jobdeck_core::worker::EnqueueError> for CommandError {
    fn from(error: jobdeck_core::worker::EnqueueError) -> Self {
        CommandError(error.body())
    }
}

/// Declares the commands. Each is written
/// `async fn name(shell, arg: Type, ...) -> Output { body }`, where `shell` names the
/// app's `Shell` (a name the invoking module brings into scope) and the body returns
/// `Result<Output, CommandError>`.
macro_rules! commands {
    ($(
        $(#[doc = $doc:literal])*
        async fn $name:ident($shell:ident $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty $body:block
    )*) => {
        /// The Tauri commands, one per declaration.
        pub mod handlers {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[doc = $doc])*
                #[tauri::command]
                pub async fn $name(
                    state: tauri::State<'_, std::sync::Arc<Shell>>,
                    $($arg: $ty),*
                ) -> Result<$ret, $crate::ipc::CommandError> {
                    let $shell = std::sync::Arc::clone(&state);
                    $body
                }
            )*
        }

        /// Registers every command with Tauri.
        pub fn handler() -> impl Fn(tauri::ipc::Invoke) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$(handlers::$name),*]
        }

        /// The TypeScript wrapper of every command.
        pub fn typescript(cfg: &ts_rs::Config) -> String {
            let mut out = String::new();
            $(
                out += &$crate::ipc::wrapper(
                    stringify!($name),
                    &[$($doc),*],
                    &[$((stringify!($arg), <$ty as ts_rs::TS>::name(cfg))),*],
                    &<$ret as ts_rs::TS>::name(cfg),
                );
            )*
            out
        }
    };
}
pub(crate) use commands;

/// `snake_case` to `camelCase`, as Tauri names command arguments on the JS side.
fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[doc(hidden)]
pub fn wrapper(name: &str, docs: &[&str], args: &[(&str, String)], ret: &str) -> String {
    let mut out = String::from("\n");
    if !docs.is_empty() {
        out += "/**\n";
        for line in docs {
            out += &format!(" *{}\n", line.trim_end());
        }
        out += " */\n";
    }
    let params: Vec<String> = args
        .iter()
        .map(|(arg, ty)| format!("{}: {ty}", camel(arg)))
        .collect();
    let names: Vec<String> = args.iter().map(|(arg, _)| camel(arg)).collect();
    let payload = if names.is_empty() {
        String::new()
    } else {
        format!(", {{ {} }}", names.join(", "))
    };
    out += &format!(
        "export function {}({}): Promise<{ret}> {{\n  return invoke(\"{name}\"{payload});\n}}\n",
        camel(name),
        params.join(", "),
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn argument_names_follow_tauri() {
        assert_eq!(super::camel("idempotency_key"), "idempotencyKey");
        assert_eq!(super::camel("id"), "id");
    }
}
