//! The kinds file as the app uses it: read when the app connects, watched while it is
//! connected (the worker then runs the new kinds, the UI is told), opened in the
//! user's editor on request.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use jobdeck_core::{
    kinds::{KindsProblem, builtin, kinds_path},
    worker::{KindInfo, Registry},
};
use serde::Serialize;
use ts_rs::TS;

/// How often the kinds file is looked at for changes.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Every kind the app runs, and what is wrong in the kinds file.
#[derive(Debug, Clone, Serialize, TS)]
pub struct KindsView {
    /// Where the kinds file is (it may not exist yet).
    pub file: String,
    pub kinds: Vec<KindInfo>,
    pub problems: Vec<KindsProblem>,
}

/// The kinds file's path (`JOBDECK_KINDS`, else the XDG config dir's).
pub fn path() -> Option<PathBuf> {
    kinds_path(None)
}

/// The kinds file read now: the registry the worker runs, and its view.
pub fn read() -> (Registry, KindsView) {
    let file = jobdeck_core::kinds::load(None);
    let registry = file.with_builtin(builtin());
    let view = KindsView {
        file: file.path.display().to_string(),
        kinds: registry.kinds(),
        problems: file.problems,
    };
    (registry, view)
}

/// What identifies a version of the file: its modification time and length.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Calls `changed` with the file read anew each time it changes, until `stop`.
pub async fn watch(
    stop: tokio_util::sync::CancellationToken,
    changed: impl Fn(Registry, KindsView),
) {
    let Some(path) = path() else { return };
    let mut last = stamp(&path);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(WATCH_EVERY) => {}
        }
        let now = stamp(&path);
        if now != last {
            last = now;
            let (registry, view) = read();
            changed(registry, view);
        }
    }
}

/// The first lines of a kinds file the app creates to open it.
const TEMPLATE: &str = "# Jobdeck's kinds: one [[kind]] table per kind of job. See examples/kinds.toml\n# in Jobdeck's sources for every key.\n#\n# [[kind]]\n# name = \"export\"\n# description = \"Exports a report\"\n# command = [\"./export.sh\"]\n";

/// Opens the kinds file in the user's editor, creating it (with a commented
/// template) when it does not exist yet.
pub async fn open() -> Result<(), String> {
    let path = path().ok_or("no kinds file location: set JOBDECK_KINDS or HOME")?;
    if !path.exists() {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        }
        std::fs::write(&path, TEMPLATE).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let status = tokio::process::Command::new("xdg-open")
        .arg(&path)
        .status()
        .await
        .map_err(|e| format!("cannot run xdg-open for {}: {e}", path.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "xdg-open could not open {} ({status})",
            path.display()
        ))
    }
}
