//! The built-in job kinds: small, but each shows something the system does.

use std::{collections::BTreeMap, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    JobStatus,
    worker::{JobContext, JobError, JobKind, Registry},
};

/// Every built-in kind.
pub fn builtin() -> Registry {
    Registry::new()
        .register(Hello)
        .register(Sleep)
        .register(Flaky)
        .register(Summarize)
}

/// The original example: greets someone.
#[derive(Debug, Clone, Copy)]
pub struct Hello;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HelloInput {
    /// Who to greet.
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct Greeting {
    pub greeting: String,
}

impl JobKind for Hello {
    const NAME: &'static str = "hello";
    const DESCRIPTION: &'static str = "Greets someone by name.";
    type Input = HelloInput;
    type Output = Greeting;

    async fn run(&self, input: HelloInput, ctx: JobContext) -> Result<Greeting, JobError> {
        let greeting = format!("Hello, {}!", input.name);
        tracing::info!(job = ctx.job.id, %greeting, "hello");
        Ok(Greeting { greeting })
    }
}

/// Takes its time: reports progress every second and stops when asked. Long enough
/// to outlive several access tokens.
#[derive(Debug, Clone, Copy)]
pub struct Sleep;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepInput {
    /// How long to run, in seconds (at most a day).
    #[schemars(range(min = 0, max = 86400))]
    pub seconds: u32,
}

#[derive(Debug, Serialize)]
pub struct Slept {
    pub slept_seconds: u32,
}

impl JobKind for Sleep {
    const NAME: &'static str = "sleep";
    const DESCRIPTION: &'static str =
        "Runs for a number of seconds, reporting progress; can be cancelled.";
    type Input = SleepInput;
    type Output = Slept;

    async fn run(&self, input: SleepInput, ctx: JobContext) -> Result<Slept, JobError> {
        if input.seconds > 86_400 {
            return Err(
                JobError::permanent("seconds must be at most 86400").with_code("invalid_input")
            );
        }
        for second in 0..input.seconds {
            tokio::select! {
                () = ctx.cancelled() => return Err(JobError::retry("cancelled").with_code("cancelled")),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let done = (second + 1) as f32 / input.seconds as f32;
            ctx.progress(
                done,
                Some(&format!("{} of {} s", second + 1, input.seconds)),
            )
            .await;
        }
        Ok(Slept {
            slept_seconds: input.seconds,
        })
    }
}

/// Fails its first `fail_times` attempts, then succeeds: retries, backoff and the
/// failure history at work.
#[derive(Debug, Clone, Copy)]
pub struct Flaky;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlakyInput {
    /// How many attempts fail before one succeeds.
    pub fail_times: u32,
}

#[derive(Debug, Serialize)]
pub struct FlakyOutput {
    pub succeeded_on_attempt: i32,
}

impl JobKind for Flaky {
    const NAME: &'static str = "flaky";
    const DESCRIPTION: &'static str = "Fails a given number of attempts, then succeeds.";
    type Input = FlakyInput;
    type Output = FlakyOutput;

    async fn run(&self, input: FlakyInput, ctx: JobContext) -> Result<FlakyOutput, JobError> {
        let attempt = ctx.job.attempt;
        if attempt <= input.fail_times as i32 {
            return Err(JobError::retry(format!(
                "failing on purpose: attempt {attempt} of {} planned failures",
                input.fail_times
            ))
            .with_code("planned_failure"));
        }
        Ok(FlakyOutput {
            succeeded_on_attempt: attempt,
        })
    }
}

/// Reads the user's own jobs through the REST API, as the user: row-level security
/// shows it only theirs, never anyone else's.
#[derive(Debug, Clone, Copy)]
pub struct Summarize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SummarizeInput {}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub total: u64,
    pub by_status: BTreeMap<JobStatus, u64>,
}

impl JobKind for Summarize {
    const NAME: &'static str = "summarize";
    const DESCRIPTION: &'static str = "Counts your jobs by state, reading them as you.";
    type Input = SummarizeInput;
    type Output = Summary;

    async fn run(&self, _input: SummarizeInput, ctx: JobContext) -> Result<Summary, JobError> {
        let by_status = ctx.jobs.counts().await?;
        Ok(Summary {
            total: by_status.values().sum(),
            by_status,
        })
    }
}
