//! The sandbox's own OAuth provider, `sandbox`: what GitHub or Google are to a hosted
//! project, with a consent page that signs in (or signs up) whatever email address is
//! typed into it. Enabled in `/settings` like a real provider, so an app's "Sign in
//! with ..." buttons and its whole PKCE flow run locally.
//!
//! `GET /oauth/sandbox/authorize?state=` shows the page; its form posts back, and the
//! browser goes to `/auth/v1/callback` with a one-use provider code (or
//! `error=access_denied` when the user declines).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Form,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{AppState, Settings, keys::random_token};

/// The provider's name, as `/authorize?provider=` and `/settings` spell it.
pub const PROVIDER: &str = "sandbox";

/// Where the consent page is served.
pub const AUTHORIZE_PATH: &str = "/oauth/sandbox/authorize";

/// A provider code is exchanged by the callback within moments; ten minutes is
/// what GitHub allows.
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// The account a provider code stands for.
#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    /// The provider's id of the account: its address, lowercased.
    pub subject: String,
}

impl Account {
    /// What GoTrue keeps of a provider's account as the identity's data and the new
    /// user's metadata.
    pub fn identity_data(&self, settings: &Settings) -> Value {
        json!({
            "iss": format!("{}{AUTHORIZE_PATH}", settings.api_url),
            "sub": self.subject,
            "provider_id": self.subject,
            "email": self.email,
            "email_verified": true,
            "phone_verified": false,
        })
    }
}

/// Codes handed to the callback, each usable once.
#[derive(Debug, Default)]
pub struct Codes {
    // Never held across an await: each access is one insert or removal.
    codes: Mutex<HashMap<String, (Account, Instant)>>,
}

impl Codes {
    fn issue(&self, account: Account) -> String {
        let code = random_token(32);
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, (_, issued)| issued.elapsed() < CODE_LIFETIME);
        codes.insert(code.clone(), (account, Instant::now()));
        code
    }

    /// The account of `code`, which is then used up.
    pub fn take(&self, code: &str) -> Option<Account> {
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes
            .remove(code)
            .filter(|(_, issued)| issued.elapsed() < CODE_LIFETIME)
            .map(|(account, _)| account)
    }
}

/// Where `/authorize` sends the browser for flow `flow`.
pub fn authorize_url(settings: &Settings, flow: Uuid) -> String {
    format!("{}{AUTHORIZE_PATH}?state={flow}", settings.api_url)
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    state: Option<String>,
}

/// The consent page.
pub async fn page(Query(query): Query<PageQuery>) -> Response {
    let Some(flow) = query.state.as_deref().and_then(|s| Uuid::parse_str(s).ok()) else {
        return (
            StatusCode::BAD_REQUEST,
            Html(document(
                "<p>This page is opened by a sign-in; it needs the <code>state</code> that \
                 <code>/auth/v1/authorize</code> gives it.</p>",
            )),
        )
            .into_response();
    };
    Html(document(&format!(
        r#"<p>An app asks to sign you in to this project's sandbox. Any address signs in
(a new one signs up); no password is asked and no mail is sent.</p>
<form method="post" action="{AUTHORIZE_PATH}">
<input type="hidden" name="state" value="{flow}">
<label>Email <input id="email" name="email" type="email" required autofocus></label>
<p><button id="allow" name="decision" value="allow">Sign in</button>
<button id="deny" name="decision" value="deny" formnovalidate>Cancel</button></p>
</form>"#
    )))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct Decision {
    state: String,
    #[serde(default)]
    email: String,
    decision: String,
}

/// The page's answer: back to the callback with a code, or with the refusal.
pub async fn decide(State(state): State<Arc<AppState>>, Form(form): Form<Decision>) -> Response {
    let callback = format!("{}/auth/v1/callback", state.settings.api_url);
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("state", &form.state);
    if form.decision == "allow" {
        let email = form.email.trim().to_lowercase();
        if super::check_email(&email).is_err() {
            return (
                StatusCode::BAD_REQUEST,
                Html(document(
                    "<p>That is not an email address. Go back and type one.</p>",
                )),
            )
                .into_response();
        }
        let code = state.provider.issue(Account {
            subject: email.clone(),
            email,
        });
        query.append_pair("code", &code);
    } else {
        query.append_pair("error", "access_denied");
        query.append_pair("error_description", "The user declined to sign in");
    }
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("{callback}?{}", query.finish()))],
    )
        .into_response()
}

fn document(body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Sign in with the sandbox provider</title>
<style>body{{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
input{{font:inherit;padding:.3rem;width:100%}}button{{font:inherit;padding:.4rem 1rem}}</style>
</head><body><h1>Sign in with the sandbox provider</h1>{body}</body></html>"#
    )
}
