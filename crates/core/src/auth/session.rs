//! The one owner of a session's refresh token.
//!
//! Every request and every job asks [`SessionOwner::access_token`] for a token that is
//! valid now. Near expiry the owner refreshes, and however many callers ask at once,
//! exactly one refresh is in flight: it runs as a task of its own that all of them
//! await, so a caller that gives up cannot drop a response carrying the only valid
//! refresh token. The rotated session is persisted before anyone uses it, so a crash
//! right after a refresh cannot lose it.

use std::{
    fmt, fs,
    future::Future,
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::{
    FutureExt as _,
    future::{BoxFuture, Shared},
};
use serde::Serialize;
use tokio::sync::watch;

use super::{
    client::{AuthClient, Session, SignOutScope, SignUp, TotpEnrollment, User},
    oauth::{EmailLinkFlow, OAuthFlow},
};
use crate::{Error, Secret};

/// Refresh this long before the access token expires (as supabase-js does).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(90);

/// Seconds before expiry at which to refresh `session`: [`REFRESH_MARGIN`], but never
/// more than half the token's lifetime, so short-lived tokens are not refreshed at once.
fn refresh_margin(session: &Session) -> i64 {
    let margin = REFRESH_MARGIN.as_secs() as i64;
    if session.obtained_at > 0 {
        margin.min((session.expires_at - session.obtained_at) / 2)
    } else {
        margin
    }
}

/// Where a session is kept between runs. The desktop app keeps it in its store, the
/// CLI in a file only its owner can read; two processes never share one.
pub trait SessionStore: Send + Sync + fmt::Debug {
    fn load(&self) -> Result<Option<Session>, Error>;
    /// Saves `session`, or forgets the stored one when `None`.
    fn save(&self, session: Option<&Session>) -> Result<(), Error>;
}

/// A JSON file readable only by its owner, replaced atomically.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl SessionStore for FileStore {
    fn load(&self) -> Result<Option<Session>, Error> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Storage(format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Storage(format!("{}: {e}", self.path.display()))),
        }
    }

    fn save(&self, session: Option<&Session>) -> Result<(), Error> {
        let failed = |e: std::io::Error| Error::Storage(format!("{}: {e}", self.path.display()));
        let Some(session) = session else {
            return match fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(failed(e)),
                _ => Ok(()),
            };
        };
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir).map_err(failed)?;
        }
        let tmp = self.path.with_extension("tmp");
        let json = serde_json::to_vec(session).map_err(|e| Error::Storage(e.to_string()))?;
        // Created private, then filled: the tokens are never readable by others.
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(failed)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(failed)?;
        std::io::Write::write_all(&mut &file, &json).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        fs::rename(&tmp, &self.path).map_err(failed)
    }
}

/// Keeps the session in memory only (tests, one-off tools).
#[derive(Debug, Default)]
pub struct MemoryStore(Mutex<Option<Session>>);

impl SessionStore for MemoryStore {
    fn load(&self) -> Result<Option<Session>, Error> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn save(&self, session: Option<&Session>) -> Result<(), Error> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = session.cloned();
        Ok(())
    }
}

/// What the UI shows about the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SessionState {
    SignedOut,
    /// Signed in with a first factor by a user who has a verified TOTP factor: the
    /// session is aal1 until its code is answered ([`SessionOwner::verify_totp`]).
    /// Nothing runs under it meanwhile.
    SecondFactor {
        email: Option<String>,
        factor_id: String,
    },
    Active {
        email: Option<String>,
        expires_at: i64,
    },
    Refreshing {
        email: Option<String>,
        expires_at: i64,
    },
    /// The last refresh could not reach the server; requests use the current token
    /// while it lasts, and the next request tries again.
    Offline {
        email: Option<String>,
        expires_at: i64,
        reason: String,
    },
    /// The server ended the session (revoked, reused, user deleted): sign in again.
    Ended {
        reason: String,
    },
}

impl SessionState {
    /// Whether requests act for the user now: signed in with every factor the user
    /// has, whether the token is fresh, being refreshed or used while offline.
    pub fn is_signed_in(&self) -> bool {
        matches!(
            self,
            Self::Active { .. } | Self::Refreshing { .. } | Self::Offline { .. }
        )
    }
}

type Refresh = Shared<BoxFuture<'static, Result<(), Arc<Error>>>>;

#[derive(Default)]
struct Inner {
    session: Option<Session>,
    refreshing: Option<Refresh>,
    /// Bumped on every sign-in and sign-out, so a refresh that finishes afterwards
    /// does not resurrect a session the user left.
    generation: u64,
    /// The last access token of a session that ended, with its expiry: still a valid
    /// JWT for a little while, long enough to hand running jobs back.
    parting: Option<(Secret, i64)>,
}

pub struct SessionOwner {
    auth: AuthClient,
    store: Arc<dyn SessionStore>,
    // Held only for short, synchronous sections: never across an await.
    inner: Mutex<Inner>,
    state: watch::Sender<SessionState>,
    refreshes: AtomicU64,
}

impl fmt::Debug for SessionOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionOwner")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A shared refresh's error, for one of its waiters.
fn surfaced(error: &Error) -> Error {
    match error {
        Error::SessionEnded(reason) => Error::SessionEnded(reason.clone()),
        Error::Network { url, reason } => Error::Network {
            url: url.clone(),
            reason: reason.clone(),
        },
        other => Error::Auth {
            status: 0,
            code: other.server_code().unwrap_or("refresh_failed").to_string(),
            message: other.to_string(),
        },
    }
}

/// The state a usable session puts the owner in.
fn signed_in_state(session: &Session) -> SessionState {
    match session.pending_factor() {
        Some(factor) => SessionState::SecondFactor {
            email: session.user.email.clone(),
            factor_id: factor.id.clone(),
        },
        None => SessionState::Active {
            email: session.user.email.clone(),
            expires_at: session.expires_at,
        },
    }
}

impl SessionOwner {
    /// An owner for the session in `store`, if there is one.
    pub fn new(auth: AuthClient, store: Arc<dyn SessionStore>) -> Result<Arc<Self>, Error> {
        let session = store.load()?;
        let state = session
            .as_ref()
            .map_or(SessionState::SignedOut, signed_in_state);
        Ok(Arc::new(Self {
            auth,
            store,
            inner: Mutex::new(Inner {
                session,
                ..Inner::default()
            }),
            state: watch::Sender::new(state),
            refreshes: AtomicU64::new(0),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn auth(&self) -> &AuthClient {
        &self.auth
    }

    /// The session state, updated as it changes.
    pub fn watch(&self) -> watch::Receiver<SessionState> {
        self.state.subscribe()
    }

    pub fn user(&self) -> Option<User> {
        self.lock().session.as_ref().map(|s| s.user.clone())
    }

    /// How many refreshes this owner has made (each one a request to Auth).
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Persists `session`, then makes it the current one.
    fn install(&self, session: Session) -> Result<User, Error> {
        self.store.save(Some(&session))?;
        let user = session.user.clone();
        let state = signed_in_state(&session);
        {
            let mut inner = self.lock();
            inner.generation += 1;
            inner.session = Some(session);
            inner.refreshing = None;
            inner.parting = None;
        }
        self.state.send_replace(state);
        Ok(user)
    }

    pub async fn sign_in_with_password(&self, email: &str, password: &str) -> Result<User, Error> {
        let session = self.auth.sign_in_with_password(email, password).await?;
        self.install(session)
    }

    /// Signs up; when the project needs the address confirmed first, answers the user
    /// and stays signed out.
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<SignUp, Error> {
        let answer = self.auth.sign_up(email, password).await?;
        if let SignUp::Session(session) = &answer {
            self.install(session.clone())?;
        }
        Ok(answer)
    }

    pub async fn send_email_code(&self, email: &str) -> Result<(), Error> {
        self.auth.send_email_code(email, true).await
    }

    pub async fn verify_email_code(&self, email: &str, code: &str) -> Result<User, Error> {
        let session = self.auth.verify_email_code(email, code).await?;
        self.install(session)
    }

    /// Waits for `flow`'s browser (see [`OAuthFlow::finish`]) and keeps the session it
    /// brings, as any other sign-in's.
    pub async fn sign_in_with_oauth(
        &self,
        flow: OAuthFlow,
        timeout: Duration,
        cancelled: impl Future<Output = ()>,
    ) -> Result<User, Error> {
        let session = flow.finish(&self.auth, timeout, cancelled).await?;
        self.install(session)
    }

    /// Answers the session's second-factor challenge with `code` (from the user's
    /// authenticator app), or confirms a factor just enrolled: the session that comes
    /// back is aal2 and replaces this one.
    pub async fn verify_totp(self: &Arc<Self>, factor: &str, code: &str) -> Result<User, Error> {
        let token = self.access_token().await?;
        let session = self.auth.verify_factor(&token, factor, code).await?;
        self.install(session)
    }

    /// Enrolls a TOTP factor, to be confirmed with its first code by
    /// [`Self::verify_totp`].
    pub async fn enroll_totp(
        self: &Arc<Self>,
        friendly_name: &str,
    ) -> Result<TotpEnrollment, Error> {
        let token = self.access_token().await?;
        self.auth.enroll_totp(&token, friendly_name).await
    }

    /// Removes a factor, then refreshes so the session and the user say so.
    pub async fn unenroll_factor(self: &Arc<Self>, factor: &str) -> Result<User, Error> {
        let token = self.access_token().await?;
        self.auth.unenroll_factor(&token, factor).await?;
        self.refresh_now().await?;
        self.user().ok_or(Error::SignedOut)
    }

    /// Waits for the emailed link of `flow` to be followed and keeps its session.
    pub async fn sign_in_with_email_link(
        &self,
        flow: EmailLinkFlow,
        timeout: Duration,
        cancelled: impl Future<Output = ()>,
    ) -> Result<User, Error> {
        let session = flow.finish(&self.auth, timeout, cancelled).await?;
        self.install(session)
    }

    /// Ends the session here and on the server (`Global`: every device's too). The
    /// local session is forgotten even if the server cannot be reached.
    pub async fn sign_out(&self, scope: SignOutScope) -> Result<(), Error> {
        let token = self.lock().session.as_ref().map(|s| s.access_token.clone());
        let remote = match token {
            Some(token) => self.auth.sign_out(&token, scope).await,
            None => Ok(()),
        };
        self.forget(SessionState::SignedOut)?;
        match remote {
            // Already over on the server: the goal is reached.
            Err(error) if error.ends_session() => Ok(()),
            other => other,
        }
    }

    fn forget(&self, state: SessionState) -> Result<(), Error> {
        {
            let mut inner = self.lock();
            inner.generation += 1;
            inner.parting = inner
                .session
                .take()
                .map(|session| (session.access_token, session.expires_at));
            inner.refreshing = None;
        }
        self.state.send_replace(state);
        self.store.save(None)
    }

    /// The last access token of the session that just ended, while it is still valid.
    /// Only for handing back work started under that session; never for new work.
    pub fn parting_token(&self) -> Option<Secret> {
        let inner = self.lock();
        let (token, expires_at) = inner.parting.as_ref()?;
        (now() < *expires_at).then(|| token.clone())
    }

    /// Called when a request learns the server no longer knows this session.
    pub fn session_ended(&self, reason: &str) {
        tracing::warn!(reason, "the server ended the session");
        if let Err(error) = self.forget(SessionState::Ended {
            reason: reason.to_string(),
        }) {
            tracing::warn!(%error, "forgetting the ended session");
        }
    }

    /// An access token valid for at least [`REFRESH_MARGIN`], refreshing if needed.
    pub async fn access_token(self: &Arc<Self>) -> Result<Secret, Error> {
        loop {
            let refresh = {
                let mut inner = self.lock();
                let Some(session) = &inner.session else {
                    return Err(match &*self.state.borrow() {
                        SessionState::Ended { reason } => Error::SessionEnded(reason.clone()),
                        _ => Error::SignedOut,
                    });
                };
                if now() + refresh_margin(session) < session.expires_at {
                    return Ok(session.access_token.clone());
                }
                self.refresh_in_flight(&mut inner)
            };
            match refresh.await {
                Ok(()) => continue,
                Err(error) => {
                    // Offline, but the current token still works for a while: use it.
                    if let Some(session) = &self.lock().session
                        && now() < session.expires_at
                        && !matches!(*error, Error::SessionEnded(_))
                    {
                        return Ok(session.access_token.clone());
                    }
                    return Err(surfaced(&error));
                }
            }
        }
    }

    /// An access token valid for at least `wanted` (or half a token's lifetime, if
    /// that is shorter), refreshing first if the current one is not: for a program
    /// that gets one token at its start.
    pub async fn access_token_valid_for(
        self: &Arc<Self>,
        wanted: Duration,
    ) -> Result<Secret, Error> {
        let token = self.access_token().await?;
        let short = self.lock().session.as_ref().is_some_and(|session| {
            let lifetime = if session.obtained_at > 0 {
                session.expires_at - session.obtained_at
            } else {
                i64::MAX
            };
            session.expires_at - now() < (wanted.as_secs() as i64).min(lifetime / 2)
        });
        if short {
            self.refresh_now().await
        } else {
            Ok(token)
        }
    }

    /// Refreshes now, whatever the expiry (a request learned the token was refused);
    /// joins a refresh already in flight rather than starting a second.
    pub async fn refresh_now(self: &Arc<Self>) -> Result<Secret, Error> {
        let refresh = {
            let mut inner = self.lock();
            if inner.session.is_none() {
                return Err(Error::SignedOut);
            }
            self.refresh_in_flight(&mut inner)
        };
        refresh.await.map_err(|e| surfaced(&e))?;
        self.access_token().await
    }

    /// A server refused `refused`, this session's access token, before its expiry (the
    /// project's JWT secret rotated, the session was revoked): refreshes once. Every
    /// caller refused the same token shares that one refresh, and one refused a token
    /// already replaced gets the current one without another.
    pub async fn token_refused(self: &Arc<Self>, refused: &Secret) -> Result<Secret, Error> {
        let refresh = {
            let mut inner = self.lock();
            match &inner.session {
                None => return Err(Error::SignedOut),
                Some(session) if session.access_token != *refused => {
                    return Ok(session.access_token.clone());
                }
                Some(_) => self.refresh_in_flight(&mut inner),
            }
        };
        refresh.await.map_err(|e| surfaced(&e))?;
        self.access_token().await
    }

    /// The refresh in flight, or a new one: the single flight every caller joins.
    /// Takes the locked state, so checking and starting are one step.
    fn refresh_in_flight(self: &Arc<Self>, inner: &mut Inner) -> Refresh {
        if let Some(refresh) = &inner.refreshing {
            return refresh.clone();
        }
        let Some(session) = &inner.session else {
            // Callers check first; an empty future keeps this total.
            return async { Err(Arc::new(Error::SignedOut)) }.boxed().shared();
        };
        let refresh = self.start_refresh(session, inner.generation);
        inner.refreshing = Some(refresh.clone());
        refresh
    }

    /// Starts the one refresh, as a task that finishes even if every waiter leaves.
    fn start_refresh(self: &Arc<Self>, session: &Session, generation: u64) -> Refresh {
        let owner = Arc::clone(self);
        // A session still owing its second factor stays that way on screen.
        if session.pending_factor().is_none() {
            self.state.send_replace(SessionState::Refreshing {
                email: session.user.email.clone(),
                expires_at: session.expires_at,
            });
        }
        let token = session.refresh_token.clone();
        let task = tokio::spawn(async move { owner.refresh(token, generation).await });
        async move {
            task.await.unwrap_or_else(|e| {
                Err(Arc::new(Error::Storage(format!(
                    "the refresh task failed: {e}"
                ))))
            })
        }
        .boxed()
        .shared()
    }

    async fn refresh(&self, token: Secret, generation: u64) -> Result<(), Arc<Error>> {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let result = self.auth.refresh(&token).await;
        let current = self.lock().generation == generation;
        match result {
            Ok(session) if current => {
                // Persisted before use: the old refresh token is no longer valid.
                if let Err(error) = self.store.save(Some(&session)) {
                    tracing::warn!(%error, "the refreshed session could not be saved");
                }
                let state = signed_in_state(&session);
                {
                    let mut inner = self.lock();
                    inner.session = Some(session);
                    inner.refreshing = None;
                }
                self.state.send_replace(state);
                Ok(())
            }
            // Signed out or in again meanwhile: this answer belongs to no one.
            Ok(_) => Ok(()),
            Err(error)
                if error.ends_session()
                    || error.server_code() == Some("refresh_token_not_found") =>
            {
                let reason = error.to_string();
                if current {
                    self.session_ended(&reason);
                }
                Err(Arc::new(Error::SessionEnded(reason)))
            }
            Err(error) => {
                tracing::info!(%error, "refreshing the session failed; will try again");
                if current {
                    let mut inner = self.lock();
                    inner.refreshing = None;
                    if let Some(session) = inner
                        .session
                        .as_ref()
                        .filter(|s| s.pending_factor().is_none())
                    {
                        self.state.send_replace(SessionState::Offline {
                            email: session.user.email.clone(),
                            expires_at: session.expires_at,
                            reason: error.to_string(),
                        });
                    }
                }
                Err(Arc::new(error))
            }
        }
    }

    /// How long until the access token is due for a refresh (zero if it is now);
    /// `None` when signed out.
    pub fn refresh_due(&self) -> Option<Duration> {
        let inner = self.lock();
        let session = inner.session.as_ref()?;
        let due = session.expires_at - refresh_margin(session) - now();
        Some(Duration::from_secs(due.max(0) as u64))
    }

    /// Refreshes ahead of expiry until `shutdown` resolves, so tokens are fresh even
    /// when nobody is asking. Retries an unreachable server every `retry` at most.
    pub async fn keep_fresh(self: Arc<Self>, shutdown: impl Future<Output = ()>, retry: Duration) {
        tokio::pin!(shutdown);
        loop {
            let wait = self.refresh_due().unwrap_or(Duration::from_secs(3600));
            let mut changes = self.state.subscribe();
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait.max(Duration::from_millis(100))) => {
                    if self.access_token().await.is_err() {
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep(retry) => {}
                        }
                    }
                }
                // A sign-in or refresh moved the expiry: recompute.
                _ = changes.changed() => {}
            }
        }
    }
}
