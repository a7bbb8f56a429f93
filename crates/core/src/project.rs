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
            return Ok(ApiKey::Anon(Secret::new(key)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_recognized_and_secret_keys_refused() {
        assert!(matches!(ApiKey::parse("a.b.c"), Ok(ApiKey::Anon(_))));
        let publishable = ApiKey::parse("sb_publishable_abc").expect("a key");
        assert_eq!(publishable.signed_out_bearer(), None, "never a bearer");
        assert!(ApiKey::parse("sb_secret_abc").is_err());
        assert!(ApiKey::parse("hello").is_err());
        assert!(Project::new("localhost", "a.b.c").is_err());
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "<redacted>");
    }
}
