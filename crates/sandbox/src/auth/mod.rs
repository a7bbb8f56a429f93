//! `/auth/v1`: the subset of GoTrue (Supabase Auth) that Jobdeck and the official
//! clients use.
//!
//! # Layout
//! - [`error`]: GoTrue's error codes in both of its body formats.
//! - [`store`]: users, sessions and refresh tokens in the `auth` schema.
//! - this module: the routes, the API-key gate and the access tokens.
//! - [`inbox`]: the local mail catcher for emailed sign-in codes.

pub mod error;
pub mod inbox;
pub mod store;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha224};
use uuid::Uuid;

use crate::AppState;
use error::AuthError;
use store::Refreshed;

/// How long an emailed code stays valid, as GoTrue's default.
const OTP_LIFETIME_SECONDS: i64 = 3600;
const MIN_PASSWORD_LENGTH: usize = 6;

pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/signup", post(signup))
        .route("/token", post(token))
        .route("/user", get(get_user).put(update_user))
        .route("/logout", post(logout))
        .route("/otp", post(otp))
        .route("/verify", post(verify))
        .route("/settings", get(settings))
        .route("/health", get(health))
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/admin/users",
            get(admin_list_users).post(admin_create_user),
        )
        .route(
            "/admin/users/{id}",
            delete(admin_delete_user).get(admin_get_user),
        )
        .layer(middleware::from_fn_with_state(state, require_api_key))
        .layer(middleware::from_fn(error::format_errors))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The gateway's rule: every route but a few needs a valid `apikey`.
async fn require_api_key(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let exempt = ["/verify", "/.well-known/jwks.json", "/health"]
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

/// The signed-in caller of a JWT endpoint: (user, session, claims).
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(Uuid, Uuid, Value), AuthError> {
    let token = bearer(headers).ok_or_else(|| {
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
    if !store::session_exists(&client, session).await? {
        return Err(AuthError::session_not_found());
    }
    Ok((user, session, claims))
}

/// The caller must hold the service_role key (or a token with that role).
fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), AuthError> {
    let token = bearer(headers).ok_or_else(AuthError::not_admin)?;
    let claims = state
        .keys
        .verify(token)
        .map_err(|e| AuthError::bad_jwt(e.to_string()))?;
    if claims["role"] == "service_role" {
        Ok(())
    } else {
        Err(AuthError::not_admin())
    }
}

/// A session as GoTrue answers it, with a fresh access token.
fn session_body(
    state: &AppState,
    user: &Value,
    session: Uuid,
    refresh_token: &str,
    method: &str,
) -> Value {
    let now = now();
    let expires_at = now + state.settings.jwt_expiry as i64;
    let claims = json!({
        "iss": format!("{}/auth/v1", state.settings.api_url),
        "sub": user["id"],
        "aud": "authenticated",
        "exp": expires_at,
        "iat": now,
        "email": user["email"],
        "phone": user["phone"],
        "app_metadata": user["app_metadata"],
        "user_metadata": user["user_metadata"],
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{ "method": method, "timestamp": now }],
        "session_id": session,
        "is_anonymous": false,
    });
    json!({
        "access_token": state.keys.sign(&claims),
        "token_type": "bearer",
        "expires_in": state.settings.jwt_expiry,
        "expires_at": expires_at,
        "refresh_token": refresh_token,
        "user": user,
    })
}

fn check_email(email: &str) -> Result<(), AuthError> {
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

fn check_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        let mut error = AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
            format!("Password should be at least {MIN_PASSWORD_LENGTH} characters."),
        );
        error.weak_password = Some(vec!["length"]);
        return Err(error);
    }
    Ok(())
}

async fn hash_password(password: String) -> Result<String, AuthError> {
    // bcrypt is deliberately slow: keep it off the async workers.
    tokio::task::spawn_blocking(move || bcrypt::hash(password, bcrypt::DEFAULT_COST))
        .await
        .map_err(AuthError::internal)?
        .map_err(AuthError::internal)
}

async fn password_matches(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
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

#[derive(Deserialize)]
struct Credentials {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    #[serde(default)]
    data: Value,
}

async fn signup(
    State(state): State<Arc<AppState>>,
    bytes: axum::body::Bytes,
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
    check_password(&password)?;
    let hash = hash_password(password).await?;
    let metadata = if request.data.is_object() {
        request.data
    } else {
        json!({})
    };
    let client = state.auth_db.client().await?;
    let user =
        store::create_user(&client, &email, Some(&hash), true, &metadata, &json!({})).await?;
    let id = user_id(&user)?;
    let (session, refresh_token, user) = store::start_session(&client, id).await?;
    Ok(Json(session_body(
        &state,
        &user,
        session,
        &refresh_token,
        "password",
    ))
    .into_response())
}

fn user_id(user: &Value) -> Result<Uuid, AuthError> {
    user["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| AuthError::internal("a user without an id"))
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: Option<String>,
}

async fn token(
    State(state): State<Arc<AppState>>,
    Query(params): Query<HashMap<String, String>>,
    bytes: axum::body::Bytes,
) -> Result<Response, AuthError> {
    match params.get("grant_type").map(String::as_str) {
        Some("password") => password_grant(&state, body(&bytes)?).await,
        Some("refresh_token") => refresh_grant(&state, body(&bytes)?).await,
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
    if !password_matches(password, hash).await {
        return Err(AuthError::invalid_credentials());
    }
    if !found.confirmed {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "email_not_confirmed",
            "Email not confirmed",
        ));
    }
    let (session, refresh_token, user) = store::start_session(&client, found.id).await?;
    Ok(Json(session_body(
        state,
        &user,
        session,
        &refresh_token,
        "password",
    ))
    .into_response())
}

async fn refresh_grant(state: &AppState, request: RefreshRequest) -> Result<Response, AuthError> {
    let token = request.refresh_token.unwrap_or_default();
    if token.len() < 12 {
        return Err(AuthError::validation("Refresh token is not valid"));
    }
    let mut client = state.auth_db.client().await?;
    let outcome =
        store::refresh(&mut client, &token, state.settings.refresh_reuse_interval).await?;
    let (session, user, refresh_token) = match outcome {
        Refreshed::Ok(session, user, token) => (session, user, token),
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
    let user = store::user_json(&client, user).await?.ok_or_else(|| {
        AuthError::new(
            StatusCode::FORBIDDEN,
            "user_not_found",
            "User from sub claim in JWT does not exist",
        )
    })?;
    Ok(Json(session_body(
        state,
        &user,
        session,
        &refresh_token,
        "token_refresh",
    ))
    .into_response())
}

async fn get_user(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, AuthError> {
    let (user, _, _) = signed_in(&state, &headers).await?;
    let client = state.auth_db.client().await?;
    let user = store::user_json(&client, user).await?.ok_or_else(|| {
        AuthError::new(
            StatusCode::FORBIDDEN,
            "user_not_found",
            "User from sub claim in JWT does not exist",
        )
    })?;
    Ok(Json(user).into_response())
}

#[derive(Deserialize)]
struct UserUpdate {
    email: Option<String>,
    password: Option<String>,
    data: Option<Value>,
}

async fn update_user(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, AuthError> {
    let (user, session, _) = signed_in(&state, &headers).await?;
    let update: UserUpdate = body(&bytes)?;
    let client = state.auth_db.client().await?;
    if let Some(email) = &update.email {
        check_email(email)?;
        let result = client
            .execute(
                "update auth.users set email = $2, updated_at = now() where id = $1",
                &[&user, email],
            )
            .await;
        if let Err(error) = result {
            if error.code().is_some_and(|c| c.code() == "23505") {
                return Err(AuthError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "email_exists",
                    "A user with this email address has already been registered",
                ));
            }
            return Err(error.into());
        }
    }
    if let Some(password) = update.password {
        check_password(&password)?;
        let hash = hash_password(password).await?;
        client
            .execute(
                "update auth.users set encrypted_password = $2, updated_at = now() where id = $1",
                &[&user, &hash],
            )
            .await?;
        // A new password signs every other session out.
        store::end_sessions(&client, user, session, "others").await?;
    }
    if let Some(data) = update.data.filter(Value::is_object) {
        client
            .execute(
                "update auth.users set raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || $2, updated_at = now()
                  where id = $1",
                &[&user, &data],
            )
            .await?;
    }
    let user = store::user_json(&client, user)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished"))?;
    Ok(Json(user).into_response())
}

async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, AuthError> {
    let scope = params.get("scope").map_or("global", String::as_str);
    if !["global", "local", "others"].contains(&scope) {
        return Err(AuthError::validation("Unsupported logout scope"));
    }
    let (user, session, _) = signed_in(&state, &headers).await?;
    let client = state.auth_db.client().await?;
    store::end_sessions(&client, user, session, scope).await?;
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
}

fn yes() -> bool {
    true
}

fn otp_hash(email: &str, code: &str) -> String {
    let digest = Sha224::digest(format!("{email}{code}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

async fn otp(
    State(state): State<Arc<AppState>>,
    bytes: axum::body::Bytes,
) -> Result<Response, AuthError> {
    let request: OtpRequest = body(&bytes)?;
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
        None if request.create_user => {
            let metadata = if request.data.is_object() {
                request.data
            } else {
                json!({})
            };
            user_id(
                &store::create_user(&client, &email, None, false, &metadata, &json!({})).await?,
            )?
        }
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
    client
        .execute(
            "insert into auth.one_time_tokens (user_id, token_type, token_hash, relates_to)
             values ($1, 'email_otp', $2, $3)
             on conflict (user_id, token_type) do update
               set token_hash = excluded.token_hash, relates_to = excluded.relates_to,
                   created_at = now(), updated_at = now()",
            &[&id, &otp_hash(&email, &code), &email],
        )
        .await?;
    state.inbox.deliver(&email, &code);
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
struct VerifyRequest {
    #[serde(rename = "type")]
    kind: Option<String>,
    email: Option<String>,
    token: Option<String>,
}

async fn verify(
    State(state): State<Arc<AppState>>,
    bytes: axum::body::Bytes,
) -> Result<Response, AuthError> {
    let request: VerifyRequest = body(&bytes)?;
    let expired = || {
        AuthError::new(
            StatusCode::FORBIDDEN,
            "otp_expired",
            "Token has expired or is invalid",
        )
    };
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
    let used = client
        .query_opt(
            "delete from auth.one_time_tokens t using auth.users u
              where t.user_id = u.id and lower(u.email) = $1 and t.token_type = 'email_otp'
                and t.token_hash = $2 and t.created_at > now() at time zone 'utc' - make_interval(secs => $3)
              returning u.id",
            &[&email, &otp_hash(&email, token.trim()), &(OTP_LIFETIME_SECONDS as f64)],
        )
        .await?;
    let Some(row) = used else {
        return Err(expired());
    };
    let id: Uuid = row.get(0);
    client
        .execute(
            "update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()) where id = $1",
            &[&id],
        )
        .await?;
    let (session, refresh_token, user) = store::start_session(&client, id).await?;
    Ok(Json(session_body(&state, &user, session, &refresh_token, "otp")).into_response())
}

async fn settings() -> Json<Value> {
    Json(json!({
        "external": { "email": true, "phone": false, "anonymous_users": false,
                      "github": false, "google": false },
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

#[derive(Deserialize)]
struct AdminCreate {
    email: Option<String>,
    password: Option<String>,
    #[serde(default)]
    email_confirm: bool,
    #[serde(default)]
    user_metadata: Value,
    #[serde(default)]
    app_metadata: Value,
}

async fn admin_create_user(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Response, AuthError> {
    require_admin(&state, &headers)?;
    let request: AdminCreate = body(&bytes)?;
    let email = request
        .email
        .ok_or_else(|| AuthError::validation("An email address is required"))?;
    check_email(&email)?;
    let hash = match request.password {
        Some(password) => {
            check_password(&password)?;
            Some(hash_password(password).await?)
        }
        None => None,
    };
    let metadata = if request.user_metadata.is_object() {
        request.user_metadata
    } else {
        json!({})
    };
    let client = state.auth_db.client().await?;
    let user = store::create_user(
        &client,
        &email,
        hash.as_deref(),
        request.email_confirm,
        &metadata,
        &request.app_metadata,
    )
    .await
    .map_err(|mut e| {
        if e.code == "user_already_exists" {
            e.code = "email_exists";
            e.message = "A user with this email address has already been registered".into();
        }
        e
    })?;
    Ok(Json(user).into_response())
}

async fn admin_list_users(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, AuthError> {
    require_admin(&state, &headers)?;
    let client = state.auth_db.client().await?;
    let mut users = Vec::new();
    for row in client
        .query(
            "select id from auth.users where deleted_at is null order by created_at",
            &[],
        )
        .await?
    {
        if let Some(user) = store::user_json(&client, row.get(0)).await? {
            users.push(user);
        }
    }
    Ok(Json(json!({ "users": users, "aud": "authenticated" })).into_response())
}

async fn admin_get_user(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    require_admin(&state, &headers)?;
    let not_found = || AuthError::new(StatusCode::NOT_FOUND, "user_not_found", "User not found");
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let client = state.auth_db.client().await?;
    let user = store::user_json(&client, id).await?.ok_or_else(not_found)?;
    Ok(Json(user).into_response())
}

async fn admin_delete_user(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    require_admin(&state, &headers)?;
    let not_found = || AuthError::new(StatusCode::NOT_FOUND, "user_not_found", "User not found");
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let client = state.auth_db.client().await?;
    // Sessions, identities and the user's jobs go with the user (ON DELETE CASCADE).
    let deleted = client
        .execute("delete from auth.users where id = $1", &[&id])
        .await?;
    if deleted == 0 {
        return Err(not_found());
    }
    Ok(Json(json!({})).into_response())
}
