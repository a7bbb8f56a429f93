// A job as the app sends it, for the UI's tests.

import type { Job } from "../src/bindings";

export function job(id: number, patch: Partial<Job> = {}): Job {
  return {
    id, uuid: "u", kind: "hello", status: "waiting", context: {}, result: null, error: null,
    history: [], progress: null, progress_message: null, attempt: 0, max_attempts: 3,
    priority: 0, run_at: "2026-11-28T10:00:00+00:00", locked_by: null, locked_until: null,
    cancel_requested_at: null, idempotency_key: null, schedule_id: null, created_at: "2026-11-28T10:00:00+00:00",
    started_at: null, ended_at: null, updated_at: `2026-11-28T10:00:0${id % 10}.000001+00:00`,
    ...patch,
  };
}
