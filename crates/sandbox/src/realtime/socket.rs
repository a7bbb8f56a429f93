//! One client's WebSocket: its channels, their tokens, heartbeats and replies.
//!
//! Reading and writing run in the socket's own task (one future each, selected), so a
//! socket owns nothing that outlives it: when it closes, its channels leave the hub.

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{
    bindings::Binding,
    hub::{Outbox, Subscription},
    protocol::{Frame, Vsn},
};
use crate::{AppState, auth::tokens::now, db::Caller, keys::JwtError};

/// A socket that says nothing (not even a heartbeat) for this long is closed, as
/// Phoenix closes one that missed its heartbeats.
const IDLE: Duration = Duration::from_secs(60);
/// How long a join waits for the changes to be heard before it is refused.
const LISTENING: Duration = Duration::from_secs(5);
/// Frames written to a socket at most in one go.
const WRITE_BATCH: usize = 64;

/// A joined channel, as this socket knows it.
struct Joined {
    key: u64,
    join_ref: Option<String>,
    bindings: Vec<Binding>,
    /// The token's `exp`, in seconds since the epoch.
    expires: Option<i64>,
}

/// Who a token says the subscriber is, and when it expires.
fn caller_for(state: &AppState, token: &str) -> Result<(Caller, Option<i64>), String> {
    // realtime-js sends the project's key as the token when no user is signed in; a
    // new-style key stands for its JWT, as at the gateway.
    let token = state.keys.swap(token).unwrap_or(token);
    let claims = state.keys.verify(token).map_err(|error| match error {
        JwtError::Expired => "Token has expired".to_string(),
        other => format!("Invalid token: {other}"),
    })?;
    Ok((Caller::from_claims(&claims), claims["exp"].as_i64()))
}

pub async fn serve(socket: WebSocket, state: Arc<AppState>, vsn: Vsn, api_key: String) {
    let hub = Arc::clone(&state.realtime);
    let (outbox, mut queue) = Outbox::new(vsn);
    let socket_id = hub.open(&outbox);
    let (mut sink, mut stream) = socket.split();
    let mut channels = Channels {
        state: &state,
        outbox: &outbox,
        api_key: &api_key,
        joined: HashMap::new(),
    };

    let writer = async {
        while let Some(text) = queue.recv().await {
            // The frames queued by then go out with it, in one write (a bounded one,
            // so a busy socket is still flushed).
            let mut next = Some(text);
            let mut fed = 0;
            while let Some(text) = next {
                if sink.feed(Message::Text(text.into())).await.is_err() {
                    return;
                }
                fed += 1;
                next = (fed < WRITE_BATCH).then(|| queue.try_recv().ok()).flatten();
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    };
    let reader = async {
        loop {
            let deadline = channels.next_expiry();
            let expiry = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = tokio::time::timeout(IDLE, stream.next()) => {
                    let text = match received {
                        Ok(Some(Ok(Message::Text(text)))) => text,
                        Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                        // Closed, failed, silent too long, or a binary frame (Broadcast's,
                        // which the sandbox does not serve).
                        _ => return,
                    };
                    let frame = match Frame::decode(vsn, text.as_str()) {
                        Ok(frame) => frame,
                        Err(error) => {
                            tracing::debug!(%error, "a Realtime client sent a frame that is not Phoenix's; closing");
                            return;
                        }
                    };
                    channels.handle(frame).await;
                }
                () = expiry => channels.expire(),
            }
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
        () = outbox.kicked() => {}
    }
    for channel in channels.joined.values() {
        hub.unsubscribe(channel.key);
    }
    hub.close(socket_id);
}

/// One socket's joined channels, with what answering its frames needs.
struct Channels<'a> {
    state: &'a AppState,
    outbox: &'a Outbox,
    /// The socket's API key: the token of a join that brings none.
    api_key: &'a str,
    /// By topic.
    joined: HashMap<String, Joined>,
}

impl Channels<'_> {
    async fn handle(&mut self, frame: Frame) {
        let outbox = self.outbox;
        match (frame.topic.as_str(), frame.event.as_str()) {
            ("phoenix", "heartbeat") => outbox.send(&frame.reply(true, json!({}))),
            (_, "phx_join") => self.join(frame).await,
            (topic, "access_token") if self.joined.contains_key(topic) => {
                let token = frame.payload["access_token"].as_str().unwrap_or_default();
                match caller_for(self.state, token) {
                    Ok((caller, expires)) => {
                        let channel = self.joined.get_mut(topic).expect("checked above");
                        channel.expires = expires;
                        let subscription = Subscription {
                            outbox: outbox.clone(),
                            topic: topic.to_string(),
                            join_ref: channel.join_ref.clone(),
                            bindings: channel.bindings.clone(),
                            caller,
                        };
                        self.state
                            .realtime
                            .subscribe(Some(channel.key), subscription);
                    }
                    Err(message) => self.close(topic, &message),
                }
            }
            (topic, "phx_leave") if self.joined.contains_key(topic) => {
                outbox.send(&frame.reply(true, json!({})));
                if let Some(channel) = self.joined.remove(topic) {
                    self.state.realtime.unsubscribe(channel.key);
                    outbox.send(&Frame::push(
                        topic,
                        channel.join_ref.as_deref(),
                        "phx_close",
                        json!({}),
                    ));
                }
            }
            (topic, "broadcast" | "presence") if self.joined.contains_key(topic) => {
                outbox.send(&frame.refuse(format!(
                    "{} is not served by the Jobdeck sandbox (only postgres_changes is)",
                    if frame.event == "broadcast" {
                        "Broadcast"
                    } else {
                        "Presence"
                    }
                )));
            }
            (topic, _) if self.joined.contains_key(topic) => {
                outbox.send(&frame.refuse(format!("unknown event {:?}", frame.event)));
            }
            _ => outbox.send(&frame.refuse("unmatched topic")),
        }
    }

    async fn join(&mut self, frame: Frame) {
        let (hub, outbox) = (&self.state.realtime, self.outbox);
        if !frame.topic.starts_with("realtime:") {
            return outbox.send(&frame.refuse("unmatched topic"));
        }
        let config = &frame.payload["config"];
        if config["private"] == Value::Bool(true) {
            return outbox.send(&frame.refuse(
                "private channels (Realtime Authorization) are not served by the Jobdeck sandbox",
            ));
        }
        if config["presence"]["enabled"] == Value::Bool(true) {
            return outbox.send(&frame.refuse("Presence is not served by the Jobdeck sandbox"));
        }
        // Subscribed only while changes are heard: a client that joins then misses none.
        if !hub.until_listening(LISTENING).await {
            return outbox
                .send(&frame.refuse("Realtime cannot reach the database; try again in a moment"));
        }
        let token = frame.payload["access_token"]
            .as_str()
            .unwrap_or(self.api_key);
        let (caller, expires) = match caller_for(self.state, token) {
            Ok(found) => found,
            Err(message) => return outbox.send(&frame.refuse(message)),
        };
        let entries = config["postgres_changes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let bindings: Result<Vec<Binding>, String> = entries
            .iter()
            .map(|entry| Binding::parse(hub.binding_id(), entry))
            .collect();
        let bindings = match bindings {
            Ok(bindings) => bindings,
            Err(message) => return outbox.send(&frame.refuse(message)),
        };
        // Joining a topic again replaces the earlier join, as Phoenix does.
        if let Some(earlier) = self.joined.remove(&frame.topic) {
            hub.unsubscribe(earlier.key);
        }
        // Subscribed before the reply: a change committed after the client hears "ok"
        // reaches it.
        let key = hub.subscribe(
            None,
            Subscription {
                outbox: outbox.clone(),
                topic: frame.topic.clone(),
                join_ref: frame.join_ref.clone(),
                bindings: bindings.clone(),
                caller,
            },
        );
        let replies: Vec<Value> = bindings.iter().map(|b| b.reply.clone()).collect();
        outbox.send(&frame.reply(true, json!({"postgres_changes": replies})));
        if !bindings.is_empty() {
            let channel = frame.topic.trim_start_matches("realtime:");
            outbox.send(&Frame::push(
                &frame.topic,
                frame.join_ref.as_deref(),
                "system",
                json!({"message": "Subscribed to PostgreSQL", "status": "ok", "extension": "postgres_changes", "channel": channel}),
            ));
        }
        self.joined.insert(
            frame.topic.clone(),
            Joined {
                key,
                join_ref: frame.join_ref,
                bindings,
                expires,
            },
        );
    }

    /// Ends a channel whose token expired or was refused: a system error, then
    /// phx_close.
    fn close(&mut self, topic: &str, message: &str) {
        let Some(channel) = self.joined.remove(topic) else {
            return;
        };
        self.state.realtime.unsubscribe(channel.key);
        let name = topic.trim_start_matches("realtime:");
        let join_ref = channel.join_ref.as_deref();
        self.outbox.send(&Frame::push(
            topic,
            join_ref,
            "system",
            json!({"message": message, "status": "error", "extension": "system", "channel": name}),
        ));
        self.outbox
            .send(&Frame::push(topic, join_ref, "phx_close", json!({})));
    }

    /// When the first of the channels' tokens expires.
    fn next_expiry(&self) -> Option<Instant> {
        let exp = self.joined.values().filter_map(|j| j.expires).min()?;
        Some(Instant::now() + Duration::from_secs((exp - now()).max(0) as u64))
    }

    fn expire(&mut self) {
        let now = now();
        let expired: Vec<(String, i64)> = self
            .joined
            .iter()
            .filter_map(|(topic, j)| {
                j.expires
                    .filter(|exp| *exp <= now)
                    .map(|exp| (topic.clone(), exp))
            })
            .collect();
        for (topic, exp) in expired {
            self.close(
                &topic,
                &format!("Token has expired {} seconds ago", now - exp),
            );
        }
    }
}
