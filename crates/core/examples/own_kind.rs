//! A worker binary with a kind of its own: the way to embed Jobdeck's runtime in a Rust
//! program. It signs in with a password, then runs `shout` jobs (and the built-in ones)
//! until Ctrl-C.
//!
//! ```sh
//! SUPABASE_URL=http://127.0.0.1:54321 SUPABASE_ANON_KEY=... \
//!   EMAIL=ada@example.com PASSWORD=... cargo run -p jobdeck-core --example own_kind
//! ```

use std::{sync::Arc, time::Duration};

use jobdeck_core::{
    AuthClient, JobsClient, MemoryStore, Project, SessionOwner,
    kinds::builtin,
    worker::{JobContext, JobError, JobKind, Worker, WorkerConfig},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Upper-cases a text. Its input type gives the form and the validation.
struct Shout;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ShoutInput {
    /// What to shout.
    text: String,
}

#[derive(Serialize)]
struct Shouted {
    text: String,
}

impl JobKind for Shout {
    const NAME: &'static str = "shout";
    const DESCRIPTION: &'static str = "Upper-cases a text.";
    type Input = ShoutInput;
    type Output = Shouted;

    async fn run(&self, input: ShoutInput, ctx: JobContext) -> Result<Shouted, JobError> {
        ctx.log(
            jobdeck_core::LogLevel::Info,
            &format!("shouting {} characters", input.text.len()),
        );
        ctx.progress(1.0, Some("done")).await;
        Ok(Shouted {
            text: input.text.to_uppercase(),
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let project = Project::new(&var("SUPABASE_URL")?, &var("SUPABASE_ANON_KEY")?)?;
    let session = SessionOwner::new(
        AuthClient::connect(project.clone()),
        Arc::new(MemoryStore::default()),
    )?;
    session
        .sign_in_with_password(&var("EMAIL")?, &var("PASSWORD")?)
        .await?;
    let jobs = JobsClient::new(&project, session);
    let registry = builtin().register(Shout);
    let worker = Worker::new(
        WorkerConfig::new(WorkerConfig::unique_name("example")),
        registry,
        jobs,
    )
    .start();
    println!("running shout jobs; Ctrl-C to stop");
    jobdeck_core::signals::termination().await;
    worker.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
