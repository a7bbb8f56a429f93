//! PostgREST's error bodies (`{code, details, hint, message}`) and statuses.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::schema::{Link, Relationship};
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
    #[error("'{0}' is not an embedded resource in this request")]
    NotEmbedded(String),
    #[error("Bad operator on the '{0}' embedded resource")]
    UnacceptableFilter(String),
    #[error("Could not find a relationship between '{origin}' and '{target}' in the schema cache")]
    NoRelationship {
        origin: String,
        target: String,
        hint: Option<String>,
    },
    #[error(
        "Could not embed because more than one relationship was found for '{origin}' and '{target}'"
    )]
    AmbiguousRelationship {
        origin: String,
        target: String,
        candidates: Vec<Relationship>,
    },
    #[error("A spread operation on '{target}' is not possible")]
    SpreadNotToOne { origin: String, target: String },
    #[error("Could not choose the best candidate function between: {}", .0.join(", "))]
    AmbiguousFunction(Vec<String>),
    #[error("Invalid preferences given with handling=strict")]
    InvalidPreferences(Vec<String>),
    #[error("Query result exceeds max-affected preference constraint")]
    MaxAffected { rows: i64 },
    #[error(
        "Function must return SETOF or TABLE when max-affected preference is used with handling=strict"
    )]
    MaxAffectedNotASet,
    #[error("Invalid schema: {0}")]
    UnacceptableSchema(String),
    #[error("None of these media types are available: {}", .0.join(", "))]
    UnacceptableMedia(Vec<String>),
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
            RestError::NotEmbedded(name) => (
                StatusCode::BAD_REQUEST,
                json!({ "code": "PGRST108", "details": null, "message": message,
                        "hint": format!("Verify that '{name}' is included in the 'select' query parameter.") }),
            ),
            RestError::UnacceptableFilter(_) => (
                StatusCode::BAD_REQUEST,
                json!({ "code": "PGRST120", "hint": null, "message": message,
                        "details": "Only is null or not is null filters are allowed on embedded resources" }),
            ),
            RestError::NoRelationship {
                origin,
                target,
                hint,
            } => {
                let hint = hint
                    .as_ref()
                    .map(|h| format!("' using the hint '{h}"))
                    .unwrap_or_default();
                (
                    StatusCode::BAD_REQUEST,
                    json!({ "code": "PGRST200", "hint": null, "message": message,
                            "details": format!("Searched for a foreign key relationship between '{origin}' and '{target}{hint}' in the schema 'public', but no matches were found.") }),
                )
            }
            RestError::AmbiguousRelationship {
                target, candidates, ..
            } => {
                let details: Vec<_> = candidates.iter().map(describe).collect();
                let hints: Vec<String> = candidates
                    .iter()
                    .map(|r| format!("'{}!{}'", r.target, r.hint_name()))
                    .collect();
                (
                    StatusCode::MULTIPLE_CHOICES,
                    json!({ "code": "PGRST201", "details": details, "message": message,
                            "hint": format!("Try changing '{target}' to one of the following: {}. Find the desired relationship in the 'details' key.", hints.join(", ")) }),
                )
            }
            RestError::SpreadNotToOne { origin, target } => (
                StatusCode::BAD_REQUEST,
                json!({ "code": "PGRST119", "hint": null, "message": message,
                        "details": format!("'{origin}' and '{target}' do not form a many-to-one or one-to-one relationship") }),
            ),
            RestError::AmbiguousFunction(_) => (
                StatusCode::MULTIPLE_CHOICES,
                json!({ "code": "PGRST203", "details": null, "message": message,
                        "hint": "Try renaming the parameters or the function itself in the database so function overloading can be resolved" }),
            ),
            RestError::InvalidPreferences(preferences) => (
                StatusCode::BAD_REQUEST,
                json!({ "code": "PGRST122", "hint": null, "message": message,
                        "details": format!("Invalid preferences: {}", preferences.join(", ")) }),
            ),
            RestError::MaxAffected { rows } => (
                StatusCode::BAD_REQUEST,
                json!({ "code": "PGRST124", "hint": null, "message": message,
                        "details": format!("The query affects {rows} rows") }),
            ),
            RestError::MaxAffectedNotASet => plain(StatusCode::BAD_REQUEST, "PGRST128", message),
            RestError::UnacceptableSchema(_) => (
                StatusCode::NOT_ACCEPTABLE,
                json!({ "code": "PGRST106", "details": null, "message": message,
                        "hint": "Only the following schemas are exposed: public" }),
            ),
            RestError::UnacceptableMedia(_) => {
                plain(StatusCode::NOT_ACCEPTABLE, "PGRST107", message)
            }
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

/// A relationship as PostgREST's PGRST201 lists it.
fn describe(relationship: &Relationship) -> serde_json::Value {
    let list = |columns: &mut dyn Iterator<Item = &String>| {
        format!(
            "({})",
            columns.map(String::as_str).collect::<Vec<_>>().join(", ")
        )
    };
    let (origin, target) = (&relationship.origin, &relationship.target);
    let described = match &relationship.link {
        Link::Direct {
            constraint,
            columns,
            ..
        } => format!(
            "{constraint} using {origin}{} and {target}{}",
            list(&mut columns.iter().map(|c| &c.0)),
            list(&mut columns.iter().map(|c| &c.1))
        ),
        Link::Junction {
            table,
            origin_constraint,
            origin_columns,
            target_constraint,
            target_columns,
        } => format!(
            "{table} using {origin_constraint}{} and {target_constraint}{}",
            list(&mut origin_columns.iter().map(|c| &c.0)),
            list(&mut target_columns.iter().map(|c| &c.0))
        ),
    };
    json!({
        "cardinality": relationship.cardinality_name(),
        "embedding": format!("{origin} with {target}"),
        "relationship": described,
    })
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
