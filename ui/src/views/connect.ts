// First run: connect to a Supabase project, or use the local sandbox in one click.

import { connectionConnect, connectionConnectSandbox, type ConnectionView } from "../bindings";
import { h, messageOf, mount } from "../dom";
import { t } from "../i18n";

export function connectScreen(root: Element, connected: (view: ConnectionView) => void): void {
  const error = h("p", { class: "error", id: "connect-error", role: "alert" });
  const busy = (button: HTMLButtonElement, text: string) => {
    const label = button.textContent ?? "";
    button.disabled = true;
    button.textContent = text;
    error.textContent = "";
    return () => {
      button.disabled = false;
      button.textContent = label;
    };
  };

  const sandbox = h("button", { class: "primary wide", id: "use-sandbox", type: "button" }, t("connect.sandbox"));
  sandbox.addEventListener("click", async () => {
    const done = busy(sandbox, t("connect.starting"));
    try {
      connected(await connectionConnectSandbox());
    } catch (e) {
      error.textContent = messageOf(e);
      done();
    }
  });

  const url = h("input", { id: "connect-url", type: "url", required: true, placeholder: "https://xyzcompany.supabase.co", autocomplete: "url" });
  const key = h("input", { id: "connect-key", required: true, placeholder: "eyJhbGciOi… / sb_publishable_…", autocomplete: "off", spellcheck: "false" });
  const submit = h("button", { id: "connect-submit", type: "submit" }, t("connect.submit"));
  const form = h(
    "form",
    { class: "stack" },
    h("label", {}, t("connect.url"), url),
    h("label", {}, t("connect.key"), key),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const done = busy(submit, t("connect.checking"));
    try {
      connected(await connectionConnect(url.value, key.value));
    } catch (e) {
      error.textContent = messageOf(e);
      done();
    }
  });

  mount(
    root,
    h(
      "section",
      { class: "card narrow", id: "connect-screen" },
      h("h1", {}, "Jobdeck"),
      h("p", { class: "muted" }, t("app.tagline")),
      h("h2", {}, t("connect.title")),
      sandbox,
      h("p", { class: "hint" }, t("connect.sandboxHint")),
      h("p", { class: "divider" }, t("connect.or")),
      form,
      error,
    ),
  );
  sandbox.focus();
}
