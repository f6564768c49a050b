/**
 * `/ui` without a browser: the built console is served with its CSP and caching, `/ui` leads to
 * it, and an orchestrator without a build says how to make one instead of a bare 404.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { registerUiRoutes } from '../../src/http/routes-ui.js';

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function serve(dir: string): Promise<FastifyInstance> {
  const app = Fastify();
  apps.push(app);
  await registerUiRoutes(app, dir);
  await app.ready();
  return app;
}

describe('/ui', () => {
  it('serves the built console: index without caching, hashed assets cached, a CSP on both', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-ui-'));
    await mkdir(join(dir, 'assets'));
    await writeFile(join(dir, 'index.html'), '<!doctype html><title>llama-orch console</title>');
    await writeFile(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
    const app = await serve(dir);

    const bare = await app.inject({ method: 'GET', url: '/ui' });
    expect([bare.statusCode, bare.headers['location']]).toEqual([301, '/ui/']);
    const page = await app.inject({ method: 'GET', url: '/ui/' });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('llama-orch console');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self'.*connect-src 'self'/);
    const asset = await app.inject({ method: 'GET', url: '/ui/assets/index-abc123.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-type']).toMatch(/javascript/);
    expect(asset.headers['cache-control']).toMatch(/immutable/);
    expect(asset.headers['content-security-policy']).toBeDefined();
    expect((await app.inject({ method: 'GET', url: '/ui/../package.json' })).statusCode).not.toBe(200);
  });

  it('answers 503 with how to build the console when dist/ui is missing', async () => {
    const app = await serve(join(tmpdir(), 'llorch-ui-never-built'));
    for (const url of ['/ui', '/ui/', '/ui/assets/index.js']) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(503);
      expect(r.headers['content-type']).toMatch(/text\/html/);
      expect(r.body).toContain('npm run build');
    }
  });
});
