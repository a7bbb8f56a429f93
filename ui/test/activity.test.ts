import { flushSync, mount, unmount } from "svelte";
import { describe, expect, it, vi } from "vitest";
import { chartColumns, duration, totals } from "../src/activity";
import { AppState } from "../src/app.svelte";
import type { Activity } from "../src/bindings";
import RetentionForm from "../src/components/RetentionForm.svelte";
import { setLang } from "../src/i18n.svelte";
import { job } from "./fixtures";

const activity: Activity = {
  span: "hour",
  bucket_seconds: 60,
  from: "2026-12-04T10:00:00Z",
  to: "2026-12-04T10:02:30Z",
  buckets: [
    { at: "2026-12-04T10:00:00Z", finished: 3, failed: 0, retried: 1 },
    { at: "2026-12-04T10:01:00Z", finished: 0, failed: 2, retried: 0 },
    { at: "2026-12-04T10:02:00Z", finished: 5, failed: 1, retried: 2 },
  ],
  kinds: [{ kind: "hello", finished: 8, failed: 3, p50_ms: 12.5, p90_ms: 1500, p99_ms: 61_000, max_ms: null }],
};

describe("the activity figures", () => {
  it("become the chart's columns and totals as the database counted them", () => {
    const [at, finished, failed, retried] = chartColumns(activity);
    // The last bucket's end closes its step.
    expect(at).toEqual([0, 60, 120, 180].map((s) => Date.parse("2026-12-04T10:00:00Z") / 1000 + s));
    expect([finished, failed, retried]).toEqual([[3, 0, 5, 5], [0, 2, 1, 1], [1, 0, 2, 2]]);
    expect(totals(activity)).toEqual({ finished: 8, failed: 3, retried: 3 });
    expect(chartColumns(null)).toEqual([[], [], [], []]);
    expect(["12.5", "1500", "61000", "null"].map((v) => duration(v === "null" ? null : Number(v)))).toEqual([
      "13 ms", "1.50 s", "1.0 min", "–",
    ]);
  });

  it("are read again at most once a second while jobs end, and only on the activity screen", async () => {
    vi.useFakeTimers();
    const { mockIPC, clearMocks } = await import("@tauri-apps/api/mocks");
    const asked: string[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "activity_get") {
        asked.push((args as { span: string }).span);
        return activity;
      }
      return null;
    });
    try {
      const app = new AppState((flush) => flush());
      app.connection = { url: "http://sandbox", sandbox: true } as unknown as AppState["connection"];
      app.show("activity");
      await vi.waitFor(() => expect(asked).toEqual(["hour"]));
      for (let id = 1; id <= 50; id++) {
        app.receive({ type: "jobs", jobs: [job(id, { status: "finished", ended_at: "2026-12-04T10:02:00Z" })] });
      }
      await vi.advanceTimersByTimeAsync(1000);
      expect(asked).toEqual(["hour", "hour"]);
      await app.loadActivity("week");
      expect(app.activitySpan).toBe("week");
      app.screen = "jobs";
      app.receive({ type: "jobs", jobs: [job(51, { status: "failed", ended_at: "2026-12-04T10:02:00Z" })] });
      await vi.advanceTimersByTimeAsync(2000);
      expect(asked).toEqual(["hour", "hour", "week"]);
    } finally {
      clearMocks();
      vi.useRealTimers();
    }
  });
});

describe("the retention form", () => {
  it("shows the saved policy and saves what is ticked, in either language", async () => {
    const { mockIPC, clearMocks } = await import("@tauri-apps/api/mocks");
    const saved: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "retention_set") {
        saved.push((args as { policy: unknown }).policy);
        return (args as { policy: unknown }).policy;
      }
      return null;
    });
    try {
      setLang("en");
      const app = new AppState((flush) => flush());
      app.retention = { keep_days: 14, keep_last: null };
      const target = document.createElement("div");
      const form = mount(RetentionForm, { target, props: { app } });
      flushSync();
      const input = (id: string) => target.querySelector<HTMLInputElement>(`#${id}`)!;
      expect([input("retention-by-age").checked, input("retention-days").value]).toEqual([true, "14"]);
      expect([input("retention-by-count").checked, input("retention-last").disabled]).toEqual([false, true]);
      input("retention-by-count").checked = true;
      input("retention-by-count").dispatchEvent(new Event("change"));
      flushSync();
      expect([input("retention-by-count").checked, input("retention-last").disabled]).toEqual([true, false]);
      input("retention-last").value = "200";
      input("retention-last").dispatchEvent(new Event("input"));
      target.querySelector("form")!.dispatchEvent(new Event("submit", { cancelable: true }));
      await vi.waitFor(() => expect(saved).toEqual([{ keep_days: 14, keep_last: 200 }]));
      await vi.waitFor(() => expect(target.querySelector("#retention-message")?.textContent).toContain("Saved"));
      setLang("ja");
      flushSync();
      expect(target.querySelector("h2")?.textContent).toBe("終了したジョブの保持");
      unmount(form);
    } finally {
      clearMocks();
      setLang("en");
    }
  });
});
