//! The session owner against a real sandbox: one refresh however many ask, rotation
//! persisted, reuse detection ending the session, a session that survives a restart.

mod support;

use std::{collections::HashSet, os::unix::fs::PermissionsExt as _, sync::Arc};

use jobdeck_core::{
    AuthClient, Error, ErrorCode, FileStore, MemoryStore, Project, SessionOwner, SessionState,
    SessionStore, SignOutScope,
};
use jobdeck_sandbox::testing::{TestSandbox, email};
use support::auth;

/// A signed-in owner over `store`.
async fn signed_in(
    sandbox: &TestSandbox,
    store: Arc<dyn SessionStore>,
) -> (Arc<SessionOwner>, String) {
    let address = email("owner");
    sandbox.sign_up(&address, "correct horse").await;
    let owner = SessionOwner::new(auth(sandbox), store).expect("an owner");
    owner
        .sign_in_with_password(&address, "correct horse")
        .await
        .expect("signs in");
    (owner, address)
}

/// Rewrites the stored session as if its access token had already expired, and
/// answers an owner that loads it (as after a restart).
fn expired_owner(sandbox: &TestSandbox, store: &Arc<MemoryStore>) -> Arc<SessionOwner> {
    let mut session = store.load().expect("loads").expect("a session");
    session.expires_at = chrono::Utc::now().timestamp() - 1;
    store.save(Some(&session)).expect("saves");
    SessionOwner::new(auth(sandbox), store.clone()).expect("an owner")
}

async fn refresh_tokens_of(sandbox: &TestSandbox, address: &str) -> i64 {
    let admin = sandbox.database.admin().await;
    admin
        .query_one(
            "select count(*) from auth.refresh_tokens t join auth.users u on u.id::text = t.user_id where u.email = $1",
            &[&address],
        )
        .await
        .expect("counting")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_callers_during_expiry_cause_one_refresh() {
    let sandbox = TestSandbox::start().await;
    let store = Arc::new(MemoryStore::default());
    let (_, address) = signed_in(&sandbox, store.clone()).await;
    let before = refresh_tokens_of(&sandbox, &address).await;
    let old = store.load().expect("loads").expect("a session");
    let owner = expired_owner(&sandbox, &store);

    let callers: Vec<_> = (0..50)
        .map(|_| {
            let owner = Arc::clone(&owner);
            tokio::spawn(async move { owner.access_token().await })
        })
        .collect();
    let mut tokens = HashSet::new();
    for caller in callers {
        let token = caller.await.expect("a caller").expect("a token");
        tokens.insert(token.expose().to_string());
    }
    assert_eq!(owner.refresh_count(), 1, "one refresh for fifty callers");
    assert_eq!(
        refresh_tokens_of(&sandbox, &address).await,
        before + 1,
        "the server saw one rotation"
    );
    let saved = store.load().expect("loads").expect("a session");
    assert_ne!(
        saved.refresh_token, old.refresh_token,
        "the rotated token was persisted"
    );
    // (Within the second of the sign-in the new access token may equal the old one
    // byte for byte: same claims, same `iat`. What matters is whose it is.)
    assert_eq!(
        tokens,
        HashSet::from([saved.access_token.expose().to_string()]),
        "everyone got the refreshed session's token"
    );
    assert!(saved.expires_at > chrono::Utc::now().timestamp());
    let user = auth(&sandbox)
        .user(&saved.access_token)
        .await
        .expect("the new token works");
    assert_eq!(user.email.as_deref(), Some(address.as_str()));
}

#[tokio::test]
async fn a_reused_refresh_token_ends_the_session_for_its_owner() {
    let sandbox = TestSandbox::start_with(|o| o.refresh_reuse_interval = 0.0).await;
    let store = Arc::new(MemoryStore::default());
    signed_in(&sandbox, store.clone()).await;
    let stolen = store
        .load()
        .expect("loads")
        .expect("a session")
        .refresh_token;
    let owner = SessionOwner::new(auth(&sandbox), store.clone()).expect("an owner");
    owner.refresh_now().await.expect("first rotation");
    owner.refresh_now().await.expect("second rotation");

    // Someone replays the first token: the server revokes the whole session.
    let replay = auth(&sandbox)
        .refresh(&stolen)
        .await
        .expect_err("reuse is refused");
    assert_eq!(replay.server_code(), Some("refresh_token_already_used"));

    let mut state = owner.watch();
    let ended = owner
        .refresh_now()
        .await
        .expect_err("the owner's session is over");
    assert!(matches!(ended, Error::SessionEnded(_)), "{ended:?}");
    assert_eq!(ended.code(), ErrorCode::AuthExpired);
    assert!(matches!(
        *state.borrow_and_update(),
        SessionState::Ended { .. }
    ));
    assert!(
        store.load().expect("loads").is_none(),
        "the dead session is forgotten"
    );
    assert!(matches!(
        owner.access_token().await,
        Err(Error::SessionEnded(_))
    ));
}

#[tokio::test]
async fn the_session_file_is_private_survives_a_restart_and_never_shows_its_tokens() {
    let sandbox = TestSandbox::start().await;
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("session.json");
    let (owner, address) = signed_in(&sandbox, Arc::new(FileStore::new(&path))).await;
    let mode = std::fs::metadata(&path)
        .expect("the file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "readable by its owner only");

    let stored = FileStore::new(&path)
        .load()
        .expect("loads")
        .expect("a session");
    for shown in [format!("{owner:?}"), format!("{stored:?}")] {
        assert!(!shown.contains(stored.access_token.expose()), "{shown}");
        assert!(!shown.contains(stored.refresh_token.expose()), "{shown}");
    }

    drop(owner);
    let restarted =
        SessionOwner::new(auth(&sandbox), Arc::new(FileStore::new(&path))).expect("an owner");
    assert_eq!(restarted.user().and_then(|u| u.email), Some(address));
    let token = restarted.access_token().await.expect("still signed in");
    assert!(auth(&sandbox).user(&token).await.is_ok());

    restarted
        .sign_out(SignOutScope::Local)
        .await
        .expect("signs out");
    assert!(!path.exists(), "signing out removes the file");
    assert_eq!(*restarted.watch().borrow(), SessionState::SignedOut);
    assert!(matches!(
        restarted.access_token().await,
        Err(Error::SignedOut)
    ));
    let refused = auth(&sandbox)
        .refresh(&stored.refresh_token)
        .await
        .expect_err("the server ended it too");
    assert_eq!(refused.code(), ErrorCode::AuthExpired);
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed_once_per_lifetime_not_at_once() {
    let sandbox = TestSandbox::start_with(|o| o.jwt_expiry = 4).await;
    let store = Arc::new(MemoryStore::default());
    let (owner, _) = signed_in(&sandbox, store).await;
    for _ in 0..20 {
        owner.access_token().await.expect("a token");
    }
    assert_eq!(
        owner.refresh_count(),
        0,
        "a fresh 4 s token is not refreshed straight away"
    );
}

#[tokio::test]
async fn wrong_credentials_and_bad_projects_give_clear_codes() {
    let sandbox = TestSandbox::start().await;
    let owner =
        SessionOwner::new(auth(&sandbox), Arc::new(MemoryStore::default())).expect("an owner");
    let wrong = owner
        .sign_in_with_password(&email("nobody"), "whatever")
        .await
        .expect_err("no such user");
    assert_eq!(wrong.server_code(), Some("invalid_credentials"));
    assert!(auth(&sandbox).check().await.is_ok());

    // The project's own anon key, its signature changed: well formed, but not the project's.
    let anon = &sandbox.status.anon_key;
    let forged = format!(
        "{}{}",
        &anon[..anon.len() - 4],
        if anon.ends_with("AAAA") {
            "BBBB"
        } else {
            "AAAA"
        }
    );
    let wrong_key = Project::new(&sandbox.status.api_url, &forged).expect("a project");
    let checked = AuthClient::new(wrong_key, reqwest::Client::new())
        .check()
        .await;
    assert!(
        checked.is_err(),
        "a key the project does not know is refused"
    );
    let service = Project::new(&sandbox.status.api_url, &sandbox.status.service_role_key)
        .expect_err("the service-role key never goes into a client");
    assert_eq!(service.code(), ErrorCode::Validation);
    let nowhere = Project::new("http://127.0.0.1:9", &sandbox.status.anon_key).expect("a project");
    let unreachable = AuthClient::new(nowhere, reqwest::Client::new())
        .check()
        .await
        .expect_err("nothing there");
    assert_eq!(unreachable.code(), ErrorCode::Network);
}
