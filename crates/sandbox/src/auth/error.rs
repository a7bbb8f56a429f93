//! GoTrue's errors, in the format the request asked for: `X-Supabase-Api-Version`
//! 2024-01-01 or later gets `{code, message}`, older clients `{code: <status>,
//! error_code, msg}`. Both carry `x-sb-error-code`.

use axum::{
    extract::Request,
    http::{HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

const NEW_FORMAT_SINCE: &str = "2024-01-01";

#[derive(Debug, Clone)]
pub struct AuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub weak_password: Option<Vec<&'static str>>,
}

impl AuthError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            weak_password: None,
        }
    }

    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_credentials",
            "Invalid login credentials",
        )
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", message)
    }

    pub fn bad_jwt(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "bad_jwt", message)
    }

    pub fn session_not_found() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "session_not_found",
            "Session from session_id claim in JWT does not exist",
        )
    }

    /// The user an access token names is gone.
    pub fn user_not_found() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "user_not_found",
            "User from sub claim in JWT does not exist",
        )
    }

    pub fn not_admin() -> Self {
        Self::new(StatusCode::FORBIDDEN, "not_admin", "User not allowed")
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::warn!(%error, "auth request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Unexpected failure, please check server logs for more information",
        )
    }

    fn render(&self, new_format: bool) -> Response {
        let mut body = if new_format {
            json!({ "code": self.code, "message": self.message })
        } else {
            json!({ "code": self.status.as_u16(), "error_code": self.code, "msg": self.message })
        };
        if let Some(reasons) = &self.weak_password {
            body["weak_password"] = json!({ "reasons": reasons });
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert("x-sb-error-code", HeaderValue::from_static(self.code));
        if new_format {
            headers.insert(
                "x-supabase-api-version",
                HeaderValue::from_static(NEW_FORMAT_SINCE),
            );
        }
        response
    }
}

impl From<tokio_postgres::Error> for AuthError {
    fn from(error: tokio_postgres::Error) -> Self {
        AuthError::internal(error)
    }
}

impl From<crate::db::DbError> for AuthError {
    fn from(error: crate::db::DbError) -> Self {
        AuthError::internal(error)
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        // Rendered by `format_errors`, which knows what the request asked for.
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Middleware: renders an [`AuthError`] in the format the request's API version asks for.
pub async fn format_errors(request: Request, next: Next) -> Response {
    let new_format = request
        .headers()
        .get("x-supabase-api-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v >= NEW_FORMAT_SINCE);
    let mut response = next.run(request).await;
    match response.extensions_mut().remove::<AuthError>() {
        Some(error) => error.render(new_format),
        None => response,
    }
}
