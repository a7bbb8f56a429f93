// supabase-js with the keys a Supabase project created today hands out: the publishable
// key alone in the client (Auth, REST under RLS, Realtime), the secret key on a server.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@supabase/supabase-js";

const { API_URL, PUBLISHABLE_KEY, SECRET_KEY } = process.env;
assert.ok(API_URL && PUBLISHABLE_KEY?.startsWith("sb_publishable_") && SECRET_KEY?.startsWith("sb_secret_"),
  "API_URL, PUBLISHABLE_KEY and SECRET_KEY must be set");

const clients = [];
const client = (key) => {
  const supabase = createClient(API_URL, key, { auth: { persistSession: false, autoRefreshToken: false } });
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

test("the publishable key alone: sign up, jobs under RLS, a change pushed by Realtime", async () => {
  const supabase = client(PUBLISHABLE_KEY);
  const signedOut = await supabase.from("jobs").select("id");
  assert.equal(signedOut.error?.code, "42501", "signed out is anon, granted nothing on jobs");

  const email = unique("pk");
  const { data, error } = await supabase.auth.signUp({ email, password: "correct horse" });
  assert.equal(error, null);
  const changes = [];
  const heard = new Promise((resolve, reject) => {
    supabase
      .channel("my-jobs")
      .on("postgres_changes", { event: "INSERT", schema: "public", table: "jobs" }, (change) => {
        changes.push(change);
        resolve();
      })
      .subscribe((status, err) => {
        if (status === "SUBSCRIBED") void enqueue();
        if (status === "CHANNEL_ERROR" || status === "TIMED_OUT") reject(err ?? new Error(status));
      });
  });
  let enqueued;
  async function enqueue() {
    enqueued = await supabase.rpc("enqueue_job", { kind: "hello", context: { name: "Ada" } });
  }
  await heard;
  assert.equal(enqueued.error, null);
  assert.equal(changes[0].new.id, enqueued.data.id);
  const mine = await supabase.from("jobs").select("id, uuid");
  assert.deepEqual(mine.data, [{ id: enqueued.data.id, uuid: data.user.id }]);

  // Another user with the same key sees none of it.
  const other = client(PUBLISHABLE_KEY);
  await other.auth.signUp({ email: unique("pk-other"), password: "correct horse" });
  assert.deepEqual((await other.from("jobs").select("id")).data, []);
});

test("the secret key is the service role on a server; an unknown key is refused", async () => {
  const email = unique("sk");
  await client(PUBLISHABLE_KEY).auth.signUp({ email, password: "correct horse" });
  const admin = client(SECRET_KEY).auth.admin;
  const { data, error } = await admin.listUsers();
  assert.equal(error, null);
  assert.ok(data.users.some((u) => u.email === email));

  const wrong = client("sb_publishable_AAAAAAAAAAAAAAAAAAAAAA_AAAAAAAA");
  const refused = await wrong.auth.signInWithPassword({ email, password: "correct horse" });
  assert.equal(refused.error?.status, 401);
});
