// The UI's steps at launch, on the page's clock, for the app's "job list shown" log
// line: a slow start then says which part was slow.

import type { LaunchTimings } from "./bindings";

type Step = Exclude<keyof LaunchTimings, "time_origin_ms" | "page_loaded_ms" | "painted_ms">;

const marks: Partial<Record<Step, number>> = {};

/** Notes when `step` was first reached (later calls keep the first time). */
export function mark(step: Step): void {
  marks[step] ??= performance.now();
}

/** Every step's time, the page's own from its navigation entry, painted now. */
export function timings(): LaunchTimings {
  const navigation = performance.getEntriesByType?.("navigation")[0] as
    | PerformanceNavigationTiming
    | undefined;
  const painted = performance.now();
  return {
    time_origin_ms: performance.timeOrigin,
    page_loaded_ms: navigation?.responseEnd ?? 0,
    script_ms: marks.script_ms ?? painted,
    connection_ms: marks.connection_ms ?? painted,
    list_ms: marks.list_ms ?? painted,
    painted_ms: painted,
  };
}
