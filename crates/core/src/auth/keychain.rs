//! Sessions at rest in the operating system's keychain, as desktop apps that hold
//! tokens keep them: the Secret Service on Linux, Keychain on macOS, the Credential
//! Manager on Windows (all through the `keyring` crate).
//!
//! [`KeychainStore`] keeps the session (its refresh token with it) in one keychain
//! entry, and another [`SessionStore`] (a file only its owner can read) only where no
//! keychain answers. A session found in that fallback while the keychain answers is
//! moved into the keychain once and removed from the fallback.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use super::{client::Session, session::SessionStore};
use crate::Error;

/// The keychain service every Jobdeck entry is filed under.
pub const SERVICE: &str = "jobdeck";

/// A session in the keychain entry `account` of [`SERVICE`], or in `fallback`.
pub struct KeychainStore {
    account: String,
    fallback: Arc<dyn SessionStore>,
    /// Said once: the keychain did not answer and the fallback holds the session.
    warned: AtomicBool,
}

impl fmt::Debug for KeychainStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeychainStore")
            .field("account", &self.account)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

impl KeychainStore {
    pub fn new(account: impl Into<String>, fallback: Arc<dyn SessionStore>) -> Self {
        Self {
            account: account.into(),
            fallback,
            warned: AtomicBool::new(false),
        }
    }

    /// Whether the keychain answers here (a Secret Service on the session bus).
    pub fn available() -> bool {
        keyring::Entry::store_status().is_ok()
    }

    fn entry(&self) -> Option<keyring::Entry> {
        match keyring::Entry::new(SERVICE, &self.account) {
            Ok(entry) => Some(entry),
            Err(error) => {
                self.unavailable(&error);
                None
            }
        }
    }

    fn unavailable(&self, error: &keyring::Error) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, "no keychain answers; the session is kept in a private file");
        }
    }

    fn encode(session: &Session) -> Result<String, Error> {
        serde_json::to_string(session).map_err(|e| Error::Storage(e.to_string()))
    }
}

impl SessionStore for KeychainStore {
    fn load(&self) -> Result<Option<Session>, Error> {
        let Some(entry) = self.entry() else {
            return self.fallback.load();
        };
        match entry.get_password() {
            Ok(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| Error::Storage(format!("the keychain's session: {e}"))),
            Err(keyring::Error::NoEntry) => {
                // Kept by an earlier version (or while no keychain answered): moved.
                let Some(session) = self.fallback.load()? else {
                    return Ok(None);
                };
                match entry.set_password(&Self::encode(&session)?) {
                    Ok(()) => self.fallback.save(None)?,
                    Err(error) => self.unavailable(&error),
                }
                Ok(Some(session))
            }
            Err(error) => {
                self.unavailable(&error);
                self.fallback.load()
            }
        }
    }

    fn save(&self, session: Option<&Session>) -> Result<(), Error> {
        let Some(entry) = self.entry() else {
            return self.fallback.save(session);
        };
        match session {
            Some(session) => match entry.set_password(&Self::encode(session)?) {
                // No copy stays behind in the fallback.
                Ok(()) => self.fallback.save(None),
                Err(error) => {
                    self.unavailable(&error);
                    self.fallback.save(Some(session))
                }
            },
            None => {
                match entry.delete_credential() {
                    Ok(()) | Err(keyring::Error::NoEntry) => {}
                    Err(error) => self.unavailable(&error),
                }
                self.fallback.save(None)
            }
        }
    }
}
