//! Changes to the user's jobs made anywhere (this app, the CLI, another device), read
//! by polling `updated_at`.
//!
//! `updated_at` is stamped when a row is written, but the row becomes visible only when
//! its transaction commits, which can be after a later stamp was already read. So each
//! poll reads again a short window behind its cursor and drops the versions it has
//! already delivered: a change is delivered once, and never skipped as long as its
//! transaction took less than the window.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Job, JobsClient};
use crate::Error;

/// How far behind the cursor each poll reads again.
const OVERLAP: TimeDelta = TimeDelta::seconds(5);
/// Rows per request; a poll that fills a page reads the next at once.
const PAGE: usize = 500;

#[derive(Debug)]
pub struct ChangeFeed {
    jobs: JobsClient,
    cursor: DateTime<Utc>,
    /// Versions delivered within the overlap window: job id → its `updated_at`.
    delivered: HashMap<i64, DateTime<Utc>>,
}

impl ChangeFeed {
    /// A feed of changes made after `since` (normally: when the snapshot was read,
    /// less a little, since a change seen twice is harmless and one missed is not).
    pub fn new(jobs: JobsClient, since: DateTime<Utc>) -> Self {
        Self {
            jobs,
            cursor: since,
            delivered: HashMap::new(),
        }
    }

    /// Every change not delivered yet, oldest first (one version per job: its newest).
    pub async fn poll(&mut self) -> Result<Vec<Job>, Error> {
        let mut changed: Vec<Job> = Vec::new();
        let mut from = self.cursor - OVERLAP;
        loop {
            let page = self.jobs.changed_since(from, PAGE).await?;
            let full = page.len() == PAGE;
            for job in page {
                from = from.max(job.updated_at);
                if self.delivered.get(&job.id) == Some(&job.updated_at) {
                    continue;
                }
                self.cursor = self.cursor.max(job.updated_at);
                self.delivered.insert(job.id, job.updated_at);
                changed.retain(|seen| seen.id != job.id);
                changed.push(job);
            }
            // A full page could end inside a run of equal stamps; the rest of that run
            // is read by the next poll, which starts a window behind.
            if !full {
                break;
            }
        }
        let horizon = self.cursor - OVERLAP;
        self.delivered.retain(|_, at| *at >= horizon);
        Ok(changed)
    }
}
