//! PostgREST's error bodies (`{code, details, hint, message}`) and statuses.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{db::DbError, keys::JwtError};

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("{0}")]
    Parse(String),
    #[error("column {relation}.{column} does not exist")]
    UnknownColumn { relation: String, column: String },
    #[error("Could not find the '{column}' column of '{relation}' in the schema cache")]
    UnknownPayloadColumn { relation: String, column: String },
    #[error("Could not find the table 'public.{0}' in the schema cache")]
    UnknownRelation(String),
    #[error("Could not find the function public.{name}({args}) in the schema cache")]
    UnknownFunction { name: String, args: String },
    #[error("Cannot use the GET method on RPC for a volatile function")]
    VolatileGet,
    #[error("{0}")]
    InvalidBody(String),
    #[error("JSON object requested, multiple (or no) rows returned")]
    NotSingular { rows: i64 },
    #[error("Requested range not satisfiable")]
    RangeNotSatisfiable { total: i64 },
    #[error("{0} requires a WHERE clause")]
    UnsafeWrite(&'static str),
    #[error("No API key found in request")]
    MissingApiKey,
    #[error("Invalid API key")]
    InvalidApiKey,
    #[error("Forbidden use of secret API key in browser")]
    SecretKeyInBrowser,
    #[error(transparent)]
    Jwt(JwtError),
    #[error("{source}")]
    Db {
        source: DbError,
        /// 42501 answers 401 to anon and 403 to everyone else.
        anon: bool,
    },
}

impl RestError {
    fn status_and_body(&self) -> (StatusCode, serde_json::Value) {
        let plain = |status: StatusCode, code: &str, message: String| {
            (
                status,
                json!({ "code": code, "details": null, "hint": null, "message": message }),
            )
        };
        let message = self.to_string();
        match self {
            RestError::Parse(_) => plain(StatusCode::BAD_REQUEST, "PGRST100", message),
            RestError::UnknownColumn { .. } => plain(StatusCode::BAD_REQUEST, "42703", message),
            RestError::UnknownPayloadColumn { .. } => {
                plain(StatusCode::BAD_REQUEST, "PGRST204", message)
            }
            RestError::UnknownRelation(_) => plain(StatusCode::NOT_FOUND, "PGRST205", message),
            RestError::UnknownFunction { .. } => plain(StatusCode::NOT_FOUND, "PGRST202", message),
            RestError::VolatileGet => plain(StatusCode::METHOD_NOT_ALLOWED, "PGRST101", message),
            RestError::InvalidBody(_) => plain(StatusCode::BAD_REQUEST, "PGRST102", message),
            RestError::NotSingular { rows } => (
                StatusCode::NOT_ACCEPTABLE,
                json!({ "code": "PGRST116", "details": format!("The result contains {rows} rows"),
                        "hint": null, "message": message }),
            ),
            RestError::RangeNotSatisfiable { total } => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                json!({ "code": "PGRST103", "details": format!("An offset past the last of {total} rows was requested"),
                        "hint": null, "message": message }),
            ),
            RestError::UnsafeWrite(_) => plain(StatusCode::BAD_REQUEST, "21000", message),
            RestError::MissingApiKey => (
                StatusCode::UNAUTHORIZED,
                json!({ "message": message, "hint": "No `apikey` request header or url param was found." }),
            ),
            RestError::InvalidApiKey => (
                StatusCode::UNAUTHORIZED,
                json!({ "message": message, "hint": "Double check the provided API key." }),
            ),
            RestError::SecretKeyInBrowser => (
                StatusCode::UNAUTHORIZED,
                json!({ "message": message,
                        "hint": "The service_role key bypasses row-level security: never ship it to a browser." }),
            ),
            RestError::Jwt(error) => {
                let code = match error {
                    JwtError::Expired | JwtError::Audience => "PGRST303",
                    JwtError::Invalid(_) => "PGRST301",
                };
                plain(StatusCode::UNAUTHORIZED, code, message)
            }
            RestError::Db {
                source: DbError::Unavailable(_),
                ..
            } => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "code": "PGRST001", "details": message, "hint": null,
                        "message": "Database client error. Retrying the connection." }),
            ),
            RestError::Db {
                source: DbError::Query(error),
                anon,
            } => match error.as_db_error() {
                Some(db) => {
                    let code = db.code().code();
                    (
                        status_for(code, *anon),
                        json!({ "code": code, "details": db.detail(), "hint": db.hint(), "message": db.message() }),
                    )
                }
                // The connection broke mid-request.
                None => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "code": "PGRST001", "details": error.to_string(), "hint": null,
                            "message": "Database client error. Retrying the connection." }),
                ),
            },
        }
    }
}

impl From<super::query::ParseError> for RestError {
    fn from(error: super::query::ParseError) -> Self {
        RestError::Parse(error.0)
    }
}

/// PostgREST's table from SQLSTATE to HTTP status.
pub fn status_for(code: &str, anon: bool) -> StatusCode {
    let class = &code[..2.min(code.len())];
    match code {
        "23505" | "23503" => StatusCode::CONFLICT,
        "42501" if anon => StatusCode::UNAUTHORIZED,
        "42501" => StatusCode::FORBIDDEN,
        "42P01" | "42883" => StatusCode::NOT_FOUND,
        "P0001" => StatusCode::BAD_REQUEST,
        "25006" => StatusCode::METHOD_NOT_ALLOWED,
        "57014" => StatusCode::INTERNAL_SERVER_ERROR,
        _ if code.starts_with("PT") => code[2..]
            .parse::<u16>()
            .ok()
            .and_then(|n| StatusCode::from_u16(n).ok())
            .unwrap_or(StatusCode::BAD_REQUEST),
        _ if class == "08" || class == "53" || class == "57" => StatusCode::SERVICE_UNAVAILABLE,
        _ if class == "XX" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let (status, body) = self.status_and_body();
        if status.is_server_error() {
            tracing::warn!(error = %self, "REST request failed");
        }
        let mut response = (status, axum::Json(body)).into_response();
        if let RestError::Jwt(error) = &self {
            let value = format!("Bearer error=\"invalid_token\", error_description=\"{error}\"");
            if let Ok(value) = HeaderValue::from_str(&value) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}
