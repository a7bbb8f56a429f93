//! The completer: successes written in batches. Jobs that succeed while one batch is
//! being written wait and go together in the next: one request per batch rather than
//! per job, which is what lets a busy worker keep up. A lone success is written at
//! once, in a call of its own.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

use crate::{Error, Job, JobsClient};

const MAX_BATCH: usize = 1000;

/// A success waiting to be written with others.
#[derive(Debug)]
struct Completion {
    id: i64,
    result: Value,
    written: oneshot::Sender<Result<Option<Job>, Error>>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Completion>,
    /// A writer task is running; it takes what is queued until nothing is.
    writing: bool,
}

#[derive(Debug)]
pub(super) struct Completer {
    jobs: JobsClient,
    worker: String,
    // Held only for short synchronous sections, never across an await.
    queue: Mutex<Queue>,
}

impl Completer {
    pub(super) fn new(jobs: JobsClient, worker: String) -> Self {
        Self {
            jobs,
            worker,
            queue: Mutex::default(),
        }
    }

    /// Records a success and answers the finished job, or `None` if the lease was
    /// lost. The writer, when one has to start, runs in `tasks`.
    pub(super) async fn finish(
        self: &Arc<Self>,
        tasks: &TaskTracker,
        id: i64,
        result: Value,
    ) -> Result<Option<Job>, Error> {
        let (written, answer) = oneshot::channel();
        let start_writer = {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.waiting.push(Completion {
                id,
                result,
                written,
            });
            !std::mem::replace(&mut queue.writing, true)
        };
        if start_writer {
            tasks.spawn(Arc::clone(self).write());
        }
        answer.await.unwrap_or_else(|_| {
            Err(Error::Protocol {
                url: String::new(),
                reason: "the job's success was not written".into(),
            })
        })
    }

    /// Writes queued successes in batches until none is left.
    async fn write(self: Arc<Self>) {
        loop {
            let batch: Vec<Completion> = {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                if queue.waiting.is_empty() {
                    queue.writing = false;
                    return;
                }
                let take = queue.waiting.len().min(MAX_BATCH);
                queue.waiting.drain(..take).collect()
            };
            let done: Vec<(i64, &Value)> = batch.iter().map(|c| (c.id, &c.result)).collect();
            match self.jobs.finish_many(&self.worker, &done).await {
                Ok(jobs) => {
                    let mut finished: HashMap<i64, Job> =
                        jobs.into_iter().map(|job| (job.id, job)).collect();
                    for completion in batch {
                        let _ = completion.written.send(Ok(finished.remove(&completion.id)));
                    }
                }
                Err(error) => {
                    for completion in batch {
                        let _ = completion.written.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}
