import { flushSync, mount, unmount } from "svelte";
import { describe as suite, expect, it } from "vitest";
import { AppState } from "../src/app.svelte";
import type { AppEvent } from "../src/bindings";
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
