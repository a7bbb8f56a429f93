// Boots the UI: preferences, then the first screen that fits (connect, sign in, jobs),
// and routes the app's events to the screen on show.

import { listen } from "@tauri-apps/api/event";
import {
  APP_EVENT,
  appInfo,
  connectionRestore,
  preferencesGet,
  preferencesSet,
  type AppEvent,
  type ConnectionView,
  type Preferences,
} from "./bindings";
import { h, messageOf, mount } from "./dom";
import { resolveLang, setLang, t } from "./i18n";
import { authScreen } from "./views/auth";
import { connectScreen } from "./views/connect";
import { JobsScreen } from "./views/jobs";
import "./style.css";

const root = document.getElementById("app") as HTMLElement;
const header = document.getElementById("header") as HTMLElement;
let screen: JobsScreen | null = null;
let connection: ConnectionView | null = null;

function applyTheme(preferences: Preferences): void {
  const dark =
    preferences.theme === "dark" ||
    (preferences.theme === "system" && window.matchMedia?.("(prefers-color-scheme: dark)").matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

function applyLanguage(preferences: Preferences): void {
  const lang = resolveLang(preferences.language, navigator.language);
  setLang(lang);
  document.documentElement.lang = lang;
}

async function renderHeader(current: Preferences): Promise<void> {
  let preferences = current;
  const info = await appInfo();
  const select = (id: string, label: string, value: string, options: Array<[string, string]>, change: (v: string) => void) => {
    const element = h("select", { id }, ...options.map(([v, text]) => h("option", { value: v }, text)));
    element.value = value;
    element.addEventListener("change", () => change(element.value));
    return h("label", { class: "inline" }, label, element);
  };
  const save = async (next: Preferences) => {
    await preferencesSet(next);
    applyTheme(next);
    if (next.language !== preferences.language) {
      applyLanguage(next);
      // Text is rendered once per screen: show the current screen again in the new language.
      await renderHeader(next);
      await route();
    } else {
      preferences = next;
    }
  };
  mount(
    header,
    h("strong", { class: "brand" }, "Jobdeck"),
    h("span", { class: "muted", id: "about", title: t("about.version", { version: info.version }) }, `v${info.version}`),
    h("span", { class: "spacer" }),
    select("theme", t("prefs.theme"), preferences.theme, [["system", t("prefs.system")], ["light", t("prefs.light")], ["dark", t("prefs.dark")]], (theme) =>
      void save({ ...preferences, theme: theme as Preferences["theme"] }),
    ),
    select("language", t("prefs.language"), preferences.language, [["system", t("prefs.system")], ["en", "English"], ["ja", "日本語"]], (language) =>
      void save({ ...preferences, language: language as Preferences["language"] }),
    ),
  );
}

/** Shows the screen the connection's state calls for. */
async function route(): Promise<void> {
  screen?.dispose();
  screen = null;
  header.querySelector("#sign-out")?.remove();
  try {
    connection = await connectionRestore();
  } catch (e) {
    // The saved project could not be reached or started: let the user choose again.
    connection = null;
    connectScreen(root, connected);
    const error = document.getElementById("connect-error");
    if (error) error.textContent = messageOf(e);
    return;
  }
  if (!connection) {
    connectScreen(root, connected);
  } else if (connection.session.state === "signed_out" || connection.session.state === "ended") {
    authScreen(root, connection, () => void route(), () => void route());
  } else {
    screen = new JobsScreen(root, connection, header, () => void route());
    await screen.show();
  }
}

function connected(view: ConnectionView): void {
  connection = view;
  void route();
}

async function boot(): Promise<void> {
  const preferences = await preferencesGet();
  applyTheme(preferences);
  applyLanguage(preferences);
  window.matchMedia?.("(prefers-color-scheme: dark)").addEventListener("change", async () => applyTheme(await preferencesGet()));
  await listen<AppEvent>(APP_EVENT, (event) => screen?.onEvent(event.payload));
  await renderHeader(preferences);
  await route();
}

boot().catch((e) => {
  mount(root, h("p", { class: "error", role: "alert" }, messageOf(e)));
});
