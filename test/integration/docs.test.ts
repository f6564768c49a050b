/** The API reference served by the orchestrator: both OpenAPI documents and a browsable page. */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { simPool, startHarness, TEST_KEYS, KEYS, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ auth: { keys: TEST_KEYS }, pools: [simPool('docs', 'vllm')] });
});
afterAll(() => h.close());

describe('API reference (/openapi, /docs)', () => {
  it('serves both OpenAPI documents as written, without credentials', async () => {
    for (const plane of ['data', 'control']) {
      const res = await fetch(`${h.url}/openapi/${plane}.yaml`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/yaml/);
      const text = await res.text();
      expect(text).toBe(await readFile(`contracts/openapi/${plane}.yaml`, 'utf8'));
      expect((parse(text) as { openapi: string }).openapi).toBe('3.1.0');
    }
    const caps = (await (
      await fetch(`${h.url}/v1/capabilities`, { headers: { authorization: `Bearer ${KEYS.ops}` } })
    ).json()) as { api_version: string };
    const data = parse(await (await fetch(`${h.url}/openapi/data.yaml`)).text()) as {
      info: { version: string };
    };
    expect(caps.api_version).toBe(data.info.version);
  });

  it('renders a reference page whose every asset is served locally', async () => {
    const res = await fetch(`${h.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain("url: '/openapi/data.yaml'");
    expect(html).toContain("url: '/openapi/control.yaml'");
    const assets = [...html.matchAll(/(?:src|href)="(\/docs\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThanOrEqual(3);
    for (const a of assets) {
      const r = await fetch(`${h.url}${a}`);
      expect(r.status, a).toBe(200);
      expect((await r.arrayBuffer()).byteLength, a).toBeGreaterThan(100);
    }
    const bundle = await fetch(`${h.url}/docs/swagger-ui-bundle.js`);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
  });

  it('refuses unknown documents and assets with the envelope', async () => {
    for (const path of ['/openapi/secrets.yaml', '/docs/..%2Fpackage.json', '/docs/index.html']) {
      const r = await fetch(`${h.url}${path}`);
      expect(r.status, path).toBe(404);
      expect(((await r.json()) as { code: string }).code).toBe('NOT_FOUND');
    }
  });
});
