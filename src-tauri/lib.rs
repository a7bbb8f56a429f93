//! The Jobdeck desktop app: a thin Tauri v2 shell over the core.
//!
//! # Layout
//! - [`run`]: owns the tokio runtime, builds the Tauri app, and shuts everything down
//!   when the last window closes.
//! - [`shell`]: the app's state: the [`connection`] to a project (session owner, jobs
//!   client, worker) and the one-click [`sandbox`].
//! - [`ipc`] and [`commands`]: every command the web UI calls, declared once, and the
//!   app's types that cross to the UI; [`bindings`] generates `ui/src/bindings.ts`.
//! - [`events`]: what the UI hears: job changes, progress, session and worker state.
//! - [`stores`]: settings and the session in tauri-plugin-store files.
//! - [`kinds`]: the kinds file, read on connecting and watched for changes.
//!
//! The app holds no business logic: job, session and worker behaviour lives in the
//! Tauri-free crates under `crates/`.

pub mod bindings;
pub mod commands;
pub mod connection;
pub mod events;
pub mod ipc;
pub mod kinds;
pub mod sandbox;
pub mod shell;
pub mod stores;

use std::{sync::Arc, time::Duration};

use tauri::{Manager, RunEvent};

/// Starts the desktop app; returns its exit code after the last window closed and
/// every background task stopped.
pub fn run() -> i32 {
    let launched = std::time::Instant::now();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("JOBDECK_LOG")
                .unwrap_or_else(|_| "info,tao=warn,wry=warn,tokio_postgres=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log kept in a file or read by a program has
        // no escape codes in it.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // One runtime for Tauri's async commands and every task the app spawns, so closing
    // the app can wait for all of them.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("jobdeck")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return 1;
        }
    };
    tauri::async_runtime::set(runtime.handle().clone());

    let app = tauri::Builder::default()
        .plugin(tauri_plugin_store::Builder::default().build())
        .plugin(tauri_plugin_notification::init())
        .invoke_handler(commands::handler())
        .setup(move |app| {
            let data_dir = app.path().app_data_dir()?;
            let stores = stores::Stores::open(app.handle(), &data_dir)?;
            let sandbox_by_default = std::env::args().any(|arg| arg == "--sandbox");
            let shell = Arc::new(shell::Shell::new(
                app.handle().clone(),
                stores,
                sandbox_by_default,
                launched,
            ));
            shell.begin_restore();
            app.manage(shell);
            // A session logout or `kill` ends the app like closing its window does, so
            // running jobs are handed back rather than left to their leases.
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let signal = jobdeck_core::signals::termination().await;
                tracing::info!(signal, "stopping");
                handle.exit(0);
            });
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: the Jobdeck window could not be started: {error}");
            return 1;
        }
    };
    let handle = runtime.handle().clone();
    let code = app.run_return(move |app, event| {
        if let RunEvent::Exit = event
            && let Some(shell) = app.try_state::<Arc<shell::Shell>>()
        {
            let shell = Arc::clone(&shell);
            tracing::info!("closing: handing running jobs back");
            handle.block_on(async move { shell.shutdown().await });
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    code
}
