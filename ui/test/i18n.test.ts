import { describe, expect, it } from "vitest";
import { dictionaries, mendNavigatorLanguage, resolveLang, setLang, t, validTag } from "../src/i18n.svelte";

describe("UI text", () => {
  it("has every English key in Japanese, with the same placeholders", () => {
    const placeholders = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort();
    for (const [key, text] of Object.entries(dictionaries.en)) {
      const ja = dictionaries.ja[key as keyof typeof dictionaries.en];
      expect(ja, key).toBeTruthy();
      expect(placeholders(ja), key).toEqual(placeholders(text));
    }
  });

  it("fills placeholders and follows the chosen language", () => {
    setLang("ja");
    expect(t("enqueue.done", { id: 7 })).toBe("ジョブ #7 を追加しました");
    setLang("en");
    expect(t("enqueue.done", { id: 7 })).toBe("Enqueued job #7");
    expect(resolveLang("system", "ja-JP")).toBe("ja");
    expect(resolveLang("system", "de-DE")).toBe("en");
    expect(resolveLang("en", "ja-JP")).toBe("en");
  });
});

describe("every text the code asks for", () => {
  it("exists in both languages", () => {
    const sources = import.meta.glob<string>("../src/**/*.{ts,svelte}", {
      query: "?raw",
      import: "default",
      eager: true,
    });
    const used = new Set<string>();
    for (const source of Object.values(sources)) {
      for (const match of source.matchAll(/"((?:[a-z]+)\.[A-Za-z_]+)"/g)) {
        if (/^(app|connect|auth|jobs|status|col|detail|action|enqueue|form|prefs|about|error|outcome|notify)\./.test(match[1])) {
          used.add(match[1]);
        }
      }
      // Keys built from a value: every value of the type must have its text.
      for (const match of source.matchAll(/`(status|outcome)\.\$\{/g)) used.add(`${match[1]}.*`);
    }
    expect(used.size).toBeGreaterThan(50);
    for (const key of used) {
      if (key.endsWith(".*")) {
        const prefix = key.slice(0, -1);
        expect(Object.keys(dictionaries.en).some((k) => k.startsWith(prefix)), key).toBe(true);
        continue;
      }
      expect(dictionaries.en[key as keyof typeof dictionaries.en], `en: ${key}`).toBeTruthy();
      expect(dictionaries.ja[key as keyof typeof dictionaries.ja], `ja: ${key}`).toBeTruthy();
    }
  });
});

describe("the system's language", () => {
  it("a POSIX locale such as C is not a language tag, and the page gets one Intl accepts", () => {
    expect([validTag("C"), validTag("ja-JP"), validTag("en")]).toEqual([false, true, true]);
    Object.defineProperty(navigator, "language", { value: "C", configurable: true });
    try {
      expect(() => new Intl.NumberFormat(navigator.language)).toThrow();
      mendNavigatorLanguage();
      expect(navigator.language).toBe("en-US");
      expect(new Intl.NumberFormat(navigator.language).format(1234)).toBe("1,234");
    } finally {
      delete (navigator as unknown as Record<string, unknown>).language;
    }
  });
});
