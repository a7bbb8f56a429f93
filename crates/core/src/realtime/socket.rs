//! The socket loop: Phoenix protocol 2.0.0 frames (`[join_ref, ref, topic, event,
//! payload]`) over one WebSocket, one channel.

use std::{sync::Arc, time::Duration};

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{Change, ChangeKind, LiveState, RealtimeEvent, Subscription};
use crate::{Error, Project, Secret, SessionOwner, SessionState};

const TOPIC: &str = "realtime:jobdeck";
const JOIN_REF: &str = "1";
/// realtime-js's reconnect delays; the last repeats.
const BACKOFF: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
];
/// How long connecting and joining may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and what to join.
pub(super) struct Target {
    /// `ws(s)://…/realtime/v1/websocket?apikey=…&vsn=2.0.0`: holds the API key, so
    /// never logged.
    url: Secret,
    subscriptions: Vec<Subscription>,
    heartbeat: Duration,
}

impl Target {
    pub(super) fn new(
        project: &Project,
        subscriptions: Vec<Subscription>,
        heartbeat: Duration,
    ) -> Self {
        let base = project
            .url()
            .replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1);
        let key: String =
            form_urlencoded::byte_serialize(project.key().value().as_bytes()).collect();
        Self {
            url: Secret::new(format!(
                "{base}/realtime/v1/websocket?apikey={key}&vsn=2.0.0"
            )),
            subscriptions,
            heartbeat,
        }
    }
}

fn frame(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: Value,
) -> Message {
    Message::text(json!([join_ref, msg_ref, topic, event, payload]).to_string())
}

/// Why one connection ended.
enum Ended {
    /// Stopped, or the user signed out: not a failure.
    Quietly,
    Failed {
        reason: String,
        was_live: bool,
    },
}

pub(super) async fn run(
    target: Target,
    session: Arc<SessionOwner>,
    events: broadcast::Sender<RealtimeEvent>,
    state: watch::Sender<LiveState>,
    stop: CancellationToken,
) {
    let mut sessions = session.watch();
    let mut failures = 0usize;
    loop {
        if session.user().is_none() {
            state.send_replace(LiveState::Off);
            tokio::select! {
                () = stop.cancelled() => return,
                changed = sessions.changed() => if changed.is_err() { return },
            }
            continue;
        }
        state.send_replace(LiveState::Connecting);
        let ended = tokio::select! {
            () = stop.cancelled() => {
                state.send_replace(LiveState::Off);
                return;
            }
            ended = connect(&target, &session, &events, &state, &mut sessions) => ended,
        };
        match ended {
            Ended::Quietly => {
                failures = 0;
                continue;
            }
            Ended::Failed { reason, was_live } => {
                tracing::debug!(%reason, "Realtime is down; reconnecting");
                if was_live {
                    failures = 0;
                }
                state.send_replace(LiveState::Down { reason });
            }
        }
        let delay = BACKOFF[failures.min(BACKOFF.len() - 1)];
        failures += 1;
        tokio::select! {
            () = stop.cancelled() => {
                state.send_replace(LiveState::Off);
                return;
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// A token for the channel, or why there is none (signed out: end quietly).
async fn token(session: &Arc<SessionOwner>) -> Result<Secret, Ended> {
    session.access_token().await.map_err(|error| match error {
        Error::SignedOut | Error::SessionEnded(_) => Ended::Quietly,
        other => Ended::Failed {
            reason: other.to_string(),
            was_live: false,
        },
    })
}

/// One connection: join, then hear until it fails or the user signs out.
async fn connect(
    target: &Target,
    session: &Arc<SessionOwner>,
    events: &broadcast::Sender<RealtimeEvent>,
    state: &watch::Sender<LiveState>,
    sessions: &mut watch::Receiver<SessionState>,
) -> Ended {
    let failed = |reason: String, was_live: bool| Ended::Failed { reason, was_live };
    let mut sent = match token(session).await {
        Ok(token) => token,
        Err(ended) => return ended,
    };
    // No Nagle: the channel's small frames (joins, heartbeats, token swaps) go at once.
    let connecting = tokio_tungstenite::connect_async_with_config(target.url.expose(), None, true);
    let (socket, _) = match tokio::time::timeout(JOIN_TIMEOUT, connecting).await {
        Ok(Ok(connected)) => connected,
        Ok(Err(error)) => {
            return failed(format!("cannot open the Realtime socket: {error}"), false);
        }
        Err(_) => return failed("the Realtime socket did not open in time".into(), false),
    };
    let (mut sink, mut stream) = socket.split();
    let bindings: Vec<Value> = target
        .subscriptions
        .iter()
        .map(|s| {
            let mut entry = json!({"event": "*", "schema": s.schema, "table": s.table});
            if let Some(filter) = &s.filter {
                entry["filter"] = json!(filter);
            }
            entry
        })
        .collect();
    let join = json!({
        "config": {
            "broadcast": {"ack": false, "self": false},
            "presence": {"key": "", "enabled": false},
            "postgres_changes": bindings,
            "private": false,
        },
        "access_token": sent.expose(),
    });
    if let Err(error) = sink
        .send(frame(
            Some(JOIN_REF),
            Some(JOIN_REF),
            TOPIC,
            "phx_join",
            join,
        ))
        .await
    {
        return failed(format!("cannot join the Realtime channel: {error}"), false);
    }

    let mut ids: Vec<u64> = Vec::new();
    let mut live = false;
    let mut next_ref = 2u64;
    let mut unanswered: Option<String> = None;
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + target.heartbeat,
        target.heartbeat,
    );
    let joining = tokio::time::sleep(JOIN_TIMEOUT);
    tokio::pin!(joining);
    loop {
        tokio::select! {
            received = stream.next() => {
                let text = match received {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => return failed("the Realtime server closed the socket".into(), live),
                    Some(Err(error)) => return failed(format!("the Realtime socket failed: {error}"), live),
                };
                let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(text.as_str()) else {
                    return failed("the Realtime server sent a frame that is not protocol 2.0.0".into(), live);
                };
                let [_, msg_ref, topic, event, payload] = parts.as_slice() else {
                    return failed("the Realtime server sent a frame that is not protocol 2.0.0".into(), live);
                };
                let (msg_ref, event) = (msg_ref.as_str(), event.as_str().unwrap_or_default());
                if topic.as_str() == Some("phoenix") {
                    if msg_ref.is_some() && msg_ref == unanswered.as_deref() {
                        unanswered = None;
                    }
                    continue;
                }
                if topic.as_str() != Some(TOPIC) {
                    continue;
                }
                match event {
                    "phx_reply" if msg_ref == Some(JOIN_REF) && !live => {
                        if payload["status"] != "ok" {
                            let reason = payload["response"]["reason"].as_str().unwrap_or("refused");
                            return failed(format!("Realtime refused the channel: {reason}"), false);
                        }
                        ids = payload["response"]["postgres_changes"]
                            .as_array()
                            .map(|entries| entries.iter().filter_map(|e| e["id"].as_u64()).collect())
                            .unwrap_or_default();
                        live = true;
                        state.send_replace(LiveState::Live);
                        let _ = events.send(RealtimeEvent::Joined);
                    }
                    "postgres_changes" => {
                        let matches = payload["ids"]
                            .as_array()
                            .is_some_and(|given| given.iter().filter_map(Value::as_u64).any(|id| ids.contains(&id)));
                        if let (true, Some(change)) = (matches, change(&payload["data"])) {
                            let _ = events.send(RealtimeEvent::Change(change));
                        }
                    }
                    "system" if payload["status"] == "error" => {
                        let message = payload["message"].as_str().unwrap_or("error");
                        return failed(format!("Realtime closed the channel: {message}"), live);
                    }
                    "phx_close" | "phx_error" => return failed(format!("Realtime ended the channel ({event})"), live),
                    _ => {}
                }
            }
            _ = heartbeat.tick() => {
                if unanswered.is_some() {
                    return failed("the Realtime server stopped answering heartbeats".into(), live);
                }
                let msg_ref = next_ref.to_string();
                next_ref += 1;
                if sink.send(frame(None, Some(&msg_ref), "phoenix", "heartbeat", json!({}))).await.is_err() {
                    return failed("the Realtime socket failed".into(), live);
                }
                unanswered = Some(msg_ref);
                // The session refreshes ahead of expiry; the channel gets each new token.
                if let Some(ended) = swap_token(session, &mut sent, &mut sink, &mut next_ref).await {
                    return ended;
                }
            }
            changed = sessions.changed() => {
                if changed.is_err() || session.user().is_none() {
                    let _ = sink.send(frame(Some(JOIN_REF), Some("0"), TOPIC, "phx_leave", json!({}))).await;
                    let _ = sink.close().await;
                    return Ended::Quietly;
                }
                if let Some(ended) = swap_token(session, &mut sent, &mut sink, &mut next_ref).await {
                    return ended;
                }
            }
            () = &mut joining, if !live => return failed("Realtime did not answer the join in time".into(), false),
        }
    }
}

/// Sends the session's current token if it is not the one the channel has.
async fn swap_token<S>(
    session: &Arc<SessionOwner>,
    sent: &mut Secret,
    sink: &mut S,
    next_ref: &mut u64,
) -> Option<Ended>
where
    S: futures::Sink<Message> + Unpin,
{
    let current = match token(session).await {
        Ok(token) => token,
        Err(ended) => return Some(ended),
    };
    if current == *sent {
        return None;
    }
    let msg_ref = next_ref.to_string();
    *next_ref += 1;
    let payload = json!({"access_token": current.expose()});
    if sink
        .send(frame(
            Some(JOIN_REF),
            Some(&msg_ref),
            TOPIC,
            "access_token",
            payload,
        ))
        .await
        .is_err()
    {
        return Some(Ended::Failed {
            reason: "the Realtime socket failed".into(),
            was_live: true,
        });
    }
    *sent = current;
    None
}

/// A change message's `data`.
fn change(data: &Value) -> Option<Change> {
    let kind = match data["type"].as_str()? {
        "INSERT" => ChangeKind::Insert,
        "UPDATE" => ChangeKind::Update,
        "DELETE" => ChangeKind::Delete,
        _ => return None,
    };
    Some(Change {
        schema: data["schema"].as_str()?.to_string(),
        table: data["table"].as_str()?.to_string(),
        kind,
        record: data.get("record").cloned().unwrap_or(Value::Null),
        old_record: data.get("old_record").cloned().unwrap_or(Value::Null),
        commit_timestamp: data["commit_timestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}
