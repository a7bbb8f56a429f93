// The jobs on screen and how changes apply to them. Pure functions, unit-tested.

import type { Job, JobFilter, JobStatus, ScheduleSummary } from "./bindings";
import { millis } from "./format";

export const PAGE_SIZE = 50;

export function emptyFilter(): JobFilter {
  return { statuses: [], kind: null, search: null, limit: PAGE_SIZE, offset: 0, before: null };
}

/** Whether `job` belongs in a list filtered by `filter` (the server's rules, mirrored
 *  so a live change can be placed without asking again). */
export function matches(filter: JobFilter, job: Job): boolean {
  if (filter.statuses.length > 0 && !filter.statuses.includes(job.status)) return false;
  if (filter.kind && job.kind !== filter.kind) return false;
  const search = filter.search?.trim().replace(/\*/g, "");
  if (search) {
    const byKind = job.kind.toLowerCase().includes(search.toLowerCase());
    const byId = /^-?\d+$/.test(search) && job.id === Number(search);
    if (!byKind && !byId) return false;
  }
  if (filter.before !== null && job.id >= filter.before) return false;
  return true;
}

function newer(a: Job, b: Job): boolean {
  return millis(a.updated_at) >= millis(b.updated_at);
}

/**
 * Applies new versions of jobs to a page: a job on the page is replaced by a newer
 * version (and leaves if it no longer matches); a job not on the page joins the first
 * page when it matches and is newer than the page's oldest row. The page stays sorted
 * newest first and at most `limit` long. Answers the new page and how many jobs joined.
 */
export function applyChanges(
  page: Job[],
  changed: Job[],
  filter: JobFilter,
): { jobs: Job[]; joined: number } {
  const byId = new Map(page.map((job) => [job.id, job]));
  let joined = 0;
  for (const job of changed) {
    const current = byId.get(job.id);
    if (current) {
      if (!newer(job, current)) continue;
      if (matches(filter, job)) byId.set(job.id, job);
      else byId.delete(job.id);
    } else if (filter.before === null && matches(filter, job)) {
      const oldest = Math.min(...[...byId.keys()]);
      if (byId.size < filter.limit || job.id > oldest) {
        byId.set(job.id, job);
        joined += 1;
      }
    }
  }
  const jobs = [...byId.values()].sort((a, b) => b.id - a.id).slice(0, filter.limit);
  return { jobs, joined };
}

/** The page without the deleted jobs, and how many of them it showed. */
export function removeJobs(page: Job[], deleted: number[]): { jobs: Job[]; removed: number } {
  const gone = new Set(deleted);
  const jobs = page.filter((job) => !gone.has(job.id));
  return { jobs, removed: page.length - jobs.length };
}

/** A running job's progress, between row updates. */
export function applyProgress(
  page: Job[],
  id: number,
  progress: number,
  message: string | null,
): Job[] {
  return page.map((job) =>
    job.id === id && job.status === "running"
      ? { ...job, progress, progress_message: message }
      : job,
  );
}

export const STATUSES: JobStatus[] = ["waiting", "running", "finished", "failed", "cancelled"];

/** What the user may do to a job in its state. */
export function actionsFor(job: Job): Array<"cancel" | "retry" | "runAgain" | "edit" | "delete"> {
  const actions: Array<"cancel" | "retry" | "runAgain" | "edit" | "delete"> = [];
  if (job.status === "waiting" || (job.status === "running" && !job.cancel_requested_at)) {
    actions.push("cancel");
  }
  if (job.status === "failed" || job.status === "cancelled") actions.push("retry");
  actions.push("runAgain", "edit");
  if (job.status !== "running") actions.push("delete");
  return actions;
}

/** Newer versions of jobs applied to the schedules' last jobs: a schedule's last job
 *  is replaced by its newer version, and a newer job made by the schedule takes its
 *  place (a tick or "run now" seen before the schedule is read again). */
export function applyToSchedules(summaries: ScheduleSummary[], changed: Job[]): ScheduleSummary[] {
  let touched = false;
  const next = summaries.map((summary) => {
    let last = summary.last_job;
    for (const job of changed) {
      if (job.schedule_id !== summary.schedule.id) continue;
      const replaces = last === null || job.id > last.id || (job.id === last.id && newer(job, last));
      if (replaces) last = job;
    }
    if (last === summary.last_job) return summary;
    touched = true;
    return { ...summary, last_job: last };
  });
  return touched ? next : summaries;
}

/** A schedule's history (its jobs, newest first) with newer versions of its jobs. */
export function applyToHistory(history: Job[], changed: Job[], scheduleId: number): Job[] {
  const mine = changed.filter((job) => job.schedule_id === scheduleId);
  if (mine.length === 0) return history;
  const byId = new Map(history.map((job) => [job.id, job]));
  for (const job of mine) {
    const current = byId.get(job.id);
    if (!current || newer(job, current)) byId.set(job.id, job);
  }
  return [...byId.values()].sort((a, b) => b.id - a.id);
}
