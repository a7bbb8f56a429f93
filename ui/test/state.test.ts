import { describe, expect, it } from "vitest";
import {
  actionsFor,
  applyChanges,
  applyProgress,
  contains,
  emptyFilter,
  inputFilter,
  matches,
  resultFilter,
} from "../src/state";
import { job } from "./fixtures";

describe("applyChanges", () => {
  it("puts a new matching job on the first page, newest first", () => {
    const { jobs, joined } = applyChanges([job(2), job(1)], [job(3)], emptyFilter());
    expect(jobs.map((j) => j.id)).toEqual([3, 2, 1]);
    expect(joined).toBe(1);
  });

  it("replaces a job with its newer version and ignores an older one", () => {
    const running = job(1, { status: "running", updated_at: "2026-11-28T10:00:05.5+00:00" });
    let { jobs } = applyChanges([job(1)], [running], emptyFilter());
    expect(jobs[0].status).toBe("running");
    ({ jobs } = applyChanges(jobs, [job(1)], emptyFilter()));
    expect(jobs[0].status).toBe("running");
  });

  it("drops a job that leaves the filter and skips ones that never matched", () => {
    const filter = { ...emptyFilter(), statuses: ["waiting" as const] };
    const finished = job(1, { status: "finished", updated_at: "2026-11-28T11:00:00+00:00" });
    const { jobs, joined } = applyChanges([job(1)], [finished, job(7, { status: "failed" })], filter);
    expect(jobs).toEqual([]);
    expect(joined).toBe(0);
  });

  it("adds nothing to a later page and keeps a page at its limit", () => {
    const later = { ...emptyFilter(), before: 10 };
    expect(applyChanges([job(5)], [job(20)], later).jobs.map((j) => j.id)).toEqual([5]);
    const small = { ...emptyFilter(), limit: 2 };
    expect(applyChanges([job(3), job(2)], [job(4)], small).jobs.map((j) => j.id)).toEqual([4, 3]);
    expect(applyChanges([job(3), job(2)], [job(1)], small).jobs.map((j) => j.id)).toEqual([3, 2]);
  });
});

describe("matches", () => {
  it("follows kind, status and search like the server", () => {
    const f = emptyFilter();
    expect(matches({ ...f, kind: "sleep" }, job(1))).toBe(false);
    expect(matches({ ...f, search: "HEL" }, job(1))).toBe(true);
    expect(matches({ ...f, search: "42" }, job(42, { kind: "sleep" }))).toBe(true);
    expect(matches({ ...f, search: "42" }, job(41, { kind: "sleep" }))).toBe(false);
  });
});

describe("progress and actions", () => {
  it("updates only a running job's progress", () => {
    const page = [job(1, { status: "running" }), job(2)];
    const next = applyProgress(page, 1, 0.5, "half");
    expect(next[0].progress).toBe(0.5);
    expect(applyProgress(page, 2, 0.5, null)[1].progress).toBeNull();
  });

  it("offers what the job's state allows", () => {
    expect(actionsFor(job(1))).toEqual(["cancel", "runAgain", "edit", "delete"]);
    expect(actionsFor(job(1, { status: "running" }))).toEqual(["cancel", "runAgain", "edit"]);
    expect(actionsFor(job(1, { status: "failed" }))).toEqual(["retry", "runAgain", "edit", "delete"]);
    expect(actionsFor(job(1, { status: "running", cancel_requested_at: "x" }))).toEqual(["runAgain", "edit"]);
  });
});

describe("the input search", () => {
  it("reads a JSON object as containment and anything else as words", () => {
    expect(inputFilter(' {"customer": 42} ')).toEqual({ input: { customer: 42 }, words: null });
    expect(inputFilter('{"customer": ')).toEqual({ input: null, words: '{"customer":' });
    expect(inputFilter("acme corp")).toEqual({ input: null, words: "acme corp" });
    expect(inputFilter("  ")).toEqual({ input: null, words: null });
  });

  it("places live changes as the server's containment and words would", () => {
    const input = { customer: 42, name: "Acme Corp", tags: ["a", "b"], nested: { tier: "gold" } };
    expect(contains(input, { customer: 42 })).toBe(true);
    expect(contains(input, { nested: { tier: "gold" }, tags: ["b"] })).toBe(true);
    expect(contains(input, { customer: "42" })).toBe(false);
    expect(contains(input, { nested: { tier: "gold", x: 1 } })).toBe(false);
    const base = emptyFilter();
    const acme = job(1, { context: input, schedule_id: 3 });
    expect(matches({ ...base, words: "acme" }, acme)).toBe(true);
    expect(matches({ ...base, words: "ACME -corp" }, acme)).toBe(false);
    expect(matches({ ...base, words: "customer" }, acme)).toBe(false);
    expect(matches({ ...base, words: "42 gold" }, acme)).toBe(true);
    expect(matches({ ...base, schedule_id: 3 }, acme)).toBe(true);
    expect(matches({ ...base, schedule_id: 4 }, acme)).toBe(false);
    expect(matches({ ...base, created_from: "2026-11-28T11:00:00Z" }, acme)).toBe(false);
    expect(matches({ ...base, created_until: "2026-11-28T11:00:00Z" }, acme)).toBe(true);
    expect(matches({ ...base, ended_from: "2026-11-28T09:00:00Z" }, acme)).toBe(false);
  });

  it("reads the result search as a JSON object the result contains, and waits on anything else", () => {
    expect(resultFilter(' {"rows": 3} ')).toEqual({ result: { rows: 3 } });
    expect(resultFilter(" ")).toEqual({ result: null });
    expect(resultFilter('{"rows": ')).toBeUndefined();
    expect(resultFilter("[3]")).toBeUndefined();
    const base = emptyFilter();
    const done = job(1, { result: { rows: 3, file: "a.csv" } });
    expect(matches({ ...base, result: { rows: 3 } }, done)).toBe(true);
    expect(matches({ ...base, result: { rows: 4 } }, done)).toBe(false);
    expect(matches({ ...base, result: {} }, job(2, { result: null })), "no result yet").toBe(false);
  });
});
