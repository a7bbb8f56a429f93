//! The routes that start, refresh and end sessions: sign-up, the password and
//! refresh-token grants, emailed codes and links (with PKCE when the app asks), logout.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json,
    body::Bytes,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    SignedIn, body, check_email, error::AuthError, metadata, oauth, passwords, store,
    store::Refreshed, tokens::session_body, user_id,
};
use crate::AppState;

/// How long an emailed code stays valid, as GoTrue's default.
const OTP_LIFETIME_SECONDS: f64 = 3600.0;

#[derive(Deserialize)]
pub(super) struct Credentials {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    #[serde(default)]
    data: Value,
}

pub(super) async fn signup(
    State(state): State<Arc<AppState>>,
    bytes: Bytes,
) -> Result<Response, AuthError> {
    let request: Credentials = body(&bytes)?;
    if request.phone.is_some() {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "phone_provider_disabled",
            "Phone signups are disabled",
        ));
    }
    let email = request
        .email
        .ok_or_else(|| AuthError::validation("To signup, please provide your email"))?;
    check_email(&email)?;
    let password = request.password.unwrap_or_default();
    passwords::check(&password)?;
    let hash = passwords::hash(password).await?;
    let client = state.auth_db.client().await?;
    let user = store::create_user(
        &client,
        &email,
        Some(&hash),
        true,
        &metadata(request.data),
        &json!({}),
        store::Identity::EMAIL,
    )
    .await?;
    let issued = store::start_session(&client, user_id(&user)?, "password").await?;
    Ok(Json(session_body(&state, &issued)).into_response())
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: Option<String>,
}

pub(super) async fn token(
    State(state): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
    bytes: Bytes,
) -> Result<Response, AuthError> {
    match params.get("grant_type").map(String::as_str) {
        Some("password") => password_grant(&state, body(&bytes)?).await,
        Some("refresh_token") => refresh_grant(&state, body(&bytes)?).await,
        Some("pkce") => super::oauth::pkce_grant(&state, body(&bytes)?).await,
        _ => Err(AuthError::invalid_credentials()),
    }
}

async fn password_grant(state: &AppState, request: Credentials) -> Result<Response, AuthError> {
    let email = match (request.email, request.phone) {
        (Some(email), None) => email,
        (None, Some(_)) => return Err(AuthError::invalid_credentials()),
        _ => {
            return Err(AuthError::validation(
                "Only an email address or phone number should be provided on login.",
            ));
        }
    };
    let password = request.password.unwrap_or_default();
    let client = state.auth_db.client().await?;
    let Some(found) = store::find_by_email(&client, &email).await? else {
        return Err(AuthError::invalid_credentials());
    };
    let Some(hash) = found.password_hash.filter(|h| !h.is_empty()) else {
        return Err(AuthError::invalid_credentials());
    };
    if !passwords::matches(password, hash).await {
        return Err(AuthError::invalid_credentials());
    }
    if !found.confirmed {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "email_not_confirmed",
            "Email not confirmed",
        ));
    }
    let issued = store::start_session(&client, found.id, "password").await?;
    Ok(Json(session_body(state, &issued)).into_response())
}

async fn refresh_grant(state: &AppState, request: RefreshRequest) -> Result<Response, AuthError> {
    let token = request.refresh_token.unwrap_or_default();
    if token.len() < 12 {
        return Err(AuthError::validation("Refresh token is not valid"));
    }
    let mut client = state.auth_db.client().await?;
    let outcome =
        store::refresh(&mut client, &token, state.settings.refresh_reuse_interval).await?;
    let (session, refresh_token) = match outcome {
        Refreshed::Ok(session, token) => (session, token),
        Refreshed::NotFound => {
            return Err(AuthError::new(
                StatusCode::BAD_REQUEST,
                "refresh_token_not_found",
                "Invalid Refresh Token: Refresh Token Not Found",
            ));
        }
        Refreshed::AlreadyUsed => {
            tracing::warn!(
                "a refresh token was reused outside the reuse interval; its session is revoked"
            );
            return Err(AuthError::new(
                StatusCode::BAD_REQUEST,
                "refresh_token_already_used",
                "Invalid Refresh Token: Already Used",
            ));
        }
    };
    // The claims stay the session's own (how it was signed in, its aal), as GoTrue's.
    let issued = store::issued(&**client, session, refresh_token).await?;
    Ok(Json(session_body(state, &issued)).into_response())
}

pub(super) async fn logout(
    State(state): State<Arc<AppState>>,
    signed_in: SignedIn,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, AuthError> {
    let scope = params.get("scope").map_or("global", String::as_str);
    if !["global", "local", "others"].contains(&scope) {
        return Err(AuthError::validation("Unsupported logout scope"));
    }
    let client = state.auth_db.client().await?;
    store::end_sessions(&client, signed_in.user, signed_in.session, scope).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct OtpRequest {
    email: Option<String>,
    phone: Option<String>,
    #[serde(default = "yes")]
    create_user: bool,
    #[serde(default)]
    data: Value,
    // supabase-js sends both as null without PKCE.
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// A PKCE flow's link carries its token with this prefix (GoTrue's `PKCEPrefix`), so
/// following it hands out an auth code rather than a session.
const PKCE_PREFIX: &str = "pkce_";

fn yes() -> bool {
    true
}

/// `POST /otp`: emails a six-digit code and a link (into the sandbox's inbox). With a
/// code challenge the link ends a PKCE flow at `?redirect_to=`.
pub(super) async fn otp(
    State(state): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
    bytes: Bytes,
) -> Result<Response, AuthError> {
    let request: OtpRequest = body(&bytes)?;
    let challenge = oauth::pkce_params(
        request.code_challenge_method.as_deref().unwrap_or_default(),
        request.code_challenge.as_deref().unwrap_or_default(),
    )?;
    if request.phone.is_some() {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "sms_send_failed",
            "SMS is not available in the sandbox",
        ));
    }
    let email = request
        .email
        .ok_or_else(|| AuthError::validation("An email address is required"))?
        .to_lowercase();
    check_email(&email)?;
    let client = state.auth_db.client().await?;
    let id = match store::find_by_email(&client, &email).await? {
        Some(found) => found.id,
        None if request.create_user => user_id(
            &store::create_user(
                &client,
                &email,
                None,
                false,
                &metadata(request.data),
                &json!({}),
                store::Identity::EMAIL,
            )
            .await?,
        )?,
        None => {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "otp_disabled",
                "Signups not allowed for otp",
            ));
        }
    };
    let code: String = {
        use rand::Rng as _;
        format!("{:06}", rand::rng().random_range(0..1_000_000))
    };
    store::save_email_code(&client, id, &email, &code).await?;
    let redirect_to = oauth::redirect_target(
        &state.settings,
        params.get("redirect_to").map(String::as_str),
    );
    let prefix = if challenge.is_some() {
        store::start_flow(
            &client,
            "magiclink",
            "magiclink",
            challenge,
            &redirect_to,
            Some(id),
        )
        .await?;
        PKCE_PREFIX
    } else {
        ""
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "token",
            &format!("{prefix}{}", store::email_code_hash(&email, &code)),
        )
        .append_pair("type", "magiclink")
        .append_pair("redirect_to", &redirect_to)
        .finish();
    let link = format!("{}/auth/v1/verify?{query}", state.settings.api_url);
    state.inbox.deliver(&email, &code, &link);
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct VerifyRequest {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    token: Option<String>,
}

/// `POST /verify`: an emailed code signs its user in.
pub(super) async fn verify(
    State(state): State<Arc<AppState>>,
    bytes: Bytes,
) -> Result<Response, AuthError> {
    let request: VerifyRequest = body(&bytes)?;
    if !matches!(
        request.kind.as_deref(),
        Some("email" | "magiclink" | "signup")
    ) {
        return Err(AuthError::validation(
            "Verify requires a verification type of email, magiclink or signup",
        ));
    }
    let (Some(email), Some(token)) = (request.email, request.token) else {
        return Err(AuthError::validation(
            "Verify requires an email and a token",
        ));
    };
    let email = email.to_lowercase();
    let client = state.auth_db.client().await?;
    let hash = store::email_code_hash(&email, token.trim());
    let Some(id) =
        store::use_email_code(&client, Some(&email), &hash, OTP_LIFETIME_SECONDS).await?
    else {
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "otp_expired",
            "Token has expired or is invalid",
        ));
    };
    let issued = store::start_session(&client, id, "otp").await?;
    Ok(Json(session_body(&state, &issued)).into_response())
}

#[derive(Deserialize)]
pub(super) struct LinkQuery {
    #[serde(default)]
    token: String,
    #[serde(rename = "type", default)]
    kind: String,
    redirect_to: Option<String>,
}

/// `GET /verify`: the emailed link, followed in the browser. It signs its user in and
/// sends the browser on to `redirect_to`: with an auth code in the query (the PKCE
/// flow the app started) or the session in the fragment. A used or expired link lands
/// there with GoTrue's `otp_expired` error.
pub(super) async fn verify_link(
    State(state): State<Arc<AppState>>,
    Query(query): Query<LinkQuery>,
) -> Result<Response, AuthError> {
    if !matches!(query.kind.as_str(), "magiclink" | "email" | "signup") {
        return Err(AuthError::validation("Unsupported verification type"));
    }
    let target = oauth::redirect_target(&state.settings, query.redirect_to.as_deref());
    let (pkce, hash) = match query.token.strip_prefix(PKCE_PREFIX) {
        Some(hash) => (true, hash),
        None => (false, query.token.as_str()),
    };
    let client = state.auth_db.client().await?;
    let Some(user) = store::use_email_code(&client, None, hash, OTP_LIFETIME_SECONDS).await? else {
        return Ok(oauth::error_redirect(
            &target,
            "access_denied",
            Some("otp_expired"),
            "Email link is invalid or has expired",
        ));
    };
    if !pkce {
        let issued = store::start_session(&client, user, "otp").await?;
        return Ok(oauth::found(&oauth::session_fragment(
            &target,
            &session_body(&state, &issued),
            &[("type", &query.kind)],
        )));
    }
    match store::issue_flow_code(&client, user, "magiclink").await? {
        Some(code) => Ok(oauth::found(&oauth::with_query(
            &target,
            &[("code", &code)],
        ))),
        None => Ok(oauth::error_redirect(
            &target,
            "invalid_request",
            Some("flow_state_not_found"),
            "No associated flow state found.",
        )),
    }
}
