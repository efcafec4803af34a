/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// React without @vitejs/plugin-react: esbuild compiles TSX with the automatic JSX runtime; the page
// needs no fast refresh. `npm run dev` proxies the API to FRAMEPRESS_URL (default 127.0.0.1:8080).
export default defineConfig({
  esbuild: { jsx: "automatic" },
  build: { outDir: "dist" },
  server: {
    proxy: {
      "/api": { target: process.env.FRAMEPRESS_URL ?? "http://127.0.0.1:8080", changeOrigin: true },
    },
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test-setup.ts"],
  },
});
