//! What the app keeps between runs, in tauri-plugin-store files under its data
//! directory: `settings.json` (the project and the preferences) and `session.json`
//! (one session per project URL, which only the app uses: the CLI signs in for its own).

use std::{fmt, os::unix::fs::PermissionsExt, path::Path, sync::Arc};

use jobdeck_core::{Error, Session, SessionStore};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tauri::{AppHandle, Wry};
use tauri_plugin_store::Store;

use crate::ipc::Preferences;

/// The project the app was last connected to, kept in the settings store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedProject {
    pub url: String,
    pub key: String,
    /// The local sandbox: found or started again on the next launch.
    #[serde(default)]
    pub sandbox: bool,
}

const SETTINGS: &str = "settings.json";
const SESSIONS: &str = "session.json";

#[derive(Clone)]
pub struct Stores {
    settings: Arc<Store<Wry>>,
    sessions: Arc<Store<Wry>>,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

fn storage(error: impl fmt::Display) -> Error {
    Error::Storage(error.to_string())
}

impl Stores {
    /// Opens both stores. The data directory is made private first: the session file
    /// holds the user's refresh token.
    pub fn open(app: &AppHandle, data_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir).map_err(storage)?;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(storage)?;
        let open = |name: &str| {
            tauri_plugin_store::StoreBuilder::new(app, data_dir.join(name))
                // Written when changed, not on a timer: a session must be on disk before
                // its token is used (a rotated refresh token lost in a crash ends it).
                .disable_auto_save()
                .build()
                .map_err(storage)
        };
        Ok(Self {
            settings: open(SETTINGS)?,
            sessions: open(SESSIONS)?,
        })
    }

    fn get<T: DeserializeOwned>(store: &Store<Wry>, key: &str) -> Result<Option<T>, Error> {
        store
            .get(key)
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| storage(format!("{key}: {e}")))
    }

    fn put<T: Serialize>(store: &Store<Wry>, key: &str, value: Option<&T>) -> Result<(), Error> {
        match value {
            Some(value) => store.set(key, serde_json::to_value(value).map_err(storage)?),
            None => {
                store.delete(key);
            }
        }
        store.save().map_err(storage)
    }

    pub fn project(&self) -> Result<Option<SavedProject>, Error> {
        Self::get(&self.settings, "project")
    }

    pub fn set_project(&self, project: Option<&SavedProject>) -> Result<(), Error> {
        Self::put(&self.settings, "project", project)
    }

    pub fn preferences(&self) -> Preferences {
        // Unreadable preferences are not worth refusing to start over.
        Self::get(&self.settings, "preferences")
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub fn set_preferences(&self, preferences: &Preferences) -> Result<(), Error> {
        Self::put(&self.settings, "preferences", Some(preferences))
    }

    /// The session store for the project at `url`.
    pub fn session(&self, url: &str) -> StoredSession {
        StoredSession {
            store: Arc::clone(&self.sessions),
            key: url.to_string(),
        }
    }
}

/// One project's session in `session.json`, as the core's [`SessionStore`].
pub struct StoredSession {
    store: Arc<Store<Wry>>,
    key: String,
}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSession")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl SessionStore for StoredSession {
    fn load(&self) -> Result<Option<Session>, Error> {
        Stores::get(&self.store, &self.key)
    }

    fn save(&self, session: Option<&Session>) -> Result<(), Error> {
        Stores::put(&self.store, &self.key, session)
    }
}
