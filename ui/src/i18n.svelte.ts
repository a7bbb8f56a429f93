// UI text in English and Japanese. Every key exists in both, and every key the code
// uses exists (unit tests check). The language is reactive state: text rendered with
// `t` follows a change of language at once.

import en from "./locales/en.json";
import jaTexts from "./locales/ja.json";

export type Lang = "en" | "ja";

// The texts live in locales/*.json, which the desktop app's Rust side reads too (its
// desktop notifications), so each text is written once.
export type Key = keyof typeof en;

const ja: Record<Key, string> = jaTexts;

export const dictionaries: Record<Lang, Record<Key, string>> = { en, ja };

let current = $state<Lang>("en");

/** The language to use for a preference ("system" follows the webview's language). */
export function resolveLang(preference: string, navigatorLanguage: string): Lang {
  if (preference === "en" || preference === "ja") return preference;
  return navigatorLanguage.toLowerCase().startsWith("ja") ? "ja" : "en";
}

/** Whether `tag` is a language tag Intl accepts. WebKit reports the POSIX locale of a
 *  session started with LANG=C as "C", which every Intl constructor refuses. */
export function validTag(tag: string): boolean {
  try {
    Intl.getCanonicalLocales(tag);
    return true;
  } catch {
    return false;
  }
}

/** Gives the page a language Intl accepts when the system's is not one: libraries
 *  that format with `navigator.language` (the chart's) would otherwise throw. */
export function mendNavigatorLanguage(): void {
  if (validTag(navigator.language)) return;
  Object.defineProperty(navigator, "language", { value: "en-US", configurable: true });
}

export function setLang(lang: Lang): void {
  current = lang;
}

export function lang(): Lang {
  return current;
}

/** The text for `key`, with `{name}` placeholders filled from `vars`. */
export function t(key: Key, vars: Record<string, string | number> = {}): string {
  const text = dictionaries[current][key] ?? en[key];
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in vars ? String(vars[name]) : whole,
  );
}
