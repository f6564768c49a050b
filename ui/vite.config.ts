/**
 * The operator console's build: `vite build ui` writes `dist/ui`, which the orchestrator serves
 * at `/ui` (src/http/routes-ui.ts). Everything is bundled: the console needs no CDN.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/ui/',
  // Preact's JSX runtime through esbuild: no Babel pipeline is needed for a production build.
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: fileURLToPath(new URL('../dist/ui', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // The console is small; one chunk keeps the CSP simple and loads fast offline.
    chunkSizeWarningLimit: 300,
  },
});
