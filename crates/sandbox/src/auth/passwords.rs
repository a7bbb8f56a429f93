//! Passwords: GoTrue's length rule, and bcrypt hashes made and checked off the async
//! workers (bcrypt is deliberately slow).

use axum::http::StatusCode;

use super::error::AuthError;

const MIN_PASSWORD_LENGTH: usize = 6;

pub fn check(password: &str) -> Result<(), AuthError> {
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

pub async fn hash(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || bcrypt::hash(password, bcrypt::DEFAULT_COST))
        .await
        .map_err(AuthError::internal)?
        .map_err(AuthError::internal)
}

pub async fn matches(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .unwrap_or(false)
}
