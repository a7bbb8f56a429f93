//! The sandbox sends no mail: each message lands here, is printed to the log the way
//! a local mail catcher shows it, and is served at `GET /inbox` (`?email=` filters).

use std::{
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Json,
    extract::{Query, State},
};
use serde::{Deserialize, Serialize};

use crate::AppState;

/// Messages kept, newest last; older ones are dropped past this.
const CAPACITY: usize = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: u64,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The one-time code the message carries, for tests and scripts.
    pub code: String,
    /// The sign-in link beside the code (GoTrue's `{{ .ConfirmationURL }}`).
    pub link: String,
    /// Unix seconds.
    pub sent_at: u64,
}

#[derive(Debug, Default)]
pub struct Inbox {
    // Never held across an await: every access is a short push or copy.
    messages: Mutex<Vec<Message>>,
}

impl Inbox {
    pub fn deliver(&self, to: &str, code: &str, link: &str) {
        let sent_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        let id = messages.last().map_or(1, |m| m.id + 1);
        let message = Message {
            id,
            to: to.to_string(),
            subject: "Your sign-in code".into(),
            body: format!(
                "Enter this code to sign in: {code}\nOr follow this link: {link}\nBoth expire in one hour."
            ),
            code: code.to_string(),
            link: link.to_string(),
            sent_at,
        };
        tracing::info!(
            to,
            code,
            link,
            "mail: your sign-in code and link (kept in the sandbox inbox)"
        );
        messages.push(message);
        if messages.len() > CAPACITY {
            messages.remove(0);
        }
    }

    pub fn list(&self, to: Option<&str>) -> Vec<Message> {
        let messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        messages
            .iter()
            .filter(|m| to.is_none_or(|to| m.to.eq_ignore_ascii_case(to)))
            .cloned()
            .collect()
    }
}

#[derive(Debug, Deserialize)]
pub struct Filter {
    email: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<Filter>,
) -> Json<Vec<Message>> {
    Json(state.inbox.list(filter.email.as_deref()))
}
