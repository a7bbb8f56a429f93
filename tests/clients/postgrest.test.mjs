// supabase-js's PostgREST patterns, unchanged, against the sandbox with the blog
// schema of crates/sandbox/tests/fixtures/blog.sql loaded (`./x test-clients` loads it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@supabase/supabase-js";

const { API_URL, ANON_KEY } = process.env;
assert.ok(API_URL && ANON_KEY, "API_URL and ANON_KEY must be set");

async function signedUp(name) {
  const supabase = createClient(API_URL, ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
  });
  const email = `${name}-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;
  const { error } = await supabase.auth.signUp({ email, password: "correct horse" });
  assert.equal(error, null);
  return supabase;
}

/// Alice's blog: two authors, two posts, two topics. Topic labels are unique across
/// users, so each blog's carry a suffix of its own: `label("history")`.
async function blog() {
  const db = await signedUp("blog");
  const suffix = Math.random().toString(16).slice(2);
  const label = (name) => `${name}-${suffix}`;
  const { data: authors, error } = await db.from("authors").insert([{ name: "Ada" }, { name: "Grace" }]).select();
  assert.equal(error, null);
  const [ada, grace] = authors;
  const { data: posts } = await db
    .from("posts")
    .insert([
      { author_id: ada.id, editor_id: grace.id, title: "Notes", body: "the analytical engine", tags: ["math", "engines"], pages: "[1,10)" },
      { author_id: grace.id, title: "Compilers", body: "a compiler translates programs", tags: ["cobol"], pages: "[10,20)" },
    ])
    .select("id, title");
  const { data: topics } = await db.from("topics").insert([{ label: label("history") }, { label: label("languages") }]).select();
  await db.from("post_topics").insert([
    { post_id: posts[0].id, topic_id: topics[0].id },
    { post_id: posts[1].id, topic_id: topics[1].id },
  ]);
  return { db, ada, grace, posts, label };
}

test("embedding: many-to-one with a hint, many-to-many, !inner with an embedded filter", async () => {
  const { db, label } = await blog();
  const { data, error } = await db
    .from("posts")
    .select("title, author:authors!author_id(name), topics(label)")
    .order("id");
  assert.equal(error, null);
  assert.deepEqual(data, [
    { title: "Notes", author: { name: "Ada" }, topics: [{ label: label("history") }] },
    { title: "Compilers", author: { name: "Grace" }, topics: [{ label: label("languages") }] },
  ]);

  const inner = await db.from("posts").select("title, topics!inner(label)").eq("topics.label", label("languages"));
  assert.equal(inner.error, null);
  assert.deepEqual(inner.data.map((p) => p.title), ["Compilers"]);

  const ambiguous = await db.from("posts").select("title, authors(name)");
  assert.equal(ambiguous.error?.code, "PGRST201");
  assert.equal(ambiguous.status, 300);

  const nested = await db
    .from("authors")
    .select("name, posts!author_id(title)")
    .order("title", { referencedTable: "posts", ascending: false })
    .limit(1, { referencedTable: "posts" })
    .eq("name", "Ada");
  assert.equal(nested.error, null);
  assert.deepEqual(nested.data, [{ name: "Ada", posts: [{ title: "Notes" }] }]);
});

test("update().eq().select() answers each column once; counts on writes", async () => {
  const { db, posts, label } = await blog();
  const updated = await db.from("posts").update({ title: "Notes, revised", views: 3 }).eq("id", posts[0].id).select("title, views");
  assert.equal(updated.error, null);
  assert.deepEqual(updated.data, [{ title: "Notes, revised", views: 3 }]);

  const inserted = await db.from("topics").insert([{ label: label("a") }, { label: label("b") }], { count: "exact" });
  assert.equal(inserted.error, null);
  assert.equal(inserted.count, 2);
  const changed = await db.from("topics").update({ label: label("c") }, { count: "exact" }).eq("label", label("a"));
  assert.equal(changed.count, 1);
  const deleted = await db.from("topics").delete({ count: "exact" }).in("label", [label("b"), label("c")]);
  assert.equal(deleted.error, null);
  assert.equal(deleted.count, 2);
});

test("upsert on a unique column, ignoring or merging duplicates; defaults for missing keys", async () => {
  const { db, ada, label } = await blog();
  const ignored = await db
    .from("topics")
    .upsert([{ label: label("history") }, { label: label("poetry") }], { onConflict: "label", ignoreDuplicates: true })
    .select("label");
  assert.equal(ignored.error, null);
  assert.deepEqual(ignored.data, [{ label: label("poetry") }]);
  const merged = await db.from("topics").upsert({ label: label("poetry") }, { onConflict: "label" }).select("label");
  assert.equal(merged.error, null);
  assert.equal(merged.status, 200, "only an existing row: 200");

  const rows = await db
    .from("posts")
    .insert([{ author_id: ada.id, title: "Defaulted" }, { author_id: ada.id, title: "Given", views: 9 }], { defaultToNull: false })
    .select("title, views")
    .order("title");
  assert.equal(rows.error, null);
  assert.deepEqual(
    rows.data.sort((a, b) => a.title.localeCompare(b.title)),
    [{ title: "Defaulted", views: 0 }, { title: "Given", views: 9 }],
  );
});

test("operators: contains, overlaps, ranges, text search, likeAnyOf, match", async () => {
  const { db } = await blog();
  const titles = async (query) => {
    const { data, error } = await query.order("id");
    assert.equal(error, null);
    return data.map((p) => p.title);
  };
  const posts = () => db.from("posts").select("title");
  assert.deepEqual(await titles(posts().contains("tags", ["math"])), ["Notes"]);
  assert.deepEqual(await titles(posts().containedBy("tags", ["cobol", "x"])), ["Compilers"]);
  assert.deepEqual(await titles(posts().overlaps("tags", ["cobol", "engines"])), ["Notes", "Compilers"]);
  assert.deepEqual(await titles(posts().rangeAdjacent("pages", "[20,30)")), ["Compilers"]);
  assert.deepEqual(await titles(posts().rangeLt("pages", "[15,16)")), ["Notes"]);
  assert.deepEqual(await titles(posts().textSearch("body", "engine", { type: "websearch", config: "english" })), ["Notes"]);
  assert.deepEqual(await titles(posts().textSearch("body", "'compiler' & 'programs'")), ["Compilers"]);
  assert.deepEqual(await titles(posts().likeAnyOf("title", ["N%", "%ers"])), ["Notes", "Compilers"]);
  assert.deepEqual(await titles(posts().filter("title", "imatch", "^co")), ["Compilers"]);
  assert.deepEqual(await titles(posts().match({ title: "Notes" })), ["Notes"]);
});

test("rpc: the whole body for an unnamed json argument, overloads refused, counts, schemas", async () => {
  const db = await signedUp("rpc");
  const echoed = await db.rpc("echo_json", { any: ["thing"] });
  assert.equal(echoed.error, null);
  assert.deepEqual(echoed.data, { any: ["thing"] });

  const picked = await db.rpc("pick", { a: 1 });
  assert.equal(picked.error?.code, "PGRST203");

  const counted = await db.rpc("numbers", { n: 5 }, { count: "exact" }).range(0, 1);
  assert.equal(counted.error, null);
  assert.equal(counted.count, 5);
  assert.equal(counted.data.length, 2);

  const other = await db.schema("personal").from("posts").select("*");
  assert.equal(other.error?.code, "PGRST106");
  assert.equal(other.status, 406);
});

test("embedded rows keep to their own table's policies", async () => {
  const { posts } = await blog();
  const bob = await signedUp("bob");
  const commented = await bob.from("comments").insert({ post_id: posts[0].id, text: "bob was here" });
  assert.equal(commented.error, null);
  const { data } = await bob.from("comments").select("text, posts(title)");
  assert.deepEqual(data, [{ text: "bob was here", posts: null }], "bob does not see alice's post");
});

test("csv(), stripNulls(), planned and estimated counts; explain() refused as PostgREST's default refuses it", async () => {
  const { db, ada } = await blog();
  const csv = await db.from("posts").select("title, editor_id").order("title").csv();
  assert.equal(csv.error, null);
  assert.equal(csv.data, `title,editor_id\nCompilers,\nNotes,${(await db.from("authors").select("id").eq("name", "Grace")).data[0].id}`);

  const stripped = await db.from("posts").select("title, editor_id").eq("title", "Compilers").stripNulls();
  assert.equal(stripped.error, null);
  assert.deepEqual(stripped.data, [{ title: "Compilers" }]);
  const single = await db.from("posts").select("title, editor_id").eq("author_id", ada.id).single().stripNulls();
  assert.deepEqual(single.data, { title: "Notes", editor_id: single.data.editor_id });
  assert.ok(single.data.editor_id > 0);

  const planned = await db.from("posts").select("id", { count: "planned" }).range(0, 0);
  assert.equal(planned.error, null);
  assert.equal(planned.data.length, 1);
  assert.ok(Number.isInteger(planned.count), `planned count: ${planned.count}`);
  const estimated = await db.from("posts").select("id", { count: "estimated" });
  assert.ok(estimated.count >= 2, `estimated count: ${estimated.count}`);

  const plan = await db.from("posts").select("id").explain();
  assert.equal(plan.status, 406);
  assert.equal(plan.error.code, "PGRST107");
});

test("computed fields; maxAffected() refuses a write over the limit and keeps nothing of it", async () => {
  const { db, posts } = await blog();
  const computed = await db.from("posts").select("title, title_length").eq("id", posts[0].id);
  assert.equal(computed.error, null);
  assert.deepEqual(computed.data, [{ title: "Notes", title_length: 5 }]);

  const refused = await db.from("posts").update({ views: 100 }).gte("views", 0).maxAffected(1);
  assert.equal(refused.error?.code, "PGRST124");
  const { data: untouched } = await db.from("posts").select("id").eq("views", 100);
  assert.deepEqual(untouched, []);
  const allowed = await db.from("posts").update({ views: 1 }).eq("id", posts[0].id).maxAffected(1).select("views");
  assert.equal(allowed.error, null);
  assert.deepEqual(allowed.data, [{ views: 1 }]);
});
