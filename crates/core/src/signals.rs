//! The signals that end a Jobdeck process (the desktop app, `jobdeck worker`, `jobdeck
//! dev`): each stops the way closing the window or Ctrl-C does, handing running work
//! back instead of leaving it to its leases.

use tokio::signal::unix::{SignalKind, signal};

/// Resolves with the name of the first SIGTERM (a `kill`, a service manager), SIGINT
/// (Ctrl-C) or SIGHUP (the terminal or the desktop session closed). A signal that
/// cannot be watched is logged and never resolves; the others still do.
pub async fn termination() -> &'static str {
    tokio::select! {
        () = wait_for(SignalKind::terminate(), "SIGTERM") => "SIGTERM",
        () = wait_for(SignalKind::interrupt(), "SIGINT") => "SIGINT",
        () = wait_for(SignalKind::hangup(), "SIGHUP") => "SIGHUP",
    }
}

async fn wait_for(kind: SignalKind, name: &str) {
    match signal(kind) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(error) => {
            tracing::warn!(%error, signal = name, "cannot watch for the signal");
            std::future::pending::<()>().await;
        }
    }
}
