//! Jobdeck's core: everything the desktop app and the CLI do, with no Tauri in it.
//!
//! # Layout
//! - [`project`]: which Supabase project, and how its API key travels.
//! - [`auth`]: the Auth client ([`auth::client`]), the session owner
//!   ([`auth::session`]), which alone holds the refresh token, and sign-in through
//!   OAuth providers ([`auth::oauth`]).
//! - [`jobs`]: the user's jobs over the REST API, every job function, their schedules
//!   and paused kinds, their retention policy and activity figures, and
//!   [`jobs::feed`], the changes made to them anywhere.
//! - [`realtime`]: Supabase Realtime's pushed changes, heard as the user.
//! - [`schedules`]: recurring schedules' expressions and which tick a worker runs.
//! - [`worker`]: job kinds, their registry, and the worker that runs them in
//!   background tasks; [`kinds`]: the built-in kinds.
//! - [`error`]: one error type and the codes the UI and the CLI branch on; `response`
//!   reads Supabase's answers into values or those errors.
//! - [`signals`]: the signals that end a Jobdeck process cleanly.
//!
//! Everything runs as the signed-in user: the database's row-level security, not this
//! crate, decides what the user may see and change.

pub mod auth;
pub mod error;
pub mod jobs;
pub mod kinds;
pub mod project;
pub mod realtime;
mod response;
pub mod schedules;
pub mod signals;
pub mod worker;

pub use auth::{
    client::{AuthClient, Factor, Session, SignOutScope, SignUp, TotpEnrollment, User},
    keychain::KeychainStore,
    oauth::{EmailLinkFlow, OAuthFlow},
    session::{FileStore, MemoryStore, SessionOwner, SessionState, SessionStore},
};
pub use error::{Error, ErrorBody, ErrorCode};
pub use jobs::{
    Activity, ActivityBucket, ActivitySpan, Attempt, AttemptOutcome, BulkAction, ChangeFeed,
    FeedUpdate, Job, JobFailure, JobFilter, JobStatus, JobsClient, KindActivity, LiveFeed,
    LogLevel, LogLine, LogStream, NewJob, Page, PausedKind, RetentionPolicy, ScheduleSummary,
};
pub use project::{ApiKey, Project, Secret};
pub use schedules::{OnMissed, Schedule, ScheduleSpec};
