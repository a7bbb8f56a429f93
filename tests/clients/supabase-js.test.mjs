// supabase-js, as published on npm and used unchanged, against a running sandbox.
// API_URL and ANON_KEY come from `jobdeck dev status -o env`; the sandbox must run
// with `--refresh-reuse-interval 0` so reuse detection is tested without waiting.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@supabase/supabase-js";
import { totp } from "../totp.mjs";

const { API_URL, ANON_KEY } = process.env;
assert.ok(API_URL && ANON_KEY, "API_URL and ANON_KEY must be set");

const client = () =>
  createClient(API_URL, ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
  });
const unique = (name) => `${name}-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;

async function signedUp(name) {
  const supabase = client();
  const email = unique(name);
  const { data, error } = await supabase.auth.signUp({ email, password: "correct horse" });
  assert.equal(error, null);
  assert.equal(data.user.email, email);
  assert.ok(data.session?.access_token, "auto-confirm gives a session");
  return { supabase, email, session: data.session };
}

test("sign up, sign in, get the user, refresh, sign out", async () => {
  const { email } = await signedUp("auth");
  const supabase = client();

  const wrong = await supabase.auth.signInWithPassword({ email, password: "wrong horse" });
  assert.equal(wrong.error?.code, "invalid_credentials");

  const { data, error } = await supabase.auth.signInWithPassword({ email, password: "correct horse" });
  assert.equal(error, null);
  const { data: who } = await supabase.auth.getUser();
  assert.equal(who.user.email, email);

  const refreshed = await supabase.auth.refreshSession();
  assert.equal(refreshed.error, null);
  assert.notEqual(refreshed.data.session.refresh_token, data.session.refresh_token, "rotated");

  const { error: outError } = await supabase.auth.signOut();
  assert.equal(outError, null);
  const again = await client().auth.refreshSession({ refresh_token: refreshed.data.session.refresh_token });
  assert.ok(again.error, "the session is over");
});

test("a refresh token reused two generations later revokes the session", async () => {
  const { session } = await signedUp("reuse");
  const a = client();
  const second = await a.auth.refreshSession({ refresh_token: session.refresh_token });
  assert.equal(second.error, null);
  const third = await a.auth.refreshSession({ refresh_token: second.data.session.refresh_token });
  assert.equal(third.error, null);

  const stolen = await client().auth.refreshSession({ refresh_token: session.refresh_token });
  assert.equal(stolen.error?.code, "refresh_token_already_used");
  const after = await client().auth.refreshSession({ refresh_token: third.data.session.refresh_token });
  assert.ok(after.error, "every token of the session is revoked");
});

test("sign in with an emailed code read from the sandbox inbox", async () => {
  const supabase = client();
  const email = unique("otp");
  const sent = await supabase.auth.signInWithOtp({ email });
  assert.equal(sent.error, null);
  const inbox = await (await fetch(`${API_URL}/inbox?email=${encodeURIComponent(email)}`)).json();
  const { data, error } = await supabase.auth.verifyOtp({ email, token: inbox.at(-1).code, type: "email" });
  assert.equal(error, null);
  assert.equal(data.user.email, email);
});

// What the browser does with a sign-in's URL: the sandbox provider's consent page
// signs in as `email` (or declines when it is null); answers where the browser is sent
// at the end, without following it.
async function consent(authorizeUrl, email) {
  const location = (response) => {
    assert.ok(response.status >= 300 && response.status < 400, `a redirect, got ${response.status}`);
    return new URL(response.headers.get("location"), authorizeUrl).toString();
  };
  const page = location(await fetch(authorizeUrl, { redirect: "manual" }));
  const html = await (await fetch(page)).text();
  assert.match(html, /<form/);
  const form = new URLSearchParams({ state: new URL(page).searchParams.get("state") });
  if (email) form.set("email", email), form.set("decision", "allow");
  else form.set("decision", "deny");
  const decided = await fetch(page, { method: "POST", body: form, redirect: "manual" });
  return location(await fetch(location(decided), { redirect: "manual" }));
}

// A client whose storage the test can reach, as a PKCE client keeps its verifier there.
function pkceClient() {
  const items = new Map();
  const storage = {
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => void items.set(key, value),
    removeItem: (key) => void items.delete(key),
  };
  const supabase = createClient(API_URL, ANON_KEY, {
    auth: { flowType: "pkce", storage, persistSession: true, autoRefreshToken: false, detectSessionInUrl: false },
  });
  return { supabase, items };
}

test("OAuth with PKCE: signInWithOAuth, the provider's page, exchangeCodeForSession", async () => {
  const settings = await (await fetch(`${API_URL}/auth/v1/settings`, { headers: { apikey: ANON_KEY } })).json();
  assert.equal(settings.external.sandbox, true);

  const { supabase } = pkceClient();
  const email = unique("oauth");
  const redirectTo = "http://127.0.0.1:9/callback";
  const { data, error } = await supabase.auth.signInWithOAuth({
    provider: "sandbox",
    options: { redirectTo, skipBrowserRedirect: true },
  });
  assert.equal(error, null);
  assert.match(data.url, /code_challenge_method=s256/);
  const landed = new URL(await consent(data.url, email));
  assert.equal(`${landed.origin}${landed.pathname}`, redirectTo);
  const code = landed.searchParams.get("code");
  assert.ok(code, "a code in the redirect");

  const exchanged = await supabase.auth.exchangeCodeForSession(code);
  assert.equal(exchanged.error, null);
  assert.equal(exchanged.data.user.email, email);
  assert.equal(exchanged.data.user.app_metadata.provider, "sandbox");
  const { data: who } = await supabase.auth.getUser();
  assert.equal(who.user.email, email);
  const claims = JSON.parse(Buffer.from(exchanged.data.session.access_token.split(".")[1], "base64url"));
  assert.deepEqual([claims.aal, claims.amr[0].method], ["aal1", "oauth"]);

  // The same code again: the flow is over.
  const again = pkceClient();
  await again.supabase.auth.signInWithOAuth({ provider: "sandbox", options: { redirectTo, skipBrowserRedirect: true } });
  const reused = await again.supabase.auth.exchangeCodeForSession(code);
  assert.equal(reused.error?.code, "flow_state_not_found");
});

test("a magic link with PKCE: signInWithOtp, the emailed link, exchangeCodeForSession", async () => {
  const { supabase } = pkceClient();
  const email = unique("link");
  const emailRedirectTo = "http://127.0.0.1:9/callback";
  const sent = await supabase.auth.signInWithOtp({ email, options: { emailRedirectTo } });
  assert.equal(sent.error, null);
  const inbox = await (await fetch(`${API_URL}/inbox?email=${encodeURIComponent(email)}`)).json();
  const link = inbox[inbox.length - 1].link;
  const landed = new URL((await fetch(link, { redirect: "manual" })).headers.get("location"));
  assert.equal(`${landed.origin}${landed.pathname}`, emailRedirectTo);
  const exchanged = await supabase.auth.exchangeCodeForSession(landed.searchParams.get("code"));
  assert.equal(exchanged.error, null);
  assert.equal(exchanged.data.user.email, email);

  const again = new URL((await fetch(link, { redirect: "manual" })).headers.get("location"));
  assert.equal(again.searchParams.get("error_code"), "otp_expired", "a link answers once");
});

test("OAuth with PKCE: a wrong verifier and a declined consent are refused", async () => {
  const { supabase, items } = pkceClient();
  const redirectTo = "http://127.0.0.1:9/callback";
  const { data } = await supabase.auth.signInWithOAuth({
    provider: "sandbox",
    options: { redirectTo, skipBrowserRedirect: true },
  });
  const code = new URL(await consent(data.url, unique("verifier"))).searchParams.get("code");
  // auth-js keeps the verifier (JSON, as every item) in a slot per flow and under a
  // fixed key beside an index of the flows: every copy is replaced.
  const slots = [...items.keys()].filter((k) => k.endsWith("-code-verifier") && !k.endsWith("-flows-code-verifier"));
  assert.ok(slots.length > 0, "supabase-js keeps its verifier in storage");
  for (const key of slots) items.set(key, JSON.stringify("x".repeat(56)));
  const wrong = await supabase.auth.exchangeCodeForSession(code);
  assert.ok(wrong.error, "a wrong verifier is refused");
  assert.equal(wrong.error.code, "bad_code_verifier", wrong.error.message);

  const declined = pkceClient();
  const started = await declined.supabase.auth.signInWithOAuth({
    provider: "sandbox",
    options: { redirectTo, skipBrowserRedirect: true },
  });
  const landed = new URL(await consent(started.data.url, null));
  assert.equal(landed.searchParams.get("error"), "access_denied");
  assert.equal(landed.searchParams.get("code"), null);
});

test("jobs: rpc, select with filters, order, range and count, insert and delete under RLS", async () => {
  const alice = (await signedUp("alice")).supabase;
  const bob = (await signedUp("bob")).supabase;

  for (const [name, priority] of [["Ada", 1], ["Grace", 5], ["Alan", 3]]) {
    const { error } = await alice.rpc("enqueue_job", { kind: "hello", context: { name }, priority });
    assert.equal(error, null);
  }
  const inserted = await alice.from("jobs").insert({ kind: "sleep", context: { seconds: 1 } }).select("id, status").single();
  assert.equal(inserted.error, null);
  assert.equal(inserted.data.status, "waiting");

  const page = await alice
    .from("jobs")
    .select("id, kind, context", { count: "exact" })
    .eq("kind", "hello")
    .order("priority", { ascending: false })
    .range(0, 1);
  assert.equal(page.error, null);
  assert.equal(page.count, 3);
  assert.deepEqual(page.data.map((j) => j.context.name), ["Grace", "Alan"]);

  const filtered = await alice.from("jobs").select("id").in("kind", ["sleep"]).is("ended_at", null);
  assert.equal(filtered.data.length, 1);
  const either = await alice.from("jobs").select("id").or("priority.gt.4,kind.eq.sleep");
  assert.equal(either.data.length, 2);

  const bobSees = await bob.from("jobs").select("*", { count: "exact" });
  assert.equal(bobSees.error, null);
  assert.equal(bobSees.count, 0, "bob sees none of alice's jobs");
  const bobDeletes = await bob.from("jobs").delete().eq("id", inserted.data.id).select();
  assert.deepEqual(bobDeletes.data, [], "bob deletes nothing of alice's");
  const bobUpdates = await bob.from("jobs").update({ status: "finished" }).eq("id", inserted.data.id);
  assert.equal(bobUpdates.error?.code, "42501", "nobody updates jobs directly");

  const claimed = await alice.rpc("claim_jobs", { worker: "js", max_jobs: 10, kinds: ["hello"] });
  assert.equal(claimed.error, null);
  assert.equal(claimed.data.length, 3);
  const [first] = claimed.data;
  const finished = await alice.rpc("finish_job", { id: first.id, worker: "js", result: { ok: true } });
  assert.equal(finished.data.status, "finished");
  const again = await alice.rpc("finish_job", { id: first.id, worker: "js" });
  assert.equal(again.error?.code, "JD002", "the lease is gone once finished");

  const counts = await alice.rpc("job_counts");
  const byStatus = Object.fromEntries(counts.data.map((c) => [c.status, c.count]));
  assert.deepEqual(byStatus, { finished: 1, running: 2, waiting: 1 });

  const deleted = await alice.from("jobs").delete().eq("id", inserted.data.id);
  assert.equal(deleted.error, null);
  const gone = await alice.from("jobs").select("id").eq("id", inserted.data.id).maybeSingle();
  assert.equal(gone.data, null);
});

test("anon gets nothing and a bad filter is a clear error", async () => {
  const anon = client();
  const read = await anon.from("jobs").select("*");
  assert.equal(read.error?.code, "42501");
  const enqueue = await anon.rpc("enqueue_job", { kind: "hello" });
  assert.equal(enqueue.error?.code, "42501");

  const alice = (await signedUp("bad")).supabase;
  const bad = await alice.from("jobs").select("id").filter("id", "nonsense", "1");
  assert.equal(bad.error?.code, "PGRST100");
});

test("MFA: enroll a TOTP factor, challenge and verify it, aal2 claims, unenroll", async () => {
  const { supabase, email } = await signedUp("mfa");
  const enrolled = await supabase.auth.mfa.enroll({ factorType: "totp", friendlyName: "phone" });
  assert.equal(enrolled.error, null);
  assert.equal(enrolled.data.type, "totp");
  assert.match(enrolled.data.totp.qr_code, /^data:image\/svg\+xml;utf-8,.*<svg/s);
  assert.match(enrolled.data.totp.uri, /^otpauth:\/\/totp\//);
  const factorId = enrolled.data.id;
  const { secret } = enrolled.data.totp;

  let aal = await supabase.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.deepEqual([aal.data.currentLevel, aal.data.nextLevel], ["aal1", "aal1"], "unverified asks nothing");

  const challenge = await supabase.auth.mfa.challenge({ factorId });
  assert.equal(challenge.error, null);
  const wrong = await supabase.auth.mfa.verify({ factorId, challengeId: challenge.data.id, code: "000000" });
  assert.equal(wrong.error?.code, "mfa_verification_failed");
  const verified = await supabase.auth.mfa.verify({ factorId, challengeId: challenge.data.id, code: totp(secret) });
  assert.equal(verified.error, null);
  const claims = JSON.parse(Buffer.from(verified.data.access_token.split(".")[1], "base64url"));
  assert.equal(claims.aal, "aal2");
  assert.deepEqual(claims.amr.map((entry) => entry.method), ["totp", "password"]);
  aal = await supabase.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.deepEqual([aal.data.currentLevel, aal.data.nextLevel], ["aal2", "aal2"]);
  const factors = await supabase.auth.mfa.listFactors();
  assert.deepEqual(factors.data.totp.map((f) => [f.id, f.status]), [[factorId, "verified"]]);

  // A new sign-in is aal1 and owes the factor; challengeAndVerify brings it to aal2.
  const laptop = client();
  await laptop.auth.signInWithPassword({ email, password: "correct horse" });
  aal = await laptop.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.deepEqual([aal.data.currentLevel, aal.data.nextLevel], ["aal1", "aal2"]);
  const refused = await laptop.auth.mfa.unenroll({ factorId });
  assert.equal(refused.error?.code, "insufficient_aal");
  const elevated = await laptop.auth.mfa.challengeAndVerify({ factorId, code: totp(secret) });
  assert.equal(elevated.error, null);

  const removed = await laptop.auth.mfa.unenroll({ factorId });
  assert.equal(removed.error, null);
  assert.equal(removed.data.id, factorId);
  await laptop.auth.refreshSession();
  aal = await laptop.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.deepEqual([aal.data.currentLevel, aal.data.nextLevel], ["aal1", "aal1"]);
});

test("schedules and paused kinds through the REST API, each user's own", async () => {
  const alice = (await signedUp("sched-alice")).supabase;
  const bob = (await signedUp("sched-bob")).supabase;
  // Saved by hand, without its first tick: a worker computes it.
  const { data: made, error } = await alice
    .from("schedules")
    .insert({ kind: "hello", context: { name: "Ada" }, cron: "@daily", timezone: "Europe/Paris" })
    .select()
    .single();
  assert.equal(error, null);
  assert.equal(made.next_run_at, null);
  assert.equal(made.on_missed, "run_once");
  const zone = await alice.from("schedules").insert({ kind: "hello", cron: "@daily", timezone: "Mars/Base" });
  assert.equal(zone.error?.code, "22023");

  const { data: job, error: runError } = await alice.rpc("run_schedule", { id: made.id });
  assert.equal(runError, null);
  assert.equal(job.schedule_id, made.id);
  assert.deepEqual(job.context, { name: "Ada" });

  const seen = await bob.from("schedules").select();
  assert.deepEqual(seen.data, []);
  const touched = await bob.from("schedules").update({ cron: "@hourly" }).eq("id", made.id).select();
  assert.deepEqual(touched.data, []);
  const ran = await bob.rpc("run_schedule", { id: made.id });
  assert.equal(ran.error?.code, "JD001");

  assert.equal((await alice.from("paused_kinds").insert({ kind: "hello" })).error, null);
  const paused = await alice.from("paused_kinds").select("kind");
  assert.deepEqual(paused.data, [{ kind: "hello" }]);
  assert.deepEqual((await bob.from("paused_kinds").select()).data, []);
  const resumed = await alice.from("paused_kinds").delete().eq("kind", "hello").select("kind");
  assert.deepEqual(resumed.data, [{ kind: "hello" }]);
});

test("retention and activity through the REST API, each user's own", async () => {
  const alice = (await signedUp("keep-alice")).supabase;
  const bob = (await signedUp("keep-bob")).supabase;
  const { data: policy, error } = await alice.rpc("set_retention", { keep_days: 30 });
  assert.equal(error, null);
  assert.deepEqual([policy.keep_days, policy.keep_last], [30, null]);
  const bad = await alice.rpc("set_retention", { keep_last: 0 });
  assert.equal(bad.error?.code, "22023");
  assert.deepEqual((await alice.from("retention_policies").select("keep_days")).data, [{ keep_days: 30 }]);
  assert.deepEqual((await bob.from("retention_policies").select()).data, []);
  const removed = await alice.rpc("apply_retention", { batch: 100 });
  assert.deepEqual([removed.error, removed.data], [null, 0]);

  const { data: activity, error: activityError } = await alice.rpc("job_activity", { span: "hour" });
  assert.equal(activityError, null);
  assert.equal(activity.buckets.length, 60);
  assert.equal(activity.bucket_seconds, 60);
  const { data: theirs } = await bob.rpc("job_activity", { span: "week" });
  assert.equal(theirs.buckets.length, 168);
  assert.deepEqual(theirs.kinds, []);
  const refused = await alice.rpc("job_activity", { span: "year" });
  assert.equal(refused.error?.code, "22023");
});

test("search_jobs: input, words and result through the indexes, filtered, ordered, paged and counted, each user's own", async () => {
  const alice = (await signedUp("search-alice")).supabase;
  const bob = (await signedUp("search-bob")).supabase;
  for (const [customer, name] of [[42, "Acme Corp"], [42, "Globex"], [7, "Acme Labs"]]) {
    assert.equal((await alice.rpc("enqueue_job", { kind: "report", context: { customer, name } })).error, null);
  }
  assert.equal((await bob.rpc("enqueue_job", { kind: "report", context: { customer: 42, name: "Acme Corp" } })).error, null);

  const page = await alice
    .rpc("search_jobs", { input: { customer: 42 } }, { count: "exact" })
    .select("id, context")
    .order("id", { ascending: false })
    .range(0, 0);
  assert.equal(page.error, null);
  assert.equal(page.count, 2, "both of alice's, not bob's");
  assert.deepEqual(page.data.map((j) => j.context.name), ["Globex"], "one row: the page");

  const words = await alice.rpc("search_jobs", { words: "acme -labs" }).select("context").eq("status", "waiting");
  assert.deepEqual(words.data.map((j) => j.context.name), ["Acme Corp"]);

  const [claimed] = (await alice.rpc("claim_jobs", { worker: "js", max_jobs: 1 })).data;
  await alice.rpc("finish_job", { id: claimed.id, worker: "js", result: { rows: 3 } });
  const byResult = await alice.rpc("search_jobs", { result: { rows: 3 } }).select("id");
  assert.deepEqual(byResult.data, [{ id: claimed.id }]);
  assert.deepEqual((await bob.rpc("search_jobs", { result: { rows: 3 } })).data, []);
});
