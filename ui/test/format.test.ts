import { describe, expect, it } from "vitest";
import { clock, duration, jobDuration, millis } from "../src/format";

describe("format", () => {
  it("reads PostgreSQL timestamps with microseconds and short offsets", () => {
    expect(millis("2026-11-28T10:00:00.123456+00:00")).toBe(Date.UTC(2026, 10, 28, 10, 0, 0, 123));
    expect(millis("2026-11-28 10:00:00+00")).toBe(Date.UTC(2026, 10, 28, 10));
  });

  it("writes durations a person reads at a glance", () => {
    expect(duration(850)).toBe("850 ms");
    expect(duration(4200)).toBe("4.2 s");
    expect(duration(184_000)).toBe("3 m 04 s");
    expect(duration(7_500_000)).toBe("2 h 05 m");
    expect(duration(-1)).toBe("");
  });

  it("ticks a running job's duration and freezes an ended one", () => {
    const started = "2026-11-28T10:00:00+00:00";
    const now = Date.UTC(2026, 10, 28, 10, 0, 3);
    expect(jobDuration({ started_at: started, ended_at: null, status: "running" }, now)).toBe("3.0 s");
    expect(jobDuration({ started_at: started, ended_at: "2026-11-28T10:00:01+00:00", status: "finished" }, now)).toBe("1.0 s");
    expect(jobDuration({ started_at: null, ended_at: null, status: "waiting" }, now)).toBe("");
  });

  it("shows the time of day for today and the date otherwise", () => {
    const at = new Date(2026, 10, 28, 9, 5, 7);
    expect(clock(at.toISOString(), new Date(2026, 10, 28, 12))).toBe("09:05:07");
    expect(clock(at.toISOString(), new Date(2026, 10, 29, 12))).toBe("11-28 09:05");
    expect(clock(null)).toBe("");
  });
});
