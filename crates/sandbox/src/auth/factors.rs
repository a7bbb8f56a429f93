//! Second factors (`/factors`), as GoTrue's MFA API serves TOTP: enroll (a secret, its
//! `otpauth://` URI and a QR code), challenge, verify (the session becomes aal2),
//! unenroll. Phone and WebAuthn factors are refused as a project without them refuses.

use std::{net::IpAddr, sync::Arc};

use axum::{
    Json,
    body::Bytes,
    extract::{ConnectInfo, FromRequestParts, Path, State},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{SignedIn, body, error::AuthError, store, tokens::session_body};
use crate::AppState;

/// GoTrue's defaults: a challenge lasts five minutes, an unverified factor as long.
const CHALLENGE_LIFETIME_SECONDS: f64 = 300.0;
const UNVERIFIED_FACTOR_LIFETIME_SECONDS: f64 = 300.0;
const MAX_FACTORS: i64 = 10;

/// The caller's address, as GoTrue reads it: the first `X-Forwarded-For` hop, else the
/// peer. A challenge must be answered from where it was asked.
pub(super) struct ClientIp(IpAddr);

impl FromRequestParts<Arc<AppState>> for ClientIp {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        forwarded
            .or(peer)
            .map(ClientIp)
            .ok_or_else(|| AuthError::internal("the request has no peer address"))
    }
}

#[derive(Deserialize)]
struct EnrollRequest {
    #[serde(default)]
    factor_type: String,
    #[serde(default)]
    friendly_name: String,
    #[serde(default)]
    issuer: String,
}

/// `POST /factors`: a new, unverified TOTP factor.
pub(super) async fn enroll(
    State(state): State<Arc<AppState>>,
    signed_in: SignedIn,
    bytes: Bytes,
) -> Result<Response, AuthError> {
    let request: EnrollRequest = body(&bytes)?;
    match request.factor_type.as_str() {
        "totp" => {}
        "phone" => {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "mfa_phone_enroll_not_enabled",
                "MFA enroll is disabled for Phone",
            ));
        }
        "webauthn" => {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "mfa_webauthn_enroll_not_enabled",
                "MFA enroll is disabled for WebAuthn",
            ));
        }
        _ => {
            return Err(AuthError::validation(
                "factor_type needs to be totp, phone, or webauthn",
            ));
        }
    }
    let client = state.auth_db.client().await?;
    let (count, verified, taken) = store::factor_counts(
        &client,
        signed_in.user,
        &request.friendly_name,
        UNVERIFIED_FACTOR_LIFETIME_SECONDS,
    )
    .await?;
    if taken {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "mfa_factor_name_conflict",
            format!(
                "A factor with the friendly name {:?} for this user already exists",
                request.friendly_name
            ),
        ));
    }
    if count >= MAX_FACTORS || verified >= MAX_FACTORS {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_enrolled_mfa_factors",
            "Maximum number of verified factors reached, unenroll to continue",
        ));
    }
    if verified > 0 && !signed_in.aal2 {
        return Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "insufficient_aal",
            "AAL2 required to enroll a new factor",
        ));
    }
    let user = store::user_json(&client, signed_in.user)
        .await?
        .ok_or_else(AuthError::user_not_found)?;
    let issuer = if request.issuer.is_empty() {
        site_host(&state.settings.api_url)
    } else {
        request.issuer
    };
    let account = user["email"].as_str().unwrap_or_default();
    let totp = totp_rs::Builder::new()
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(AuthError::internal)?;
    let uri = totp.to_url().map_err(AuthError::internal)?;
    let qr_code = qrcode::QrCode::with_error_correction_level(&uri, qrcode::EcLevel::H)
        .map_err(AuthError::internal)?
        .render::<qrcode::render::svg::Color>()
        .build();
    let secret = totp.secret().to_base32();
    let id =
        store::create_totp_factor(&client, signed_in.user, &request.friendly_name, &secret).await?;
    Ok(Json(json!({
        "id": id,
        "type": "totp",
        "friendly_name": request.friendly_name,
        "totp": { "qr_code": qr_code, "secret": secret, "uri": uri },
    }))
    .into_response())
}

/// The issuer GoTrue names in a code's URI: the site URL's host. (GoTrue keeps a port
/// too; an `otpauth://` label cannot hold the colon, so it is left out here.)
fn site_host(site_url: &str) -> String {
    let rest = site_url
        .split_once("://")
        .map_or(site_url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_string(),
        _ => host.to_string(),
    }
}

/// The factor in the path, if it is the caller's.
async fn owned_factor(
    client: &tokio_postgres::Client,
    user: Uuid,
    id: &str,
) -> Result<store::Factor, AuthError> {
    let id = Uuid::parse_str(id).map_err(|_| {
        AuthError::new(
            StatusCode::NOT_FOUND,
            "validation_failed",
            "factor_id must be an UUID",
        )
    })?;
    store::factor(client, user, id).await?.ok_or_else(|| {
        AuthError::new(
            StatusCode::NOT_FOUND,
            "mfa_factor_not_found",
            "Factor not found",
        )
    })
}

/// `POST /factors/{id}/challenge`.
pub(super) async fn challenge(
    State(state): State<Arc<AppState>>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    let client = state.auth_db.client().await?;
    let factor = owned_factor(&client, signed_in.user, &id).await?;
    let (challenge, created_at) = store::create_challenge(&client, factor.id, ip).await?;
    Ok(Json(json!({
        "id": challenge,
        "type": factor.factor_type,
        "expires_at": created_at + CHALLENGE_LIFETIME_SECONDS as i64,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct VerifyRequest {
    challenge_id: Option<Uuid>,
    #[serde(default)]
    code: String,
}

/// `POST /factors/{id}/verify`: a right code makes this session aal2 and answers it.
pub(super) async fn verify(
    State(state): State<Arc<AppState>>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Response, AuthError> {
    let request: VerifyRequest = body(&bytes)?;
    if request.code.is_empty() {
        return Err(AuthError::validation("Code needs to be non-empty"));
    }
    let mut client = state.auth_db.client().await?;
    let factor = owned_factor(&client, signed_in.user, &id).await?;
    let challenge = request.challenge_id.unwrap_or_default();
    match store::challenge(
        &client,
        factor.id,
        challenge,
        ip,
        CHALLENGE_LIFETIME_SECONDS,
    )
    .await?
    {
        store::Challenge::Open => {}
        store::Challenge::NotFound => {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "mfa_factor_not_found",
                "MFA factor with the provided challenge ID not found",
            ));
        }
        store::Challenge::Spent => {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "mfa_ip_address_mismatch",
                "Challenge and verify IP addresses mismatch.",
            ));
        }
        store::Challenge::Expired => {
            return Err(AuthError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "mfa_challenge_expired",
                format!(
                    "MFA challenge {challenge} has expired, verify against another challenge or create a new challenge."
                ),
            ));
        }
    }
    if !code_matches(factor.secret.as_deref().unwrap_or_default(), &request.code) {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "mfa_verification_failed",
            "Invalid TOTP code entered",
        ));
    }
    let issued = store::verify_factor(
        &mut client,
        signed_in.user,
        signed_in.session,
        factor.id,
        challenge,
    )
    .await?;
    Ok(Json(session_body(&state, &issued)).into_response())
}

/// RFC 6238 as GoTrue checks it: SHA-1, six digits, 30 s steps, one step either way.
fn code_matches(secret: &str, code: &str) -> bool {
    let Ok(secret) = totp_rs::Secret::try_from_base32(secret) else {
        return false;
    };
    totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .is_ok_and(|totp| totp.check_current(code.trim()).is_some())
}

/// `DELETE /factors/{id}`: a verified factor only from an aal2 session.
pub(super) async fn unenroll(
    State(state): State<Arc<AppState>>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    let mut client = state.auth_db.client().await?;
    let factor = owned_factor(&client, signed_in.user, &id).await?;
    if factor.verified && !signed_in.aal2 {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_aal",
            "AAL2 required to unenroll verified factor",
        ));
    }
    store::unenroll_factor(&mut client, factor.id).await?;
    Ok(Json(json!({ "id": factor.id })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_is_the_site_host_without_its_port() {
        assert_eq!(site_host("http://127.0.0.1:54321"), "127.0.0.1");
        assert_eq!(site_host("https://abc.supabase.co/auth"), "abc.supabase.co");
    }

    #[test]
    fn codes_are_checked_one_step_either_way() {
        let totp = totp_rs::Builder::new().build().expect("a TOTP");
        let secret = totp.secret().to_base32();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        assert!(code_matches(&secret, &totp.generate(now).to_string()));
        assert!(code_matches(&secret, &totp.generate(now - 30).to_string()));
        assert!(!code_matches(&secret, &totp.generate(now - 90).to_string()));
        assert!(!code_matches(&secret, "12345"));
        assert!(!code_matches("not base32!", "123456"));
    }
}
