// The installed package's app, started the way its desktop entry starts it (plus
// `--sandbox`), against a fresh sandbox: it must reach sign-in, sign a user up and run a
// job. Run by `./x test-package` after `apt-get install ./Jobdeck_*.deb`.

import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { WebDriver } from "../e2e/webdriver.mjs";

const driver = new WebDriver(process.env.WEBDRIVER_URL);

after(async () => {
  await driver.stop().catch(() => {});
});

test("the installed app connects to the sandbox, signs up and runs a job", async () => {
  const app = process.env.JOBDECK_APP;
  assert.ok(app.startsWith("/usr/bin/"), `the installed binary: ${app}`);
  await driver.start(app, ["--sandbox"]);
  await driver.waitFor(() => driver.find("#auth-email"), "the sign-in screen on the sandbox");
  const version = execFileSync("dpkg-query", ["-W", "-f=${Version}", "jobdeck"]).toString();
  assert.equal(await driver.text("#about"), `v${version}`, "the About version is the package's");
  await driver.type("#auth-email", `package-${Date.now()}@example.com`);
  await driver.type("#auth-password", "correct horse battery staple");
  await driver.click("#auth-sign-up");
  await driver.waitFor(() => driver.find("#jobs-screen"), "the jobs screen");
  await driver.run("const s = document.getElementById('enqueue-kind'); s.value = 'hello'; s.dispatchEvent(new Event('change'));");
  await driver.type("#field-name", "package\uE007");
  await driver.waitFor(
    async () => (await driver.run("return document.querySelector('#jobs-body tr[data-status=\"finished\"] td.kind')?.textContent")) === "hello",
    "the job to finish",
  );
  mkdirSync(process.env.SCREENSHOT_DIR, { recursive: true });
  const png = await driver.screenshot();
  if (png) writeFileSync(join(process.env.SCREENSHOT_DIR, "installed.png"), png);
});
