//! Sessions at rest: in the Secret Service when one answers (`./x test` runs this file
//! a second time under its own D-Bus session with a headless gnome-keyring, with
//! `JOBDECK_TEST_KEYCHAIN=secret-service`), else in the private file.

use std::{os::unix::fs::PermissionsExt as _, sync::Arc};

use jobdeck_core::{FileStore, KeychainStore, Secret, Session, SessionStore, User};

fn session(refresh: &str) -> Session {
    Session {
        access_token: Secret::new("header.claims.signature"),
        refresh_token: Secret::new(refresh),
        expires_at: 2_000_000_000,
        obtained_at: 1_999_996_400,
        user: User {
            id: "5f0c2a4e-0000-4000-8000-000000000001".into(),
            email: Some("ada@example.com".into()),
            email_confirmed_at: None,
            user_metadata: serde_json::json!({}),
            factors: Vec::new(),
        },
    }
}

fn expected() -> Option<bool> {
    match std::env::var("JOBDECK_TEST_KEYCHAIN").as_deref() {
        Ok("secret-service") => Some(true),
        Ok("none") => Some(false),
        _ => None,
    }
}

#[test]
fn a_session_lives_in_the_keychain_when_one_answers_else_in_a_private_file() {
    let available = KeychainStore::available();
    if let Some(expected) = expected() {
        assert_eq!(available, expected, "JOBDECK_TEST_KEYCHAIN says otherwise");
    }
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("session.json");
    let account = format!("test:{}", uuid::Uuid::new_v4());
    let fallback: Arc<dyn SessionStore> = Arc::new(FileStore::new(&file));
    let store = KeychainStore::new(&account, Arc::clone(&fallback));

    // A session an earlier version kept in the file.
    fallback
        .save(Some(&session("old-file-token")))
        .expect("saves");
    let loaded = store.load().expect("loads").expect("the file's session");
    assert_eq!(loaded.refresh_token.expose(), "old-file-token");
    assert_eq!(
        file.exists(),
        !available,
        "moved out of the file only into a keychain"
    );

    store.save(Some(&session("rotated"))).expect("saves");
    if available {
        assert!(!file.exists(), "no copy in the file beside the keychain's");
    } else {
        let mode = std::fs::metadata(&file)
            .expect("the file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner alone");
    }
    // A restart: a new store finds it where it was put.
    let restarted = KeychainStore::new(&account, Arc::clone(&fallback));
    let loaded = restarted.load().expect("loads").expect("the session");
    assert_eq!(loaded.refresh_token.expose(), "rotated");
    assert_eq!(loaded.user.email.as_deref(), Some("ada@example.com"));

    restarted.save(None).expect("forgets");
    assert!(restarted.load().expect("loads").is_none());
    assert!(!file.exists());
}
