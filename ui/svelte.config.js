import { vitePreprocess } from "@sveltejs/vite-plugin-svelte";

// TypeScript in components (`<script lang="ts">`).
export default { preprocess: vitePreprocess() };
