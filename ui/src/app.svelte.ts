// The UI's one state and every change to it. Components render from it and call its
// methods; nothing else changes it. The app's live events are applied in batches, one
// per animation frame, so a burst of a thousand job events re-renders the table a few
// times, not a thousand.

import {
  activityGet,
  appInfo,
  authSignOut,
  connectionRestore,
  jobCancel,
  jobDelete,
  jobGet,
  jobRetry,
  jobRunAgain,
  jobsBulk,
  jobsCounts,
  jobEventsSent,
  jobLogs,
  jobsList,
  jobsOpening,
  kindSetPaused,
  kindsOpen,
  kindsPaused,
  preferencesGet,
  preferencesSet,
  retentionGet,
  retentionSet,
  scheduleDelete,
  scheduleJobs,
  scheduleRun,
  scheduleSave,
  scheduleSetEnabled,
  schedulesList,
  uiListShown,
  workerPause,
  workerResume,
  type Activity,
  type ActivitySpan,
  type AppEvent,
  type AppInfo,
  type BulkAction,
  type ConnectionView,
  type Job,
  type JobFilter,
  type JobsOpening,
  type JobStatus,
  type JsonValue,
  type KindInfo,
  type KindsProblem,
  type KindsView,
  type LiveState,
  type LogLine,
  type Page,
  type PausedKind,
  type Preferences,
  type RetentionPolicy,
  type Schedule,
  type ScheduleSpec,
  type ScheduleSummary,
  type SessionState,
  type WorkerStatus,
} from "./bindings";
import { describe } from "./errors";
import { millis } from "./format";
import { resolveLang, setLang, t } from "./i18n.svelte";
import { mark, timings } from "./launch";
import {
  applyChanges,
  applyProgress,
  applyToHistory,
  applyToSchedules,
  emptyFilter,
  removeJobs,
  type actionsFor,
} from "./state";

export type Screen = "loading" | "connect" | "auth" | SignedInScreen;
/** The screens a signed-in user moves between. */
export type SignedInScreen = "jobs" | "schedules" | "activity" | "account";
export type ScheduleAction = "run" | "pause" | "resume" | "delete";
export type Action = ReturnType<typeof actionsFor>[number];

/** How the queued events of one batch change the state. */
export interface Batch {
  jobs: Job[];
  deleted: number[];
  progress: Array<{ id: number; progress: number; message: string | null }>;
  session?: SessionState;
  worker?: { status: WorkerStatus; trouble: string | null };
  feed?: { error: string | null };
  live?: LiveState;
  logs: Array<{ id: number; lines: LogLine[] }>;
  kinds?: KindsView;
  /** Schedules or paused kinds changed somewhere. */
  schedules?: boolean;
  /** The retention policy changed somewhere. */
  retention?: boolean;
}

/** How many of `events` to apply now: up to the first start of a job that a later
 *  event moves on (finished, failed, ...), so that its running state reaches the
 *  screen; all of them when there is none. */
export function startCut(events: AppEvent[]): number {
  const movedOn = new Map<number, number>();
  events.forEach((event, i) => {
    if (event.type !== "jobs") return;
    for (const job of event.jobs) if (job.status !== "running") movedOn.set(job.id, i);
  });
  const first = events.findIndex(
    (event, i) =>
      event.type === "jobs" && event.jobs.some((job) => job.status === "running" && (movedOn.get(job.id) ?? -1) > i),
  );
  return first < 0 ? events.length : first + 1;
}

/** Folds a burst of events into one batch: job versions together, the last word on
 *  the session, the worker and the feed. */
export function coalesce(events: AppEvent[]): Batch {
  const batch: Batch = { jobs: [], deleted: [], progress: [], logs: [] };
  for (const event of events) {
    switch (event.type) {
      case "jobs":
        batch.jobs.push(...event.jobs);
        break;
      case "progress":
        batch.progress.push({ id: event.id, progress: event.progress, message: event.message });
        break;
      case "session":
        batch.session = event.state;
        break;
      case "worker":
        batch.worker = { status: event.status, trouble: event.trouble };
        break;
      case "deleted":
        batch.deleted.push(...event.ids);
        break;
      case "feed":
        batch.feed = { error: event.error?.message ?? null };
        break;
      case "live":
        batch.live = event.state;
        break;
      case "log":
        batch.logs.push({ id: event.id, lines: event.lines });
        break;
      case "kinds":
        batch.kinds = event.kinds;
        break;
      case "schedules":
        batch.schedules = true;
        break;
      case "retention":
        batch.retention = true;
        break;
    }
  }
  return batch;
}

export class AppState {
  screen = $state<Screen>("loading");
  preferences = $state<Preferences>({ theme: "system", language: "system" });
  info = $state<AppInfo | null>(null);
  connection = $state<ConnectionView | null>(null);
  /** Why the saved project could not be reopened (shown on the connect screen). */
  connectError = $state("");
  kinds = $state.raw<KindInfo[]>([]);
  kindsFile = $state("");
  kindsProblems = $state.raw<KindsProblem[]>([]);
  /** A job's kind and input for the enqueue form ("Edit and run again"); `n` makes
   *  each request new. */
  prefill = $state.raw<{ kind: string; input: JsonValue; n: number } | null>(null);

  filter = $state<JobFilter>(emptyFilter());
  jobs = $state.raw<Job[]>([]);
  total = $state(0);
  /** The `before` of each earlier page, for "Newer". */
  previous = $state<Array<number | null>>([]);
  /** Rows above this page (for the "51–100 of N" label). */
  skipped = $state(0);
  counts = $state<Partial<Record<JobStatus, number>>>({});
  selected = $state<number | null>(null);
  detail = $state.raw<Job | null>(null);
  /** The log of the job on show: the attempt chosen (its latest by default). */
  log = $state.raw<LogLine[]>([]);
  logAttempt = $state<number | null>(null);
  notice = $state("");

  session = $state<SessionState>({ state: "signed_out" });
  worker = $state<WorkerStatus | null>(null);
  workerTrouble = $state<string | null>(null);
  feedError = $state<string | null>(null);
  /** Whether changes made elsewhere are pushed now (else polled). */
  live = $state<LiveState>({ state: "off" });
  /** The clock running jobs' durations tick by. */
  now = $state(Date.now());
  /** The schedules with their last jobs, the one on show and the jobs it made, and
   *  the kinds paused for every worker (read when the schedules screen opens). */
  schedules = $state.raw<ScheduleSummary[]>([]);
  scheduleShown = $state<number | null>(null);
  scheduleHistory = $state.raw<Job[]>([]);
  pausedKinds = $state.raw<PausedKind[]>([]);
  scheduleNotice = $state("");

  /** What the jobs did over the span chosen (read when the activity screen opens,
   *  and again as jobs end while it is on show). */
  activity = $state.raw<Activity | null>(null);
  activitySpan = $state<ActivitySpan>("hour");
  activityNotice = $state("");
  /** The retention policy (read when the account screen opens). */
  retention = $state.raw<RetentionPolicy | null>(null);

  /** How many batches of events have been applied (for tests and the curious). */
  batches = $state(0);

  private queue: AppEvent[] = [];
  private flushing = false;
  private countsTimer: ReturnType<typeof setTimeout> | undefined;
  private activityTimer: ReturnType<typeof setTimeout> | undefined;
  private listShown = false;
  private following = false;

  constructor(private readonly schedule: (flush: () => void) => void = (f) => requestAnimationFrame(f)) {}

  // --- start, preferences, routing --------------------------------------------

  /** Starts the UI once `listening` (the app's events) is set up. Everything the
   *  first screen needs is asked for at once, not one round trip after another: the
   *  jobs screen's opening too, which the app read at launch while this page loaded
   *  (answered `null` if the connection shows another screen). */
  async boot(listening: Promise<unknown>): Promise<void> {
    const preferences = preferencesGet();
    const info = appInfo();
    const restoring = connectionRestore();
    const opening = jobsOpening(this.filter);
    // Not awaited if the connection fails: its error is the connection's to tell.
    opening.catch(() => {});
    this.applyPreferences(await preferences);
    this.info = await info;
    await listening;
    await this.route(restoring, opening);
  }

  private applyPreferences(preferences: Preferences): void {
    this.preferences = preferences;
    const lang = resolveLang(preferences.language, navigator.language);
    setLang(lang);
    document.documentElement.lang = lang;
    const dark =
      preferences.theme === "dark" ||
      (preferences.theme === "system" && window.matchMedia?.("(prefers-color-scheme: dark)").matches);
    document.documentElement.dataset.theme = dark ? "dark" : "light";
  }

  async setPreferences(preferences: Preferences): Promise<void> {
    await preferencesSet(preferences);
    this.applyPreferences(preferences);
  }

  /** The system's light or dark changed: follow it if the preference says "system". */
  systemThemeChanged(): void {
    this.applyPreferences(this.preferences);
  }

  /** Shows the screen the connection's state calls for (`restoring`: the connection
   *  already asked for; `opening`: the jobs screen's opening, likewise). */
  async route(
    restoring: Promise<ConnectionView | null> = connectionRestore(),
    opening?: Promise<JobsOpening | null>,
  ): Promise<void> {
    try {
      this.connection = await restoring;
      mark("connection_ms");
      this.connectError = "";
    } catch (e) {
      // The saved project could not be reached or started: let the user choose again.
      this.connection = null;
      this.connectError = describe(e);
    }
    const connection = this.connection;
    if (!connection) {
      this.screen = "connect";
    } else if (
      connection.session.state === "signed_out" ||
      connection.session.state === "ended" ||
      // Signed in with a first factor: the sign-in screen asks for the second.
      connection.session.state === "second_factor"
    ) {
      this.session = connection.session;
      this.screen = "auth";
    } else {
      this.session = connection.session;
      this.worker = connection.worker;
      this.previous = [];
      this.skipped = 0;
      this.filter = { ...this.filter, before: null };
      this.screen = "jobs";
      try {
        const opened = await (opening ?? jobsOpening(this.filter));
        if (opened) await this.showOpening(opened);
      } catch (e) {
        this.notice = describe(e);
      }
    }
  }

  /** Shows the jobs screen's opening; read before this page may have heard of a
   *  change, it is read again if the app has sent an event about a job since. */
  private async showOpening(opened: JobsOpening): Promise<void> {
    this.setKinds(opened.kinds);
    this.showPage(opened.page, opened.counts);
    if ((await jobEventsSent()) !== opened.job_events_sent) await this.reload();
  }

  connected(view: ConnectionView): void {
    this.connection = view;
    this.live = view.live;
    // A new connection: what the last one said of its trouble is over.
    this.feedError = null;
    this.workerTrouble = null;
    void this.route();
  }

  /** The jobs, the schedules (and paused kinds), the activity, or the account
   *  (second factors, retention). */
  show(screen: SignedInScreen): void {
    if (!this.connection) return;
    this.screen = screen;
    if (screen === "schedules") void this.loadSchedules();
    if (screen === "activity") void this.loadActivity();
    if (screen === "account") void this.loadRetention();
  }

  async signOut(): Promise<void> {
    await authSignOut();
    await this.route();
  }

  // --- the job list -----------------------------------------------------------

  setFilter(change: Partial<JobFilter>): void {
    this.filter = { ...this.filter, ...change };
    void this.firstPage();
  }

  async firstPage(): Promise<void> {
    this.previous = [];
    this.skipped = 0;
    this.filter = { ...this.filter, before: null };
    await this.reload();
  }

  async page(direction: 1 | -1): Promise<void> {
    if (direction === 1) {
      const last = this.jobs[this.jobs.length - 1];
      if (!last) return;
      this.previous = [...this.previous, this.filter.before];
      this.skipped += this.jobs.length;
      this.filter = { ...this.filter, before: last.id };
    } else {
      if (this.previous.length === 0) return;
      const before = this.previous[this.previous.length - 1];
      this.previous = this.previous.slice(0, -1);
      this.filter = { ...this.filter, before };
      this.skipped = Math.max(0, this.skipped - this.filter.limit);
    }
    await this.reload();
  }

  async reload(): Promise<void> {
    try {
      const [page, counts] = await Promise.all([jobsList(this.filter), jobsCounts()]);
      this.showPage(page, counts);
    } catch (e) {
      this.notice = describe(e);
    }
  }

  private showPage(page: Page, counts: Partial<Record<JobStatus, number>>): void {
    this.jobs = page.jobs;
    this.total = page.total;
    this.counts = counts;
    mark("list_ms");
    this.reportListShown();
  }

  /** The app logs once how long after launch the job list reached the screen: a
   *  task queued from the next frame's callbacks runs once that frame is painted. */
  private reportListShown(): void {
    if (this.listShown) return;
    this.listShown = true;
    requestAnimationFrame(() => setTimeout(() => void uiListShown(timings()).catch(() => {})));
  }

  private refreshCountsSoon(): void {
    clearTimeout(this.countsTimer);
    this.countsTimer = setTimeout(async () => {
      try {
        this.counts = await jobsCounts();
      } catch {
        // The feed's own error shows in the status bar.
      }
    }, 250);
  }

  // --- live events ------------------------------------------------------------

  /** An event after a quiet moment is applied at once (a job that starts and ends
   *  within a frame is still seen running); those that follow it within the frame
   *  wait and are applied together at the next. */
  receive(event: AppEvent): void {
    if (this.flushing) {
      this.queue.push(event);
      return;
    }
    this.flushing = true;
    this.apply(coalesce([event]));
    this.schedule(() => this.flush());
  }

  /** Applies the queued events as one batch; the next event is a new burst. A job
   *  that started and then moved on within the burst is painted running first: the
   *  burst is cut after its start and the rest waits for the next frame. */
  flush(): void {
    const events = this.queue;
    const cut = startCut(events);
    this.queue = events.slice(cut);
    if (this.queue.length > 0) this.schedule(() => this.flush());
    else this.flushing = false;
    if (cut > 0) this.apply(coalesce(events.slice(0, cut)));
  }

  private apply(batch: Batch): void {
    this.batches += 1;
    if (batch.jobs.length > 0) {
      const { jobs, joined } = applyChanges(this.jobs, batch.jobs, this.filter);
      this.jobs = jobs;
      this.total += joined;
      this.keepDetail(batch.jobs);
      this.refreshCountsSoon();
      this.schedules = applyToSchedules(this.schedules, batch.jobs);
      if (this.scheduleShown !== null) {
        this.scheduleHistory = applyToHistory(this.scheduleHistory, batch.jobs, this.scheduleShown);
      }
    }
    if (batch.deleted.length > 0) {
      const { jobs, removed } = removeJobs(this.jobs, batch.deleted);
      this.jobs = jobs;
      this.total = Math.max(0, this.total - removed);
      if (this.detail && batch.deleted.includes(this.detail.id)) {
        this.detail = null;
        this.selected = null;
      }
      this.refreshCountsSoon();
    }
    for (const { id, progress, message } of batch.progress) {
      this.jobs = applyProgress(this.jobs, id, progress, message);
    }
    if (batch.worker) {
      this.worker = batch.worker.status;
      this.workerTrouble = batch.worker.trouble;
    }
    if (batch.live) this.live = batch.live;
    if (batch.feed) {
      this.feedError = batch.feed.error;
      if (!batch.feed.error) void this.reload();
    }
    for (const { id, lines } of batch.logs) this.addLog(id, lines);
    if (batch.kinds) this.setKinds(batch.kinds);
    if (batch.schedules && this.screen === "schedules") void this.loadSchedules();
    if (batch.retention && this.screen === "account") void this.loadRetention();
    if (this.screen === "activity" && batch.jobs.some((job) => job.ended_at !== null || job.history.length > 0)) {
      this.activitySoon();
    }
    if (batch.session) {
      this.session = batch.session;
      if (batch.session.state === "signed_out" || batch.session.state === "ended") void this.route();
    }
  }

  /** A newer version of the job on show replaces it; an older one never does. */
  private keepDetail(changed: Job[]): void {
    const detail = this.detail;
    if (!detail) return;
    const fresh = changed.filter((j) => j.id === detail.id).pop();
    if (fresh && millis(fresh.updated_at) >= millis(detail.updated_at)) this.detail = fresh;
  }

  tick(): void {
    this.now = Date.now();
    // A running job's log: this app's jobs push their lines, but one running elsewhere
    // does not, and pushed lines may be missed (a burst that overflowed the events):
    // the stored log is followed too, each line shown once.
    if (this.detail?.status === "running") void this.followLog();
  }

  // --- kinds ------------------------------------------------------------------

  setKinds(view: KindsView): void {
    this.kinds = view.kinds;
    this.kindsFile = view.file;
    this.kindsProblems = view.problems;
  }

  async openKindsFile(): Promise<void> {
    try {
      await kindsOpen();
    } catch (e) {
      this.notice = describe(e);
    }
  }

  /** Whether this device runs jobs of `kind`. */
  runsKind(kind: string): boolean {
    return this.kinds.some((k) => k.name === kind);
  }

  // --- a job's log ------------------------------------------------------------

  /** Shows attempt `attempt` of the job on show (its latest when null). */
  async showLog(attempt: number | null): Promise<void> {
    const job = this.detail;
    if (!job) return;
    const chosen = attempt ?? (job.attempt > 0 ? job.attempt : null);
    this.logAttempt = chosen;
    this.log = [];
    if (chosen === null) return;
    try {
      const lines = await jobLogs(job.id, chosen, null);
      if (this.detail?.id === job.id && this.logAttempt === chosen) this.log = merge(this.log, lines);
    } catch (e) {
      this.notice = describe(e);
    }
  }

  private async followLog(): Promise<void> {
    const job = this.detail;
    if (!job || this.following) return;
    if (this.logAttempt !== job.attempt) {
      await this.showLog(job.attempt);
      return;
    }
    this.following = true;
    try {
      const after = this.log.length > 0 ? this.log[this.log.length - 1].seq : null;
      const lines = await jobLogs(job.id, job.attempt, after);
      if (this.detail?.id === job.id && this.logAttempt === job.attempt) this.log = merge(this.log, lines);
    } catch {
      // The next tick tries again; the feed reports a project out of reach.
    } finally {
      this.following = false;
    }
  }

  private addLog(id: number, lines: LogLine[]): void {
    const job = this.detail;
    if (!job || job.id !== id) return;
    const attempt = lines[0]?.attempt;
    if (attempt === undefined) return;
    // A new attempt of the job on show takes over the panel, as its row does.
    if (this.logAttempt !== attempt) {
      if (this.logAttempt !== null && attempt < this.logAttempt) return;
      this.logAttempt = attempt;
      this.log = [];
    }
    this.log = merge(this.log, lines);
  }

  // --- one job ----------------------------------------------------------------

  async open(id: number): Promise<void> {
    this.selected = id;
    this.detail = this.jobs.find((j) => j.id === id) ?? null;
    this.log = [];
    this.logAttempt = null;
    try {
      const fetched = await jobGet(id);
      if (this.selected !== id) return;
      if (this.detail?.id !== id) this.detail = fetched;
      // Applied like any change: a live event that arrived while the row was on its
      // way may be newer, and an older version must not replace it.
      else this.apply(coalesce([{ type: "jobs", jobs: [fetched] }]));
      await this.showLog(null);
    } catch (e) {
      this.notice = describe(e);
    }
  }

  closeDetail(): void {
    this.detail = null;
  }

  /** A job this screen just made or changed: shown at once, as an event would be. */
  changed(job: Job): void {
    this.apply(coalesce([{ type: "jobs", jobs: [job] }]));
  }

  async act(action: Action, job: Job): Promise<void> {
    this.notice = "";
    try {
      switch (action) {
        case "cancel":
          this.changed(await jobCancel(job.id));
          break;
        case "retry":
          this.changed(await jobRetry(job.id));
          break;
        case "runAgain": {
          const again = await jobRunAgain(job.id);
          this.changed(again);
          await this.open(again.id);
          break;
        }
        case "edit":
          this.prefill = { kind: job.kind, input: job.context, n: (this.prefill?.n ?? 0) + 1 };
          break;
        case "delete":
          // Taken off as a pushed deletion would be (which then finds nothing to do).
          if (await jobDelete(job.id)) this.apply(coalesce([{ type: "deleted", ids: [job.id] }]));
          break;
      }
    } catch (e) {
      this.notice = describe(e);
    }
  }

  async bulk(action: BulkAction): Promise<void> {
    this.notice = "";
    try {
      const count = await jobsBulk(action, { ...this.filter, before: null });
      this.notice = t("jobs.bulkDone", { count });
      await this.reload();
    } catch (e) {
      this.notice = describe(e);
    }
  }

  // --- schedules and paused kinds --------------------------------------------

  async loadSchedules(): Promise<void> {
    try {
      const [schedules, paused] = await Promise.all([schedulesList(), kindsPaused()]);
      this.schedules = schedules;
      this.pausedKinds = paused;
      const shown = this.scheduleShown;
      if (shown !== null && !schedules.some((s) => s.schedule.id === shown)) this.scheduleShown = null;
    } catch (e) {
      this.scheduleNotice = describe(e);
    }
  }

  /** Shows a schedule's jobs (none: closes the history). */
  async showSchedule(id: number | null): Promise<void> {
    this.scheduleShown = id;
    this.scheduleHistory = [];
    if (id === null) return;
    try {
      const jobs = await scheduleJobs(id);
      if (this.scheduleShown === id) this.scheduleHistory = applyToHistory(jobs, this.scheduleHistory, id);
    } catch (e) {
      this.scheduleNotice = describe(e);
    }
  }

  /** The jobs screen, filtered to the jobs schedule `id` made. */
  showScheduleJobs(id: number): void {
    this.show("jobs");
    this.setFilter({ schedule_id: id });
  }

  /** Saves a schedule (new when `id` is null); a refusal is the caller's to show. */
  async saveSchedule(id: number | null, spec: ScheduleSpec): Promise<Schedule> {
    const saved = await scheduleSave(id, spec);
    this.scheduleNotice = t(id === null ? "schedules.made" : "schedules.saved", { id: saved.id });
    await this.loadSchedules();
    return saved;
  }

  async scheduleAct(action: ScheduleAction, schedule: Schedule): Promise<void> {
    this.scheduleNotice = "";
    try {
      switch (action) {
        case "run": {
          const job = await scheduleRun(schedule.id);
          this.changed(job);
          this.scheduleNotice = t("schedules.ran", { id: job.id });
          break;
        }
        case "pause":
        case "resume":
          await scheduleSetEnabled(schedule.id, action === "resume");
          break;
        case "delete":
          await scheduleDelete(schedule.id);
          if (this.scheduleShown === schedule.id) await this.showSchedule(null);
          break;
      }
      await this.loadSchedules();
    } catch (e) {
      this.scheduleNotice = describe(e);
    }
  }

  /** Whether `kind` is paused for all of the user's workers. */
  kindPaused(kind: string): boolean {
    return this.pausedKinds.some((p) => p.kind === kind);
  }

  async setKindPaused(kind: string, paused: boolean): Promise<void> {
    try {
      this.pausedKinds = await kindSetPaused(kind, paused);
    } catch (e) {
      this.scheduleNotice = describe(e);
    }
  }

  // --- activity and retention -------------------------------------------------

  /** Reads the activity of `span` (by default the one on show). */
  async loadActivity(span: ActivitySpan = this.activitySpan): Promise<void> {
    this.activitySpan = span;
    try {
      const activity = await activityGet(span);
      // A later choice of span wins over an answer to an earlier one.
      if (this.activitySpan === span) this.activity = activity;
      this.activityNotice = "";
    } catch (e) {
      this.activityNotice = describe(e);
    }
  }

  /** Jobs ended: the figures are read again, at most once a second however many end. */
  private activitySoon(): void {
    if (this.activityTimer !== undefined) return;
    this.activityTimer = setTimeout(() => {
      this.activityTimer = undefined;
      if (this.screen === "activity") void this.loadActivity();
    }, 1000);
  }

  async loadRetention(): Promise<void> {
    try {
      this.retention = await retentionGet();
    } catch (e) {
      this.notice = describe(e);
    }
  }

  /** Saves the retention policy; a refusal is the caller's to show. */
  async saveRetention(policy: RetentionPolicy): Promise<void> {
    this.retention = await retentionSet(policy);
  }

  // --- the worker -------------------------------------------------------------

  async toggleWorker(): Promise<void> {
    try {
      this.worker = this.worker?.paused ? await workerResume() : await workerPause();
    } catch (e) {
      this.notice = describe(e);
    }
  }
}

/** `lines` added to `log` in order, each (attempt, seq) once. */
export function merge(log: LogLine[], lines: LogLine[]): LogLine[] {
  if (lines.length === 0) return log;
  const seen = new Set(log.map((l) => `${l.attempt}:${l.seq}`));
  const fresh = lines.filter((l) => !seen.has(`${l.attempt}:${l.seq}`));
  if (fresh.length === 0) return log;
  return [...log, ...fresh].sort((a, b) => a.attempt - b.attempt || a.seq - b.seq);
}
