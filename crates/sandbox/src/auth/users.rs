//! The routes about users: the signed-in user's own (`/user`) and the admin API
//! (`/admin/users`, service_role only).

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequestParts, Path, State},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Admin, SignedIn, body, check_email, error::AuthError, metadata, passwords, store};
use crate::AppState;

pub(super) async fn get_user(
    State(state): State<Arc<AppState>>,
    signed_in: SignedIn,
) -> Result<Response, AuthError> {
    let client = state.auth_db.client().await?;
    let user = store::user_json(&client, signed_in.user)
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    Ok(Json(user).into_response())
}

#[derive(Deserialize)]
struct UserUpdate {
    email: Option<String>,
    password: Option<String>,
    data: Option<Value>,
}

pub(super) async fn update_user(
    State(state): State<Arc<AppState>>,
    signed_in: SignedIn,
    bytes: Bytes,
) -> Result<Response, AuthError> {
    let SignedIn { user, session, .. } = signed_in;
    let update: UserUpdate = body(&bytes)?;
    let client = state.auth_db.client().await?;
    if let Some(email) = &update.email {
        check_email(email)?;
        store::set_email(&client, user, email).await?;
    }
    if let Some(password) = update.password {
        passwords::check(&password)?;
        let hash = passwords::hash(password).await?;
        store::set_password_hash(&client, user, &hash).await?;
        // A new password signs every other session out.
        store::end_sessions(&client, user, session, "others").await?;
    }
    if let Some(data) = update.data.filter(Value::is_object) {
        store::merge_user_metadata(&client, user, &data).await?;
    }
    let user = store::user_json(&client, user)
        .await?
        .ok_or_else(|| AuthError::internal("user vanished"))?;
    Ok(Json(user).into_response())
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

pub(super) async fn admin_create_user(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    bytes: Bytes,
) -> Result<Response, AuthError> {
    let request: AdminCreate = body(&bytes)?;
    let email = request
        .email
        .ok_or_else(|| AuthError::validation("An email address is required"))?;
    check_email(&email)?;
    let hash = match request.password {
        Some(password) => {
            passwords::check(&password)?;
            Some(passwords::hash(password).await?)
        }
        None => None,
    };
    let client = state.auth_db.client().await?;
    let user = store::create_user(
        &client,
        &email,
        hash.as_deref(),
        request.email_confirm,
        &metadata(request.user_metadata),
        &request.app_metadata,
        store::Identity::EMAIL,
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

pub(super) async fn admin_list_users(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
) -> Result<Response, AuthError> {
    let client = state.auth_db.client().await?;
    let users = store::list_users(&client).await?;
    Ok(Json(json!({ "users": users, "aud": "authenticated" })).into_response())
}

fn user_not_found() -> AuthError {
    AuthError::new(StatusCode::NOT_FOUND, "user_not_found", "User not found")
}

/// The user an admin route's path names (`/admin/users/{id}`); a path that names no
/// user id is a user not found, as GoTrue answers.
pub(super) struct UserId(Uuid);

impl FromRequestParts<Arc<AppState>> for UserId {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| user_not_found())?;
        Uuid::parse_str(&id)
            .map(UserId)
            .map_err(|_| user_not_found())
    }
}

pub(super) async fn admin_get_user(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    UserId(id): UserId,
) -> Result<Response, AuthError> {
    let client = state.auth_db.client().await?;
    let user = store::user_json(&client, id)
        .await?
        .ok_or_else(user_not_found)?;
    Ok(Json(user).into_response())
}

pub(super) async fn admin_delete_user(
    State(state): State<Arc<AppState>>,
    _admin: Admin,
    UserId(id): UserId,
) -> Result<Response, AuthError> {
    let client = state.auth_db.client().await?;
    if !store::delete_user(&client, id).await? {
        return Err(user_not_found());
    }
    Ok(Json(json!({})).into_response())
}
