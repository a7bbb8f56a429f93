// Generated from the Rust types by `cargo test -p jobdeck-app` (see src-tauri/bindings.rs).
// Do not edit: change the Rust side and run `./x bindings`.
/* eslint-disable */

import { invoke } from "@tauri-apps/api/core";

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;

/**
 * What a consumer (the UI, the CLI's exit code) needs to decide what to do.
 */
export type ErrorCode = "auth_expired" | "network" | "validation" | "conflict" | "not_found" | "forbidden" | "cancelled" | "internal";

/**
 * `{code, message}`: how errors cross IPC and appear in `--json` output.
 */
export type ErrorBody = { code: ErrorCode, message: string, 
/**
 * For invalid job input: the path of the offending field (`seconds`,
 * `items[2].name`), so a form can show the message beside it.
 */
field?: string, };

export type JobStatus = "waiting" | "running" | "finished" | "failed" | "cancelled";

/**
 * Why an attempt failed, as the worker reported it (`{message, code, details}`) and
 * the database stamped it (`attempt`, `worker`, `at`). Other clients may write any
 * JSON object there: what is missing is empty, and a value of another type is read
 * as its text, so one odd row never hides the rest.
 */
export type JobFailure = { message: string, 
/**
 * A machine-readable code (`timeout`, `worker_lost`, a handler's own).
 */
code: string | null, details: JsonValue | null, attempt: number | null, worker: string | null, at: string | null, };

/**
 * How an attempt ended.
 */
export type AttemptOutcome = "finished" | "retry" | "failed" | "cancelled" | "lost" | "released" | "other";

/**
 * One attempt that ended, from the job's `history`.
 */
export type Attempt = { attempt: number | null, worker: string | null, started_at: string | null, ended_at: string | null, outcome: AttemptOutcome, error: JobFailure | null, };

/**
 * A row of `public.jobs` (see supabase/migrations).
 */
export type Job = { id: number, 
/**
 * The owner's user id.
 */
uuid: string, kind: string, status: JobStatus, 
/**
 * The job's input.
 */
context: JsonValue, result: JsonValue | null, 
/**
 * The last failure.
 */
error: JobFailure | null, 
/**
 * Every attempt that ended, oldest first.
 */
history: Array<Attempt>, progress: number | null, progress_message: string | null, attempt: number, max_attempts: number, priority: number, run_at: string, locked_by: string | null, locked_until: string | null, cancel_requested_at: string | null, idempotency_key: string | null, 
/**
 * The schedule that made it, if one did.
 */
schedule_id: number | null, created_at: string, started_at: string | null, ended_at: string | null, updated_at: string, };

/**
 * A job to enqueue.
 */
export type NewJob = { kind: string, context: JsonValue, run_at?: string | null, priority?: number | null, max_attempts?: number | null, idempotency_key?: string | null, };

/**
 * Which jobs to list, newest first.
 */
export type JobFilter = { statuses: Array<JobStatus>, kind: string | null, 
/**
 * Matches the kind (case-insensitively) or, when a number, the id.
 */
search: string | null, 
/**
 * The page's size, at most 1,000; 0 (the default) for the UI's page of 50.
 */
limit: number, offset: number, 
/**
 * Only jobs older than this id: keyset paging, which stays as fast on the
 * thousandth page as on the first (an offset makes the database walk every row
 * before it).
 */
before: number | null, 
/**
 * Only jobs whose input contains this JSON object (`{"customer": 42}` matches an
 * input with that field among others).
 */
input?: JsonValue | null, 
/**
 * Only jobs whose input's values hold these words (web search syntax: `acme
 * -test`, `"exact phrase"`, `this or that`).
 */
words?: string | null, 
/**
 * Only jobs whose result contains this JSON object.
 */
result?: JsonValue | null, 
/**
 * Only jobs created, or ended, in these ranges (from inclusive, until exclusive).
 */
created_from?: string | null, created_until?: string | null, ended_from?: string | null, ended_until?: string | null, 
/**
 * Only the jobs this schedule made.
 */
schedule_id?: number | null, };

export type Page = { jobs: Array<Job>, 
/**
 * How many jobs match the filter in all, on every page (its `before` and
 * `offset` aside).
 */
total: number, };

/**
 * What a bulk action does to every job of a filter that it applies to.
 */
export type BulkAction = "cancel" | "retry";

/**
 * What a schedule does after downtime, when ticks passed with no worker running.
 */
export type OnMissed = "run_once" | "skip";

/**
 * A row of `public.schedules`.
 */
export type Schedule = { id: number, name: string, kind: string, 
/**
 * The input of every job it makes.
 */
context: JsonValue, 
/**
 * Five fields or an alias (`@hourly`).
 */
cron: string, 
/**
 * An IANA time zone name.
 */
timezone: string, priority: number, max_attempts: number, enabled: boolean, on_missed: OnMissed, 
/**
 * The next tick; none until a client or worker computed it.
 */
next_run_at: string | null, 
/**
 * The last tick that made a job.
 */
last_run_at: string | null, 
/**
 * The last job it made (a tick's, or run now).
 */
last_job_id: number | null, 
/**
 * Why no worker can compute its ticks.
 */
problem: string | null, created_at: string, updated_at: string, };

/**
 * What the user writes when making or changing a schedule.
 */
export type ScheduleSpec = { name: string, kind: string, context: JsonValue, cron: string, timezone: string, priority: number, max_attempts: number, enabled: boolean, on_missed: OnMissed, };

/**
 * A schedule with the last job it made (its outcome so far), as a list shows it.
 */
export type ScheduleSummary = { schedule: Schedule, last_job: Job | null, };

/**
 * A kind paused for all of the user's workers.
 */
export type PausedKind = { kind: string, paused_at: string, };

/**
 * How long the user keeps their ended jobs; every limit is optional, and a job either
 * limit names is removed by the user's workers. Waiting and running jobs always stay.
 */
export type RetentionPolicy = { 
/**
 * Ended jobs older than this many days go.
 */
keep_days: number | null, 
/**
 * Of each kind, only this many ended jobs (the last enqueued) stay.
 */
keep_last: number | null, };

/**
 * The span an activity chart covers: an hour by minute, a day or a week by hour.
 */
export type ActivitySpan = "hour" | "day" | "week";

/**
 * One bucket of a chart: what ended in it.
 */
export type ActivityBucket = { at: string, finished: number, failed: number, 
/**
 * Attempts that ended and were tried again (a retry, or a lost lease).
 */
retried: number, };

/**
 * One kind's jobs that finished or failed in the span, and how long they ran (their
 * last attempt, in milliseconds).
 */
export type KindActivity = { kind: string, finished: number, failed: number, p50_ms: number | null, p90_ms: number | null, p99_ms: number | null, max_ms: number | null, };

/**
 * What the user's jobs did over a span, as `job_activity` counts it.
 */
export type Activity = { span: ActivitySpan, bucket_seconds: number, from: string, to: string, 
/**
 * Oldest first, every bucket of the span (empty ones too).
 */
buckets: Array<ActivityBucket>, 
/**
 * By kind name.
 */
kinds: Array<KindActivity>, };

/**
 * Where a kind comes from.
 */
export type KindSource = "built_in" | "file";

/**
 * What runs a kind's job.
 */
export type KindExecutor = "rust" | "command" | "rpc" | "http";

/**
 * A kind as the UI and `jobdeck kinds` show it.
 */
export type KindInfo = { name: string, description: string, 
/**
 * The input's JSON Schema.
 */
input_schema: JsonValue, source: KindSource, executor: KindExecutor, timeout_seconds?: number | null, max_attempts?: number | null, priority?: number | null, concurrency?: number | null, };

/**
 * One thing wrong in the kinds file.
 */
export type KindsProblem = { file: string, 
/**
 * 1-based; none when the file as a whole is the problem.
 */
line?: number | null, 
/**
 * The key concerned (`command`, `input_schema`), or the kind's name.
 */
key?: string | null, message: string, };

/**
 * Every kind the app runs, and what is wrong in the kinds file.
 */
export type KindsView = { 
/**
 * Where the kinds file is (it may not exist yet).
 */
file: string, kinds: Array<KindInfo>, problems: Array<KindsProblem>, };

/**
 * Where a log line came from.
 */
export type LogStream = "stdout" | "stderr" | "log";

export type LogLevel = "debug" | "info" | "warn" | "error";

/**
 * One line of an attempt's log.
 */
export type LogLine = { attempt: number, 
/**
 * Its place in the attempt's log, from 0.
 */
seq: number, at: string, stream: LogStream, level: LogLevel, line: string, };

/**
 * A second factor of the user.
 */
export type Factor = { id: string, friendly_name: string | null, 
/**
 * `totp` (phone and WebAuthn factors are listed but not used by Jobdeck).
 */
factor_type: string, 
/**
 * `verified`, or `unverified` until its first code is answered.
 */
status: string, };

/**
 * The user as Auth describes them (the fields Jobdeck uses).
 */
export type User = { id: string, email: string | null, email_confirmed_at: string | null, user_metadata: JsonValue, 
/**
 * Second factors, verified or being enrolled (Auth omits the list when empty).
 */
factors: Array<Factor>, };

/**
 * A TOTP factor just enrolled: the secret an authenticator app needs, as a QR code
 * (SVG), the `otpauth://` URI it encodes, and the secret itself to type in.
 */
export type TotpEnrollment = { factor_id: string, qr_code_svg: string, uri: string, secret: string, };

/**
 * What the UI shows about the session.
 */
export type SessionState = { "state": "signed_out" } | { "state": "second_factor", email: string | null, factor_id: string, } | { "state": "active", email: string | null, expires_at: number, } | { "state": "refreshing", email: string | null, expires_at: number, } | { "state": "offline", email: string | null, expires_at: number, reason: string, } | { "state": "ended", reason: string, };

/**
 * What the worker is doing now.
 */
export type WorkerStatus = { name: string, paused: boolean, concurrency: number, running: Array<number>, };

/**
 * Whether changes are being pushed now.
 */
export type LiveState = { "state": "off" } | { "state": "connecting" } | { "state": "live" } | { "state": "down", reason: string, };

export type AppInfo = { name: string, version: string, };

/**
 * When the UI reached each step of its start, in ms from its page's time origin (the
 * webview's navigation start), as `performance` tells them: the app logs them beside
 * the time since launch, so a slow start says which part was slow.
 */
export type LaunchTimings = { 
/**
 * The page's time origin itself, in ms since the Unix epoch (`performance.timeOrigin`):
 * it places the steps on the app's clock.
 */
time_origin_ms: number, 
/**
 * The page's HTML had arrived.
 */
page_loaded_ms: number, 
/**
 * The UI's script began to run, its modules loaded.
 */
script_ms: number, 
/**
 * The restored connection (and with it the session) answered.
 */
connection_ms: number, 
/**
 * The first page of jobs and the counts answered.
 */
list_ms: number, 
/**
 * The frame that drew the list had been painted.
 */
painted_ms: number, };

/**
 * What the UI shows about the connection.
 */
export type ConnectionView = { url: string, 
/**
 * Whether this is the local sandbox.
 */
sandbox: boolean, session: SessionState, worker: WorkerStatus, 
/**
 * Whether changes made elsewhere are pushed (Realtime) or polled.
 */
live: LiveState, };

/**
 * What the jobs screen opens with: its filter's choices, its first page and the
 * counts, read in one go (at launch, while the page loads).
 */
export type JobsOpening = { 
/**
 * Every kind this app runs (built-in and the kinds file's), with their input
 * schemas, and what is wrong in the kinds file.
 */
kinds: KindsView, page: Page, counts: { [key in JobStatus]?: number }, 
/**
 * How many events about jobs the app had sent the UI when the reads began: if more
 * have been sent by the time the UI listens, it may have missed one, and reads again.
 */
job_events_sent: number, };

/**
 * How a sign-up ended.
 */
export type SignUpOutcome = { "outcome": "signed_in", session: SessionState, } | { "outcome": "confirmation_sent", email: string | null, };

export type Preferences = { theme: Theme, language: Language, };

export type Theme = "system" | "light" | "dark";

export type Language = "system" | "en" | "ja";

export type AppEvent = { "type": "jobs", jobs: Array<Job>, } | { "type": "progress", id: number, progress: number, message: string | null, } | { "type": "session", state: SessionState, } | { "type": "worker", status: WorkerStatus, trouble: string | null, } | { "type": "deleted", ids: Array<number>, } | { "type": "feed", error: ErrorBody | null, } | { "type": "live", state: LiveState, } | { "type": "log", id: number, lines: Array<LogLine>, } | { "type": "kinds", kinds: KindsView, } | { "type": "schedules" } | { "type": "retention" };

/** The event every change is announced on; its payload is an `AppEvent`. */
export const APP_EVENT = "jobdeck://event";

/**
 * The app's name and version (the About box).
 */
export function appInfo(): Promise<AppInfo> {
  return invoke("app_info");
}

/**
 * The UI painted the job list for the first time since launch, at `timings`.
 */
export function uiListShown(timings: LaunchTimings): Promise<null> {
  return invoke("ui_list_shown", { timings });
}

export function preferencesGet(): Promise<Preferences> {
  return invoke("preferences_get");
}

export function preferencesSet(preferences: Preferences): Promise<Preferences> {
  return invoke("preferences_set", { preferences });
}

/**
 * The connection, after reconnecting to the project last used; `null` on first run.
 */
export function connectionRestore(): Promise<ConnectionView | null> {
  return invoke("connection_restore");
}

/**
 * Connects to a Supabase project after checking its Auth server's `/health` and
 * `/settings` with the key.
 */
export function connectionConnect(url: string, key: string): Promise<ConnectionView> {
  return invoke("connection_connect", { url, key });
}

/**
 * Connects to the local sandbox, starting it when none is running.
 */
export function connectionConnectSandbox(): Promise<ConnectionView> {
  return invoke("connection_connect_sandbox");
}

/**
 * Leaves the project (back to the connect screen).
 */
export function connectionDisconnect(): Promise<null> {
  return invoke("connection_disconnect");
}

export function authSignIn(email: string, password: string): Promise<SessionState> {
  return invoke("auth_sign_in", { email, password });
}

export function authSignUp(email: string, password: string): Promise<SignUpOutcome> {
  return invoke("auth_sign_up", { email, password });
}

/**
 * Emails a one-time code and a sign-in link (creating the account if there is
 * none). `auth_browser_finish` then waits for the link; the code signs in too.
 */
export function authSendCode(email: string): Promise<null> {
  return invoke("auth_send_code", { email });
}

/**
 * Signs in with the emailed code; the link of the same message waits no more.
 */
export function authVerifyCode(email: string, code: string): Promise<SessionState> {
  return invoke("auth_verify_code", { email, code });
}

/**
 * The OAuth providers the project has enabled, for "Continue with ..." buttons.
 */
export function authProviders(): Promise<Array<string>> {
  return invoke("auth_providers");
}

/**
 * Starts a sign-in through `provider` in the user's browser; answers its URL (to
 * show when no browser opened). `auth_browser_finish` then waits for it.
 */
export function authOauthStart(provider: string): Promise<string> {
  return invoke("auth_oauth_start", { provider });
}

/**
 * Waits for the browser to come back from the provider (a few minutes at most)
 * or from the emailed link (an hour at most) and signs in with what it brings.
 */
export function authBrowserFinish(): Promise<SessionState> {
  return invoke("auth_browser_finish");
}

/**
 * Stops waiting for the browser; `auth_browser_finish` answers `cancelled`.
 */
export function authBrowserCancel(): Promise<null> {
  return invoke("auth_browser_cancel");
}

/**
 * Answers the sign-in's second factor with the code from the user's authenticator
 * app: the session becomes aal2 and the app goes on as signed in.
 */
export function authVerifyTotp(code: string): Promise<SessionState> {
  return invoke("auth_verify_totp", { code });
}

/**
 * The account's second factors, as Auth knows them now.
 */
export function accountFactors(): Promise<Array<Factor>> {
  return invoke("account_factors");
}

/**
 * Starts adding an authenticator app: its QR code and secret, to be confirmed
 * with its first code by `account_confirm_totp`.
 */
export function accountEnrollTotp(name: string): Promise<TotpEnrollment> {
  return invoke("account_enroll_totp", { name });
}

/**
 * Confirms a new factor with its first code; answers the account's factors.
 */
export function accountConfirmTotp(factorId: string, code: string): Promise<Array<Factor>> {
  return invoke("account_confirm_totp", { factorId, code });
}

/**
 * Removes a factor (a verified one only from a session that used it to sign in).
 */
export function accountRemoveFactor(factorId: string): Promise<Array<Factor>> {
  return invoke("account_remove_factor", { factorId });
}

/**
 * Signs out; this app's running jobs are handed back first.
 */
export function authSignOut(): Promise<SessionState> {
  return invoke("auth_sign_out");
}

/**
 * The jobs screen as it opens under `filter` (its kinds, first page and counts, in
 * one round trip; at launch read already); `null` while not signed in.
 */
export function jobsOpening(filter: JobFilter): Promise<JobsOpening | null> {
  return invoke("jobs_opening", { filter });
}

/**
 * How many events about jobs the app has sent the UI so far (see `JobsOpening`).
 */
export function jobEventsSent(): Promise<number> {
  return invoke("job_events_sent");
}

/**
 * A page of the user's jobs, newest first.
 */
export function jobsList(filter: JobFilter): Promise<Page> {
  return invoke("jobs_list", { filter });
}

/**
 * How many of the user's jobs are in each status.
 */
export function jobsCounts(): Promise<{ [key in JobStatus]?: number }> {
  return invoke("jobs_counts");
}

export function jobGet(id: number): Promise<Job> {
  return invoke("job_get", { id });
}

/**
 * Enqueues a job after checking its input against the kind (field-level errors
 * come back with `field`); this app's worker starts it at once when it has room.
 */
export function jobEnqueue(job: NewJob): Promise<Job> {
  return invoke("job_enqueue", { job });
}

export function jobCancel(id: number): Promise<Job> {
  return invoke("job_cancel", { id });
}

export function jobRetry(id: number): Promise<Job> {
  return invoke("job_retry", { id });
}

/**
 * Enqueues a new job with the same kind and input.
 */
export function jobRunAgain(id: number): Promise<Job> {
  return invoke("job_run_again", { id });
}

/**
 * Deletes a job that is not running; answers whether one was deleted.
 */
export function jobDelete(id: number): Promise<boolean> {
  return invoke("job_delete", { id });
}

/**
 * Cancels or retries every job of the filter it applies to; answers how many.
 */
export function jobsBulk(action: BulkAction, filter: JobFilter): Promise<number> {
  return invoke("jobs_bulk", { action, filter });
}

/**
 * Opens the kinds file in the user's editor (creating it first if need be).
 */
export function kindsOpen(): Promise<null> {
  return invoke("kinds_open");
}

/**
 * Job `id`'s log: one attempt's, or every attempt's; only the lines after
 * `after_seq` of that attempt when given (to follow a running job).
 */
export function jobLogs(id: number, attempt: number | null, afterSeq: number | null): Promise<Array<LogLine>> {
  return invoke("job_logs", { id, attempt, afterSeq });
}

/**
 * The user's schedules, each with the last job it made.
 */
export function schedulesList(): Promise<Array<ScheduleSummary>> {
  return invoke("schedules_list");
}

/**
 * The next `count` ticks of `cron` in `timezone` (at most 20), or why the
 * expression or zone is refused; nothing is saved.
 */
export function schedulePreview(cron: string, timezone: string, count: number): Promise<Array<string>> {
  return invoke("schedule_preview", { cron, timezone, count });
}

/**
 * Saves a new schedule (`id` none) or changes one, after checking its expression,
 * zone and input (as the enqueue form's, field errors with `field`).
 */
export function scheduleSave(id: number | null, spec: ScheduleSpec): Promise<Schedule> {
  return invoke("schedule_save", { id, spec });
}

/**
 * Pauses or resumes a schedule.
 */
export function scheduleSetEnabled(id: number, enabled: boolean): Promise<Schedule> {
  return invoke("schedule_set_enabled", { id, enabled });
}

/**
 * "Run now": a job of the schedule at once, its ticks unchanged.
 */
export function scheduleRun(id: number): Promise<Job> {
  return invoke("schedule_run", { id });
}

/**
 * Deletes a schedule; the jobs it made stay. Answers whether one was deleted.
 */
export function scheduleDelete(id: number): Promise<boolean> {
  return invoke("schedule_delete", { id });
}

/**
 * The jobs a schedule made, newest first (the last 50).
 */
export function scheduleJobs(id: number): Promise<Array<Job>> {
  return invoke("schedule_jobs", { id });
}

/**
 * The kinds paused for all of the user's workers.
 */
export function kindsPaused(): Promise<Array<PausedKind>> {
  return invoke("kinds_paused");
}

/**
 * Pauses (`paused`) or resumes a kind for all of the user's workers; answers the
 * paused kinds.
 */
export function kindSetPaused(kind: string, paused: boolean): Promise<Array<PausedKind>> {
  return invoke("kind_set_paused", { kind, paused });
}

/**
 * How long the user keeps ended jobs (empty: everything).
 */
export function retentionGet(): Promise<RetentionPolicy> {
  return invoke("retention_get");
}

/**
 * Sets the user's retention policy (an empty one keeps everything); this app's
 * worker applies it at once, the user's other workers when they hear of it.
 */
export function retentionSet(policy: RetentionPolicy): Promise<RetentionPolicy> {
  return invoke("retention_set", { policy });
}

/**
 * What the user's jobs did over the last hour, day or week, counted by the
 * database.
 */
export function activityGet(span: ActivitySpan): Promise<Activity> {
  return invoke("activity_get", { span });
}

export function workerStatus(): Promise<WorkerStatus> {
  return invoke("worker_status");
}

export function workerPause(): Promise<WorkerStatus> {
  return invoke("worker_pause");
}

export function workerResume(): Promise<WorkerStatus> {
  return invoke("worker_resume");
}
