// supabase-js's Realtime, unchanged, against the sandbox: `channel().on('postgres_changes')`
// with both protocol versions. Changes reach a subscriber in commit order, so "never
// received" is asserted when a later change of the same subscriber arrives first.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createClient } from "@supabase/supabase-js";

const { API_URL, ANON_KEY, JWT_SECRET } = process.env;
assert.ok(API_URL && ANON_KEY && JWT_SECRET, "API_URL, ANON_KEY and JWT_SECRET must be set");

// Every client made, so that their sockets (which keep the process alive) are closed
// at the end.
const clients = [];
const client = (vsn) => {
  const supabase = createClient(API_URL, ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { vsn, heartbeatIntervalMs: 500 },
  });
  clients.push(supabase);
  return supabase;
};
after(async () => {
  for (const supabase of clients) {
    await supabase.removeAllChannels();
    supabase.realtime.disconnect();
  }
});
const unique = (name) => `${name}-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;

async function signedUp(name, vsn) {
  const supabase = client(vsn);
  const { data, error } = await supabase.auth.signUp({ email: unique(name), password: "correct horse" });
  assert.equal(error, null);
  return { supabase, user: data.user, session: data.session };
}

/** Every event a channel hears, and a way to wait for the next that matches. */
function listen(supabase, bindings, options = {}) {
  const heard = [];
  const waiting = [];
  let channel = supabase.channel(`jobs-${Math.random().toString(16).slice(2)}`);
  for (const binding of bindings) {
    channel = channel.on("postgres_changes", binding, (change) => {
      heard.push(change);
      for (const w of waiting.splice(0)) {
        if (!w.check()) waiting.push(w);
      }
    });
  }
  const statuses = [];
  const subscribed = new Promise((resolve, reject) => {
    channel.subscribe((status, error) => {
      statuses.push({ status, error });
      for (const w of waiting.splice(0)) {
        if (!w.check()) waiting.push(w);
      }
      if (status === "SUBSCRIBED") resolve();
      if (!options.expectFailure && (status === "CHANNEL_ERROR" || status === "TIMED_OUT")) {
        reject(error ?? new Error(status));
      }
    });
  });
  /** The first event from `from` on that matches, once it has arrived. */
  const next = (match, from = 0) =>
    new Promise((resolve) => {
      const w = {
        check() {
          const found = heard.slice(from).find(match);
          if (found) resolve(found);
          return Boolean(found);
        },
      };
      if (!w.check()) waiting.push(w);
    });
  const status = (wanted) =>
    new Promise((resolve) => {
      const w = {
        check() {
          const found = statuses.find((s) => s.status === wanted);
          if (found) resolve(found);
          return Boolean(found);
        },
      };
      if (!w.check()) waiting.push(w);
    });
  return { channel, heard, statuses, subscribed, next, status };
}

const jobs = { event: "*", schema: "public", table: "jobs" };

/** An HS256 JWT signed with `secret`, for tokens the sandbox did not issue. */
function jwt(claims, secret = JWT_SECRET) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

for (const vsn of ["1.0.0", "2.0.0"]) {
  test(`vsn ${vsn}: INSERT, UPDATE and DELETE of my jobs, none of another user's`, async () => {
    const alice = await signedUp("rt-alice", vsn);
    const bob = await signedUp("rt-bob", vsn);
    const a = listen(alice.supabase, [jobs]);
    const b = listen(bob.supabase, [jobs]);
    await Promise.all([a.subscribed, b.subscribed]);

    const { data: job, error } = await alice.supabase.rpc("enqueue_job", { kind: "hello", context: { name: "Ada" } });
    assert.equal(error, null);
    const inserted = await a.next((c) => c.eventType === "INSERT" && c.new.id === job.id);
    assert.equal(inserted.schema, "public");
    assert.equal(inserted.table, "jobs");
    assert.equal(inserted.new.kind, "hello");
    assert.deepEqual(inserted.new.context, { name: "Ada" });
    assert.equal(inserted.new.uuid, alice.user.id);
    assert.ok(!Number.isNaN(Date.parse(inserted.commit_timestamp)), "a commit timestamp");

    const cancelled = await alice.supabase.rpc("cancel_job", { id: job.id });
    assert.equal(cancelled.error, null);
    const updated = await a.next((c) => c.eventType === "UPDATE" && c.new.id === job.id);
    assert.equal(updated.new.status, "cancelled");
    assert.deepEqual(updated.old, { id: job.id }, "the old record carries the key only");

    const deleted = await alice.supabase.from("jobs").delete().eq("id", job.id);
    assert.equal(deleted.error, null);
    const gone = await a.next((c) => c.eventType === "DELETE");
    assert.deepEqual(gone.old, { id: job.id });
    assert.deepEqual(gone.new, {});

    // Bob's own job arrives after Alice's changes: by then he would have heard of
    // her INSERT and UPDATE had RLS let them through (her DELETE he may hear: Supabase
    // does not check deletes, which carry only the key).
    const { data: his } = await bob.supabase.rpc("enqueue_job", { kind: "hello", context: {} });
    await b.next((c) => c.eventType === "INSERT" && c.new.id === his.id);
    const leaked = b.heard.filter((c) => c.eventType !== "DELETE" && c.new.id === job.id);
    assert.deepEqual(leaked, [], "Bob heard nothing of Alice's job but its deletion");
    for (const c of b.heard.filter((c) => c.eventType === "DELETE")) {
      assert.deepEqual(Object.keys(c.old), ["id"]);
    }
    await alice.supabase.removeAllChannels();
    await bob.supabase.removeAllChannels();
  });

  test(`vsn ${vsn}: a filter is honoured and a table outside the publication yields nothing`, async () => {
    const alice = await signedUp("rt-filter", vsn);
    const users = { event: "INSERT", schema: "auth", table: "users" };
    const a = listen(alice.supabase, [{ event: "INSERT", schema: "public", table: "jobs", filter: "kind=eq.sleep" }, users]);
    await a.subscribed;
    await signedUp("rt-unpublished", vsn); // an INSERT into auth.users, not published
    await alice.supabase.rpc("enqueue_job", { kind: "hello", context: {} });
    const { data: sleep } = await alice.supabase.rpc("enqueue_job", { kind: "sleep", context: { seconds: 1 } });
    const first = await a.next(() => true);
    assert.equal(first.new.id, sleep.id, "the hello job and the new user were not sent");
    assert.equal(first.new.kind, "sleep");
    await alice.supabase.removeAllChannels();
  });

  test(`vsn ${vsn}: anon hears nothing of jobs but a deletion's key`, async () => {
    const alice = await signedUp("rt-anon", vsn);
    const anon = listen(client(vsn), [jobs]);
    await anon.subscribed;
    const { data: job } = await alice.supabase.rpc("enqueue_job", { kind: "hello", context: { secret: 1 } });
    await alice.supabase.rpc("cancel_job", { id: job.id });
    await alice.supabase.from("jobs").delete().eq("id", job.id);
    const first = await anon.next((c) => c.old?.id === job.id || c.new?.id === job.id);
    assert.equal(first.eventType, "DELETE");
    assert.deepEqual(first.old, { id: job.id });
  });

  test(`vsn ${vsn}: a token swapped mid-subscription keeps the channel`, async () => {
    const alice = await signedUp("rt-swap", vsn);
    const a = listen(alice.supabase, [jobs]);
    await a.subscribed;
    const refreshed = await alice.supabase.auth.refreshSession();
    assert.equal(refreshed.error, null);
    await alice.supabase.realtime.setAuth(refreshed.data.session.access_token);
    const { data: job } = await alice.supabase.rpc("enqueue_job", { kind: "hello", context: {} });
    await a.next((c) => c.eventType === "INSERT" && c.new.id === job.id);
    assert.deepEqual(a.statuses.map((s) => s.status), ["SUBSCRIBED"], "the channel stayed joined");
    await alice.supabase.removeAllChannels();
  });

  test(`vsn ${vsn}: an expired token closes the channel, a forged one is refused`, async () => {
    const { user } = await signedUp("rt-expiry", vsn);
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: user.id, role: "authenticated", aud: "authenticated", iat: now };

    const shortLived = client(vsn);
    await shortLived.realtime.setAuth(jwt({ ...claims, exp: now + 2 }));
    const expiring = listen(shortLived, [jobs]);
    await expiring.subscribed;
    await expiring.status("CLOSED");

    const forged = client(vsn);
    await forged.realtime.setAuth(jwt({ ...claims, exp: now + 3600 }, "not the project's secret"));
    const refused = listen(forged, [jobs], { expectFailure: true });
    const failure = await refused.status("CHANNEL_ERROR");
    assert.match(String(failure.error?.message), /Invalid token/);
    for (const c of [shortLived, forged]) await c.removeAllChannels();
  });

  test(`vsn ${vsn}: heartbeats are answered`, async () => {
    const supabase = client(vsn);
    const ok = new Promise((resolve) => supabase.realtime.onHeartbeat((status) => status === "ok" && resolve()));
    const a = listen(supabase, [jobs]);
    await a.subscribed;
    await ok;
    await supabase.removeAllChannels();
  });
}
