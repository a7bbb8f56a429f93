//! Token minting: the access token GoTrue signs for a session, and the session body it
//! answers with.

use std::time::{SystemTime, UNIX_EPOCH};

use super::store::Issued;
use crate::AppState;
use serde_json::{Value, json};

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A session as GoTrue answers it, with a fresh access token for its user carrying the
/// session's `aal` and `amr`.
pub fn session_body(state: &AppState, issued: &Issued) -> Value {
    let user = &issued.user;
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
        "aal": issued.aal,
        "amr": issued.amr,
        "session_id": issued.session,
        "is_anonymous": false,
    });
    json!({
        "access_token": state.keys.sign(&claims),
        "token_type": "bearer",
        "expires_in": state.settings.jwt_expiry,
        "expires_at": expires_at,
        "refresh_token": issued.refresh_token,
        "user": user,
    })
}
