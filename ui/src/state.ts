// The jobs on screen and how changes apply to them. Pure functions, unit-tested.

import type { Job, JobFilter, JobStatus, JsonValue, ScheduleSummary } from "./bindings";
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
  if (filter.input != null && !contains(job.context, filter.input)) return false;
  if (filter.result != null && (job.result == null || !contains(job.result, filter.result))) return false;
  const words = filter.words?.trim();
  if (words && !hasWords(job.context, words)) return false;
  if (filter.schedule_id != null && job.schedule_id !== filter.schedule_id) return false;
  const created = millis(job.created_at);
  if (filter.created_from && created < millis(filter.created_from)) return false;
  if (filter.created_until && created >= millis(filter.created_until)) return false;
  const ended = job.ended_at ? millis(job.ended_at) : null;
  if (filter.ended_from && (ended === null || ended < millis(filter.ended_from))) return false;
  if (filter.ended_until && (ended === null || ended >= millis(filter.ended_until))) return false;
  return true;
}

/** JSON containment as PostgreSQL's `@>`: every field of `part` is in `whole` (objects
 *  recursively, arrays holding each element of `part`'s). */
export function contains(whole: JsonValue, part: JsonValue): boolean {
  if (Array.isArray(part)) {
    return Array.isArray(whole) && part.every((p) => whole.some((w) => contains(w, p)));
  }
  if (part !== null && typeof part === "object") {
    if (whole === null || typeof whole !== "object" || Array.isArray(whole)) return false;
    return Object.entries(part).every(([key, value]) => key in whole && contains(whole[key] as JsonValue, value));
  }
  return whole === part;
}

/** The words of an input's values (not its keys), lowercased, as the database's
 *  `simple` text search reads them. */
function wordsOf(value: JsonValue, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => wordsOf(v, out));
  else if (value !== null && typeof value === "object") Object.values(value).forEach((v) => wordsOf(v as JsonValue, out));
  else if (value !== null) for (const w of String(value).toLowerCase().split(/[^\p{L}\p{N}]+/u)) if (w) out.add(w);
  return out;
}

/** Whether the input holds the search's plain words (and none of its `-words`): the
 *  common case of the server's web search, close enough to place a live change; the
 *  server's answer decides on the next read. */
function hasWords(input: JsonValue, search: string): boolean {
  const words = wordsOf(input);
  return search
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w && w !== "or")
    .every((w) => {
      const negated = w.startsWith("-");
      const bare = w.replace(/^-/, "").replace(/["]/g, "");
      const found = bare.split(/[^\p{L}\p{N}]+/u).filter(Boolean).every((part) => words.has(part));
      return negated ? !found : found;
    });
}

/** The input search box's text as a filter: a JSON object is a containment, anything
 *  else the words of the input's values; blank clears both. */
export function inputFilter(text: string): Pick<JobFilter, "input" | "words"> {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    try {
      const value = JSON.parse(trimmed) as JsonValue;
      if (value && typeof value === "object" && !Array.isArray(value)) return { input: value, words: null };
    } catch {
      // Not JSON yet (still being typed): searched as words meanwhile.
    }
  }
  return { input: null, words: trimmed || null };
}

/** The result search box's text as a filter: a JSON object the result contains, blank
 *  for none; undefined while it is neither (being typed), which changes nothing. */
export function resultFilter(text: string): Pick<JobFilter, "result"> | undefined {
  const trimmed = text.trim();
  if (!trimmed) return { result: null };
  try {
    const value = JSON.parse(trimmed) as JsonValue;
    if (value && typeof value === "object" && !Array.isArray(value)) return { result: value };
  } catch {
    // Not JSON yet.
  }
  return undefined;
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
