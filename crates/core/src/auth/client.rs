//! Supabase Auth (GoTrue) over HTTP: one method per endpoint, errors parsed from both
//! of GoTrue's formats.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{Error, Project, Secret};

/// Asking for the 2024-01-01 error format gives `{code, message}`.
const API_VERSION: &str = "2024-01-01";

/// The user as Auth describes them (the fields Jobdeck uses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_confirmed_at: Option<String>,
    #[serde(default)]
    pub user_metadata: Value,
    /// Second factors, verified or being enrolled (Auth omits the list when empty).
    #[serde(default)]
    pub factors: Vec<Factor>,
}

impl User {
    /// The TOTP factor a sign-in must answer, if the user has a verified one.
    pub fn verified_totp(&self) -> Option<&Factor> {
        self.factors
            .iter()
            .find(|f| f.factor_type == "totp" && f.status == "verified")
    }
}

/// A second factor of the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Factor {
    pub id: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// `totp` (phone and WebAuthn factors are listed but not used by Jobdeck).
    pub factor_type: String,
    /// `verified`, or `unverified` until its first code is answered.
    pub status: String,
}

/// A TOTP factor just enrolled: the secret an authenticator app needs, as a QR code
/// (SVG), the `otpauth://` URI it encodes, and the secret itself to type in.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TotpEnrollment {
    pub factor_id: String,
    pub qr_code_svg: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub uri: Secret,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub secret: Secret,
}

/// A signed-in session. Its tokens are [`Secret`]s: they never appear in `Debug`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// Unix seconds when the access token expires.
    pub expires_at: i64,
    /// Unix seconds when this client received it (0 if unknown): with `expires_at`, the
    /// token's lifetime, which bounds how early a refresh may start.
    #[serde(default)]
    pub obtained_at: i64,
    pub user: User,
}

impl Session {
    /// The access token's assurance level (`aal1`, `aal2`), read from its claims
    /// unverified, as supabase-js reads it: the server checks it on every request.
    pub fn aal(&self) -> Option<String> {
        use base64::Engine as _;
        let payload = self.access_token.expose().split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        let claims: Value = serde_json::from_slice(&bytes).ok()?;
        claims["aal"].as_str().map(str::to_string)
    }

    /// The verified TOTP factor this session has yet to answer: the user has one and
    /// the session is not aal2.
    pub fn pending_factor(&self) -> Option<&Factor> {
        self.user
            .verified_totp()
            .filter(|_| self.aal().as_deref() != Some("aal2"))
    }
}

/// What sign-up answers: a session, or (when the project confirms email addresses)
/// the new user awaiting confirmation.
#[derive(Debug, Clone)]
pub enum SignUp {
    Session(Session),
    ConfirmationSent(User),
}

/// Which sessions a sign-out ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignOutScope {
    /// This session only.
    Local,
    /// Every session of the user.
    Global,
}

#[derive(Deserialize)]
struct SessionWire {
    access_token: String,
    refresh_token: String,
    expires_in: Option<i64>,
    expires_at: Option<i64>,
    user: User,
}

impl From<SessionWire> for Session {
    fn from(wire: SessionWire) -> Self {
        let now = chrono::Utc::now().timestamp();
        let expires_at = wire
            .expires_at
            .unwrap_or(now + wire.expires_in.unwrap_or(3600));
        Session {
            access_token: Secret::new(wire.access_token),
            refresh_token: Secret::new(wire.refresh_token),
            expires_at,
            obtained_at: now,
            user: wire.user,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuthClient {
    project: Project,
    http: reqwest::Client,
}

impl AuthClient {
    pub fn new(project: Project, http: reqwest::Client) -> Self {
        Self { project, http }
    }

    /// A client with its own HTTP connection pool and a 30 s timeout per request (a
    /// server that stops answering must not hang a worker or the UI).
    pub fn connect(project: Project) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self::new(project, http)
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    fn request(&self, method: Method, path: &str, bearer: Option<&str>) -> RequestBuilder {
        let request = self
            .http
            .request(method, self.project.auth_url(path))
            .header("apikey", self.project.key().value())
            .header("x-supabase-api-version", API_VERSION)
            .header(
                "x-client-info",
                concat!("jobdeck/", env!("CARGO_PKG_VERSION")),
            );
        match bearer.or_else(|| self.project.key().signed_out_bearer()) {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        path: &str,
    ) -> Result<T, Error> {
        let url = self.project.auth_url(path);
        let response = request.send().await.map_err(|e| Error::network(&url, &e))?;
        crate::response::decode(response, &url, parse_error).await
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> Result<SignUp, Error> {
        let request = self
            .request(Method::POST, "/signup", None)
            .json(&json!({ "email": email, "password": password }));
        let value: Value = self.send(request, "/signup").await?;
        if value.get("access_token").is_some() {
            let wire: SessionWire = serde_json::from_value(value).map_err(|e| Error::Protocol {
                url: self.project.auth_url("/signup"),
                reason: e.to_string(),
            })?;
            Ok(SignUp::Session(wire.into()))
        } else {
            let user: User = serde_json::from_value(value).map_err(|e| Error::Protocol {
                url: self.project.auth_url("/signup"),
                reason: e.to_string(),
            })?;
            Ok(SignUp::ConfirmationSent(user))
        }
    }

    pub async fn sign_in_with_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Session, Error> {
        let path = "/token?grant_type=password";
        let request = self
            .request(Method::POST, path, None)
            .json(&json!({ "email": email, "password": password }));
        Ok(self.send::<SessionWire>(request, path).await?.into())
    }

    /// Emails a one-time sign-in code (creating the user unless `create_user` is false).
    pub async fn send_email_code(&self, email: &str, create_user: bool) -> Result<(), Error> {
        let request = self
            .request(Method::POST, "/otp", None)
            .json(&json!({ "email": email, "create_user": create_user }));
        self.send::<Value>(request, "/otp").await.map(drop)
    }

    /// Emails a code and a sign-in link that sends the browser to `redirect_to` with a
    /// PKCE auth code (exchanged with the verifier `challenge` was made from).
    pub async fn send_email_link(
        &self,
        email: &str,
        create_user: bool,
        redirect_to: &str,
        challenge: &str,
    ) -> Result<(), Error> {
        let request = self
            .request(Method::POST, "/otp", None)
            .query(&[("redirect_to", redirect_to)])
            .json(&json!({
                "email": email,
                "create_user": create_user,
                "code_challenge": challenge,
                "code_challenge_method": "s256",
            }));
        self.send::<Value>(request, "/otp").await.map(drop)
    }

    pub async fn verify_email_code(&self, email: &str, code: &str) -> Result<Session, Error> {
        let request = self
            .request(Method::POST, "/verify", None)
            .json(&json!({ "type": "email", "email": email, "token": code.trim() }));
        Ok(self.send::<SessionWire>(request, "/verify").await?.into())
    }

    /// The OAuth providers the project has enabled (`/settings`' `external`, less the
    /// email, phone and anonymous sign-ins), sorted.
    pub async fn providers(&self) -> Result<Vec<String>, Error> {
        let settings: Value = self
            .send(self.request(Method::GET, "/settings", None), "/settings")
            .await?;
        let mut providers: Vec<String> = settings["external"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, enabled)| {
                enabled.as_bool() == Some(true)
                    && !["email", "phone", "anonymous_users"].contains(&name.as_str())
            })
            .map(|(name, _)| name.clone())
            .collect();
        providers.sort();
        Ok(providers)
    }

    /// Where the browser starts a PKCE sign-in through `provider`, coming back to
    /// `redirect_to` (no API key in it: the browser needs none).
    pub fn authorize_url(&self, provider: &str, redirect_to: &str, challenge: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("provider", provider)
            .append_pair("redirect_to", redirect_to)
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "s256")
            .finish();
        format!("{}?{query}", self.project.auth_url("/authorize"))
    }

    /// Exchanges a PKCE sign-in's one-use code, with the verifier its challenge was
    /// made from, for the session.
    pub async fn exchange_code(&self, code: &Secret, verifier: &Secret) -> Result<Session, Error> {
        let path = "/token?grant_type=pkce";
        let request = self
            .request(Method::POST, path, None)
            .json(&json!({ "auth_code": code.expose(), "code_verifier": verifier.expose() }));
        Ok(self.send::<SessionWire>(request, path).await?.into())
    }

    pub async fn refresh(&self, refresh_token: &Secret) -> Result<Session, Error> {
        let path = "/token?grant_type=refresh_token";
        let request = self
            .request(Method::POST, path, None)
            .json(&json!({ "refresh_token": refresh_token.expose() }));
        Ok(self.send::<SessionWire>(request, path).await?.into())
    }

    pub async fn user(&self, access_token: &Secret) -> Result<User, Error> {
        let request = self.request(Method::GET, "/user", Some(access_token.expose()));
        self.send(request, "/user").await
    }

    /// Enrolls a new TOTP factor (unverified until [`Self::verify_factor`] answers it).
    pub async fn enroll_totp(
        &self,
        access_token: &Secret,
        friendly_name: &str,
    ) -> Result<TotpEnrollment, Error> {
        #[derive(Deserialize)]
        struct Totp {
            qr_code: String,
            secret: String,
            uri: String,
        }
        #[derive(Deserialize)]
        struct Enrolled {
            id: String,
            totp: Totp,
        }
        let request = self
            .request(Method::POST, "/factors", Some(access_token.expose()))
            .json(&json!({ "factor_type": "totp", "friendly_name": friendly_name }));
        let enrolled: Enrolled = self.send(request, "/factors").await?;
        Ok(TotpEnrollment {
            factor_id: enrolled.id,
            qr_code_svg: enrolled.totp.qr_code,
            uri: Secret::new(enrolled.totp.uri),
            secret: Secret::new(enrolled.totp.secret),
        })
    }

    /// Challenges `factor` and answers with `code`: the session, now aal2.
    pub async fn verify_factor(
        &self,
        access_token: &Secret,
        factor: &str,
        code: &str,
    ) -> Result<Session, Error> {
        #[derive(Deserialize)]
        struct Challenge {
            id: String,
        }
        let factor = form_urlencoded::byte_serialize(factor.as_bytes()).collect::<String>();
        let path = format!("/factors/{factor}/challenge");
        let request = self.request(Method::POST, &path, Some(access_token.expose()));
        let challenge: Challenge = self.send(request, &path).await?;
        let path = format!("/factors/{factor}/verify");
        let request = self
            .request(Method::POST, &path, Some(access_token.expose()))
            .json(&json!({ "challenge_id": challenge.id, "code": code.trim() }));
        Ok(self.send::<SessionWire>(request, &path).await?.into())
    }

    /// Removes `factor` (a verified one only from an aal2 session).
    pub async fn unenroll_factor(&self, access_token: &Secret, factor: &str) -> Result<(), Error> {
        let factor = form_urlencoded::byte_serialize(factor.as_bytes()).collect::<String>();
        let path = format!("/factors/{factor}");
        let request = self.request(Method::DELETE, &path, Some(access_token.expose()));
        self.send::<Value>(request, &path).await.map(drop)
    }

    pub async fn sign_out(&self, access_token: &Secret, scope: SignOutScope) -> Result<(), Error> {
        let path = match scope {
            SignOutScope::Local => "/logout?scope=local",
            SignOutScope::Global => "/logout?scope=global",
        };
        let request = self.request(Method::POST, path, Some(access_token.expose()));
        self.send::<Value>(request, path).await.map(drop)
    }

    /// Checks that the URL and key reach a Supabase Auth server that accepts the key
    /// (`/health` needs no key, `/settings` does).
    pub async fn check(&self) -> Result<(), Error> {
        let health: Value = self
            .send(self.request(Method::GET, "/health", None), "/health")
            .await?;
        if health.get("name").is_none() && health.get("version").is_none() {
            return Err(Error::Protocol {
                url: self.project.auth_url("/health"),
                reason: "this does not look like Supabase Auth".into(),
            });
        }
        self.send::<Value>(self.request(Method::GET, "/settings", None), "/settings")
            .await
            .map(drop)
    }
}

/// GoTrue's `{code, message}` (2024-01-01) or `{code: <status>, error_code, msg}`, or
/// a gateway's `{message}`.
fn parse_error(status: StatusCode, body: &[u8]) -> Error {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = value["code"]
        .as_str()
        .or_else(|| value["error_code"].as_str())
        .or_else(|| value["error"].as_str())
        .unwrap_or(match status.as_u16() {
            401 => "invalid_api_key",
            _ => "unexpected_failure",
        })
        .to_string();
    let message = ["message", "msg", "error_description", "error"]
        .iter()
        .find_map(|key| value[*key].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("Auth answered {status}"));
    Error::Auth {
        status: status.as_u16(),
        code,
        message,
    }
}
