import { flushSync, mount, unmount } from "svelte";
import { describe as suite, expect, it, vi } from "vitest";
import { AppState } from "../src/app.svelte";
import type { AppEvent, Job, LogLine } from "../src/bindings";
import DetailPanel from "../src/components/DetailPanel.svelte";
import JobsTable from "../src/components/JobsTable.svelte";
import { describe } from "../src/errors";
import { setLang } from "../src/i18n.svelte";
import { job } from "./fixtures";

/** A state whose frames the test runs itself. */
function manual(): { app: AppState; frames: Array<() => void> } {
  const frames: Array<() => void> = [];
  return { app: new AppState((flush) => frames.push(flush)), frames };
}

suite("live events", () => {
  it("apply a burst of a thousand in two batches: the first at once, the rest at the next frame", () => {
    const { app, frames } = manual();
    app.filter = { ...app.filter, limit: 50 };
    const target = document.createElement("div");
    const table = mount(JobsTable, { target, props: { app } });
    for (let id = 1; id <= 1000; id++) {
      const event: AppEvent = { type: "jobs", jobs: [job(id, { status: id === 1000 ? "running" : "waiting" })] };
      app.receive(event);
    }
    app.receive({ type: "progress", id: 1000, progress: 0.5, message: null });
    expect(frames).toHaveLength(1);
    frames[0]();
    flushSync();

    // The first at once, the rest together at the next frame.
    expect(app.batches).toBe(2);
    expect(app.jobs.map((j) => j.id).slice(0, 3)).toEqual([1000, 999, 998]);
    expect(app.jobs).toHaveLength(50);
    expect(target.querySelectorAll("tr[data-id]")).toHaveLength(50);
    expect(target.querySelector('tr[data-id="1000"] .bar')?.getAttribute("aria-valuenow")).toBe("50");
    unmount(table);
  });

  it("paint a job running for a frame even when it starts and ends within one burst", () => {
    const { app, frames } = manual();
    app.jobs = [job(7, { status: "waiting" })];
    const status = { name: "w", paused: false, concurrency: 4, running: [] };
    // The worker's resume is applied at once; the job's start and end follow it.
    app.receive({ type: "worker", status, trouble: null });
    app.receive({ type: "jobs", jobs: [job(7, { status: "running", updated_at: "2026-11-28T10:01:00+00:00" })] });
    app.receive({ type: "jobs", jobs: [job(7, { status: "finished", updated_at: "2026-11-28T10:02:00+00:00" })] });
    expect(app.jobs[0].status).toBe("waiting");
    frames.shift()?.();
    expect(app.jobs[0].status).toBe("running");
    expect(frames).toHaveLength(1);
    frames.shift()?.();
    expect(app.jobs[0].status).toBe("finished");
    expect(frames).toHaveLength(0);
    // The next event is a new burst, applied at once.
    app.receive({ type: "jobs", jobs: [job(7, { status: "waiting", updated_at: "2026-11-28T10:03:00+00:00" })] });
    expect(app.jobs[0].status).toBe("waiting");
  });

  it("keep the last word on the worker and a newer version of the open job", () => {
    const { app, frames } = manual();
    app.detail = job(7, { updated_at: "2026-11-28T10:00:05+00:00", status: "running" });
    const status = { name: "w", paused: false, concurrency: 4, running: [] };
    app.receive({ type: "worker", status: { ...status, running: [7] }, trouble: "down" });
    app.receive({ type: "worker", status, trouble: null });
    app.receive({ type: "jobs", jobs: [job(7, { status: "waiting" })] });
    app.receive({ type: "jobs", jobs: [job(7, { status: "finished", updated_at: "2026-11-28T10:00:09+00:00" })] });
    frames[0]();
    expect(app.worker?.running).toEqual([]);
    expect(app.workerTrouble).toBeNull();
    expect(app.detail?.status).toBe("finished");
  });

  it("take deleted jobs off the list and close the open one; follow whether the list is live", () => {
    const { app, frames } = manual();
    app.jobs = [job(3), job(2), job(1)];
    app.total = 3;
    app.detail = job(2);
    app.selected = 2;
    app.receive({ type: "live", state: { state: "live" } });
    app.receive({ type: "deleted", ids: [2, 9] });
    frames[0]();
    expect(app.jobs.map((j) => j.id)).toEqual([3, 1]);
    expect(app.total).toBe(2);
    expect(app.detail).toBeNull();
    expect(app.selected).toBeNull();
    expect(app.live.state).toBe("live");
    app.receive({ type: "live", state: { state: "down", reason: "socket closed" } });
    expect(app.live).toEqual({ state: "down", reason: "socket closed" });
  });
});

function line(attempt: number, seq: number, text: string, stream: LogLine["stream"] = "stdout"): LogLine {
  return { attempt, seq, at: "2026-11-28T10:00:01+00:00", stream, level: stream === "stderr" ? "warn" : "info", line: text };
}

suite("a job's log", () => {
  it("shows the lines of the job on show in order, each once, stdout and stderr apart; a new attempt takes over", () => {
    setLang("en");
    const { app, frames } = manual();
    app.detail = job(7, { status: "running", attempt: 1, kind: "export" });
    app.kinds = [];
    const target = document.createElement("div");
    const panel = mount(DetailPanel, { target, props: { app, job: app.detail, close: () => {} } });
    app.receive({ type: "log", id: 7, lines: [line(1, 0, "one"), line(1, 1, "two", "stderr")] });
    app.receive({ type: "log", id: 8, lines: [line(1, 0, "another job's")] });
    app.receive({ type: "log", id: 7, lines: [line(1, 1, "two", "stderr"), line(1, 2, "three")] });
    frames[0]();
    flushSync();
    const shown = () => [...target.querySelectorAll("#job-log .log-line")].map((l) => [l.getAttribute("data-stream"), l.textContent?.split(" ").pop()]);
    expect(shown()).toEqual([["stdout", "one"], ["stderr", "two"], ["stdout", "three"]]);
    app.receive({ type: "log", id: 7, lines: [line(2, 0, "again")] });
    flushSync();
    expect(shown()).toEqual([["stdout", "again"]]);
    expect(app.logAttempt).toBe(2);
    unmount(panel);
  });

  it("says when no worker on this device runs a waiting job's kind", () => {
    setLang("en");
    const { app } = manual();
    const waiting = job(9, { kind: "export" });
    const target = document.createElement("div");
    const panel = mount(DetailPanel, { target, props: { app, job: waiting, close: () => {} } });
    flushSync();
    expect(target.querySelector("#detail-no-worker")?.textContent).toContain("export");
    unmount(panel);
  });
});

suite("errors", () => {
  it("are summarised by code in the user's language, with the server's words after", () => {
    setLang("ja");
    expect(describe({ code: "network", message: "cannot reach http://x" })).toBe(
      "プロジェクトに接続できません: cannot reach http://x",
    );
    setLang("en");
    expect(describe({ code: "auth_expired", message: "Invalid login credentials" })).toBe(
      "Sign in again: Invalid login credentials",
    );
    expect(describe(new Error("plain"))).toBe("plain");
  });
});

suite("paging", () => {
  it("keeps the whole list's total on every page, from the first page's answer", async () => {
    const { mockIPC, clearMocks } = await import("@tauri-apps/api/mocks");
    const filters: Array<{ before: number | null }> = [];
    mockIPC((cmd, args) => {
      if (cmd === "jobs_list") {
        const filter = (args as { filter: { before: number | null; limit: number } }).filter;
        filters.push({ before: filter.before });
        const top = filter.before ?? 121;
        const jobs = Array.from({ length: Math.min(filter.limit, top - 1) }, (_, n) => job(top - 1 - n));
        return { jobs, total: 120 };
      }
      if (cmd === "jobs_counts") return { waiting: 120 };
      return null;
    });
    try {
      const { app } = manual();
      app.filter = { ...app.filter, limit: 50 };
      await app.firstPage();
      expect(app.total).toBe(120);
      await app.page(1);
      expect(filters.map((f) => f.before)).toEqual([null, 71]);
      expect(app.jobs[0].id).toBe(70);
      expect(app.skipped).toBe(50);
      expect(app.total).toBe(120);
      await app.page(-1);
      expect(app.total).toBe(120);
      expect(app.skipped).toBe(0);
    } finally {
      clearMocks();
    }
  });
});

const signedIn = {
  url: "http://x",
  sandbox: true,
  session: { state: "active", email: "a@example.com", expires_at: 0 },
  worker: { name: "w", paused: false, concurrency: 4, running: [] },
  live: { state: "off" },
};

/** The jobs screen's opening as the app answers it, read when `sent` job events had
 *  gone out. */
function opening(jobs: Job[], sent: number) {
  return {
    kinds: { path: null, kinds: [], problems: [] },
    page: { jobs, total: jobs.length },
    counts: { waiting: jobs.length },
    job_events_sent: sent,
  };
}

suite("opening", () => {
  it("shows the opening read at launch in one round trip, and reads no list of its own", async () => {
    const { mockIPC, clearMocks } = await import("@tauri-apps/api/mocks");
    const asked: string[] = [];
    mockIPC((cmd) => {
      asked.push(cmd);
      if (cmd === "job_events_sent") return 3;
      if (cmd === "jobs_list" || cmd === "jobs_counts") throw new Error("not expected");
      return null;
    });
    try {
      const { app } = manual();
      await app.route(Promise.resolve(signedIn as never), Promise.resolve(opening([job(2), job(1)], 3) as never));
      expect(app.screen).toBe("jobs");
      expect(app.jobs.map((j) => j.id)).toEqual([2, 1]);
      expect(app.total).toBe(2);
      expect(app.notice).toBe("");
      expect(asked.filter((cmd) => cmd.startsWith("jobs_"))).toEqual([]);
    } finally {
      clearMocks();
    }
  });

  it("reads the list again when a job's event went out between the opening's read and listening", async () => {
    const { mockIPC, clearMocks } = await import("@tauri-apps/api/mocks");
    mockIPC((cmd) => {
      // The worker started job 1 after the opening was read: its event may be lost.
      if (cmd === "job_events_sent") return 4;
      if (cmd === "jobs_list") return { jobs: [{ ...job(1), status: "running" }], total: 1 };
      if (cmd === "jobs_counts") return { running: 1 };
      return null;
    });
    try {
      const { app } = manual();
      await app.route(Promise.resolve(signedIn as never), Promise.resolve(opening([job(1)], 3) as never));
      expect(app.jobs.map((j) => j.status)).toEqual(["running"]);
      expect(app.counts).toEqual({ running: 1 });
    } finally {
      clearMocks();
    }
  });

  it("asks for the opening itself when none came with the connection, and says why it failed", async () => {
    const { mockIPC, clearMocks } = await import("@tauri-apps/api/mocks");
    mockIPC((cmd) => {
      if (cmd === "jobs_opening") throw { code: "network", message: "the project cannot be reached" };
      return null;
    });
    try {
      const { app } = manual();
      await app.route(Promise.resolve(signedIn as never));
      expect(app.screen).toBe("jobs");
      expect(app.notice).toContain("the project cannot be reached");
    } finally {
      clearMocks();
    }
  });
});

suite("launch", () => {
  it("tells the app once when the first list was painted, its steps in the order they came", async () => {
    const { mockIPC, clearMocks } = await import("@tauri-apps/api/mocks");
    const frames = () => new Promise((frame) => requestAnimationFrame(() => requestAnimationFrame(frame)));
    // The earlier tests' states report their own lists two frames on: not to this mock.
    await frames();
    const shown: Array<Record<string, number>> = [];
    mockIPC((cmd, args) => {
      if (cmd === "jobs_opening") return opening([job(1)], 0);
      if (cmd === "job_events_sent") return 0;
      if (cmd === "jobs_list") return { jobs: [job(1)], total: 1 };
      if (cmd === "jobs_counts") return { waiting: 1 };
      if (cmd === "ui_list_shown") shown.push((args as { timings: Record<string, number> }).timings);
      return null;
    });
    try {
      // A fresh page: the steps are noted once per page, and earlier tests reached them.
      vi.resetModules();
      const { mark } = await import("../src/launch");
      const { AppState } = await import("../src/app.svelte");
      const app = new AppState();
      mark("script_ms"); // as main.ts does
      await app.route(Promise.resolve(signedIn as never));
      // A second list is not a launch: still one report.
      await app.reload();
      await vi.waitFor(() => expect(shown).toHaveLength(1), { timeout: 5000 });
      await frames();
      expect(shown).toHaveLength(1);
      const [t] = shown;
      expect(t.script_ms).toBeLessThanOrEqual(t.connection_ms);
      expect(t.connection_ms).toBeLessThanOrEqual(t.list_ms);
      expect(t.list_ms).toBeLessThanOrEqual(t.painted_ms);
      expect(app.screen).toBe("jobs");
    } finally {
      clearMocks();
    }
  });
});
