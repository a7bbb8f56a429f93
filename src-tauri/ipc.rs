//! The IPC surface: every command the web UI may call, declared once.
//!
//! [`commands!`] turns each declaration into a Tauri command *and* into its typed
//! TypeScript wrapper, so the UI's bindings (`ui/src/bindings.ts`) are generated from
//! the same signatures Tauri registers and cannot drift from them unnoticed: a test
//! compares the committed file with what [`typescript`] produces.

use serde::Serialize;
use ts_rs::{Config, TS};

use jobdeck_core::ErrorBody;

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
/// app's [`Shell`](crate::shell::Shell) and the body returns `Result<Output, CommandError>`.
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
                    state: tauri::State<'_, std::sync::Arc<$crate::shell::Shell>>,
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

/// Declares `T` as an exported TypeScript type (with its doc comment).
fn declare<T: TS>(cfg: &Config) -> String {
    let docs = T::docs()
        .map(|d| format!("{}\n", d.trim_end()))
        .unwrap_or_default();
    format!("\n{docs}export {}\n", T::decl(cfg))
}

/// The whole of `ui/src/bindings.ts`.
pub fn typescript() -> String {
    use crate::{events::AppEvent, shell};
    use jobdeck_core::{
        BulkAction, ErrorCode, Job, JobFilter, JobStatus, NewJob, Page, SessionState, User,
        worker::{KindInfo, WorkerStatus},
    };
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(
        "// Generated from the Rust types by `cargo test -p jobdeck-app` (see src-tauri/ipc.rs).\n\
         // Do not edit: change the Rust side and run `./x bindings`.\n\
         /* eslint-disable */\n\n\
         import { invoke } from \"@tauri-apps/api/core\";\n",
    );
    for decl in [
        declare::<serde_json::Value>(&cfg),
        declare::<ErrorCode>(&cfg),
        declare::<ErrorBody>(&cfg),
        declare::<JobStatus>(&cfg),
        declare::<Job>(&cfg),
        declare::<NewJob>(&cfg),
        declare::<JobFilter>(&cfg),
        declare::<Page>(&cfg),
        declare::<BulkAction>(&cfg),
        declare::<KindInfo>(&cfg),
        declare::<User>(&cfg),
        declare::<SessionState>(&cfg),
        declare::<WorkerStatus>(&cfg),
        declare::<shell::AppInfo>(&cfg),
        declare::<shell::ConnectionView>(&cfg),
        declare::<shell::SignUpOutcome>(&cfg),
        declare::<shell::Preferences>(&cfg),
        declare::<shell::Theme>(&cfg),
        declare::<shell::Language>(&cfg),
        declare::<AppEvent>(&cfg),
    ] {
        out += &decl;
    }
    out += &format!(
        "\n/** The event every change is announced on; its payload is an `AppEvent`. */\n\
         export const APP_EVENT = \"{}\";\n",
        crate::events::APP_EVENT
    );
    out += &crate::commands::typescript(&cfg);
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

    #[test]
    fn argument_names_follow_tauri() {
        assert_eq!(super::camel("idempotency_key"), "idempotencyKey");
        assert_eq!(super::camel("id"), "id");
    }
}
