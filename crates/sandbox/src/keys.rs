//! The sandbox's signing secret and the API keys and access tokens made from it.
//!
//! Like a Supabase project: HS256, the legacy anon and service_role keys are long-lived
//! JWTs, and access tokens carry the claims GoTrue puts in them. Beside them, the keys
//! new projects hand out, `sb_publishable_…` and `sb_secret_…`, which are not JWTs: the
//! gateway swaps them for the anon and service_role JWTs ([`Keys::swap`]).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

/// How far a token's `exp` may be in the past and still pass, as PostgREST allows.
const CLOCK_SKEW_SECONDS: u64 = 30;
/// API keys expire ten years after the sandbox first started, as Supabase's do.
const API_KEY_LIFETIME_SECONDS: i64 = 10 * 365 * 24 * 3600;

/// Why a JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("JWT expired")]
    Expired,
    #[error("JWT audience claim is not valid")]
    Audience,
    #[error("{0}")]
    Invalid(String),
}

/// The secret and what is derived from it. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Keys {
    secret: String,
    pub anon_key: String,
    pub service_role_key: String,
    pub publishable_key: String,
    pub secret_key: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// A new random secret, as long as Supabase's (40 characters).
    pub fn generate_secret() -> String {
        random_token(40)
    }

    /// Keys for `secret`; `issued_at` (Unix seconds) pins the API keys so they stay the
    /// same across restarts.
    pub fn new(secret: String, issued_at: i64) -> Result<Self, JwtError> {
        if secret.len() < 32 {
            return Err(JwtError::Invalid(
                "the JWT secret must be at least 32 characters".into(),
            ));
        }
        let invalid = |e: jsonwebtoken::errors::Error| JwtError::Invalid(e.to_string());
        let encoding = EncodingKey::from_secret(secret.as_bytes()).map_err(invalid)?;
        let decoding = DecodingKey::from_secret(secret.as_bytes()).map_err(invalid)?;
        let api_key = |role: &str| {
            sign(
                &encoding,
                &json!({
                    "iss": "supabase-demo",
                    "ref": "jobdeck-sandbox",
                    "role": role,
                    "iat": issued_at,
                    "exp": issued_at + API_KEY_LIFETIME_SECONDS,
                }),
            )
        };
        Ok(Self {
            anon_key: api_key("anon"),
            service_role_key: api_key("service_role"),
            publishable_key: opaque_key("sb_publishable_", &secret),
            secret_key: opaque_key("sb_secret_", &secret),
            secret,
            encoding,
            decoding,
        })
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The JWT a new-style key stands for, as Supabase's gateway swaps it in: the anon
    /// key for the publishable key, the service_role key for the secret key. `None`
    /// for anything else.
    pub fn swap(&self, key: &str) -> Option<&str> {
        use subtle::ConstantTimeEq as _;
        let is = |known: &str| bool::from(known.as_bytes().ct_eq(key.as_bytes()));
        if is(&self.publishable_key) {
            Some(&self.anon_key)
        } else if is(&self.secret_key) {
            Some(&self.service_role_key)
        } else {
            None
        }
    }

    pub fn sign(&self, claims: &Value) -> String {
        sign(&self.encoding, claims)
    }

    /// Checks the signature (HS256 only: `alg: none` and every other algorithm fail),
    /// `exp` and `nbf` with 30 s of skew, and `aud` when the token has one.
    pub fn verify(&self, token: &str) -> Result<Value, JwtError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = CLOCK_SKEW_SECONDS;
        validation.validate_nbf = true;
        validation.required_spec_claims.clear();
        // Checked below: a token without `aud` (the API keys) is fine.
        validation.validate_aud = false;
        let data =
            jsonwebtoken::decode::<Value>(token, &self.decoding, &validation).map_err(|error| {
                match error.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
                    _ => JwtError::Invalid(error.to_string()),
                }
            })?;
        let claims = data.claims;
        match claims.get("aud") {
            None => {}
            Some(Value::String(aud)) if aud == "authenticated" => {}
            Some(Value::Array(auds)) if auds.iter().any(|a| a == "authenticated") => {}
            Some(_) => return Err(JwtError::Audience),
        }
        if !claims.is_object() {
            return Err(JwtError::Invalid("JWT claims are not an object".into()));
        }
        Ok(claims)
    }
}

fn sign(key: &EncodingKey, claims: &Value) -> String {
    // Encoding a JSON object with an HMAC key cannot fail.
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, key)
        .expect("HS256 signing of a JSON object")
}

/// A new-style key: `prefix`, then 22 and 8 URL-safe characters as Supabase's have,
/// derived from the JWT secret so the keys stay the same across restarts.
fn opaque_key(prefix: &str, secret: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{prefix}{secret}").as_bytes());
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    format!("{prefix}{}_{}", &text[..22], &text[22..30])
}

/// A random string of `len` URL-safe letters and digits.
pub fn random_token(len: usize) -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default()
    }

    #[test]
    fn new_style_keys_are_stable_and_stand_for_the_legacy_ones() {
        let a = Keys::new("s".repeat(40), 1_700_000_000).expect("keys");
        let b = Keys::new("s".repeat(40), 1_800_000_000).expect("keys");
        let other = Keys::new("t".repeat(40), 1_700_000_000).expect("keys");
        assert_eq!(a.publishable_key, b.publishable_key);
        assert_ne!(a.publishable_key, other.publishable_key);
        assert!(a.publishable_key.starts_with("sb_publishable_"));
        assert_eq!(a.secret_key.len(), "sb_secret_".len() + 31);
        assert_eq!(a.swap(&a.publishable_key), Some(a.anon_key.as_str()));
        assert_eq!(a.swap(&a.secret_key), Some(a.service_role_key.as_str()));
        assert_eq!(a.swap(&other.secret_key), None);
        assert_eq!(a.swap(&a.anon_key), None);
    }

    #[test]
    fn api_keys_are_stable_for_a_secret_and_verify() {
        let a = Keys::new("s".repeat(40), 1_700_000_000).expect("keys");
        let b = Keys::new("s".repeat(40), 1_700_000_000).expect("keys");
        assert_eq!(a.anon_key, b.anon_key);
        assert_eq!(
            a.verify(&a.service_role_key).map(|c| c["role"].clone()),
            Ok(json!("service_role"))
        );
        assert!(
            format!("{a:?}").contains("redacted") && !format!("{a:?}").contains(&"s".repeat(40))
        );
    }

    #[test]
    fn forged_tokens_fail() {
        let keys = Keys::new("a".repeat(40), now()).expect("keys");
        let other = Keys::new("b".repeat(40), now()).expect("keys");
        assert!(
            matches!(keys.verify(&other.anon_key), Err(JwtError::Invalid(_))),
            "wrong key"
        );
        let expired = keys.sign(&json!({ "role": "authenticated", "exp": now() - 120 }));
        assert_eq!(keys.verify(&expired), Err(JwtError::Expired));
        let within_skew = keys.sign(&json!({ "role": "authenticated", "exp": now() - 5 }));
        assert!(keys.verify(&within_skew).is_ok());
        let audience =
            keys.sign(&json!({ "role": "authenticated", "aud": "other", "exp": now() + 60 }));
        assert_eq!(keys.verify(&audience), Err(JwtError::Audience));
        // alg: none, with the signature dropped.
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"none","typ":"JWT"}"#,
        );
        let payload = keys.anon_key.split('.').nth(1).unwrap_or_default();
        assert!(keys.verify(&format!("{header}.{payload}.")).is_err());
        // A tampered payload.
        let mut parts: Vec<String> = keys.anon_key.split('.').map(String::from).collect();
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"role":"service_role"}"#,
        );
        assert!(keys.verify(&parts.join(".")).is_err());
    }
}
