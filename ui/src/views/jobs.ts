// The main screen: the user's jobs, live, with filters, paging, a detail panel, the
// enqueue panel and a status bar.

import {
  authSignOut,
  jobCancel,
  jobDelete,
  jobGet,
  jobRetry,
  jobRunAgain,
  jobsBulk,
  jobsCounts,
  jobsList,
  kindsList,
  uiListShown,
  workerPause,
  workerResume,
  type AppEvent,
  type ConnectionView,
  type Job,
  type JobStatus,
  type JsonValue,
  type SessionState,
  type WorkerStatus,
} from "../bindings";
import { h, messageOf, mount } from "../dom";
import { clock, jobDuration, millis } from "../format";
import { t, type Key } from "../i18n";
import { STATUSES, actionsFor, applyChanges, applyProgress, emptyFilter } from "../state";
import { enqueuePanel } from "./enqueue";

type Action = ReturnType<typeof actionsFor>[number];

// The app logs once how long after launch the job list reached the screen: two frames
// on, the list has been painted.
let listShownReported = false;
function reportListShown(): void {
  if (listShownReported) return;
  listShownReported = true;
  requestAnimationFrame(() => requestAnimationFrame(() => void uiListShown().catch(() => {})));
}

export class JobsScreen {
  private filter = emptyFilter();
  private jobs: Job[] = [];
  private total = 0;
  /** The `before` of each earlier page, for "Newer". */
  private previous: Array<number | null> = [];
  /** Rows above this page (for the "51–100 of N" label). */
  private skipped = 0;
  private counts: Partial<Record<JobStatus, number>> = {};
  private selected: number | null = null;
  private detail: Job | null = null;
  private session: SessionState;
  private worker: WorkerStatus;
  private workerTrouble: string | null = null;
  private feedError: string | null = null;
  private countsTimer: number | undefined;
  private ticker: number;

  private readonly table = h("tbody", { id: "jobs-body" });
  private readonly countsBar = h("div", { class: "chips", id: "status-filter", role: "toolbar" });
  private readonly kindFilter = h("select", { id: "filter-kind" });
  private readonly search = h("input", { id: "search", type: "search", placeholder: t("jobs.search") });
  private readonly range = h("span", { id: "page-range", class: "muted" });
  private readonly newer = h("button", { id: "page-newer", type: "button" }, t("jobs.newer"));
  private readonly older = h("button", { id: "page-older", type: "button" }, t("jobs.older"));
  private readonly notice = h("p", { class: "message", id: "jobs-message", role: "status" });
  private readonly detailPanel = h("aside", { class: "panel detail", id: "detail", hidden: true });
  private readonly statusBar = h("footer", { id: "statusbar" });

  constructor(
    private readonly root: Element,
    private readonly connection: ConnectionView,
    private readonly header: HTMLElement,
    private readonly signedOut: () => void,
  ) {
    this.session = connection.session;
    this.worker = connection.worker;
    this.ticker = window.setInterval(() => this.tick(), 1000);
  }

  async show(): Promise<void> {
    const kinds = await kindsList();
    mount(this.kindFilter, h("option", { value: "" }, t("jobs.allKinds")), ...kinds.map((k) => h("option", { value: k.name }, k.name)));
    this.kindFilter.addEventListener("change", () => {
      this.filter = { ...this.filter, kind: this.kindFilter.value || null };
      void this.firstPage();
    });
    let typing: number | undefined;
    this.search.addEventListener("input", () => {
      window.clearTimeout(typing);
      typing = window.setTimeout(() => {
        this.filter = { ...this.filter, search: this.search.value.trim() || null };
        void this.firstPage();
      }, 200);
    });
    this.newer.addEventListener("click", () => void this.page(-1));
    this.older.addEventListener("click", () => void this.page(1));

    const signOut = h("button", { id: "sign-out", type: "button" }, t("auth.signOut"));
    signOut.addEventListener("click", async () => {
      await authSignOut();
      this.signedOut();
    });
    this.header.append(signOut);

    const table = h(
      "table",
      { id: "jobs", "aria-label": t("jobs.title") },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...(["col.id", "col.kind", "col.status", "col.created", "col.started", "col.ended", "col.duration", "col.progress", "col.attempts"] as Key[]).map((k) =>
            h("th", { scope: "col" }, t(k)),
          ),
        ),
      ),
      this.table,
    );
    this.table.addEventListener("click", (event) => {
      const row = (event.target as Element).closest("tr[data-id]");
      if (row) void this.open(Number(row.getAttribute("data-id")));
    });
    this.table.addEventListener("keydown", (event) => this.onKey(event));

    mount(
      this.root,
      h(
        "div",
        { class: "layout", id: "jobs-screen" },
        h(
          "section",
          { class: "main" },
          h(
            "div",
            { class: "toolbar" },
            this.countsBar,
            h("div", { class: "row" }, this.kindFilter, this.search),
          ),
          h("div", { class: "table-wrap" }, table),
          h(
            "div",
            { class: "toolbar" },
            h(
              "div",
              { class: "row" },
              this.bulkButton("cancel", "bulk-cancel", "jobs.cancelAll"),
              this.bulkButton("retry", "bulk-retry", "jobs.retryAll"),
              this.notice,
            ),
            h("div", { class: "row" }, this.range, this.newer, this.older),
          ),
        ),
        this.detailPanel,
        enqueuePanel(kinds, (job) => this.onEvent({ type: "jobs", jobs: [job] })),
      ),
      this.statusBar,
    );
    document.addEventListener("keydown", this.globalKeys);
    this.renderStatus();
    await this.firstPage();
  }

  dispose(): void {
    window.clearInterval(this.ticker);
    window.clearTimeout(this.countsTimer);
    document.removeEventListener("keydown", this.globalKeys);
  }

  private readonly globalKeys = (event: KeyboardEvent) => {
    const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement || event.target instanceof HTMLSelectElement;
    if (event.key === "/" && !typing) {
      event.preventDefault();
      this.search.focus();
    } else if (event.key === "Escape" && this.detail) {
      this.closeDetail();
    }
  };

  // --- data -----------------------------------------------------------------

  private async firstPage(): Promise<void> {
    this.previous = [];
    this.skipped = 0;
    this.filter = { ...this.filter, before: null };
    await this.reload();
  }

  private async page(direction: 1 | -1): Promise<void> {
    if (direction === 1) {
      const last = this.jobs[this.jobs.length - 1];
      if (!last) return;
      this.previous.push(this.filter.before);
      this.skipped += this.jobs.length;
      this.filter = { ...this.filter, before: last.id };
    } else {
      if (this.previous.length === 0) return;
      this.filter = { ...this.filter, before: this.previous.pop() ?? null };
      this.skipped = Math.max(0, this.skipped - this.filter.limit);
    }
    await this.reload();
  }

  private async reload(): Promise<void> {
    try {
      const [page, counts] = await Promise.all([jobsList(this.filter), jobsCounts()]);
      this.jobs = page.jobs;
      this.total = page.total + this.skipped;
      this.counts = counts;
      this.renderCounts();
      this.renderTable();
      reportListShown();
    } catch (e) {
      this.notice.textContent = messageOf(e);
    }
  }

  private refreshCountsSoon(): void {
    window.clearTimeout(this.countsTimer);
    this.countsTimer = window.setTimeout(async () => {
      try {
        this.counts = await jobsCounts();
        this.renderCounts();
      } catch {
        // The feed's own error shows in the status bar.
      }
    }, 250);
  }

  onEvent(event: AppEvent): void {
    switch (event.type) {
      case "jobs": {
        const { jobs, joined } = applyChanges(this.jobs, event.jobs, this.filter);
        this.jobs = jobs;
        this.total += joined;
        if (this.detail) {
          const fresh = event.jobs.find((j) => j.id === this.detail?.id);
          if (fresh && millis(fresh.updated_at) >= millis(this.detail.updated_at)) {
            this.detail = fresh;
            this.renderDetail();
          }
        }
        this.renderTable();
        this.refreshCountsSoon();
        break;
      }
      case "progress":
        this.jobs = applyProgress(this.jobs, event.id, event.progress, event.message);
        this.renderTable();
        break;
      case "session":
        this.session = event.state;
        this.renderStatus();
        if (event.state.state === "signed_out" || event.state.state === "ended") this.signedOut();
        break;
      case "worker":
        this.worker = event.status;
        this.workerTrouble = event.trouble;
        this.renderStatus();
        break;
      case "feed":
        this.feedError = event.error?.message ?? null;
        this.renderStatus();
        if (!event.error) void this.reload();
        break;
    }
  }

  // --- table ----------------------------------------------------------------

  private renderCounts(): void {
    const chip = (status: JobStatus | null) => {
      const active = status === null ? this.filter.statuses.length === 0 : this.filter.statuses.includes(status);
      const count = status === null ? Object.values(this.counts).reduce((a, b) => a + (b ?? 0), 0) : this.counts[status] ?? 0;
      return h(
        "button",
        {
          type: "button",
          class: `chip ${status ? `status-${status}` : ""} ${active ? "active" : ""}`,
          "data-status": status ?? "all",
          "aria-pressed": active ? "true" : "false",
          onclick: () => {
            this.filter = { ...this.filter, statuses: status ? [status] : [] };
            void this.firstPage();
          },
        },
        status ? t(`status.${status}` as Key) : t("jobs.all"),
        h("span", { class: "count" }, count),
      );
    };
    mount(this.countsBar, chip(null), ...STATUSES.map(chip));
  }

  private renderTable(): void {
    const focused = document.activeElement?.closest?.("tr[data-id]")?.getAttribute("data-id");
    if (this.jobs.length === 0) {
      const filtered = this.filter.statuses.length > 0 || this.filter.kind || this.filter.search;
      mount(this.table, h("tr", {}, h("td", { colspan: "9", class: "empty" }, t(filtered ? "jobs.noMatch" : "jobs.empty"))));
    } else {
      mount(this.table, ...this.jobs.map((job) => this.row(job)));
    }
    if (focused) (this.table.querySelector(`tr[data-id="${focused}"]`) as HTMLElement | null)?.focus();
    const from = this.jobs.length ? this.skipped + 1 : 0;
    this.range.textContent = t("jobs.range", { from, to: this.skipped + this.jobs.length, total: this.total });
    this.newer.disabled = this.previous.length === 0;
    this.older.disabled = this.skipped + this.jobs.length >= this.total;
  }

  private row(job: Job): HTMLTableRowElement {
    const progress = job.progress ?? (job.status === "finished" ? 1 : 0);
    return h(
      "tr",
      {
        "data-id": job.id,
        "data-status": job.status,
        tabindex: job.id === this.selected || (this.selected === null && job === this.jobs[0]) ? "0" : "-1",
        class: job.id === this.selected ? "selected" : undefined,
        "aria-selected": job.id === this.selected ? "true" : "false",
      },
      h("td", { class: "id" }, job.id),
      h("td", { class: "kind" }, job.kind),
      h("td", { class: "status" }, h("span", { class: `badge status-${job.status}` }, t(`status.${job.status}` as Key))),
      h("td", { class: "created" }, clock(job.created_at)),
      h("td", { class: "started" }, clock(job.started_at)),
      h("td", { class: "ended" }, clock(job.ended_at)),
      h("td", { class: "duration", "data-started": job.started_at ?? "", "data-running": job.status === "running" ? "1" : "" }, jobDuration(job)),
      h(
        "td",
        { class: "progress" },
        h(
          "div",
          { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": Math.round(progress * 100), title: job.progress_message ?? "" },
          h("div", { class: "fill", style: `width: ${Math.round(progress * 100)}%` }),
        ),
      ),
      h("td", { class: "attempts" }, `${job.attempt}/${job.max_attempts}`),
    );
  }

  /** Running jobs' durations tick without re-rendering the table. */
  private tick(): void {
    for (const cell of this.table.querySelectorAll<HTMLElement>("td.duration[data-running='1']")) {
      const started = cell.dataset.started;
      if (started) cell.textContent = jobDuration({ started_at: started, ended_at: null, status: "running" });
    }
  }

  private onKey(event: KeyboardEvent): void {
    const rows = [...this.table.querySelectorAll<HTMLElement>("tr[data-id]")];
    const index = rows.findIndex((r) => r === document.activeElement);
    const go = (i: number) => {
      const row = rows[Math.max(0, Math.min(rows.length - 1, i))];
      if (!row) return;
      rows.forEach((r) => r.setAttribute("tabindex", "-1"));
      row.setAttribute("tabindex", "0");
      row.focus();
      event.preventDefault();
    };
    switch (event.key) {
      case "ArrowDown":
      case "j":
        go(index + 1);
        break;
      case "ArrowUp":
      case "k":
        go(index - 1);
        break;
      case "Home":
        go(0);
        break;
      case "End":
        go(rows.length - 1);
        break;
      case "Enter":
      case " ":
        if (index >= 0) {
          event.preventDefault();
          void this.open(Number(rows[index].dataset.id));
        }
        break;
    }
  }

  // --- detail ---------------------------------------------------------------

  private async open(id: number): Promise<void> {
    this.selected = id;
    this.detail = this.jobs.find((j) => j.id === id) ?? null;
    this.renderDetail();
    this.renderTable();
    try {
      const fetched = await jobGet(id);
      if (this.selected !== id) return;
      if (this.detail?.id !== id) {
        this.detail = fetched;
        this.renderDetail();
      } else {
        // Applied like any change: a live event that arrived while the row was on its
        // way may be newer, and an older version must not replace it.
        this.onEvent({ type: "jobs", jobs: [fetched] });
      }
    } catch (e) {
      this.notice.textContent = messageOf(e);
    }
  }

  private closeDetail(): void {
    this.detail = null;
    this.detailPanel.hidden = true;
    (this.table.querySelector(`tr[data-id="${this.selected}"]`) as HTMLElement | null)?.focus();
  }

  private async act(action: Action, job: Job): Promise<void> {
    this.notice.textContent = "";
    try {
      switch (action) {
        case "cancel":
          this.onEvent({ type: "jobs", jobs: [await jobCancel(job.id)] });
          break;
        case "retry":
          this.onEvent({ type: "jobs", jobs: [await jobRetry(job.id)] });
          break;
        case "runAgain": {
          const again = await jobRunAgain(job.id);
          this.onEvent({ type: "jobs", jobs: [again] });
          await this.open(again.id);
          break;
        }
        case "delete":
          if (await jobDelete(job.id)) {
            this.jobs = this.jobs.filter((j) => j.id !== job.id);
            this.total = Math.max(0, this.total - 1);
            this.closeDetail();
            this.renderTable();
            this.refreshCountsSoon();
          }
          break;
      }
    } catch (e) {
      this.notice.textContent = messageOf(e);
    }
  }

  /** A bulk action may touch thousands of jobs: the first click asks, the second (within
   *  five seconds) acts. */
  private bulkButton(action: "cancel" | "retry", id: string, label: Key): HTMLButtonElement {
    const button = h("button", { id, type: "button" }, t(label));
    let armed: number | undefined;
    button.addEventListener("click", () => {
      if (armed === undefined) {
        button.textContent = t("jobs.confirm");
        button.classList.add("danger");
        armed = window.setTimeout(() => {
          armed = undefined;
          button.textContent = t(label);
          button.classList.remove("danger");
        }, 5000);
        return;
      }
      window.clearTimeout(armed);
      armed = undefined;
      button.textContent = t(label);
      button.classList.remove("danger");
      void this.bulk(action);
    });
    return button;
  }

  private async bulk(action: "cancel" | "retry"): Promise<void> {
    this.notice.textContent = "";
    try {
      const count = await jobsBulk(action, { ...this.filter, before: null });
      this.notice.textContent = t("jobs.bulkDone", { count });
      await this.reload();
    } catch (e) {
      this.notice.textContent = messageOf(e);
    }
  }

  private renderDetail(): void {
    const job = this.detail;
    if (!job) {
      this.detailPanel.hidden = true;
      return;
    }
    this.detailPanel.hidden = false;
    const json = (value: JsonValue | null) => h("pre", { class: "json" }, JSON.stringify(value, null, 2));
    const error = job.error as Record<string, JsonValue> | null;
    const labels: Record<Action, Key> = { cancel: "action.cancel", retry: "action.retry", runAgain: "action.runAgain", delete: "action.delete" };
    const timeline: Array<[Key, string | null]> = [
      ["detail.created", job.created_at],
      ["detail.runAt", job.status === "waiting" ? job.run_at : null],
      ["detail.started", job.started_at],
      ["detail.cancelRequested", job.cancel_requested_at],
      ["detail.ended", job.ended_at],
    ];
    const history = job.history as Array<Record<string, JsonValue>>;
    mount(
      this.detailPanel,
      h(
        "header",
        { class: "row" },
        h("h2", {}, `#${job.id} ${job.kind}`),
        h("span", { class: `badge status-${job.status}`, id: "detail-status" }, t(`status.${job.status}` as Key)),
        h("button", { class: "link", id: "detail-close", type: "button", onclick: () => this.closeDetail(), "aria-label": t("detail.close") }, "✕"),
      ),
      h(
        "div",
        { class: "row actions" },
        ...actionsFor(job).map((action) =>
          h("button", { type: "button", "data-action": action, onclick: () => void this.act(action, job) }, t(labels[action])),
        ),
      ),
      h("h3", {}, t("detail.timeline")),
      h(
        "dl",
        { class: "timeline", id: "detail-timeline" },
        ...timeline.filter(([, at]) => at).flatMap(([key, at]) => [h("dt", {}, t(key)), h("dd", { "data-event": key.slice(7) }, clock(at))]),
      ),
      error
        ? h(
            "section",
            { class: "failure", id: "detail-failure" },
            h("h3", {}, t("detail.failure")),
            h("p", { class: "error-message" }, String(error.message ?? "")),
            error.code ? h("p", { class: "muted" }, h("code", {}, String(error.code))) : null,
            error.details ? json(error.details) : null,
          )
        : null,
      h("h3", {}, t("detail.input")),
      json(job.context),
      job.result !== null ? h("h3", {}, t("detail.result")) : null,
      job.result !== null ? json(job.result) : null,
      h("h3", {}, t("detail.attempts")),
      history.length === 0
        ? h("p", { class: "muted" }, t("detail.noAttempts"))
        : h(
            "ol",
            { class: "attempts", id: "detail-attempts" },
            ...history.map((entry) => {
              const failure = entry.error as Record<string, JsonValue> | null;
              return h(
                "li",
                {},
                h("strong", {}, t("detail.attempt", { n: String(entry.attempt ?? "?") })),
                ` ${String(entry.outcome ?? "")} · ${clock(entry.started_at as string | null)} → ${clock(entry.ended_at as string | null)}`,
                failure ? h("div", { class: "error-message" }, String(failure.message ?? ""), failure.code ? ` (${String(failure.code)})` : "") : null,
              );
            }),
          ),
    );
  }

  // --- status bar -----------------------------------------------------------

  private renderStatus(): void {
    const worker = this.worker;
    const toggle = h(
      "button",
      {
        class: "link",
        id: "worker-toggle",
        type: "button",
        onclick: async () => {
          this.worker = worker.paused ? await workerResume() : await workerPause();
          this.renderStatus();
        },
      },
      worker.paused ? t("status.resume") : t("status.pause"),
    );
    const session = this.session;
    let sessionText: string;
    switch (session.state) {
      case "active":
        sessionText = `${session.email ?? ""} · ${t("status.expires", { time: clock(new Date(session.expires_at * 1000).toISOString()) })}`;
        break;
      case "refreshing":
        sessionText = `${session.email ?? ""} · ${t("status.refreshing")}`;
        break;
      case "offline":
        sessionText = `${session.email ?? ""} · ${t("status.offline")}`;
        break;
      default:
        sessionText = t("status.signedOut");
    }
    const trouble = this.feedError ?? this.workerTrouble;
    mount(
      this.statusBar,
      h(
        "span",
        { id: "worker-state", "data-paused": worker.paused ? "1" : "0" },
        `${t("status.worker")}: `,
        worker.paused ? t("status.paused") : t("status.running_n", { n: worker.running.length, max: worker.concurrency }),
        worker.running.length ? h("span", { class: "muted" }, ` (#${worker.running.join(", #")})`) : null,
        " ",
        toggle,
      ),
      h("span", { id: "session-state", "data-state": session.state }, sessionText),
      trouble ? h("span", { class: "error", id: "connection-trouble" }, `${t("status.offline")} ${trouble}`) : null,
      h("span", { class: "muted", id: "project-url" }, this.connection.sandbox ? `${t("status.sandbox")} · ${this.connection.url}` : this.connection.url),
    );
  }
}
