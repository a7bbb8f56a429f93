import { flushSync, mount, unmount } from "svelte";
import { describe, expect, it } from "vitest";
import { AppState } from "../src/app.svelte";
import type { Schedule, ScheduleSummary } from "../src/bindings";
import SchedulesScreen from "../src/components/SchedulesScreen.svelte";
import { setLang } from "../src/i18n.svelte";
import { applyToHistory, applyToSchedules } from "../src/state";
import { job } from "./fixtures";

function schedule(id: number, patch: Partial<Schedule> = {}): Schedule {
  return {
    id, name: `s${id}`, kind: "hello", context: { name: "Ada" }, cron: "*/5 * * * *", timezone: "Asia/Tokyo",
    priority: 0, max_attempts: 3, enabled: true, on_missed: "run_once",
    next_run_at: "2026-11-28T10:05:00+00:00", last_run_at: null, last_job_id: null, problem: null,
    created_at: "2026-11-28T10:00:00+00:00", updated_at: "2026-11-28T10:00:00+00:00", ...patch,
  };
}

describe("schedules follow their jobs", () => {
  it("a schedule's last job is its newest, replaced by newer versions, others untouched", () => {
    const summaries: ScheduleSummary[] = [
      { schedule: schedule(1), last_job: job(10, { schedule_id: 1 }) },
      { schedule: schedule(2), last_job: null },
    ];
    const running = job(10, { schedule_id: 1, status: "running", updated_at: "2026-11-28T10:01:00+00:00" });
    const stale = job(10, { schedule_id: 1, status: "waiting", updated_at: "2026-11-28T09:00:00+00:00" });
    const after = applyToSchedules(summaries, [running, stale, job(11, { schedule_id: null })]);
    expect(after[0].last_job?.status).toBe("running");
    expect(after[1]).toBe(summaries[1]);
    const made = applyToSchedules(after, [job(12, { schedule_id: 2 })]);
    expect(made[1].last_job?.id).toBe(12);
    expect(applyToSchedules(made, [job(99)])).toBe(made);
  });

  it("a schedule's history gains its new jobs, newest first, and only its own", () => {
    const history = [job(5, { schedule_id: 1 })];
    const next = applyToHistory(history, [job(6, { schedule_id: 1 }), job(7, { schedule_id: 2 })], 1);
    expect(next.map((j) => j.id)).toEqual([6, 5]);
    expect(applyToHistory(next, [job(8, { schedule_id: 3 })], 1)).toBe(next);
  });
});

describe("the schedules screen", () => {
  it("shows each schedule's state, its last job's outcome and the paused kinds, in either language", () => {
    setLang("en");
    const app = new AppState((flush) => flush());
    app.kinds = [
      { name: "hello", description: "", input_schema: {}, source: "built_in", executor: "rust" },
    ];
    app.schedules = [
      { schedule: schedule(1), last_job: job(10, { schedule_id: 1, status: "failed" }) },
      { schedule: schedule(2, { enabled: false }), last_job: null },
      { schedule: schedule(3, { problem: "the cron expression \"x\" is not valid" }), last_job: null },
    ];
    app.pausedKinds = [{ kind: "report", paused_at: "2026-11-28T10:00:00+00:00" }];
    const target = document.createElement("div");
    const screen = mount(SchedulesScreen, { target, props: { app } });
    flushSync();
    const row = (id: number) => target.querySelector(`tr[data-schedule="${id}"]`);
    expect(row(1)?.querySelector(".last .badge")?.textContent).toBe("failed");
    expect(row(1)?.querySelector(".next")?.textContent).not.toBe("");
    expect(row(1)?.querySelector(".state")?.textContent?.trim()).toBe("Active");
    expect(row(2)?.querySelector(".state")?.textContent?.trim()).toBe("Paused");
    expect(row(2)?.querySelector(".next")?.textContent).toBe("");
    expect(row(2)?.querySelector(".schedule-toggle")?.textContent?.trim()).toBe("Resume");
    expect(row(3)?.querySelector(".state")?.textContent?.trim()).toBe("Problem");
    // Kinds this device runs and kinds paused elsewhere, each with its toggle.
    const kinds = [...target.querySelectorAll("#paused-kinds li")].map((li) => [
      li.getAttribute("data-kind"),
      li.querySelector(".kind-toggle")?.textContent?.trim(),
    ]);
    expect(kinds).toEqual([["hello", "Pause"], ["report", "Resume"]]);
    setLang("ja");
    flushSync();
    expect(row(2)?.querySelector(".state")?.textContent?.trim()).toBe("一時停止中");
    setLang("en");
    unmount(screen);
  });
});
