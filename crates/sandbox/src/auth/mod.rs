//! `/auth/v1`: the subset of GoTrue (Supabase Auth) that Jobdeck and the official
//! clients use.
//!
//! # Layout
//! - this module: the router, the API-key gate, the [`SignedIn`] and [`Admin`]
//!   extractors, and the small routes (settings, health, JWKS).
//! - [`sessions`]: sign-up, the token grants, emailed codes and links, logout.
//! - [`oauth`]: sign-in through a provider (`/authorize`, `/callback`, the PKCE
//!   grant); [`provider`]: the sandbox's own provider and its consent page.
//! - [`factors`]: second factors (TOTP) and the aal2 sessions they make.
//! - [`users`]: the signed-in user's own record and the admin user API.
//! - [`tokens`]: the access tokens and session bodies GoTrue answers with.
//! - [`passwords`]: the password rule and bcrypt.
//! - [`store`]: every statement on the `auth` schema.
//! - [`error`]: GoTrue's error codes in both of its body formats.
//! - [`inbox`]: the local mail catcher for emailed sign-in codes.

pub mod error;
mod factors;
pub mod inbox;
pub mod oauth;
mod passwords;
pub mod provider;
mod sessions;
pub mod store;
pub(crate) mod tokens;
mod users;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use error::AuthError;

pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/signup", post(sessions::signup))
        .route("/token", post(sessions::token))
        .route("/user", get(users::get_user).put(users::update_user))
        .route("/logout", post(sessions::logout))
        .route("/otp", post(sessions::otp))
        .route("/verify", post(sessions::verify).get(sessions::verify_link))
        .route("/authorize", get(oauth::authorize))
        .route("/callback", get(oauth::callback))
        .route("/factors", post(factors::enroll))
        .route("/factors/{id}", delete(factors::unenroll))
        .route("/factors/{id}/challenge", post(factors::challenge))
        .route("/factors/{id}/verify", post(factors::verify))
        .route("/settings", get(settings))
        .route("/health", get(health))
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/admin/users",
            get(users::admin_list_users).post(users::admin_create_user),
        )
        .route(
            "/admin/users/{id}",
            delete(users::admin_delete_user).get(users::admin_get_user),
        )
        .layer(middleware::from_fn_with_state(state, require_api_key))
        .layer(middleware::from_fn(error::format_errors))
}

/// The gateway's rule: every route but a few needs a valid `apikey`.
async fn require_api_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    // A browser follows `/authorize` and `/callback`: it has no key to send.
    let exempt = [
        "/verify",
        "/authorize",
        "/callback",
        "/.well-known/jwks.json",
        "/health",
    ]
    .iter()
    .any(|p| path.ends_with(p));
    if !exempt {
        let query = request.uri().query().map(str::to_string);
        if let Err(error) = state.check_api_key(request.headers(), query.as_deref()) {
            return error.into_response();
        }
    }
    next.run(request).await
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The caller of a JWT endpoint: a valid access token of a session that still exists.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn {
    pub user: Uuid,
    pub session: Uuid,
    /// The session has passed a second factor.
    pub aal2: bool,
}

impl FromRequestParts<Arc<AppState>> for SignedIn {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or_else(|| {
            AuthError::new(
                StatusCode::UNAUTHORIZED,
                "no_authorization",
                "This endpoint requires a Bearer token",
            )
        })?;
        let claims = state.keys.verify(token).map_err(|e| {
            AuthError::bad_jwt(format!(
                "invalid JWT: unable to parse or verify signature, {e}"
            ))
        })?;
        let user = claims["sub"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| {
                AuthError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_jwt",
                    "invalid claim: missing sub claim",
                )
            })?;
        let session = claims["session_id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(AuthError::session_not_found)?;
        let client = state.auth_db.client().await?;
        let aal = store::session_aal(&client, session)
            .await?
            .ok_or_else(AuthError::session_not_found)?;
        Ok(SignedIn {
            user,
            session,
            aal2: aal == "aal2",
        })
    }
}

/// The caller holds the service_role key (or a token with that role).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or_else(AuthError::not_admin)?;
        let claims = state
            .keys
            .verify(token)
            .map_err(|e| AuthError::bad_jwt(e.to_string()))?;
        if claims["role"] == "service_role" {
            Ok(Admin)
        } else {
            Err(AuthError::not_admin())
        }
    }
}

pub(crate) fn check_email(email: &str) -> Result<(), AuthError> {
    let valid = email.len() <= 255
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        });
    if valid {
        Ok(())
    } else {
        Err(AuthError::validation(
            "Unable to validate email address: invalid format",
        ))
    }
}

/// A JSON body, with GoTrue's `bad_json` when it is not.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, AuthError> {
    serde_json::from_slice(bytes).map_err(|e| {
        AuthError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("Could not parse request body as JSON: {e}"),
        )
    })
}

/// User metadata as given, when it is an object.
fn metadata(data: Value) -> Value {
    if data.is_object() { data } else { json!({}) }
}

fn user_id(user: &Value) -> Result<Uuid, AuthError> {
    user["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| AuthError::internal("a user without an id"))
}

async fn settings() -> Json<Value> {
    Json(json!({
        "external": { "email": true, "phone": false, "anonymous_users": false,
                      "github": false, "google": false, provider::PROVIDER: true },
        "disable_signup": false,
        "mailer_autoconfirm": true,
        "phone_autoconfirm": false,
        "sms_provider": "",
        "saml_enabled": false,
    }))
}

async fn health() -> Json<Value> {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "name": "GoTrue",
        "description": "Jobdeck sandbox: a GoTrue-compatible subset of Supabase Auth",
    }))
}

async fn jwks() -> Response {
    // HS256 keys are never published.
    (
        [(header::CACHE_CONTROL, "public, max-age=600")],
        Json(json!({ "keys": [] })),
    )
        .into_response()
}
