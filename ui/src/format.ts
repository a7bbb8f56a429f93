// Times and durations as the table shows them.

/** Milliseconds since the epoch of a PostgreSQL timestamp (microseconds are dropped,
 *  since not every webview parses more than three fraction digits). */
export function millis(timestamp: string): number {
  const normalized = timestamp
    .replace(" ", "T")
    .replace(/(\.\d{3})\d+/, "$1")
    .replace(/([+-]\d\d)$/, "$1:00");
  return Date.parse(normalized);
}

const pad = (n: number) => String(n).padStart(2, "0");

/** `15:04:05` today, `11-27 15:04` on other days. */
export function clock(timestamp: string | null, now: Date = new Date()): string {
  if (!timestamp) return "";
  const date = new Date(millis(timestamp));
  if (Number.isNaN(date.getTime())) return timestamp;
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  const sameDay =
    date.getFullYear() === now.getFullYear() &&
    date.getMonth() === now.getMonth() &&
    date.getDate() === now.getDate();
  return sameDay ? time : `${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time.slice(0, 5)}`;
}

/** `850 ms`, `4.2 s`, `3 m 04 s`, `2 h 05 m`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const whole = Math.floor(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)} m ${pad(whole % 60)} s`;
  return `${Math.floor(whole / 3600)} h ${pad(Math.floor((whole % 3600) / 60))} m`;
}

/** How long a job ran, or has been running until `now`. */
export function jobDuration(
  job: { started_at: string | null; ended_at: string | null; status: string },
  now: number = Date.now(),
): string {
  if (!job.started_at) return "";
  const end = job.ended_at ? millis(job.ended_at) : job.status === "running" ? now : NaN;
  return duration(end - millis(job.started_at));
}
