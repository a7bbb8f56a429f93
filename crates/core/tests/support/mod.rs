//! Signed-in clients against a real sandbox, shared by the core's test files.

#![allow(dead_code)]

use std::sync::Arc;

use jobdeck_core::{AuthClient, JobsClient, MemoryStore, NewJob, Project, SessionOwner};
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

pub fn new_job(kind: &str, context: Value) -> NewJob {
    NewJob {
        kind: kind.into(),
        context,
        ..NewJob::default()
    }
}
