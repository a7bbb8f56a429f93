import { defineConfig } from "vitest/config";

// The UI is plain TypeScript; Vite bundles it into dist/, which Tauri embeds.
export default defineConfig({
  clearScreen: false,
  build: { outDir: "dist", emptyOutDir: true, target: "safari16" },
  test: { environment: "jsdom", include: ["test/**/*.test.ts"] },
});
