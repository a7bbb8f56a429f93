// Boots the UI: one state, the app's events queued into it, the components mounted.

import { listen } from "@tauri-apps/api/event";
import { mount } from "svelte";
import { AppState } from "./app.svelte";
import { APP_EVENT, type AppEvent } from "./bindings";
import App from "./components/App.svelte";
import { describe } from "./errors";
import { mendNavigatorLanguage } from "./i18n.svelte";
import { mark } from "./launch";
import "./style.css";

mark("script_ms");
mendNavigatorLanguage();
const app = new AppState();
mount(App, { target: document.body, props: { app } });

async function boot(): Promise<void> {
  window
    .matchMedia?.("(prefers-color-scheme: dark)")
    .addEventListener("change", () => app.systemThemeChanged());
  await app.boot(listen<AppEvent>(APP_EVENT, (event) => app.receive(event.payload)));
}

boot().catch((e) => {
  const alert = document.createElement("p");
  alert.className = "error";
  alert.setAttribute("role", "alert");
  alert.textContent = describe(e);
  document.body.append(alert);
});
