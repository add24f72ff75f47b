// Run with: npm ci && npm run dev   (or npm run build; the browser tests serve dist/)
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  // Relative asset paths, so dist/ works from any directory or static server.
  base: './',
  // The SDK straight from the repository's web/ (an app would import its copy of it).
  // dedupe: web/react.js lives outside this app, so its 'react' import resolves to this app's.
  resolve: { alias: { surechat: fileURLToPath(new URL('../../web', import.meta.url)) }, dedupe: ['react', 'react-dom'] },
  // JSX without a plugin: esbuild's automatic runtime.
  esbuild: { jsx: 'automatic' },
  build: { outDir: 'dist', emptyOutDir: true },
});
