// Run with: npm ci && npm run dev   (or npm run build; the browser tests serve dist/), after
// packing the SDK (README.md). The SDK is the `surechat` package installed from that tarball, like
// any other dependency: no alias into the repository.
import { defineConfig } from 'vite';

export default defineConfig({
  // Relative asset paths, so dist/ works from any directory or static server.
  base: './',
  // JSX without a plugin: esbuild's automatic runtime.
  esbuild: { jsx: 'automatic' },
  build: { outDir: 'dist', emptyOutDir: true },
});
