// A minimal W3C WebDriver client over fetch, enough to drive the app through
// tauri-driver: sessions, elements, clicks, typing, scripts and screenshots.

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

export class WebDriver {
  constructor(url) {
    this.url = url;
    this.session = null;
  }

  async call(method, path, body, signal) {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    const json = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(`${method} ${path}: ${json.value?.error ?? response.status}: ${json.value?.message ?? ""}`);
      error.webdriver = json.value?.error;
      throw error;
    }
    return json.value;
  }

  async start(application, args = []) {
    const value = await this.call("POST", "/session", {
      capabilities: { alwaysMatch: { "tauri:options": { application, args } } },
    });
    this.session = value.sessionId;
  }

  async stop() {
    if (this.session) {
      const session = this.session;
      this.session = null;
      await this.call("DELETE", `/session/${session}`);
    }
  }

  s(path) {
    return `/session/${this.session}${path}`;
  }

  /** The first element matching `css`, or null. */
  async find(css) {
    const found = await this.call("POST", this.s("/elements"), { using: "css selector", value: css });
    return found.length ? found[0][ELEMENT] : null;
  }

  /** Clicks `css` once it is there; a live re-render between finding and clicking it
   *  (a stale element) is retried. */
  async click(css) {
    await this.waitFor(async () => {
      const id = await this.find(css);
      if (!id) return null;
      await this.call("POST", this.s(`/element/${id}/click`), {});
      return true;
    }, `${css} to be clicked`);
  }

  async type(css, text) {
    const id = await this.waitFor(() => this.find(css), `${css} to appear`);
    await this.call("POST", this.s(`/element/${id}/clear`), {});
    if (text) await this.call("POST", this.s(`/element/${id}/value`), { text });
  }

  /** Sends keys to an element without clearing it first. */
  async press(css, keys) {
    const id = await this.waitFor(() => this.find(css), `${css} to appear`);
    await this.call("POST", this.s(`/element/${id}/value`), { text: keys });
  }

  async text(css) {
    const id = await this.find(css);
    return id ? this.call("GET", this.s(`/element/${id}/text`)) : null;
  }

  async run(script, ...args) {
    return this.call("POST", this.s("/execute/sync"), { script, args });
  }

  /** A PNG of the window, or null when WebKit gives none within `timeout` ms: now and
   *  then its snapshot waits on a repaint that does not come, and a screenshot is a
   *  record of the run, not something a test checks. */
  async screenshot(timeout = 30_000) {
    try {
      return Buffer.from(await this.call("GET", this.s("/screenshot"), undefined, AbortSignal.timeout(timeout)), "base64");
    } catch (error) {
      if (error.name !== "TimeoutError") throw error;
      return null;
    }
  }

  /** Polls `check` until it answers something truthy; fails after `timeout` ms. */
  async waitFor(check, what, timeout = 30_000) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
      try {
        const value = await check();
        if (value) return value;
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeout} ms waiting for ${what}${last ? ` (${last.message})` : ""}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
