//! Signed-in clients against a real sandbox, shared by the core's test files.

#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use jobdeck_core::{
    AuthClient, JobsClient, MemoryStore, NewJob, Project, Secret, SessionOwner, SessionStore,
    worker::{Registry, Worker, WorkerConfig, WorkerEvent, WorkerHandle},
};
use jobdeck_sandbox::testing::{TestSandbox, email};
use serde_json::Value;
use tokio::sync::broadcast::{Receiver, error::RecvError};

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

/// Another session of `address`'s user (password "correct horse"), as another
/// process or device has.
pub async fn second_session(sandbox: &TestSandbox, address: &str) -> JobsClient {
    let owner =
        SessionOwner::new(auth(sandbox), Arc::new(MemoryStore::default())).expect("an owner");
    owner
        .sign_in_with_password(address, "correct horse")
        .await
        .expect("signs in");
    JobsClient::new(&project(sandbox), owner)
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

pub const DEADLINE: Duration = Duration::from_secs(60);

/// The first event that `pick` accepts, within the deadline.
pub async fn until<T>(
    events: &mut Receiver<WorkerEvent>,
    pick: impl FnMut(&WorkerEvent) -> Option<T>,
) -> T {
    until_within(DEADLINE, events, pick).await
}

/// The first event that `pick` accepts, within `deadline`.
pub async fn until_within<T>(
    deadline: Duration,
    events: &mut Receiver<WorkerEvent>,
    mut pick: impl FnMut(&WorkerEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(deadline, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => panic!("the worker's events ended"),
            }
        }
    })
    .await
    .expect("the awaited event came before the deadline")
}

/// Waits until job `id` ends in a final state (or waits for a retry), answering it.
pub async fn settled(events: &mut Receiver<WorkerEvent>, id: i64) -> jobdeck_core::Job {
    until(events, |event| match event {
        WorkerEvent::JobUpdated { job } if job.id == id => Some(job.clone()),
        _ => None,
    })
    .await
}

pub async fn started(events: &mut Receiver<WorkerEvent>, id: i64) {
    until(events, |event| match event {
        WorkerEvent::JobStarted { job } if job.id == id => Some(()),
        _ => None,
    })
    .await;
}

pub fn start(jobs: &JobsClient, registry: Registry, config: WorkerConfig) -> WorkerHandle {
    Worker::new(config, registry, jobs.clone()).start()
}
