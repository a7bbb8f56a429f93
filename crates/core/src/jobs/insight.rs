//! What the user keeps and what their jobs did: the retention policy (table
//! `retention_policies`, functions `set_retention` and `apply_retention`) and the
//! activity figures (function `job_activity`), counted in the database.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::JobsClient;
use crate::Error;

/// How long the user keeps their ended jobs; every limit is optional, and a job either
/// limit names is removed by the user's workers. Waiting and running jobs always stay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RetentionPolicy {
    /// Ended jobs older than this many days go.
    pub keep_days: Option<u32>,
    /// Of each kind, only this many ended jobs (the last enqueued) stay.
    pub keep_last: Option<u32>,
}

impl RetentionPolicy {
    pub const MAX_DAYS: u32 = 36_500;
    pub const MAX_LAST: u32 = 10_000_000;

    /// Keeps everything.
    pub fn is_empty(&self) -> bool {
        self.keep_days.is_none() && self.keep_last.is_none()
    }

    /// Refuses limits the database would refuse, before asking it.
    pub fn check(&self) -> Result<(), Error> {
        if self
            .keep_days
            .is_some_and(|d| !(1..=Self::MAX_DAYS).contains(&d))
        {
            return Err(Error::Invalid(format!(
                "keep days must be between 1 and {}",
                Self::MAX_DAYS
            )));
        }
        if self
            .keep_last
            .is_some_and(|n| !(1..=Self::MAX_LAST).contains(&n))
        {
            return Err(Error::Invalid(format!(
                "keep last must be between 1 and {}",
                Self::MAX_LAST
            )));
        }
        Ok(())
    }
}

impl fmt::Display for RetentionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.keep_days, self.keep_last) {
            (None, None) => f.write_str("keep every job"),
            (Some(days), None) => write!(f, "keep ended jobs {days} days"),
            (None, Some(last)) => write!(f, "keep the last {last} ended jobs of each kind"),
            (Some(days), Some(last)) => write!(
                f,
                "keep ended jobs {days} days, and at most the last {last} of each kind"
            ),
        }
    }
}

/// The span an activity chart covers: an hour by minute, a day or a week by hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ActivitySpan {
    #[default]
    Hour,
    Day,
    Week,
}

impl ActivitySpan {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivitySpan::Hour => "hour",
            ActivitySpan::Day => "day",
            ActivitySpan::Week => "week",
        }
    }
}

/// One bucket of a chart: what ended in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ActivityBucket {
    pub at: DateTime<Utc>,
    pub finished: u64,
    pub failed: u64,
    /// Attempts that ended and were tried again (a retry, or a lost lease).
    pub retried: u64,
}

/// One kind's jobs that finished or failed in the span, and how long they ran (their
/// last attempt, in milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KindActivity {
    pub kind: String,
    pub finished: u64,
    pub failed: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// What the user's jobs did over a span, as `job_activity` counts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Activity {
    pub span: ActivitySpan,
    pub bucket_seconds: u32,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Oldest first, every bucket of the span (empty ones too).
    pub buckets: Vec<ActivityBucket>,
    /// By kind name.
    pub kinds: Vec<KindActivity>,
}

impl JobsClient {
    /// The user's retention policy (empty: they keep everything).
    pub async fn retention(&self) -> Result<RetentionPolicy, Error> {
        let builder = self
            .rest
            .from("retention_policies")
            .select("keep_days,keep_last");
        let (rows, _): (Vec<RetentionPolicy>, _) = self.send(builder).await?;
        Ok(rows.into_iter().next().unwrap_or_default())
    }

    /// Sets the user's retention policy (an empty one clears it); their workers apply
    /// it in the background.
    pub async fn set_retention(&self, policy: &RetentionPolicy) -> Result<RetentionPolicy, Error> {
        policy.check()?;
        let _: serde_json::Value = self
            .rpc(
                "set_retention",
                json!({ "keep_days": policy.keep_days, "keep_last": policy.keep_last }),
            )
            .await?;
        Ok(*policy)
    }

    /// Removes at most `batch` jobs the user's policy says to remove; answers how many.
    pub async fn apply_retention(&self, batch: u32) -> Result<u64, Error> {
        self.rpc("apply_retention", json!({ "batch": batch })).await
    }

    /// What the user's jobs did over `span`.
    pub async fn activity(&self, span: ActivitySpan) -> Result<Activity, Error> {
        self.rpc("job_activity", json!({ "span": span.as_str() }))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::RetentionPolicy;

    #[test]
    fn a_policy_out_of_range_is_refused_before_asking_the_database() {
        let fine = RetentionPolicy {
            keep_days: Some(30),
            keep_last: Some(1000),
        };
        assert!(fine.check().is_ok());
        for bad in [
            RetentionPolicy {
                keep_days: Some(0),
                ..fine
            },
            RetentionPolicy {
                keep_last: Some(0),
                ..fine
            },
            RetentionPolicy {
                keep_days: Some(RetentionPolicy::MAX_DAYS + 1),
                ..fine
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        assert!(RetentionPolicy::default().is_empty());
    }
}
