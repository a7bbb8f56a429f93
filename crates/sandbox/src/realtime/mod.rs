//! Supabase Realtime's `postgres_changes`, as `supabase start` serves it: clients open
//! `/realtime/v1/websocket?apikey=…&vsn=1.0.0|2.0.0`, join channels that subscribe to
//! changes of tables in the `supabase_realtime` publication, and receive each change
//! their row-level security lets them select.
//!
//! - [`protocol`]: Phoenix frames in both versions;
//! - [`bindings`]: a channel's `postgres_changes` entries and their filters;
//! - [`hub`]: every joined channel and the queue to its socket;
//! - [`socket`]: one client's socket (join, leave, heartbeats, token swaps, expiry);
//! - [`changes`]: from PostgreSQL (`capture.sql`) to the subscribers, checked as each.
//!
//! Broadcast, Presence and private channels are refused with a clear reason.

pub mod bindings;
pub mod changes;
pub mod hub;
pub mod protocol;
pub mod socket;

use std::sync::Arc;

use axum::{
    Router,
    extract::{RawQuery, State, WebSocketUpgrade},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

use crate::AppState;

/// The change capture the sandbox installs at start (see the file's comment).
pub const CAPTURE: &str = include_str!("capture.sql");

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/websocket", get(websocket))
}

async fn websocket(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(error) = state.check_api_key(&headers, query.as_deref()) {
        return error.into_response();
    }
    let param = |name: &str| {
        form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let vsn = match protocol::Vsn::parse(param("vsn").as_deref()) {
        Ok(vsn) => vsn,
        Err(message) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"message": message})),
            )
                .into_response();
        }
    };
    let api_key = headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| param("apikey"))
        .unwrap_or_default();
    upgrade.on_upgrade(move |socket| socket::serve(socket, state, vsn, api_key))
}
