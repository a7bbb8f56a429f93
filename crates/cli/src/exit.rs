//! Exit codes, and errors as one line (or `{code, message}` with `--json`).

use std::process::ExitCode;

use jobdeck_core::{ErrorBody, ErrorCode, worker::EnqueueError};

pub const FAILURE: u8 = 1;
pub const VALIDATION: u8 = 2;
pub const AUTH: u8 = 3;
pub const NETWORK: u8 = 4;
pub const NOT_FOUND: u8 = 5;
pub const CONFLICT: u8 = 6;
pub const FORBIDDEN: u8 = 7;
/// `enqueue --wait`: the job failed.
pub const FAILED: u8 = 8;
/// `enqueue --wait`: the job was cancelled; `login --provider`: the sign-in was
/// declined, cancelled or timed out.
pub const CANCELLED: u8 = 9;

/// Input the CLI itself refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// What the CLI refused to do to a job in its present state.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Conflict(pub String);

/// The code an error maps to: by type, never by message.
fn code_of(error: &anyhow::Error) -> ErrorCode {
    if let Some(error) = error.downcast_ref::<jobdeck_core::Error>() {
        return error.code();
    }
    if let Some(error) = error.downcast_ref::<EnqueueError>() {
        return error.code();
    }
    if error.downcast_ref::<Invalid>().is_some() {
        return ErrorCode::Validation;
    }
    if error.downcast_ref::<Conflict>().is_some() {
        return ErrorCode::Conflict;
    }
    ErrorCode::Internal
}

pub fn report(error: &anyhow::Error, json: bool) -> ExitCode {
    let code = code_of(error);
    let message = format!("{error:#}");
    if json {
        let field = error
            .downcast_ref::<EnqueueError>()
            .and_then(|e| e.body().field);
        let body = ErrorBody {
            code,
            message,
            field,
        };
        eprintln!("{}", serde_json::to_string(&body).unwrap_or_default());
    } else {
        let hint = match code {
            ErrorCode::AuthExpired => " (sign in with `jobdeck login <email>`)",
            _ => "",
        };
        eprintln!("error: {message}{hint}");
    }
    ExitCode::from(match code {
        ErrorCode::Validation => VALIDATION,
        ErrorCode::AuthExpired => AUTH,
        ErrorCode::Network => NETWORK,
        ErrorCode::NotFound => NOT_FOUND,
        ErrorCode::Conflict => CONFLICT,
        ErrorCode::Forbidden => FORBIDDEN,
        ErrorCode::Cancelled => CANCELLED,
        ErrorCode::Internal => FAILURE,
    })
}
