//! Sign-in through an OAuth provider, as GoTrue runs it: `GET /authorize` starts a
//! flow (PKCE when a code challenge comes with it) and sends the browser to the
//! provider; the provider sends it back to `GET /callback`; the browser goes on to the
//! app's `redirect_to`, with a one-use code (PKCE) or the session in the fragment
//! (implicit); `POST /token?grant_type=pkce` exchanges the code for the session.
//!
//! The one provider is the sandbox's own ([`super::provider`]).

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json,
    extract::{Query, State},
    http::{StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    error::AuthError,
    provider::{self, PROVIDER},
    store::{self, Exchange},
    tokens::session_body,
};
use crate::{AppState, Settings};

/// How long a flow may take from `/authorize` to the provider's answer, and its code
/// from then to the exchange: GoTrue's default (`GOTRUE_EXTERNAL_FLOW_STATE_EXPIRY_DURATION`).
pub const FLOW_LIFETIME_SECONDS: f64 = 300.0;

#[derive(Deserialize)]
pub(super) struct AuthorizeQuery {
    provider: Option<String>,
    redirect_to: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `GET /authorize`: starts a flow and sends the browser to the provider.
pub(super) async fn authorize(
    State(state): State<Arc<AppState>>,
    Query(query): Query<AuthorizeQuery>,
) -> Result<Response, AuthError> {
    if query.provider.as_deref() != Some(PROVIDER) {
        return Err(AuthError::validation(
            "Unsupported provider: provider is not enabled",
        ));
    }
    let challenge = pkce_params(
        query.code_challenge_method.as_deref().unwrap_or_default(),
        query.code_challenge.as_deref().unwrap_or_default(),
    )?;
    let referrer = redirect_target(&state.settings, query.redirect_to.as_deref());
    let client = state.auth_db.client().await?;
    let flow = store::start_flow(&client, PROVIDER, "oauth", challenge, &referrer, None).await?;
    Ok(found(&provider::authorize_url(&state.settings, flow)))
}

/// GoTrue's checks of the PKCE parameters: both or neither, a method it knows, a
/// challenge of RFC 7636's length and alphabet.
pub(super) fn pkce_params<'a>(
    method: &'a str,
    challenge: &'a str,
) -> Result<Option<(&'a str, &'a str)>, AuthError> {
    if method.is_empty() != challenge.is_empty() {
        return Err(AuthError::validation(
            "PKCE flow requires code_challenge_method and code_challenge",
        ));
    }
    if challenge.is_empty() {
        return Ok(None);
    }
    if !(43..=128).contains(&challenge.len()) {
        return Err(AuthError::validation(
            "code challenge has to be between 43 and 128 characters",
        ));
    }
    if !challenge
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
    {
        return Err(AuthError::validation(
            "code challenge can only contain alphanumeric characters, hyphens, periods, underscores and tildes",
        ));
    }
    if !["s256", "plain"].contains(&method.to_ascii_lowercase().as_str()) {
        return Err(AuthError::validation("Invalid code_challenge_method"));
    }
    Ok(Some((method, challenge)))
}

/// Where a flow ends: `redirect_to` when GoTrue would allow it (the site itself, on
/// any port when it is a loopback host; a loopback IP address; a match of the
/// allow-list's globs), else the site URL, as GoTrue falls back to it.
pub fn redirect_target(settings: &Settings, requested: Option<&str>) -> String {
    match requested {
        Some(url) if redirect_allowed(settings, url) => url.to_string(),
        _ => settings.site_url.clone(),
    }
}

fn redirect_allowed(settings: &Settings, url: &str) -> bool {
    let (Ok(site), Ok(target)) = (settings.site_url.parse::<Uri>(), url.parse::<Uri>()) else {
        return false;
    };
    let host = |uri: &Uri| {
        uri.host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
    };
    let Some(target_host) = host(&target) else {
        return false;
    };
    let loopback_ip = target_host
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.is_loopback());
    let loopback = loopback_ip == Some(true) || target_host.eq_ignore_ascii_case("localhost");
    if host(&site).as_deref() == Some(target_host.as_str())
        && site.scheme() == target.scheme()
        && (site.port_u16() == target.port_u16() || loopback)
    {
        return true;
    }
    if let Some(is_loopback) = loopback_ip {
        // Other IP addresses are never a place to send a code.
        return is_loopback;
    }
    if target_host.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let without_fragment = url.split_once('#').map_or(url, |(u, _)| u);
    settings.redirect_urls.iter().any(|pattern| {
        globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .is_ok_and(|glob| glob.compile_matcher().is_match(without_fragment))
    })
}

/// `GET /callback`: the provider's answer, then the browser on to the flow's end.
/// Every failure is a redirect carrying `error`, `error_code` and `error_description`
/// (in the query and the fragment), as GoTrue's.
pub(super) async fn callback(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, AuthError> {
    let flow_id = query.get("state").and_then(|s| Uuid::parse_str(s).ok());
    let client = state.auth_db.client().await?;
    let flow = match flow_id {
        Some(id) => store::flow(&client, id, FLOW_LIFETIME_SECONDS).await?,
        None => None,
    };
    let (Some(id), Some(flow)) = (flow_id, flow) else {
        return Ok(error_redirect(
            &state.settings.site_url,
            "invalid_request",
            Some("bad_oauth_state"),
            "OAuth callback with invalid state",
        ));
    };
    if let Some(error) = query.get("error") {
        let description = query.get("error_description").map_or("", String::as_str);
        return Ok(error_redirect(&flow.referrer, error, None, description));
    }
    if flow.expired {
        return Ok(error_redirect(
            &flow.referrer,
            "invalid_request",
            Some("flow_state_expired"),
            "Flow state has expired",
        ));
    }
    let Some(account) = query.get("code").and_then(|code| state.provider.take(code)) else {
        return Ok(error_redirect(
            &flow.referrer,
            "invalid_request",
            Some("bad_oauth_callback"),
            "Unable to exchange external code",
        ));
    };
    let user = store::sign_in_with_identity(
        &client,
        PROVIDER,
        &account.subject,
        &account.email,
        &account.identity_data(&state.settings),
    )
    .await?;
    if let Some(auth_code) = store::finish_flow(&client, id, user).await? {
        return Ok(found(&with_query(&flow.referrer, &[("code", &auth_code)])));
    }
    // Implicit: the session itself, in the fragment the server never sees.
    let issued = store::start_session(&client, user, "oauth").await?;
    Ok(found(&session_fragment(
        &flow.referrer,
        &session_body(&state, &issued),
        &[("provider_token", "")],
    )))
}

/// `url` with an implicit flow's session in its fragment (and `extra` pairs after it).
pub(super) fn session_fragment(url: &str, body: &Value, extra: &[(&str, &str)]) -> String {
    let mut fragment = form_urlencoded::Serializer::new(String::new());
    for key in [
        "access_token",
        "token_type",
        "expires_in",
        "expires_at",
        "refresh_token",
    ] {
        let value = match &body[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        fragment.append_pair(key, &value);
    }
    for (key, value) in extra {
        fragment.append_pair(key, value);
    }
    let base = url.split_once('#').map_or(url, |(u, _)| u);
    format!("{base}#{}", fragment.finish())
}

/// `POST /token?grant_type=pkce` `{auth_code, code_verifier}`.
pub(super) async fn pkce_grant(state: &AppState, request: Value) -> Result<Response, AuthError> {
    let field = |key: &str| request[key].as_str().unwrap_or_default().to_string();
    let (auth_code, verifier) = (field("auth_code"), field("code_verifier"));
    if auth_code.is_empty() || verifier.is_empty() {
        return Err(AuthError::validation(
            "invalid request: both auth code and code verifier should be non-empty",
        ));
    }
    let mut client = state.auth_db.client().await?;
    let (user, method) =
        match store::exchange_code(&mut client, &auth_code, &verifier, FLOW_LIFETIME_SECONDS)
            .await?
        {
            Exchange::Ok(user, method) => (user, method),
            Exchange::NotFound => {
                return Err(AuthError::new(
                    StatusCode::NOT_FOUND,
                    "flow_state_not_found",
                    "invalid flow state, no valid flow state found",
                ));
            }
            Exchange::Expired => {
                return Err(AuthError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "flow_state_expired",
                    "invalid flow state, flow state has expired",
                ));
            }
            Exchange::WrongVerifier => {
                return Err(AuthError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_code_verifier",
                    "code challenge does not match previously saved code verifier",
                ));
            }
        };
    let issued = store::start_session(&client, user, &method).await?;
    let mut body = session_body(state, &issued);
    body["provider_token"] = json!("");
    Ok(Json(body).into_response())
}

/// `url` with `pairs` set in its query (earlier values of those keys replaced), its
/// fragment kept.
pub(super) fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let (rest, fragment) = match url.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (url, None),
    };
    let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if !pairs.iter().any(|(k, _)| *k == key) {
            serializer.append_pair(&key, &value);
        }
    }
    for (key, value) in pairs {
        serializer.append_pair(key, value);
    }
    let query = serializer.finish();
    match fragment {
        Some(fragment) => format!("{base}?{query}#{fragment}"),
        None => format!("{base}?{query}"),
    }
}

/// The browser sent on to `url` with an OAuth error, in the query and (as GoTrue still
/// does) the fragment.
pub(super) fn error_redirect(
    url: &str,
    error: &str,
    code: Option<&str>,
    description: &str,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(code) = code {
        pairs.push(("error_code", code));
    }
    let base = url.split_once('#').map_or(url, |(u, _)| u);
    let mut fragment = form_urlencoded::Serializer::new(String::new());
    for (key, value) in &pairs {
        fragment.append_pair(key, value);
    }
    fragment.append_pair("sb", "");
    found(&format!(
        "{}#{}",
        with_query(base, &pairs),
        fragment.finish()
    ))
}

pub(super) fn found(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(redirect_urls: &[&str]) -> Settings {
        Settings {
            api_url: "http://127.0.0.1:54321".into(),
            site_url: "http://127.0.0.1:54321".into(),
            redirect_urls: redirect_urls.iter().map(|s| s.to_string()).collect(),
            jwt_expiry: 3600,
            refresh_reuse_interval: 10.0,
        }
    }

    #[test]
    fn redirects_go_where_gotrue_sends_them() {
        let s = settings(&["http://localhost:*/**", "myapp://callback"]);
        for allowed in [
            "http://127.0.0.1:40123/callback?state=x",
            "http://127.0.0.1/cb",
            "http://[::1]:9000/cb",
            "http://localhost:5173/auth/done",
            "myapp://callback",
            "http://127.0.0.1:54321/anything",
        ] {
            assert_eq!(redirect_target(&s, Some(allowed)), allowed, "{allowed}");
        }
        for refused in [
            "https://evil.example/steal",
            "http://10.0.0.8:40123/cb",
            "http://2130706433/cb",
            "http://localhost.evil.example:80/cb",
            "not a url",
        ] {
            assert_eq!(
                redirect_target(&s, Some(refused)),
                "http://127.0.0.1:54321",
                "{refused}"
            );
        }
        assert_eq!(redirect_target(&s, None), "http://127.0.0.1:54321");
    }

    #[test]
    fn codes_join_the_query_and_keep_the_fragment() {
        assert_eq!(
            with_query("http://127.0.0.1:1/cb?state=a&code=old#x", &[("code", "c")]),
            "http://127.0.0.1:1/cb?state=a&code=c#x"
        );
        assert_eq!(
            with_query("myapp://cb", &[("code", "c")]),
            "myapp://cb?code=c"
        );
    }

    #[test]
    fn pkce_parameters_are_checked_as_gotrue_checks_them() {
        let good = "a".repeat(43);
        assert!(pkce_params("s256", &good).is_ok_and(|p| p.is_some()));
        assert!(pkce_params("", "").is_ok_and(|p| p.is_none()));
        for (method, challenge) in [
            ("s256", ""),
            ("", good.as_str()),
            ("s256", "short"),
            ("s512", good.as_str()),
        ] {
            let error = pkce_params(method, challenge).expect_err(method);
            assert_eq!(error.code, "validation_failed");
        }
        let spaced = format!("{} ", "a".repeat(43));
        assert!(pkce_params("plain", &spaced).is_err());
    }
}
