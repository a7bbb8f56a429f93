//! One error type for the core, and the small set of codes every consumer branches on.
//!
//! Server errors are mapped by their code (GoTrue's `error_code`, PostgreSQL's SQLSTATE,
//! PostgREST's `PGRST…`), never by message text.

use serde::Serialize;

/// What a consumer (the UI, the CLI's exit code) needs to decide what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The session is over or the credentials are wrong: sign in (again).
    AuthExpired,
    /// The server could not be reached; retrying later may work.
    Network,
    /// The request was refused as invalid: fix the input.
    Validation,
    /// The request conflicts with the current state (a job in another state, a lost
    /// lease, an existing account).
    Conflict,
    NotFound,
    Forbidden,
    /// The user stopped it (declined a sign-in, cancelled, let it time out).
    Cancelled,
    Internal,
}

/// `{code, message}`: how errors cross IPC and appear in `--json` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// For invalid job input: the path of the offending field (`seconds`,
    /// `items[2].name`), so a form can show the message beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub field: Option<String>,
}

// Clone: one failed request can be the answer for every job it carried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Supabase Auth refused: `code` is GoTrue's error code.
    #[error("{message}")]
    Auth {
        status: u16,
        code: String,
        message: String,
    },

    /// The REST API refused: `code` is the SQLSTATE or PostgREST code.
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        details: Option<String>,
        hint: Option<String>,
    },

    #[error("cannot reach {url}: {reason}")]
    Network { url: String, reason: String },

    #[error("not signed in")]
    SignedOut,

    /// The session was ended by the server (revoked, reused token, deleted user).
    #[error("the session has ended ({0}); sign in again")]
    SessionEnded(String),

    #[error("{0}")]
    Invalid(String),

    #[error("session storage: {0}")]
    Storage(String),

    /// A sign-in through a provider did not end signed in: `code` is the redirect's
    /// `error` (`access_denied`, ...) or this side's `cancelled`, `timeout`,
    /// `state_mismatch`.
    #[error("{message}")]
    OAuth { code: String, message: String },

    #[error("unexpected answer from {url}: {reason}")]
    Protocol { url: String, reason: String },
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Auth { code, status, .. } => auth_code(code, *status),
            Error::Api { code, status, .. } => api_code(code, *status),
            Error::Network { .. } => ErrorCode::Network,
            Error::SignedOut | Error::SessionEnded(_) => ErrorCode::AuthExpired,
            Error::Invalid(_) => ErrorCode::Validation,
            Error::OAuth { code, .. } => match code.as_str() {
                "cancelled" | "timeout" | "access_denied" => ErrorCode::Cancelled,
                "state_mismatch" => ErrorCode::Forbidden,
                "server_error" | "temporarily_unavailable" => ErrorCode::Network,
                _ => ErrorCode::Validation,
            },
            Error::Storage(_) | Error::Protocol { .. } => ErrorCode::Internal,
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code(),
            message: self.to_string(),
            field: None,
        }
    }

    /// The server's own code, when it gave one.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            Error::Auth { code, .. } | Error::Api { code, .. } | Error::OAuth { code, .. } => {
                Some(code)
            }
            _ => None,
        }
    }

    /// Whether the session this request ran under can never be used again.
    pub fn ends_session(&self) -> bool {
        matches!(
            self.server_code(),
            Some(
                "refresh_token_already_used"
                    | "session_not_found"
                    | "session_expired"
                    | "user_not_found"
                    | "user_banned"
            )
        )
    }

    pub(crate) fn network(url: &str, error: &reqwest::Error) -> Self {
        Error::Network {
            url: url.to_string(),
            reason: error.to_string(),
        }
    }
}

fn auth_code(code: &str, status: u16) -> ErrorCode {
    match code {
        "refresh_token_already_used"
        | "refresh_token_not_found"
        | "session_not_found"
        | "session_expired"
        | "bad_jwt"
        | "no_authorization"
        | "user_not_found"
        | "user_banned" => ErrorCode::AuthExpired,
        "invalid_credentials" | "email_not_confirmed" => ErrorCode::AuthExpired,
        // A PKCE code that is used, old, or not this flow's: start the sign-in again.
        "flow_state_not_found" | "flow_state_expired" | "bad_code_verifier" => {
            ErrorCode::AuthExpired
        }
        "user_already_exists" | "email_exists" | "phone_exists" | "conflict" => ErrorCode::Conflict,
        "not_admin" | "insufficient_aal" => ErrorCode::Forbidden,
        // A wrong or stale second-factor code: type the current one.
        "mfa_verification_failed" | "mfa_challenge_expired" | "mfa_ip_address_mismatch" => {
            ErrorCode::Validation
        }
        "mfa_factor_not_found" => ErrorCode::NotFound,
        "mfa_factor_name_conflict" | "too_many_enrolled_mfa_factors" => ErrorCode::Conflict,
        "weak_password"
        | "validation_failed"
        | "bad_json"
        | "otp_expired"
        | "otp_disabled"
        | "signup_disabled"
        | "email_address_invalid" => ErrorCode::Validation,
        _ if status >= 500 => ErrorCode::Network,
        _ if status == 429 => ErrorCode::Network,
        _ => ErrorCode::Internal,
    }
}

fn api_code(code: &str, status: u16) -> ErrorCode {
    match code {
        // The job contract's own codes (supabase/migrations).
        "JD001" => ErrorCode::NotFound,
        "JD002" | "JD003" => ErrorCode::Conflict,
        "PGRST301" | "PGRST302" | "PGRST303" => ErrorCode::AuthExpired,
        "42501" if status == 401 => ErrorCode::AuthExpired,
        "42501" => ErrorCode::Forbidden,
        "23505" | "23503" | "40001" | "40P01" => ErrorCode::Conflict,
        "PGRST116" | "PGRST202" | "PGRST205" | "42P01" | "42883" => ErrorCode::NotFound,
        _ if code.starts_with("22") || code.starts_with("23") => ErrorCode::Validation,
        "PGRST100" | "PGRST102" | "PGRST204" | "42703" => ErrorCode::Validation,
        _ if code.starts_with("08") || status == 503 || status == 504 => ErrorCode::Network,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: &str, status: u16) -> Error {
        Error::Api {
            status,
            code: code.into(),
            message: "whatever the server said".into(),
            details: None,
            hint: None,
        }
    }

    #[test]
    fn server_errors_map_by_code_not_message() {
        assert_eq!(api("JD001", 400).code(), ErrorCode::NotFound);
        assert_eq!(api("JD002", 400).code(), ErrorCode::Conflict);
        assert_eq!(api("22023", 400).code(), ErrorCode::Validation);
        assert_eq!(api("42501", 401).code(), ErrorCode::AuthExpired);
        assert_eq!(api("42501", 403).code(), ErrorCode::Forbidden);
        assert_eq!(api("PGRST303", 401).code(), ErrorCode::AuthExpired);
        let reused = Error::Auth {
            status: 400,
            code: "refresh_token_already_used".into(),
            message: "Invalid Refresh Token: Already Used".into(),
        };
        assert!(reused.ends_session());
        assert_eq!(reused.code(), ErrorCode::AuthExpired);
        assert_eq!(
            serde_json::to_value(reused.body()).expect("json"),
            serde_json::json!({ "code": "auth_expired", "message": "Invalid Refresh Token: Already Used" })
        );
    }
}
