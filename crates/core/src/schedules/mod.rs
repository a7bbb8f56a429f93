//! Recurring schedules: a kind and its input made into a job at every tick of a cron
//! expression read in a time zone (see supabase/migrations/20261203000000_schedules.sql).
//!
//! The database keeps the schedules and decides which worker makes a tick's job (one,
//! however many race); this module reads the expressions ([`cron`]) and says, for a
//! schedule that is due, which tick to run and which comes next ([`cron::Firing`]).
//! The REST calls are [`crate::JobsClient`]'s; the worker's scheduler runs them.

pub mod cron;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use cron::{Cron, Firing, MISSED_AFTER};

/// What a schedule does after downtime, when ticks passed with no worker running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum OnMissed {
    /// One job for the latest tick missed, then on as usual.
    #[default]
    RunOnce,
    /// No job for a missed tick: wait for the next one.
    Skip,
}

/// A row of `public.schedules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Schedule {
    pub id: i64,
    pub name: String,
    pub kind: String,
    /// The input of every job it makes.
    pub context: Value,
    /// Five fields or an alias (`@hourly`).
    pub cron: String,
    /// An IANA time zone name.
    pub timezone: String,
    pub priority: i16,
    pub max_attempts: i32,
    pub enabled: bool,
    pub on_missed: OnMissed,
    /// The next tick; none until a client or worker computed it.
    pub next_run_at: Option<DateTime<Utc>>,
    /// The last tick that made a job.
    pub last_run_at: Option<DateTime<Utc>>,
    /// The last job it made (a tick's, or run now).
    pub last_job_id: Option<i64>,
    /// Why no worker can compute its ticks.
    pub problem: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the user writes when making or changing a schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ScheduleSpec {
    #[serde(default)]
    pub name: String,
    pub kind: String,
    #[serde(default = "empty_object")]
    pub context: Value,
    pub cron: String,
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default)]
    pub priority: i16,
    #[serde(default = "three")]
    pub max_attempts: i32,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub on_missed: OnMissed,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}
fn utc() -> String {
    "UTC".into()
}
fn three() -> i32 {
    3
}
fn yes() -> bool {
    true
}

impl ScheduleSpec {
    /// A schedule of `kind` at every tick of `cron`, in UTC, with the defaults.
    pub fn new(kind: impl Into<String>, cron: impl Into<String>) -> Self {
        Self {
            name: String::new(),
            kind: kind.into(),
            context: empty_object(),
            cron: cron.into(),
            timezone: utc(),
            priority: 0,
            max_attempts: three(),
            enabled: true,
            on_missed: OnMissed::default(),
        }
    }
}

impl From<&Schedule> for ScheduleSpec {
    fn from(s: &Schedule) -> Self {
        Self {
            name: s.name.clone(),
            kind: s.kind.clone(),
            context: s.context.clone(),
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            priority: s.priority,
            max_attempts: s.max_attempts,
            enabled: s.enabled,
            on_missed: s.on_missed,
        }
    }
}
