/**
 * The operator console (`/ui`), served by the orchestrator itself from the files `npm run build`
 * writes to `dist/ui` (no CDN, works offline). The console is a client of the public API only:
 * its pages are public like `/docs`, and every datum it shows comes from an API call made with
 * the operator's own key. Without a build, `/ui` says how to make one.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { contractsDir } from './openapi.js';

/** Where `vite build ui` writes the console (the repository's `dist/ui`). */
export function uiDir(): string {
  return join(dirname(dirname(contractsDir())), 'dist', 'ui');
}

/**
 * The console keeps an API key in the page: scripts only from this origin, API calls only to it,
 * no framing by other sites. uPlot and Preact set styles through the CSSOM, which CSP allows.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const NOT_BUILT = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>llama-orch console</title></head>
<body>
  <main>
    <h1>The llama-orch console is not built</h1>
    <p>This orchestrator has no console files in <code>dist/ui</code>. Build them with
    <code>npm run build</code> and reload this page.</p>
  </main>
</body>
</html>
`;

export async function registerUiRoutes(app: FastifyInstance, dir: string = uiDir()): Promise<void> {
  if (!existsSync(join(dir, 'index.html'))) {
    const notBuilt = async (_req: unknown, reply: FastifyReply) =>
      reply.code(503).type('text/html; charset=utf-8').header('Cache-Control', 'no-store').send(NOT_BUILT);
    app.get('/ui', notBuilt);
    app.get('/ui/*', notBuilt);
    return;
  }
  await app.register(async (ui) => {
    ui.addHook('onSend', async (_req, reply, payload) => {
      void reply.header('Content-Security-Policy', CSP).header('X-Content-Type-Options', 'nosniff');
      return payload;
    });
    await ui.register(fastifyStatic, {
      root: dir,
      prefix: '/ui/',
      // `/ui/` is index.html, the console; the hashed assets may be cached for good.
      index: ['index.html'],
      decorateReply: false,
      // Its own Cache-Control would override the one set here.
      cacheControl: false,
      setHeaders: (res, path) => {
        res.setHeader(
          'Cache-Control',
          path.endsWith('index.html') ? 'no-cache' : 'public, max-age=31536000, immutable',
        );
      },
    });
    // Relative asset paths resolve under `/ui/`; the browser keeps a `#/view` across the redirect.
    ui.get('/ui', async (_req, reply) => reply.redirect('/ui/', 301));
  });
}
