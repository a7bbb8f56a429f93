//! One attempt's log on its way to the database: lines collected as the job prints
//! them, sent in batches by the job's own task (never one request per line), and
//! capped so neither memory nor the table grows without bound.

use std::{
    collections::VecDeque,
    convert::Infallible,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use chrono::Utc;
use tokio::sync::{Notify, broadcast};

use super::events::WorkerEvent;
use crate::{ErrorCode, JobsClient, LogLevel, LogLine, LogStream};

/// The most lines one attempt keeps; the table refuses more (see the job_logs
/// migration), save the marker saying how many were dropped.
pub const MAX_LINES: i32 = 10_000;
/// The most text one attempt keeps, in bytes.
pub const MAX_BYTES: usize = 1 << 20;
/// Longer lines are cut to this many characters (as the table does).
pub const MAX_LINE_CHARS: usize = 4096;
/// How long lines wait to be sent, at most.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Lines per request.
const BATCH: usize = 500;
/// Lines kept for a failure's context.
const TAIL: usize = 20;

#[derive(Debug, Default)]
struct Buffer {
    /// Lines not yet stored.
    pending: Vec<LogLine>,
    next_seq: i32,
    bytes: usize,
    dropped: u64,
    /// The last lines of the attempt, for a failure's context.
    tail: VecDeque<String>,
    /// The lease is gone: nothing more is sent.
    closed: bool,
}

/// Where an attempt's lines go: the job functions, as the worker holding the lease,
/// and the worker's events.
#[derive(Debug, Clone)]
pub(crate) struct LogSink {
    pub(crate) jobs: JobsClient,
    pub(crate) worker: Arc<str>,
    pub(crate) events: broadcast::Sender<WorkerEvent>,
}

#[derive(Debug)]
pub(crate) struct AttemptLog {
    id: i64,
    attempt: i32,
    sink: Option<LogSink>,
    // Held only for short synchronous sections, never across an await.
    buffer: Mutex<Buffer>,
    lines: Notify,
}

impl AttemptLog {
    /// The log of job `id`'s attempt `attempt`, sent to `sink` (kept only in memory
    /// without one, as in tests of the cap).
    pub(crate) fn new(id: i64, attempt: i32, sink: Option<LogSink>) -> Arc<Self> {
        Arc::new(Self {
            id,
            attempt,
            sink,
            buffer: Mutex::new(Buffer::default()),
            lines: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a line; past the cap it is only counted.
    pub(crate) fn push(&self, stream: LogStream, level: LogLevel, line: &str) {
        let line = cut(line.trim_end_matches(['\r', '\n']));
        let mut buffer = self.lock();
        if buffer.tail.len() == TAIL {
            buffer.tail.pop_front();
        }
        buffer.tail.push_back(line.clone());
        if buffer.next_seq >= MAX_LINES || buffer.bytes + line.len() > MAX_BYTES {
            buffer.dropped += 1;
            return;
        }
        buffer.bytes += line.len();
        let seq = buffer.next_seq;
        buffer.next_seq += 1;
        buffer.pending.push(LogLine {
            attempt: self.attempt,
            seq,
            at: Utc::now(),
            stream,
            level,
            line,
        });
        if buffer.pending.len() >= BATCH {
            self.lines.notify_one();
        }
    }

    /// The attempt's last lines, oldest first.
    pub(crate) fn tail(&self, lines: usize) -> Vec<String> {
        let buffer = self.lock();
        let skip = buffer.tail.len().saturating_sub(lines);
        buffer.tail.iter().skip(skip).cloned().collect()
    }

    /// Sends lines as they come, every [`FLUSH_EVERY`] or each full batch; never
    /// returns (the job's task drops it when the attempt ends, then calls
    /// [`AttemptLog::finish`]).
    pub(super) async fn keep_sending(&self) -> Infallible {
        loop {
            tokio::select! {
                () = self.lines.notified() => {}
                () = tokio::time::sleep(FLUSH_EVERY) => {}
            }
            self.send().await;
        }
    }

    /// The attempt ended: the marker for dropped lines, then everything left.
    pub(super) async fn finish(&self) {
        {
            let mut buffer = self.lock();
            if buffer.dropped > 0 {
                let line = format!(
                    "{} lines dropped: an attempt keeps at most {MAX_LINES} lines and {} MiB",
                    buffer.dropped,
                    MAX_BYTES >> 20
                );
                let seq = buffer.next_seq;
                buffer.next_seq += 1;
                buffer.dropped = 0;
                buffer.pending.push(LogLine {
                    attempt: self.attempt,
                    seq,
                    at: Utc::now(),
                    stream: LogStream::Log,
                    level: LogLevel::Warn,
                    line,
                });
            }
        }
        // A few tries while Supabase cannot be reached; the outcome matters more.
        for _ in 0..3 {
            if self.send().await {
                return;
            }
            tokio::time::sleep(FLUSH_EVERY).await;
        }
    }

    /// Sends what is pending, batch by batch; false if some is left (Supabase could
    /// not be reached). A batch stays pending until stored, and is stored once however
    /// often it is sent.
    async fn send(&self) -> bool {
        let Some(sink) = &self.sink else { return true };
        loop {
            let batch: Vec<LogLine> = {
                let buffer = self.lock();
                if buffer.closed || buffer.pending.is_empty() {
                    return true;
                }
                buffer.pending.iter().take(BATCH).cloned().collect()
            };
            let sent = sink
                .jobs
                .append_logs(self.id, &sink.worker, self.attempt, &batch)
                .await;
            match sent {
                Ok(_) => {
                    self.lock().pending.drain(..batch.len());
                    // Nobody listening is fine.
                    let _ = sink.events.send(WorkerEvent::JobLog {
                        id: self.id,
                        lines: batch,
                    });
                }
                Err(error) if error.code() == ErrorCode::Network => return false,
                Err(error) => {
                    // The lease is gone (JD002) or the lines were refused: the lines
                    // cannot be stored, and holding them would only grow memory.
                    tracing::debug!(%error, job = self.id, "appending log lines");
                    let mut buffer = self.lock();
                    buffer.pending.clear();
                    buffer.closed = error.server_code() == Some("JD002");
                    return true;
                }
            }
        }
    }
}

/// `line` cut to [`MAX_LINE_CHARS`] characters.
fn cut(line: &str) -> String {
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((at, _)) => line[..at].to_string(),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_holds_at_most_its_cap_however_much_is_printed() {
        let log = AttemptLog::new(1, 1, None);
        let line = "y".repeat(200);
        for _ in 0..100_000 {
            log.push(LogStream::Stdout, LogLevel::Info, &line);
        }
        let buffer = log.lock();
        let bytes: usize = buffer.pending.iter().map(|l| l.line.len()).sum();
        assert!(bytes <= MAX_BYTES, "{bytes} bytes held");
        assert_eq!(buffer.pending.len(), MAX_BYTES / 200);
        assert_eq!(buffer.dropped as usize, 100_000 - MAX_BYTES / 200);
        assert_eq!(buffer.tail.len(), TAIL, "and a short tail for the failure");
    }
}
