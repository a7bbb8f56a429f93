//! A local server that speaks Supabase's Auth and REST protocols over a real
//! PostgreSQL, so Jobdeck (and supabase-js, supabase-py) run without a hosted project.
//!
//! # Layout
//! - [`start`] / [`Running`]: the sandbox's life: its data directory and keys, the
//!   PostgreSQL it starts or is given, the bootstrap and migrations, the HTTP server,
//!   a clean stop.
//! - [`app`]: the HTTP routes over an [`AppState`]: `/auth/v1` ([`auth`]),
//!   `/rest/v1` ([`rest`]), `/realtime/v1` ([`realtime`]), `/inbox` (the local
//!   mail catcher) and `/oauth/sandbox` (a local OAuth provider).
//! - [`db`]: runs each API request as its caller, the way PostgREST does.
//! - [`keys`]: the JWT secret, the API keys and access tokens.
//! - [`testing`] (feature `testing`): a real sandbox per test, for every crate's tests.
//!
//! Authorization is PostgreSQL's: requests run as `anon`, `authenticated` or
//! `service_role` with the caller's claims, and grants and row-level security decide.

pub mod auth;
pub mod db;
pub mod keys;
pub mod realtime;
pub mod rest;
mod sandbox;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::{Arc, RwLock};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderMap, HeaderValue, header},
    middleware::{self, Next},
    response::{IntoResponse as _, Response},
    routing::get,
};

use db::{Caller, Db};
use keys::Keys;
use rest::{error::RestError, schema::Schema};
pub use sandbox::{Options, Running, SandboxError, Status, default_data_dir, read_status, start};

/// Request bodies larger than this are refused with 413, as Supabase's gateway does.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Where clients reach the sandbox, e.g. `http://127.0.0.1:54321`.
    pub api_url: String,
    /// Where a sign-in through a provider ends when its `redirect_to` is not allowed
    /// (GoTrue's `SITE_URL`): the sandbox itself.
    pub site_url: String,
    /// Globs of the other `redirect_to` URLs a sign-in may end at (GoTrue's
    /// `URI_ALLOW_LIST`); loopback IP addresses on any port need none.
    pub redirect_urls: Vec<String>,
    /// Access-token lifetime in seconds.
    pub jwt_expiry: u64,
    /// Seconds a rotated refresh token may still be presented without revoking the
    /// session (a client that lost the answer to its refresh).
    pub refresh_reuse_interval: f64,
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    pub keys: Keys,
    /// Connections as `authenticator`, for REST requests.
    pub db: Db,
    /// Connections as `supabase_auth_admin`, for the auth schema.
    pub auth_db: Db,
    pub settings: Settings,
    pub inbox: auth::inbox::Inbox,
    /// The sandbox OAuth provider's codes on their way to the callback.
    pub provider: auth::provider::Codes,
    /// Realtime's subscribers.
    pub realtime: Arc<realtime::hub::Hub>,
    /// Swapped whole on a reload; never held across an await.
    schema: RwLock<Arc<Schema>>,
}

impl AppState {
    pub fn new(keys: Keys, db: Db, auth_db: Db, settings: Settings, schema: Schema) -> Self {
        Self {
            keys,
            db,
            auth_db,
            settings,
            inbox: auth::inbox::Inbox::default(),
            provider: auth::provider::Codes::default(),
            realtime: Arc::default(),
            schema: RwLock::new(Arc::new(schema)),
        }
    }

    /// The schema as it is now: a request holds it to its end, reloads or not.
    pub fn schema(&self) -> Arc<Schema> {
        Arc::clone(&self.schema.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn set_schema(&self, schema: Schema) {
        *self.schema.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(schema);
    }

    /// The gateway's rule: an `apikey` header (or `?apikey=`) naming one of this
    /// project's keys.
    pub fn check_api_key(&self, headers: &HeaderMap, query: Option<&str>) -> Result<(), RestError> {
        let from_query = || {
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .find(|(k, _)| k == "apikey")
                .map(|(_, v)| v.into_owned())
        };
        let key = headers
            .get("apikey")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(from_query)
            .ok_or(RestError::MissingApiKey)?;
        if key == self.keys.service_role_key {
            // Supabase's gateway refuses its secret keys from browsers: a key that
            // bypasses row-level security found in a web page is a leaked key.
            let browser = headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|agent| agent.starts_with("Mozilla/"));
            if browser {
                return Err(RestError::SecretKeyInBrowser);
            }
            Ok(())
        } else if key == self.keys.anon_key {
            Ok(())
        } else {
            Err(RestError::InvalidApiKey)
        }
    }

    /// Who a REST request runs as: the bearer JWT's role and claims, or the API key's
    /// when there is no bearer token.
    pub fn rest_caller(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Caller, RestError> {
        self.check_api_key(headers, query)?;
        let bearer = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_string());
        let token = match bearer {
            Some(token) => token,
            None => headers
                .get("apikey")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(&self.keys.anon_key)
                .to_string(),
        };
        let claims = self.keys.verify(&token).map_err(RestError::Jwt)?;
        Ok(Caller::from_claims(&claims))
    }
}

/// The sandbox's HTTP routes.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .nest("/auth/v1", auth::router(Arc::clone(&state)))
        .nest("/rest/v1", rest::router())
        .nest("/realtime/v1", realtime::router())
        .route("/inbox", get(auth::inbox::list))
        .route(
            auth::provider::AUTHORIZE_PATH,
            get(auth::provider::page).post(auth::provider::decide),
        )
        .layer(middleware::from_fn_with_state(Arc::clone(&state), gateway))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Supabase's API gateway in front of every service: a new-style key
/// (`sb_publishable_…`, `sb_secret_…`) given as `apikey` is swapped for the JWT it stands
/// for, which is also the bearer unless the request carries a token of its own (a user's
/// session); supabase-js sends the key itself as the bearer when signed out. An `sb_`
/// key that is not this project's is refused. Legacy keys pass as they are.
async fn gateway(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let key = headers
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
                .find(|(k, _)| k == "apikey")
                .map(|(_, v)| v.into_owned())
        });
    let Some(key) = key.filter(|key| key.starts_with("sb_")) else {
        return next.run(request).await;
    };
    let Some(jwt) = state.keys.swap(&key) else {
        return RestError::InvalidApiKey.into_response();
    };
    let own_bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(_, token)| token.trim() != key);
    // A JWT is visible ASCII: always a valid header value.
    let (Ok(apikey), Ok(bearer)) = (
        HeaderValue::from_str(jwt),
        HeaderValue::from_str(&format!("Bearer {jwt}")),
    ) else {
        return RestError::InvalidApiKey.into_response();
    };
    let headers = request.headers_mut();
    if !own_bearer {
        headers.insert(header::AUTHORIZATION, bearer);
    }
    headers.insert("apikey", apikey);
    next.run(request).await
}
