//! Each attempt's log (`public.job_logs`): appended by the worker holding the lease in
//! batches, read by the job's owner.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::JobsClient;
use crate::Error;

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// A program's standard output (lines that are not messages).
    Stdout,
    /// A program's standard error.
    Stderr,
    /// A log call or message: a kind's `JobContext::log`, a program's `{"log": ...}`,
    /// or the worker's own notes (lines dropped).
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// A level as programs write it (`warning` and `err` included); `None` if unknown.
    pub fn parse(level: &str) -> Option<Self> {
        Some(match level.to_ascii_lowercase().as_str() {
            "debug" | "trace" => Self::Debug,
            "info" | "notice" => Self::Info,
            "warn" | "warning" => Self::Warn,
            "error" | "err" | "fatal" | "critical" => Self::Error,
            _ => return None,
        })
    }
}

/// One line of an attempt's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LogLine {
    pub attempt: i32,
    /// Its place in the attempt's log, from 0.
    pub seq: i32,
    pub at: DateTime<Utc>,
    pub stream: LogStream,
    pub level: LogLevel,
    pub line: String,
}

/// The most lines one request reads; [`JobsClient::logs`] pages past it.
const PAGE: usize = 1000;

impl JobsClient {
    /// Appends lines to the log of the attempt job `id` is running under `worker`'s
    /// lease (JD002 once the lease is gone). Lines already stored are skipped, so a
    /// batch may be sent again.
    pub async fn append_logs(
        &self,
        id: i64,
        worker: &str,
        attempt: i32,
        lines: &[LogLine],
    ) -> Result<u32, Error> {
        let lines: Vec<_> = lines
            .iter()
            .map(|l| json!({ "seq": l.seq, "at": l.at, "stream": l.stream, "level": l.level, "line": l.line }))
            .collect();
        self.rpc(
            "append_job_logs",
            json!({ "id": id, "worker": worker, "attempt": attempt, "lines": lines }),
        )
        .await
    }

    /// Job `id`'s log lines after `after` (a seq; `None` from the start), oldest
    /// first: of one attempt, or of every attempt in order.
    pub async fn logs(
        &self,
        id: i64,
        attempt: Option<i32>,
        after: Option<(i32, i32)>,
    ) -> Result<Vec<LogLine>, Error> {
        let mut lines: Vec<LogLine> = Vec::new();
        let mut after = after;
        loop {
            let mut builder = self
                .rest
                .from("job_logs")
                .select("attempt,seq,at,stream,level,line")
                .eq("job_id", id.to_string())
                .order("attempt.asc,seq.asc")
                .limit(PAGE);
            if let Some(attempt) = attempt {
                builder = builder.eq("attempt", attempt.to_string());
            }
            if let Some((attempt, seq)) = after {
                builder = builder.or(format!(
                    "attempt.gt.{attempt},and(attempt.eq.{attempt},seq.gt.{seq})"
                ));
            }
            let (page, _): (Vec<LogLine>, _) = self.send(builder).await?;
            let full = page.len() == PAGE;
            after = page.last().map(|l| (l.attempt, l.seq));
            lines.extend(page);
            if !full {
                return Ok(lines);
            }
        }
    }
}
