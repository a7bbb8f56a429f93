// The Activity view's figures as the chart draws them: the database counts (see
// job_activity); this only lays the buckets out as uPlot's columns and sums them.

import type { Activity } from "./bindings";

/** uPlot's aligned columns: bucket starts (Unix seconds), then finished, failed and
 *  retried per bucket; and the last bucket's end with its figures again, so that its
 *  step (each drawn from its start to the next point) is as wide as the others. */
export type ChartColumns = [number[], number[], number[], number[]];

export function chartColumns(activity: Activity | null): ChartColumns {
  const columns: ChartColumns = [[], [], [], []];
  const buckets = activity?.buckets ?? [];
  const point = (at: number, bucket: (typeof buckets)[number]) => {
    columns[0].push(at);
    columns[1].push(bucket.finished);
    columns[2].push(bucket.failed);
    columns[3].push(bucket.retried);
  };
  for (const bucket of buckets) point(Date.parse(bucket.at) / 1000, bucket);
  const last = buckets.at(-1);
  if (activity && last) point(Date.parse(last.at) / 1000 + activity.bucket_seconds, last);
  return columns;
}

export interface Totals {
  finished: number;
  failed: number;
  retried: number;
}

export function totals(activity: Activity | null): Totals {
  const sum = { finished: 0, failed: 0, retried: 0 };
  for (const bucket of activity?.buckets ?? []) {
    sum.finished += bucket.finished;
    sum.failed += bucket.failed;
    sum.retried += bucket.retried;
  }
  return sum;
}

/** A duration in milliseconds as the kinds table shows it. */
export function duration(ms: number | null): string {
  if (ms === null) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}
