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
