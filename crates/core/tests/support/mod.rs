//! Signed-in clients against a real sandbox, shared by the core's test files.

#![allow(dead_code)]

use std::sync::Arc;

use jobdeck_core::{
    AuthClient, JobsClient, MemoryStore, NewJob, Project, Secret, SessionOwner, SessionStore,
};
use jobdeck_sandbox::testing::{TestSandbox, email};
use serde_json::Value;

pub fn project(sandbox: &TestSandbox) -> Project {
    Project::new(&sandbox.status.api_url, &sandbox.status.anon_key).expect("a project")
}

pub fn auth(sandbox: &TestSandbox) -> AuthClient {
    AuthClient::new(project(sandbox), reqwest::Client::new())
}

/// A new user, signed in; answers the jobs client acting as them and their address.
pub async fn signed_in(sandbox: &TestSandbox) -> (JobsClient, String) {
    let owner =
        SessionOwner::new(auth(sandbox), Arc::new(MemoryStore::default())).expect("an owner");
    let address = email("user");
    sandbox.sign_up(&address, "correct horse").await;
    owner
        .sign_in_with_password(&address, "correct horse")
        .await
        .expect("signs in");
    (JobsClient::new(&project(sandbox), owner), address)
}

/// A second session of `address` (password "correct horse") whose stored access token
/// the server refuses (its signature no longer verifies, as after the project's JWT
/// secret rotated) though the owner holds it as valid for an hour.
pub async fn signed_in_with_a_refused_token(
    sandbox: &TestSandbox,
    address: &str,
) -> (JobsClient, Arc<SessionOwner>) {
    let store = Arc::new(MemoryStore::default());
    let owner = SessionOwner::new(auth(sandbox), store.clone()).expect("an owner");
    owner
        .sign_in_with_password(address, "correct horse")
        .await
        .expect("signs in");
    let mut session = store.load().expect("loads").expect("a session");
    let token = session.access_token.expose().to_string();
    let (signed, _) = token.rsplit_once('.').expect("a JWT");
    session.access_token = Secret::new(format!("{signed}.{}", "A".repeat(43)));
    let refused = Arc::new(MemoryStore::default());
    refused.save(Some(&session)).expect("saves");
    let owner = SessionOwner::new(auth(sandbox), refused).expect("an owner");
    (
        JobsClient::new(&project(sandbox), Arc::clone(&owner)),
        owner,
    )
}

pub fn new_job(kind: &str, context: Value) -> NewJob {
    NewJob {
        kind: kind.into(),
        context,
        ..NewJob::default()
    }
}
