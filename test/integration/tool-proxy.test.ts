/**
 * The tool proxy through the public interface (SPEC §10): `POST /v1/tools/fetch` and
 * `POST /v1/tools/search` on a real orchestrator, against a loopback upstream the test policy
 * explicitly allows. Answers are checked against the OpenAPI document; refusals are envelopes;
 * every call leaves one audit line and counts in the metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrchClient, OrchHttpError } from '../../src/index.js';
import { call, KEYS, simPool, startHarness, TEST_KEYS, type Harness } from '../support/harness.js';
import { SECRET_TEXT, startUpstream, type Upstream } from '../tools/upstream.js';

let up: Upstream;
let h: Harness;

beforeAll(async () => {
  up = await startUpstream();
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [simPool('sim', 'vllm')],
    tools: {
      enabled: true,
      // The upstream is on loopback: allowed here, and only here.
      allow_private: true,
      deny_domains: ['.blocked.localhost'],
      timeout_ms: 2_000,
      redact_patterns: ['tok-[a-z0-9]{4}-SECRET-\\d+'],
      search: { provider: 'searxng', url: up.base },
      tenants: [{ id: 'bob', burst: 1, rate_per_s: 0.001 }],
    },
  });
}, 60_000);
afterAll(async () => {
  await h?.close();
  await up?.close();
});

const audit = () =>
  h.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['event'] === 'tool.call');

describe('POST /v1/tools/fetch', () => {
  it('fetches an allowed page, redacted, with its correlation id in the audit line', async () => {
    const r = await call(h.url, 'POST', '/v1/tools/fetch', {
      key: KEYS.alice,
      body: { url: `${up.base}/page` },
      headers: { 'x-correlation-id': 'tool-it-1' },
    });
    expect(r.status).toBe(200);
    const body = r.json as { status: number; body: string; content_type: string };
    expect(body.status).toBe(200);
    expect(body.content_type).toBe('text/html');
    expect(body.body).not.toContain('alice.smith@example.org');
    expect(body.body).not.toContain(SECRET_TEXT);
    expect(audit().find((l) => l['correlation_id'] === 'tool-it-1')).toMatchObject({
      tool: 'fetch',
      tenant: 'alice',
      url: `${up.base}/page`,
      decision: 'allowed',
      status: 200,
    });
  });

  it('refuses a redirect to a denied host with a typed envelope', async () => {
    const to = encodeURIComponent(`http://x.blocked.localhost:${up.port}/page`);
    const r = await call(h.url, 'POST', '/v1/tools/fetch', {
      key: KEYS.alice,
      body: { url: `${up.base}/redirect?to=${to}` },
    });
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ code: 'FORBIDDEN', retriable: false });
    expect((r.json as { message: string }).message).toContain(
      "tools.deny_domains entry '.blocked.localhost'",
    );
    expect(r.headers.get('x-correlation-id')).toBeTruthy();
  });

  it('refuses an IP literal, a bad method, a missing key and the wrong scope', async () => {
    const literal = await call(h.url, 'POST', '/v1/tools/fetch', {
      key: KEYS.alice,
      body: { url: `http://127.0.0.1:${up.port}/page` },
    });
    expect([literal.status, (literal.json as { code: string }).code]).toEqual([403, 'FORBIDDEN']);
    const method = await call(h.url, 'POST', '/v1/tools/fetch', {
      key: KEYS.alice,
      body: { url: `${up.base}/page`, method: 'DELETE' },
    });
    expect([method.status, (method.json as { code: string }).code]).toEqual([400, 'INVALID_PARAMS']);
    const anonymous = await call(h.url, 'POST', '/v1/tools/fetch', { body: { url: `${up.base}/page` } });
    expect(anonymous.status).toBe(401);
    const control = await call(h.url, 'POST', '/v1/tools/fetch', {
      key: KEYS.ops,
      body: { url: `${up.base}/page` },
    });
    expect(control.status).toBe(403);
  });

  it('answers 504 for an upstream that never answers', async () => {
    const r = await call(h.url, 'POST', '/v1/tools/fetch', {
      key: KEYS.alice,
      body: { url: `${up.base}/hang` },
    });
    expect([r.status, (r.json as { code: string }).code]).toEqual([504, 'UPSTREAM_TIMEOUT']);
  });

  it("answers 429 with Retry-After once a tenant's rate is spent", async () => {
    const first = await call(h.url, 'POST', '/v1/tools/fetch', {
      key: KEYS.bob,
      body: { url: `${up.base}/page` },
    });
    expect(first.status).toBe(200);
    const second = await call(h.url, 'POST', '/v1/tools/fetch', {
      key: KEYS.bob,
      body: { url: `${up.base}/page` },
    });
    expect(second.status).toBe(429);
    expect(second.json).toMatchObject({ code: 'ADMISSION_REJECT', retriable: true, policy_label: 'reject' });
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(
      audit()
        .filter((l) => l['tenant'] === 'bob')
        .map((l) => l['decision']),
    ).toEqual(['allowed', 'rate_limited']);
  });
});

describe('POST /v1/tools/search and the typed client', () => {
  const client = () => new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice, retry: { maxAttempts: 1 } });

  it('searches through the provider', async () => {
    const r = await client().toolSearch({ query: 'llama', max_results: 2 });
    expect(r.results.map((x) => x.title)).toEqual(['Result A', 'Result B']);
    expect(r.results[0]?.snippet).not.toContain('carol@example.com');
    const checked = await call(h.url, 'POST', '/v1/tools/search', {
      key: KEYS.alice,
      body: { query: 'llama' },
    });
    expect(checked.status).toBe(200);
  });

  it('answers 502 when the provider fails', async () => {
    const err = await client()
      .toolSearch({ query: 'fail' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OrchHttpError);
    expect([(err as OrchHttpError).status, (err as OrchHttpError).code]).toEqual([502, 'UPSTREAM_FAILED']);
  });

  it('typed fetch', async () => {
    const r = await client().toolFetch({ url: `${up.base}/json` });
    expect(r).toMatchObject({ status: 200, encoding: 'utf8', truncated: false });
  });
});

describe('metrics', () => {
  it('exposes tool_calls_total and tool_latency_ms', async () => {
    const text = await (await fetch(`${h.url}/metrics`)).text();
    expect(text).toMatch(/tool_calls_total\{tool="fetch",tenant="alice",decision="allowed"\} \d+/);
    expect(text).toMatch(/tool_calls_total\{tool="fetch",tenant="bob",decision="rate_limited"\} 1/);
    expect(text).toMatch(/tool_calls_total\{tool="search",tenant="alice",decision="upstream_error"\} 1/);
    expect(text).toMatch(/tool_latency_ms_bucket\{le="\+Inf",tool="fetch",decision="timeout"\} 1/);
  });
});
