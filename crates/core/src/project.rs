//! Which Supabase project to talk to, and how its API key travels.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A value that must never reach a log: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A project's public API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKey {
    /// The legacy anon key: a JWT, sent as `apikey` and, when no user is signed in, as
    /// the bearer token too.
    Anon(Secret),
    /// `sb_publishable_…`: not a JWT, so it is only ever sent as `apikey`.
    Publishable(Secret),
}

impl ApiKey {
    pub fn parse(key: &str) -> Result<Self, Error> {
        let key = key.trim();
        if key.starts_with("sb_secret_") {
            return Err(Error::Invalid(
                "that is a secret key: the app needs the project's anon or publishable key".into(),
            ));
        }
        if key.starts_with("sb_publishable_") {
            return Ok(ApiKey::Publishable(Secret::new(key)));
        }
        if key.split('.').count() == 3 {
            // A legacy key is a JWT whose `role` says what it is. Only the anon key may
            // live in a client: the service-role key bypasses row-level security.
            return match jwt_role(key).as_deref() {
                Some("anon") => Ok(ApiKey::Anon(Secret::new(key))),
                Some("service_role") => Err(Error::Invalid(
                    "that is the service-role key, which bypasses row-level security: the app \
                     needs the project's anon or publishable key"
                        .into(),
                )),
                _ => Err(Error::Invalid(
                    "not a Supabase anon key: its JWT does not carry role \"anon\"".into(),
                )),
            };
        }
        Err(Error::Invalid(
            "not a Supabase API key: expected the anon key (a JWT) or an sb_publishable_ key"
                .into(),
        ))
    }

    pub fn value(&self) -> &str {
        match self {
            ApiKey::Anon(key) | ApiKey::Publishable(key) => key.expose(),
        }
    }

    /// The bearer token to send when no user is signed in.
    pub fn signed_out_bearer(&self) -> Option<&str> {
        match self {
            ApiKey::Anon(key) => Some(key.expose()),
            ApiKey::Publishable(_) => None,
        }
    }
}

/// A Supabase project: its URL and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    url: String,
    key: ApiKey,
}

impl Project {
    pub fn new(url: &str, key: &str) -> Result<Self, Error> {
        let url = url.trim().trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 10 {
            return Err(Error::Invalid(format!(
                "\"{url}\" is not a project URL: expected https://<project>.supabase.co"
            )));
        }
        Ok(Self {
            url: url.to_string(),
            key: ApiKey::parse(key)?,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn key(&self) -> &ApiKey {
        &self.key
    }

    pub fn auth_url(&self, path: &str) -> String {
        format!("{}/auth/v1{path}", self.url)
    }

    pub fn rest_url(&self) -> String {
        format!("{}/rest/v1", self.url)
    }
}

/// The `role` claim of a JWT's payload (read, not verified: the server verifies).
fn jwt_role(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("role")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JWT-shaped key with these claims (unsigned: only the client's reading matters).
    fn legacy_key(claims: &str) -> String {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#), b64(claims))
    }

    #[test]
    fn keys_are_recognized_and_secret_keys_refused() {
        let anon = legacy_key(r#"{"role":"anon","iss":"supabase"}"#);
        assert!(matches!(ApiKey::parse(&anon), Ok(ApiKey::Anon(_))));
        let service = ApiKey::parse(&legacy_key(r#"{"role":"service_role"}"#));
        assert!(service.is_err_and(|e| e.to_string().contains("service-role")));
        assert!(ApiKey::parse(&legacy_key(r#"{"role":"authenticated"}"#)).is_err());
        assert!(ApiKey::parse("a.b.c").is_err(), "not a JWT at all");
        let publishable = ApiKey::parse("sb_publishable_abc").expect("a key");
        assert_eq!(publishable.signed_out_bearer(), None, "never a bearer");
        assert!(ApiKey::parse("sb_secret_abc").is_err());
        assert!(ApiKey::parse("hello").is_err());
        assert!(Project::new("localhost", &anon).is_err());
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "<redacted>");
    }
}
