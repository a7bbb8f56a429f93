// End-to-end: the real app binary under Xvfb, driven through tauri-driver and
// WebKitWebDriver, against a real sandbox. Run by `./x e2e`, which starts Xvfb, the
// sandbox and tauri-driver, and points the app's data at a throwaway home.
//
// The steps share one user and run in order; each saves a screenshot of what it shows.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { totp } from "../totp.mjs";
import { WebDriver } from "./webdriver.mjs";

const app = process.env.JOBDECK_APP;
const cli = process.env.JOBDECK_CLI;
const shots = process.env.SCREENSHOT_DIR;
const driver = new WebDriver(process.env.WEBDRIVER_URL ?? "http://127.0.0.1:4444");
const email = `e2e-${Date.now()}@example.com`;
const password = "correct horse battery staple";
let shot = 0;

/** The CLI, signed in as the same user in a session of its own. */
const cliEnv = () => ({ ...process.env, JOBDECK_SESSION_FILE: join(shots, "..", "cli-session.json") });
const cliArgs = (args) => ["--url", process.env.API_URL, "--key", process.env.ANON_KEY, ...args];
function jobdeck(...args) {
  return execFileSync(cli, cliArgs(args), { env: cliEnv(), input: password });
}

/** A TCP relay to the sandbox that can be cut and restored: the app's network. */
async function relay(target) {
  const sockets = new Set();
  let server = null;
  const listen = (port) =>
    new Promise((resolve, reject) => {
      server = createServer((client) => {
        const upstream = connect(Number(target.port), target.hostname);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on("close", () => sockets.delete(socket));
          socket.on("error", () => {});
        }
        client.pipe(upstream).pipe(client);
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve(server.address().port));
    });
  const port = await listen(0);
  return {
    url: `http://127.0.0.1:${port}`,
    /** Refuses new connections and drops the open ones, as a lost network does. */
    async cut() {
      await new Promise((resolve) => {
        server.close(resolve);
        for (const socket of sockets) socket.destroy();
      });
    },
    restore: () => listen(port),
    close() {
      server?.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}
let network = null;

function save(name, png) {
  shot += 1;
  writeFileSync(join(shots, `${String(shot).padStart(2, "0")}-${name}.png`), png);
}

/** WebKit's snapshot of the page or, when it gives none in time (now and then it waits
 *  on a repaint of a still page that does not come), the screen's, which the window
 *  fills. */
async function screenshot(name) {
  const png =
    (await driver.screenshot(5_000)) ??
    execFileSync("import", ["-display", process.env.SCREEN_DISPLAY, "-window", "root", "png:-"]);
  save(name, png);
}

/** The chart's own picture, read from its canvas (WebKit's window snapshot now and then
 *  gives none), and how many rows of pixels the `series` colour covers: a line at zero
 *  covers a few, a line that rises covers many. */
async function chartPicture(series) {
  const { png, rows } = await driver.run(
    `const canvas = document.querySelector('#activity-chart canvas');
     const probe = document.createElement('canvas').getContext('2d');
     probe.fillStyle = getComputedStyle(document.documentElement).getPropertyValue(arguments[0]).trim();
     probe.fillRect(0, 0, 1, 1);
     const [r, g, b] = probe.getImageData(0, 0, 1, 1).data;
     const { data, width } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
     const rows = new Set();
     for (let i = 0; i < data.length; i += 4) {
       const near = Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 60;
       if (near && data[i + 3] > 200) rows.add(Math.floor(i / 4 / width));
     }
     return { png: canvas.toDataURL('image/png'), rows: rows.size };`,
    series,
  );
  return { png: Buffer.from(png.split(",")[1], "base64"), rows };
}

/** The job's row as the table shows it, or null. */
async function row(id) {
  return driver.run(
    `const r = document.querySelector('tr[data-id="' + arguments[0] + '"]');
     if (!r) return null;
     const cell = (c) => r.querySelector('td.' + c).textContent;
     return { status: r.dataset.status, kind: cell('kind'), started: cell('started'),
              ended: cell('ended'), duration: cell('duration'), attempts: cell('attempts') };`,
    id,
  );
}

/** Waits until the status filter's chip for `status` counts `n` jobs. */
async function waitForCount(status, n) {
  await driver.waitFor(
    async () => (await driver.text(`#status-filter [data-status="${status}"] .count`)) === String(n),
    `${n} ${status} jobs in the counts`,
  );
}

async function waitForStatus(id, status, timeout = 30_000) {
  return driver.waitFor(async () => {
    const r = await row(id);
    return r && r.status === status ? r : null;
  }, `job ${id} to be ${status}`, timeout);
}

/** Picks a kind in the enqueue panel, fills its fields, submits with Enter in the
 *  last field; answers the new job's id from the panel's message. */
async function enqueue(kind, fields, options = {}) {
  await driver.run(
    `const s = document.getElementById('enqueue-kind'); s.value = arguments[0];
     s.dispatchEvent(new Event('change'));
     document.getElementById('enqueue-message').textContent = '';`,
    kind,
  );
  if (options.maxAttempts) {
    await driver.run("document.querySelector('#enqueue-form details').open = true");
    await driver.type("#opt-max-attempts", String(options.maxAttempts));
  }
  const names = Object.keys(fields);
  for (const [i, name] of names.entries()) {
    // Enter in the last field submits the form.
    await driver.type(`#field-${name}`, String(fields[name]) + (i === names.length - 1 ? "\uE007" : ""));
  }
  const message = await driver.waitFor(
    async () => (await driver.text("#enqueue-message")) || (await driver.text("#enqueue-error")) || null,
    "the enqueue panel to answer",
  );
  const id = Number(/#(\d+)/.exec(message)?.[1]);
  assert.ok(id, `enqueued: ${message}`);
  if (options.maxAttempts) await driver.type("#opt-max-attempts", "");
  return id;
}

/** Records every status each row shows, so a passing state is seen however briefly. */
async function recordStatuses() {
  await driver.run(`
    window.__seen = {};
    const note = () => document.querySelectorAll('tr[data-id]').forEach((r) => {
      const seen = (window.__seen[r.dataset.id] ??= []);
      if (seen[seen.length - 1] !== r.dataset.status) seen.push(r.dataset.status);
    });
    note();
    new MutationObserver(note).observe(document.getElementById('jobs-body'), { childList: true, subtree: true, attributes: true });
  `);
}

before(async () => {
  assert.ok(app && cli && shots, "run through ./x e2e");
  mkdirSync(shots, { recursive: true });
  await driver.start(app);
});

after(async () => {
  await driver.stop().catch(() => {});
  network?.close();
});

test("first run: a wrong project is refused clearly; the sandbox connects in one click", async () => {
  await driver.waitFor(() => driver.find("#use-sandbox"), "the connect screen");
  const { API_URL, ANON_KEY } = process.env;
  const refused = async (url, key) => {
    await driver.run("document.getElementById('connect-error').textContent = ''");
    await driver.type("#connect-url", url);
    await driver.type("#connect-key", key + "\uE007");
    return driver.waitFor(() => driver.text("#connect-error"), "a refusal");
  };
  // Nothing listens on the discard port.
  assert.match(await refused("http://127.0.0.1:9", ANON_KEY), /cannot reach/);
  // The sandbox's own key with its signature changed.
  const forged = ANON_KEY.slice(0, -4) + (ANON_KEY.endsWith("AAAA") ? "BBBB" : "AAAA");
  assert.match(await refused(API_URL, forged), /api key|invalid/i);
  assert.match(await refused(API_URL, process.env.SERVICE_ROLE_KEY), /service-role key/);
  assert.match(await refused(API_URL, process.env.SECRET_KEY), /secret key/);
  // A project created today hands out a publishable key: it alone connects, and the
  // project's settings (its sign-in providers) come through with it.
  await driver.type("#connect-url", API_URL);
  await driver.type("#connect-key", process.env.PUBLISHABLE_KEY + "\uE007");
  await driver.waitFor(() => driver.find("#auth-provider-sandbox"), "the sign-in screen of the project");
  assert.equal(await driver.text("#auth-screen .muted"), API_URL);
  await driver.click("#auth-other-project");
  await driver.waitFor(() => driver.find("#use-sandbox"), "the connect screen again");
  await screenshot("connect");
  await driver.click("#use-sandbox");
  await driver.waitFor(() => driver.find("#auth-email"), "the sign-in screen");
});

test("sign up, sign out, sign in", async () => {
  await driver.type("#auth-email", email);
  await driver.type("#auth-password", password);
  await screenshot("sign-in");
  await driver.click("#auth-sign-up");
  await driver.waitFor(() => driver.find("#jobs-screen"), "the jobs screen after sign-up");
  await driver.click("#sign-out");
  await driver.waitFor(() => driver.find("#auth-email"), "the sign-in screen after sign-out");
  await driver.type("#auth-email", email);
  await driver.type("#auth-password", "wrong password");
  await driver.click("#auth-sign-in");
  const refused = await driver.waitFor(() => driver.text("#auth-error"), "a refused sign-in");
  assert.match(refused, /invalid/i);
  await driver.type("#auth-password", password);
  await driver.click("#auth-sign-in");
  await driver.waitFor(() => driver.find("#jobs-screen"), "the jobs screen after sign-in");
  const session = await driver.text("#session-state");
  assert.ok(session.includes(email), `the status bar names the user: ${session}`);
});

test("sign in with an emailed code", async () => {
  await driver.click("#sign-out");
  await driver.type("#auth-email", email);
  await driver.click("#auth-send-code");
  await driver.waitFor(() => driver.find("#code-row:not([hidden])"), "the code field");
  // The sandbox sends no mail: the code is in its inbox.
  const inbox = await (await fetch(`${process.env.API_URL}/inbox?email=${encodeURIComponent(email)}`)).json();
  const code = inbox[inbox.length - 1].code;
  await driver.type("#auth-code", "000000");
  await driver.click("#auth-verify");
  assert.ok(await driver.waitFor(() => driver.text("#auth-error"), "a wrong code refused"));
  await driver.type("#auth-code", code);
  await driver.click("#auth-verify");
  await driver.waitFor(() => driver.find("#jobs-screen"), "the jobs screen after the code");
});

test("sign in with the emailed link, followed in the browser", async () => {
  await driver.click("#sign-out");
  await driver.type("#auth-email", email);
  await driver.click("#auth-send-code");
  await driver.waitFor(() => driver.find("#code-row:not([hidden])"), "the code field");
  const inbox = await (await fetch(`${process.env.API_URL}/inbox?email=${encodeURIComponent(email)}`)).json();
  const link = inbox[inbox.length - 1].link;
  assert.match(link, /token=pkce_/);
  // The browser: the sandbox sends it to the app's loopback listener with a code.
  const landed = (await fetch(link, { redirect: "manual" })).headers.get("location");
  assert.match(landed, /^http:\/\/127\.0\.0\.1:\d+\/callback\?/);
  assert.match(await (await fetch(landed)).text(), /You are signed in/);
  await driver.waitFor(() => driver.find("#jobs-screen"), "the jobs screen after the link");
  assert.ok((await driver.text("#session-state")).includes(email));
});

// What the user's browser does with the sign-in's address: the sandbox provider's
// consent page signs in as `address`; then the browser lands on the app's loopback
// listener. Answers the page the browser shows at the end.
async function browserSignsIn(authorizeUrl, address) {
  const location = (response) => new URL(response.headers.get("location"), authorizeUrl).toString();
  const page = location(await fetch(authorizeUrl, { redirect: "manual" }));
  const form = new URLSearchParams({ state: new URL(page).searchParams.get("state"), email: address, decision: "allow" });
  const decided = await fetch(page, { method: "POST", body: form, redirect: "manual" });
  const landed = location(await fetch(location(decided), { redirect: "manual" }));
  return (await fetch(landed)).text();
}

test("sign in through an OAuth provider in the browser, or cancel it", async () => {
  await driver.click("#sign-out");
  await driver.waitFor(() => driver.find("#auth-provider-sandbox"), "the provider's button");
  await driver.click("#auth-provider-sandbox");
  await driver.waitFor(() => driver.find("#auth-browser-url"), "the sign-in's address");
  await driver.click("#auth-browser-cancel");
  const stopped = await driver.waitFor(() => driver.text("#auth-error"), "the cancelled sign-in said");
  assert.match(stopped, /cancelled/);
  assert.equal(await driver.find("#auth-browser-url"), null, "no sign-in waits any more");

  await driver.click("#auth-provider-sandbox");
  const url = await driver.waitFor(
    () => driver.run("const i = document.getElementById('auth-browser-url'); return i && i.value;"),
    "the sign-in's address",
  );
  assert.match(url, /\/auth\/v1\/authorize\?provider=sandbox&/);
  await screenshot("oauth-waiting");
  // The same address as the password account: the provider's identity joins it.
  const shown = await browserSignsIn(url, email);
  assert.match(shown, /You are signed in/);
  await driver.waitFor(() => driver.find("#jobs-screen"), "the jobs screen after the browser");
  const session = await driver.text("#session-state");
  assert.ok(session.includes(email), `signed in as the same user: ${session}`);
});

test("an authenticator app: added with its QR code, asked for at sign-in, removed", async () => {
  await driver.click("#account-open");
  await driver.waitFor(() => driver.find("#account-no-factors"), "the account screen without factors");
  assert.equal(await driver.text("#account-email"), email);
  await driver.click("#account-add");
  const secret = await driver.waitFor(
    () => driver.run("const i = document.getElementById('account-secret'); return i && i.value;"),
    "the new factor's secret",
  );
  const qrShown = await driver.waitFor(
    () => driver.run("const i = document.getElementById('account-qr'); return i && i.complete && i.naturalWidth > 0;"),
    "the QR code drawn",
  );
  assert.ok(qrShown);
  await screenshot("mfa-enroll");
  await driver.type("#account-code", "000000\uE007");
  assert.match(await driver.waitFor(() => driver.text("#account-error"), "a wrong code refused"), /Invalid TOTP code/);
  await driver.type("#account-code", totp(secret) + "\uE007");
  await driver.waitFor(() => driver.find("#account-factors [data-factor]"), "the confirmed factor listed");
  assert.match(await driver.text("#account-factors"), /On/);

  await driver.click("#sign-out");
  await driver.waitFor(() => driver.find("#auth-email"), "the sign-in screen");
  await driver.type("#auth-email", email);
  await driver.type("#auth-password", password);
  await driver.click("#auth-sign-in");
  await driver.waitFor(() => driver.find("#auth-totp"), "the authenticator code asked for");
  assert.ok((await driver.text("#auth-second-factor")).includes(email));
  await screenshot("mfa-challenge");
  await driver.type("#auth-totp", "000000\uE007");
  assert.match(await driver.waitFor(() => driver.text("#auth-error"), "a wrong code refused"), /Invalid TOTP code/);
  assert.equal(await driver.find("#jobs-screen"), null, "not signed in on a wrong code");
  await driver.type("#auth-totp", totp(secret) + "\uE007");
  await driver.waitFor(() => driver.find("#jobs-screen"), "the jobs screen after the code");

  // Removed again, so the later steps (and the CLI) sign in with the password alone.
  await driver.click("#account-open");
  await driver.waitFor(() => driver.find("#account-factors .account-remove"), "the factor's remove button");
  await driver.click("#account-factors .account-remove");
  await driver.waitFor(() => driver.find("#account-no-factors"), "no factors left");
  await driver.click("#account-back");
  await driver.waitFor(() => driver.find("#jobs-screen"), "back on the jobs screen");
});

test("hello goes waiting → running → finished, with its times", async () => {
  await recordStatuses();
  // Paused, the job stays waiting long enough to be seen and photographed.
  await driver.click("#worker-toggle");
  await driver.waitFor(async () => (await driver.run("return document.getElementById('worker-state').dataset.paused")) === "1", "the worker to pause");
  const id = await enqueue("hello", { name: "World" });
  const waiting = await waitForStatus(id, "waiting");
  assert.equal(waiting.started, "");
  await screenshot("hello-waiting");
  await driver.click("#worker-toggle");
  const finished = await waitForStatus(id, "finished");
  const seen = await driver.run("return window.__seen[arguments[0]]", id);
  assert.deepEqual(seen, ["waiting", "running", "finished"]);
  assert.match(finished.started, /\d\d:\d\d:\d\d/);
  assert.match(finished.ended, /\d\d:\d\d:\d\d/);
  assert.match(finished.duration, /\d+(\.\d)? m?s/);
  assert.equal(finished.attempts, "1/3");
  await waitForCount("finished", 1);
  await driver.click(`tr[data-id="${id}"] td.kind`);
  await driver.waitFor(async () => (await driver.text("#detail-status")) === "finished", "the detail panel");
  const result = await driver.text("#detail");
  assert.match(result, /Hello, World/);
  await screenshot("hello-finished");
  // Found by its input: a JSON object it contains, or a word of it; not by another.
  const rows = () => driver.run("return [...document.querySelectorAll('#jobs-body tr[data-id]')].map((r) => Number(r.dataset.id))");
  for (const [search, found] of [['{"name": "World"}', [id]], ["world", [id]], ['{"name": "Nobody"}', []]]) {
    await driver.type("#search-input", search);
    await driver.waitFor(async () => JSON.stringify(await rows()) === JSON.stringify(found), `the jobs whose input matches ${search}`);
  }
  await driver.type("#search-input", "x\uE003");
  await driver.waitFor(async () => (await rows()).length > 0, "every job again");
  // And by its result: a JSON object the result contains.
  for (const [search, found] of [['{"greeting": "Hello, World!"}', [id]], ['{"greeting": "Bye"}', []]]) {
    await driver.type("#search-result", search);
    await driver.waitFor(async () => JSON.stringify(await rows()) === JSON.stringify(found), `the jobs whose result contains ${search}`);
  }
  await driver.type("#search-result", "x\uE003");
  await driver.waitFor(async () => (await rows()).length > 0, "every job again");
});

test("bad input is refused beside its field, and nothing is enqueued", async () => {
  await driver.run(
    `const s = document.getElementById('enqueue-kind'); s.value = 'sleep'; s.dispatchEvent(new Event('change'));`,
  );
  const before = await driver.run("return document.querySelectorAll('tr[data-id]').length");
  await driver.type("#field-seconds", "90000\uE007");
  const error = await driver.waitFor(() => driver.text("#error-seconds"), "a field error");
  assert.match(error, /86400/);
  assert.equal(await driver.run("return document.querySelectorAll('tr[data-id]').length"), before);
  await screenshot("invalid-input");
});

test("a failing job shows its failure context", async () => {
  const id = await enqueue("flaky", { fail_times: 5 }, { maxAttempts: 1 });
  await waitForStatus(id, "failed");
  await waitForCount("failed", 1);
  await driver.click(`tr[data-id="${id}"] td.kind`);
  const failure = await driver.waitFor(() => driver.text("#detail-failure"), "the failure section");
  assert.match(failure, /failing on purpose: attempt 1 of 5 planned failures/);
  assert.match(failure, /planned_failure/);
  const attempts = await driver.waitFor(() => driver.text("#detail-attempts"), "the attempts list");
  assert.match(attempts, /attempt 1/i);
  await screenshot("failed-detail");
});

test("cancel a running sleep", async () => {
  const id = await enqueue("sleep", { seconds: 120 });
  await waitForStatus(id, "running");
  await driver.click(`tr[data-id="${id}"] td.kind`);
  await driver.click('#detail [data-action="cancel"]');
  await waitForStatus(id, "cancelled");
  await waitForCount("cancelled", 1);
  await waitForCount("running", 0);
  await screenshot("cancelled");
});

// `./x e2e` runs the app with its poll switched off (JOBDECK_FEED_POLL_SECONDS=0): what
// the app shows of jobs changed elsewhere was pushed by Realtime.
test("a job enqueued and run by the CLI appears and changes in the app, pushed by Realtime", async () => {
  await driver.waitFor(
    async () => (await driver.run("return document.querySelector('#live-state')?.dataset.state")) === "live",
    "the list to be live",
  );
  jobdeck("login", email, "--password-stdin");
  const out = jobdeck("--json", "enqueue", "sleep", "--set", "seconds=0", "--run-at", "2099-01-01T00:00:00Z");
  const id = JSON.parse(out).id;
  const shown = await waitForStatus(id, "waiting", 15_000);
  assert.equal(shown.kind, "sleep");
  await screenshot("from-cli");
  jobdeck("cancel", String(id));
  await waitForStatus(id, "cancelled", 15_000);

  // Run by the CLI's worker while the app's is paused: the app only watches.
  await driver.click("#worker-toggle");
  await driver.waitFor(async () => (await driver.run("return document.querySelector('#worker-state')?.dataset.paused")) === "1", "the app's worker to pause");
  const worker = spawn(cli, cliArgs(["worker", "--only", "sleep"]), { env: cliEnv(), stdio: ["ignore", "ignore", "pipe"] });
  let said = "";
  worker.stderr.on("data", (chunk) => (said += chunk));
  try {
    await driver.waitFor(async () => /running as/.test(said), "the CLI's worker to start");
    const ran = JSON.parse(jobdeck("--json", "enqueue", "sleep", "--set", "seconds=1")).id;
    const running = await waitForStatus(ran, "running", 15_000);
    assert.notEqual(running.started.trim(), "", "its start time");
    const finished = await waitForStatus(ran, "finished", 15_000);
    assert.notEqual(finished.ended.trim(), "", "its end time");
  } finally {
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    worker.kill("SIGTERM");
    await exited;
    await driver.click("#worker-toggle");
  }
  await driver.waitFor(async () => (await driver.run("return document.querySelector('#worker-state')?.dataset.paused")) === "0", "the app's worker to resume");
});

test("keyboard, run again, delete, and bulk actions on the filtered set", async () => {
  // Arrow keys move through the rows; Enter opens the focused one.
  await driver.run("document.querySelector('#jobs-body tr[data-id]').focus()");
  const rows = await driver.run("return [...document.querySelectorAll('#jobs-body tr[data-id]')].map((r) => Number(r.dataset.id))");
  await driver.press("#jobs-body tr[data-id]:focus", "\uE015\uE015\uE013"); // Down, Down, Up
  const second = await driver.run("return Number(document.activeElement.dataset.id)");
  assert.equal(second, rows[1]);
  await driver.press("#jobs-body tr[data-id]:focus", "\uE010\uE007"); // End, Enter: the oldest, hello
  const opened = await driver.waitFor(() => driver.text("#detail h2"), "the detail panel");
  assert.equal(opened, `#${rows[rows.length - 1]} hello`);

  await driver.click('#detail [data-action="runAgain"]');
  const again = await driver.waitFor(async () => {
    const title = await driver.text("#detail h2");
    return title && title !== opened ? Number(/#(\d+)/.exec(title)[1]) : null;
  }, "the new job's detail");
  assert.ok(again > Math.max(...rows));
  await waitForStatus(again, "finished");
  await driver.waitFor(async () => /Hello, World/.test(await driver.text("#detail")), "the same input's result");
  await driver.click('#detail [data-action="delete"]');
  await driver.waitFor(async () => !(await row(again)), "the deleted job to leave the table");

  // Three jobs held back by the paused worker, cancelled and retried in bulk.
  await driver.click("#worker-toggle");
  const held = [];
  for (const name of ["a", "b", "c"]) held.push(await enqueue("hello", { name }));
  await driver.click('#status-filter [data-status="waiting"]');
  await driver.waitFor(
    async () => JSON.stringify(await driver.run("return [...document.querySelectorAll('#jobs-body tr[data-id]')].map((r) => Number(r.dataset.id))")) === JSON.stringify([...held].reverse()),
    "only the waiting jobs",
  );
  await driver.click("#bulk-cancel");
  assert.match(await driver.text("#bulk-cancel"), /again/, "the first click only asks");
  assert.equal(await driver.text("#jobs-message"), "");
  await driver.click("#bulk-cancel");
  await driver.waitFor(async () => /3/.test((await driver.text("#jobs-message")) ?? ""), "the bulk result");
  await waitForCount("waiting", 0);
  // Retry only the cancelled hello jobs (not the cancelled sleeps).
  await driver.run("const s = document.getElementById('filter-kind'); s.value = 'hello'; s.dispatchEvent(new Event('change'));");
  await driver.click('#status-filter [data-status="cancelled"]');
  await driver.waitFor(async () => (await driver.run("return document.querySelectorAll('#jobs-body tr[data-id]').length")) === 3, "the three cancelled hello jobs");
  await driver.click("#bulk-retry");
  await driver.click("#bulk-retry");
  await waitForCount("waiting", 3);
  await driver.run("const s = document.getElementById('filter-kind'); s.value = ''; s.dispatchEvent(new Event('change'));");
  await driver.click('#status-filter [data-status="all"]');
  await driver.click("#worker-toggle");
  for (const id of held) await waitForStatus(id, "finished");
});

test("dark theme and Japanese text", async () => {
  await driver.run("const s = document.getElementById('theme'); s.value = 'dark'; s.dispatchEvent(new Event('change'));");
  await driver.waitFor(async () => (await driver.run("return document.documentElement.dataset.theme")) === "dark", "the dark theme");
  await driver.run("const s = document.getElementById('language'); s.value = 'ja'; s.dispatchEvent(new Event('change'));");
  await driver.waitFor(async () => (await driver.text("#enqueue-panel h2")) === "ジョブを追加", "Japanese text");
  await driver.waitFor(() => driver.find("tr[data-id]"), "the jobs again");
  await screenshot("dark-japanese");
  await driver.run("const s = document.getElementById('language'); s.value = 'en'; s.dispatchEvent(new Event('change'));");
  await driver.waitFor(async () => (await driver.text("#enqueue-panel h2")) === "Enqueue", "English text");
  await driver.run("const s = document.getElementById('theme'); s.value = 'light'; s.dispatchEvent(new Event('change'));");
  await driver.waitFor(async () => (await driver.run("return document.documentElement.dataset.theme")) === "light", "the light theme");
});

test("after a restart the user is still signed in (from the keychain), and a job running at close was handed back", async () => {
  const id = await enqueue("sleep", { seconds: 300 });
  await waitForStatus(id, "running");
  // The session is in the desktop's Secret Service (./x e2e runs a gnome-keyring): the
  // app's own files hold no token, so the restart below can only find it there.
  assert.ok(existsSync(join(process.env.APP_DATA_DIR, "settings.json")), "the app's data directory");
  const stored = join(process.env.APP_DATA_DIR, "session.json");
  const onDisk = existsSync(stored) ? readFileSync(stored, "utf8") : "";
  assert.doesNotMatch(onDisk, /refresh_token/, "no session in the app's files");
  // Ended the way a desktop session's logout ends it. (WebKitWebDriver's own end of
  // session kills the app outright, which says nothing about a clean close.)
  const pid = Number(execFileSync("pgrep", ["-f", "-n", app]).toString().trim());
  process.kill(pid, "SIGTERM");
  await driver.waitFor(() => !existsSync(`/proc/${pid}/status`) || /State:\s+Z/.test(readFileSync(`/proc/${pid}/status`, "utf8")), "the app to exit");
  await driver.stop().catch(() => {});
  await driver.start(app);
  await driver.waitFor(() => driver.find("#jobs-screen"), "the jobs screen without signing in again");
  await driver.waitFor(() => driver.find("tr[data-id]"), "the job history");
  // Handed back when the window closed, so the next worker took it at once, without
  // waiting for its lease to run out and without using up an attempt.
  const again = await waitForStatus(id, "running");
  assert.equal(again.attempts, "1/3");
  await driver.click(`tr[data-id="${id}"] td.kind`);
  const attempts = await driver.waitFor(() => driver.text("#detail-attempts"), "the attempts");
  assert.match(attempts, /released/);
  // The main screen as the README shows it: a job running with its progress.
  await driver.waitFor(
    async () => Number(await driver.run(`return document.querySelector('tr[data-id="${id}"] .bar')?.getAttribute('aria-valuenow')`)) > 0,
    "progress",
  );
  await screenshot("main-screen");
  await driver.click('#detail [data-action="cancel"]');
  await waitForStatus(id, "cancelled");
  await waitForCount("running", 0);
});

test("the network goes and comes back: the app says so, its worker and list carry on", async () => {
  // The same project, reached through a relay the test can cut.
  network = await relay(new URL(process.env.API_URL));
  await driver.click("#sign-out");
  await driver.click("#auth-other-project");
  await driver.type("#connect-url", network.url);
  await driver.type("#connect-key", process.env.ANON_KEY + "\uE007");
  await driver.type("#auth-email", email);
  await driver.type("#auth-password", password);
  await driver.click("#auth-sign-in");
  await driver.waitFor(() => driver.find("#jobs-screen"), "the jobs screen through the relay");
  await driver.waitFor(() => driver.find("tr[data-id]"), "the job history");

  const finished = Number(await driver.text('#status-filter [data-status="finished"] .count'));
  await network.cut();
  const said = await driver.waitFor(() => driver.text("#connection-trouble"), "the app to say it is offline");
  assert.match(said, /offline, reconnecting/);
  await screenshot("offline");
  // Enqueued elsewhere while the app cannot reach the project: only the app's worker
  // runs jobs here, so this one finishing shows the worker came back, and seeing it
  // finish shows the live list did.
  const id = JSON.parse(jobdeck("--json", "enqueue", "hello", "--set", "name=again")).id;
  assert.equal(await row(id), null, "the offline app cannot know of it yet");

  await network.restore();
  const done = await waitForStatus(id, "finished", 60_000);
  assert.equal(done.kind, "hello");
  await waitForCount("finished", finished + 1);
  await driver.waitFor(async () => (await driver.find("#connection-trouble")) === null, "the offline line to go");
  // Its detail: one attempt, finished; the job ran once.
  await driver.click(`tr[data-id="${id}"] td.kind`);
  assert.match(await driver.waitFor(() => driver.text("#detail-attempts"), "the job's attempts"), /finished/);
  await screenshot("back-online");
});

test("own kinds: the kinds file's command kind gets a form, runs, and its log is live in the detail", async () => {
  const file = process.env.KINDS_FILE;
  const folder = dirname(file);
  mkdirSync(folder, { recursive: true });
  const go = join(folder, "go");
  rmSync(go, { force: true });
  // Logs, then waits for the test's word, then finishes: its log must show while it runs.
  writeFileSync(
    join(folder, "greet.sh"),
    `#!/bin/sh\nread -r input\necho "greeting with $input"\necho 'warming up' >&2\n` +
      `while [ ! -e "${go}" ]; do sleep 0.1; done\necho '{"log": "almost done", "level": "warn"}'\n` +
      `echo '{"result": {"greeted": true}}'\n`,
    { mode: 0o755 },
  );
  writeFileSync(
    file,
    `[[kind]]\nname = "greet"\ndescription = "Greets from a program"\ncommand = ["./greet.sh"]\n` +
      `input_schema = { type = "object", properties = { who = { type = "string" } }, required = ["who"] }\n\n` +
      `[[kind]]\nname = "typo"\ncomand = ["x"]\n`,
  );
  // The app sees the file change on its own: the kind is offered, the wrong entry named.
  await driver.waitFor(
    () => driver.run("return [...document.querySelectorAll('#enqueue-kind option')].some((o) => o.value === 'greet')"),
    "the new kind in the enqueue form",
  );
  const problems = await driver.waitFor(() => driver.text("#kinds-problems"), "the kinds file's problem");
  assert.match(problems, /kinds\.toml:9: comand: unknown key/);
  const id = await enqueue("greet", { who: "Ada" });
  await waitForStatus(id, "running");
  await driver.click(`tr[data-id="${id}"] td.kind`);
  const live = await driver.waitFor(async () => {
    const text = await driver.text("#job-log");
    return text && text.includes("warming up") ? text : null;
  }, "the running job's log");
  assert.match(live, /greeting with \{"who":"Ada"\}/);
  assert.equal((await row(id)).status, "running", "the log showed while the program ran");
  const stderr = await driver.run(
    "return [...document.querySelectorAll('#job-log .log-line')].find((l) => l.textContent.includes('warming up'))?.dataset.stream",
  );
  assert.equal(stderr, "stderr");
  await screenshot("own-kind-running");
  writeFileSync(go, "");
  await waitForStatus(id, "finished");
  await driver.waitFor(async () => (await driver.text("#job-log"))?.includes("almost done"), "the last log line");
  // Edit and run again: the form comes back with the job's input.
  await driver.click('#detail [data-action="edit"]');
  await driver.waitFor(
    () => driver.run("return document.getElementById('field-who')?.value === 'Ada'"),
    "the form prefilled with the job's input",
  );
  await screenshot("own-kind-finished");
});

test("a schedule: made with its next runs shown, its tick makes a job, run now, paused, a kind paused, deleted", async () => {
  await driver.click("#schedules-open");
  await driver.waitFor(() => driver.find("#schedules-screen"), "the schedules screen");
  await driver.click("#schedule-new");
  await driver.waitFor(() => driver.find("#schedule-form"), "the schedule form");
  await driver.run(
    `const s = document.getElementById('schedule-kind'); s.value = 'hello'; s.dispatchEvent(new Event('change'));`,
  );
  await driver.type("#schedule-name", "greeter");
  await driver.type("#schedule-field-name", "Cron");
  await driver.type("#schedule-cron", "every minute");
  assert.match(
    await driver.waitFor(() => driver.text("#schedule-cron-error"), "the expression refused as it is typed"),
    /not valid/,
  );
  await driver.type("#schedule-cron", "* * * * *");
  await driver.type("#schedule-tz", "Asia/Tokyo");
  await driver.waitFor(async () => /Next runs: \d\d:\d\d/.test((await driver.text("#schedule-preview")) ?? ""), "the next runs previewed");
  assert.equal(await driver.text("#schedule-cron-error"), "");
  await screenshot("schedule-form");
  await driver.click("#schedule-save");
  const id = Number(
    await driver.waitFor(
      () => driver.run("return document.querySelector('#schedules-body tr[data-schedule]')?.dataset.schedule"),
      "the new schedule listed",
    ),
  );
  const cells = () =>
    driver.run(
      `const r = document.querySelector('tr[data-schedule="' + arguments[0] + '"]');
       if (!r) return null;
       const cell = (c) => r.querySelector('td.' + c).textContent.trim();
       return { next: cell('next'), last: cell('last'), state: cell('state'), cron: cell('cron') };`,
      id,
    );
  const listed = await cells();
  assert.match(listed.next, /\d\d:\d\d/);
  assert.equal(listed.state, "Active");
  assert.match(listed.cron, /\* \* \* \* \* Asia\/Tokyo/);

  // Its tick comes (as a minute passing would bring it): the worker makes the job.
  const due = await fetch(`${process.env.API_URL}/rest/v1/schedules?id=eq.${id}`, {
    method: "PATCH",
    headers: {
      apikey: process.env.SERVICE_ROLE_KEY,
      authorization: `Bearer ${process.env.SERVICE_ROLE_KEY}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ next_run_at: new Date().toISOString() }),
  });
  assert.ok(due.ok, `the tick made due: ${due.status}`);
  await driver.click(`tr[data-schedule="${id}"] td.name`);
  const made = await driver.waitFor(
    () => driver.run("return document.querySelector('#schedule-history li[data-job]')?.dataset.job"),
    "the tick's job in the schedule's history",
  );
  await driver.waitFor(async () => /finished/.test((await cells()).last), "the last run finished");
  await driver.click(`tr[data-schedule="${id}"] .schedule-run`);
  await driver.waitFor(
    () => driver.run("return document.querySelectorAll('#schedule-history li[data-job]').length === 2"),
    "run now's job in the history",
  );
  await driver.click(`tr[data-schedule="${id}"] .schedule-toggle`);
  await driver.waitFor(async () => (await cells()).state === "Paused", "the schedule paused");
  assert.equal((await cells()).next, "");
  await driver.click('#paused-kinds li[data-kind="hello"] .kind-toggle');
  await driver.waitFor(
    async () => (await driver.text('#paused-kinds li[data-kind="hello"] .kind-toggle')) === "Resume",
    "hello paused on every device",
  );
  assert.match(jobdeck("--json", "kinds", "paused").toString(), /"kind": "hello"/);
  await screenshot("schedules");
  await driver.click('#paused-kinds li[data-kind="hello"] .kind-toggle');
  await driver.waitFor(
    async () => (await driver.text('#paused-kinds li[data-kind="hello"] .kind-toggle')) === "Pause",
    "hello resumed",
  );
  // Deleted from its panel: the first press asks, the second deletes.
  await driver.click("#schedule-history .schedule-delete");
  await driver.waitFor(async () => /Delete\?/.test((await driver.text("#schedule-history .schedule-delete")) ?? ""), "asked to confirm");
  await driver.click("#schedule-history .schedule-delete");
  await driver.waitFor(async () => (await cells()) === null, "the schedule deleted");
  await driver.click("#jobs-open");
  await driver.waitFor(() => row(Number(made)), "the scheduled job on the jobs screen");
});

test("activity: the chart counts what ran and follows jobs as they end; retention kept in the account", async () => {
  await driver.click("#activity-open");
  await driver.waitFor(
    () => driver.run("return !!document.querySelector('#activity-chart canvas')"),
    "the chart drawn",
  ).catch(async (e) => {
    throw new Error(`${e.message}; the screen says: ${await driver.run("return document.getElementById('app').innerText")}`);
  });
  await driver.waitFor(() => driver.find('#activity-kinds tr[data-kind="hello"]'), "hello's durations");
  const finished = async () => Number(await driver.text("#activity-finished"));
  const before = await finished();
  assert.ok(before > 0, `the hour's finished jobs are counted: ${before}`);
  assert.equal(await driver.run("return document.getElementById('activity-chart').dataset.buckets"), "60");
  // A job ends elsewhere while the chart is on show: the figures follow.
  const id = JSON.parse(jobdeck("--json", "enqueue", "hello", "--set", "name=Chart")).id;
  await driver.waitFor(async () => (await finished()) > before, `job ${id} counted as it finished`);
  await driver.click("#activity-span-day");
  await driver.waitFor(() => driver.run("return document.getElementById('activity-chart').dataset.buckets === '24'"), "a day by hour");
  await driver.click("#activity-span-hour");
  await driver.waitFor(() => driver.run("return document.getElementById('activity-chart').dataset.buckets === '60'"), "back to the hour");
  // The finished line rises from zero where jobs ended: drawn with data, not only axes.
  const chart = await driver.waitFor(async () => {
    const picture = await chartPicture("--finished");
    return picture.rows > 8 && picture;
  }, "the finished line drawn above zero");
  save("activity-chart", chart.png);
  await screenshot("activity");

  await driver.click("#account-open");
  await driver.waitFor(() => driver.run("return !document.getElementById('retention-save')?.disabled"), "the policy read");
  await driver.click("#retention-by-count");
  await driver.type("#retention-last", "5000");
  await driver.click("#retention-save");
  await driver.waitFor(async () => /Saved/.test((await driver.text("#retention-message")) ?? ""), "the policy saved");
  assert.equal(JSON.parse(jobdeck("--json", "retention")).keep_last, 5000);
  await screenshot("retention");
  await driver.click("#jobs-open");
});

test("sign out ends the session", async () => {
  await driver.click("#sign-out");
  await driver.waitFor(() => driver.find("#auth-email"), "the sign-in screen");
  await screenshot("signed-out");
  await driver.stop();
  await driver.start(app);
  await driver.waitFor(() => driver.find("#auth-email"), "the sign-in screen after a restart");
});
