import { describe, expect, it } from "vitest";
import { dictionaries, resolveLang, setLang, t } from "../src/i18n";

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
