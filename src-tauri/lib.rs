//! The Jobdeck desktop app: a thin Tauri v2 shell.
//!
//! # Layout
//! - `run`: builds the Tauri application, registers plugins and opens the main window
//!   with the web UI from `ui/`.
//!
//! The app holds no business logic: job, session and worker behaviour lives in the
//! Tauri-free crates under `crates/`, which this shell exposes as commands and events.

/// Starts the desktop app and blocks until its last window closes.
pub fn run() {
    tauri::Builder::default()
        .plugin(tauri_plugin_store::Builder::default().build())
        .run(tauri::generate_context!())
        // Without a window there is nothing to show the user; Tauri has already logged why.
        .expect("the Jobdeck window could not be started");
}
