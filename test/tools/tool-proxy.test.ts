/**
 * The tool proxy's policy (SPEC §10) against a real loopback upstream: domain lists, IP literals,
 * addresses checked after DNS resolution, redirects re-checked, MIME and size bounds, the time
 * bound, the rate bound, redaction of what is returned, the audit line and the metrics of a call.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { OrchMetrics } from '../../src/metrics/metrics.js';
import type { Resolver } from '../../src/tools/guarded-request.js';
import { ToolProxy } from '../../src/tools/tool-proxy.js';
import type { RawToolsConfig } from '../../src/tools/tools-config.js';
import { createLogger } from '../../src/util/logger.js';
import { simPool } from '../support/harness.js';
import { BIG_BYTES, ENGINE_KEY, SECRET_TEXT, startUpstream, type Upstream } from './upstream.js';

let up: Upstream;
beforeAll(async () => {
  up = await startUpstream();
});
afterAll(() => up.close());

/** Loopback is reachable only because the test policy says so. */
const LOOPBACK: RawToolsConfig = { enabled: true, allow_private: true };

function proxy(tools: RawToolsConfig, now?: () => number, resolve?: Resolver) {
  const { config } = validateConfig({
    profile: 'dev',
    pools: [simPool('p', 'vllm', { launch: { worker: 'sim', api_key: ENGINE_KEY } })],
    tools: { redact_patterns: ['tok-[a-z0-9]{4}-SECRET-\\d+'], ...tools },
  });
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n'))
        if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const metrics = new OrchMetrics({ processMetrics: false });
  const logger = createLogger({ level: 'info', destination });
  const p = new ToolProxy({
    config,
    metrics,
    logger,
    ...(now ? { now } : {}),
    ...(resolve ? { resolve } : {}),
  });
  return { p, lines, metrics, audit: () => lines.filter((l) => l['event'] === 'tool.call') };
}

async function refusal(p: Promise<unknown>): Promise<OrchError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OrchError);
  return err as OrchError;
}

const fetchOf = (t: ReturnType<typeof proxy>, body: unknown, tenant = 'alice') =>
  t.p.fetch(tenant, body, 'cid-1');

describe('fetch: what is allowed comes back, redacted', () => {
  it('returns status, allow-listed headers and the text body', async () => {
    const t = proxy(LOOPBACK);
    const r = await fetchOf(t, { url: `${up.base}/page`, headers: { Accept: 'text/html' } });
    expect(r).toMatchObject({ status: 200, content_type: 'text/html', encoding: 'utf8', truncated: false });
    expect(r.headers['etag']).toBe('"v1"');
    expect(r.headers['set-cookie']).toBeUndefined();
    expect(r.bytes).toBeGreaterThan(0);
    expect(up.seen.at(-1)?.headers['accept']).toBe('text/html');
  });

  it('redacts e-mail addresses, configured patterns, default secret shapes and configured keys', async () => {
    const t = proxy(LOOPBACK);
    const r = await fetchOf(t, { url: `${up.base}/page` });
    expect(r.body).toContain('Contact [redacted] about [redacted]');
    for (const leaked of ['alice.smith@example.org', SECRET_TEXT, 'sk-abcdefghijklmnop1234', ENGINE_KEY])
      expect(r.body).not.toContain(leaked);
    const json = await fetchOf(t, { url: `${up.base}/json` });
    expect(JSON.parse(json.body)).toEqual({ owner: '[redacted]', n: 1 });
  });

  it('keeps e-mail addresses when redact_emails is off', async () => {
    const r = await fetchOf(proxy({ ...LOOPBACK, redact_emails: false }), { url: `${up.base}/page` });
    expect(r.body).toContain('alice.smith@example.org');
    expect(r.body).not.toContain(SECRET_TEXT);
  });

  it('answers an upstream error status as a result, and HEAD with no body', async () => {
    const t = proxy(LOOPBACK);
    expect(await fetchOf(t, { url: `${up.base}/missing` })).toMatchObject({
      status: 404,
      body: 'no such page',
    });
    expect(await fetchOf(t, { url: `${up.base}/page`, method: 'HEAD' })).toMatchObject({
      status: 200,
      body: '',
      bytes: 0,
    });
    expect(up.seen.at(-1)?.line).toBe('HEAD /page');
  });
});

describe('fetch: domain lists and addresses', () => {
  it('refuses a host on the deny list (exact entry) without contacting it', async () => {
    const t = proxy({ ...LOOPBACK, deny_domains: ['localhost'] });
    const before = up.seen.length;
    const e = await refusal(fetchOf(t, { url: `${up.base}/page` }));
    expect([e.httpStatus, e.code]).toEqual([403, 'FORBIDDEN']);
    expect(e.message).toContain("tools.deny_domains entry 'localhost'");
    expect(up.seen.length).toBe(before);
  });

  it('matches suffix entries below the domain only, and allow lists exclude the rest', async () => {
    const suffix = proxy({ ...LOOPBACK, deny_domains: ['.localhost'] });
    const e = await refusal(fetchOf(suffix, { url: `http://api.localhost:${up.port}/page` }));
    expect(e.message).toContain("entry '.localhost'");
    // The apex is not below itself.
    expect((await fetchOf(suffix, { url: `${up.base}/page` })).status).toBe(200);
    const allow = proxy({ ...LOOPBACK, allow_domains: ['.example.com'] });
    const notListed = await refusal(fetchOf(allow, { url: `${up.base}/page` }));
    expect([notListed.httpStatus, notListed.message]).toEqual([
      403,
      "host 'localhost' is not in tools.allow_domains",
    ]);
    expect(
      (await fetchOf(proxy({ ...LOOPBACK, allow_domains: ['localhost'] }), { url: `${up.base}/page` }))
        .status,
    ).toBe(200);
  });

  it('refuses IP literals unless allowed, and then still checks the address', async () => {
    const url = `http://127.0.0.1:${up.port}/page`;
    const literal = await refusal(fetchOf(proxy(LOOPBACK), { url }));
    expect([literal.httpStatus, literal.message]).toEqual([
      403,
      "host '127.0.0.1' is an IP address literal; tools.allow_ip_literals would allow it",
    ]);
    // The WHATWG parser turns other spellings into the dotted form first.
    expect(
      (await refusal(fetchOf(proxy(LOOPBACK), { url: `http://2130706433:${up.port}/` }))).httpStatus,
    ).toBe(403);
    const loopback = await refusal(fetchOf(proxy({ enabled: true, allow_ip_literals: true }), { url }));
    expect(loopback.message).toContain('a loopback address');
    expect((await fetchOf(proxy({ ...LOOPBACK, allow_ip_literals: true }), { url })).status).toBe(200);
  });

  it('refuses a name that resolves to a loopback address unless allowed by flag or range', async () => {
    const e = await refusal(fetchOf(proxy({ enabled: true }), { url: `${up.base}/page` }));
    expect([e.httpStatus, e.code]).toEqual([403, 'FORBIDDEN']);
    expect(e.message).toMatch(/^host 'localhost' resolves to (127\.0\.0\.1|::1), a loopback address/);
    const cidrs = proxy({ enabled: true, allow_cidrs: ['127.0.0.0/8', '::1/128'] });
    expect((await fetchOf(cidrs, { url: `${up.base}/page` })).status).toBe(200);
  });

  it('connects to the address it checked: the name is resolved once per hop, never again by the socket', async () => {
    // A name only this resolver knows: a connection that asked DNS itself would not find it.
    const asked: string[] = [];
    const resolve: Resolver = async (host) => {
      asked.push(host);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const t = proxy({ enabled: true, allow_cidrs: ['127.0.0.0/8'] }, undefined, resolve);
    const r = await fetchOf(t, { url: `http://rebind.invalid:${up.port}/page` });
    expect(r.status).toBe(200);
    expect(asked).toEqual(['rebind.invalid']);
    expect(up.seen.at(-1)?.headers['host']).toBe(`rebind.invalid:${up.port}`);
  });

  it('refuses a name when any of its addresses is not public', async () => {
    const resolve: Resolver = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '::ffff:10.0.0.8', family: 6 },
    ];
    const e = await refusal(
      fetchOf(proxy({ enabled: true }, undefined, resolve), { url: 'http://mixed.invalid/' }),
    );
    expect(e.message).toBe(
      "host 'mixed.invalid' resolves to ::ffff:10.0.0.8, a private address; tools.allow_private or tools.allow_cidrs would allow it",
    );
  });

  it('re-checks every redirect target: a denied host, a name not allowed, an IP literal', async () => {
    const t = proxy({ ...LOOPBACK, allow_domains: ['localhost'], deny_domains: ['evil.example'] });
    const hop = (to: string) => ({ url: `${up.base}/redirect?to=${encodeURIComponent(to)}` });
    expect(await fetchOf(t, hop('/page'))).toMatchObject({ status: 200, redirects: 1 });
    const denied = await refusal(fetchOf(t, hop('http://evil.example/')));
    expect([denied.httpStatus, denied.message]).toEqual([
      403,
      "host 'evil.example' is denied by tools.deny_domains entry 'evil.example'",
    ]);
    expect((await refusal(fetchOf(t, hop(`http://other.localhost:${up.port}/page`)))).message).toContain(
      'not in tools.allow_domains',
    );
    expect((await refusal(fetchOf(t, hop(`http://127.0.0.1:${up.port}/page`)))).message).toContain(
      'IP address literal',
    );
    // A redirect to a name resolving to loopback, once loopback is no longer allowed for it.
    const strict = proxy({
      enabled: true,
      allow_cidrs: ['127.0.0.1/32', '::1/128'],
      allow_ip_literals: true,
    });
    const start = `http://127.0.0.1:${up.port}/redirect?to=${encodeURIComponent(`http://[::ffff:7f00:2]:${up.port}/page`)}`;
    expect((await refusal(fetchOf(strict, { url: start }))).message).toContain("'::ffff:7f00:2' resolves to");
  });

  it('bounds the number of redirects', async () => {
    const t = proxy({ ...LOOPBACK, max_redirects: 0 });
    const e = await refusal(fetchOf(t, { url: `${up.base}/redirect?to=/page` }));
    expect([e.httpStatus, e.code]).toEqual([502, 'UPSTREAM_FAILED']);
  });
});

describe('fetch: MIME, size and time bounds', () => {
  it('refuses a media type outside the allow-list; an allowed binary type comes back as base64', async () => {
    const e = await refusal(fetchOf(proxy(LOOPBACK), { url: `${up.base}/image` }));
    expect([e.httpStatus, e.message]).toEqual([
      403,
      "content type 'image/png' is not in tools.allowed_mime_types",
    ]);
    const r = await fetchOf(proxy({ ...LOOPBACK, allowed_mime_types: ['image/*'] }), {
      url: `${up.base}/image`,
    });
    expect(r).toMatchObject({ encoding: 'base64', content_type: 'image/png', bytes: 4 });
    expect(Buffer.from(r.body, 'base64')).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  });

  it('cuts a body at max_response_bytes and says so', async () => {
    const whole = await fetchOf(proxy(LOOPBACK), { url: `${up.base}/big` });
    expect([whole.bytes, whole.truncated]).toEqual([BIG_BYTES, false]);
    const cut = await fetchOf(proxy({ ...LOOPBACK, max_response_bytes: 1000 }), { url: `${up.base}/big` });
    expect([cut.bytes, cut.truncated, cut.body.length]).toEqual([1000, true, 1000]);
  });

  it('ends a call the upstream never answers with UPSTREAM_TIMEOUT', async () => {
    const e = await refusal(fetchOf(proxy({ ...LOOPBACK, timeout_ms: 1_000 }), { url: `${up.base}/hang` }));
    expect([e.httpStatus, e.code, e.retriable]).toEqual([504, 'UPSTREAM_TIMEOUT', true]);
  });

  it('answers an unreachable upstream with UPSTREAM_FAILED', async () => {
    const e = await refusal(fetchOf(proxy(LOOPBACK), { url: 'http://localhost:1/' }));
    expect([e.httpStatus, e.code]).toEqual([502, 'UPSTREAM_FAILED']);
  });
});

describe('fetch: requests refused as invalid, disabled tenants, rate bound', () => {
  it('refuses bad URLs, methods, fields and headers not on the forward list', async () => {
    const t = proxy(LOOPBACK);
    for (const [body, field] of [
      [{ url: 'ftp://localhost/x' }, 'url'],
      [{ url: 'not a url' }, 'url'],
      [{ url: `http://u:p@localhost:${up.port}/` }, 'url'],
      [{ url: `${up.base}/page`, method: 'POST' }, 'method'],
      [{ url: `${up.base}/page`, headers: { Cookie: 'a=b' } }, 'headers.Cookie'],
      [{ url: `${up.base}/page`, body: 'x' }, 'body'],
    ] as const) {
      const e = await refusal(fetchOf(t, body));
      expect([e.httpStatus, e.code], JSON.stringify(body)).toEqual([400, 'INVALID_PARAMS']);
      expect(e.message.startsWith(field), e.message).toBe(true);
    }
  });

  it('is off unless enabled, per tenant', async () => {
    const t = proxy({ ...LOOPBACK, enabled: false, tenants: [{ id: 'bob', enabled: true }] });
    const e = await refusal(fetchOf(t, { url: `${up.base}/page` }, 'alice'));
    expect([e.httpStatus, e.message]).toEqual([
      403,
      "the tool proxy is disabled for tenant 'alice' (tools.enabled)",
    ]);
    expect((await fetchOf(t, { url: `${up.base}/page` }, 'bob')).status).toBe(200);
  });

  it('refuses calls past the tenant rate with 429 and a retry hint; other tenants are unaffected', async () => {
    let now = 0;
    const t = proxy({ ...LOOPBACK, rate_per_s: 1, burst: 2, tenants: [{ id: 'bob', burst: 5 }] }, () => now);
    await fetchOf(t, { url: `${up.base}/page` });
    await fetchOf(t, { url: `${up.base}/page` });
    const e = await refusal(fetchOf(t, { url: `${up.base}/page` }));
    expect([e.httpStatus, e.code, e.retryAfterMs, e.policyLabel]).toEqual([
      429,
      'ADMISSION_REJECT',
      1000,
      'reject',
    ]);
    expect((await fetchOf(t, { url: `${up.base}/page` }, 'bob')).status).toBe(200);
    now = 1_000;
    expect((await fetchOf(t, { url: `${up.base}/page` })).status).toBe(200);
  });
});

describe('search', () => {
  const provider = (tools: RawToolsConfig = {}) =>
    proxy({ enabled: true, search: { provider: 'searxng', url: `${up.base}/` }, ...tools });

  it('queries a SearxNG-style provider and returns title, url and snippet, redacted', async () => {
    const r = await provider().p.search('alice', { query: 'llama orch', max_results: 5 }, 'cid-2');
    expect(up.seen.at(-1)?.line).toBe('GET /search?q=llama+orch&format=json');
    expect(r.query).toBe('llama orch');
    expect(r.results.map((x) => x.url)).toEqual([
      'https://docs.example.com/a',
      'https://blocked.example.net/b',
      'https://docs.example.com/c',
    ]);
    expect(r.results[0]).toEqual({
      title: 'Result A',
      url: 'https://docs.example.com/a',
      snippet: 'Write to [redacted] ([redacted])',
    });
  });

  it('leaves out results the tenant may not fetch, and honours max_results', async () => {
    const t = provider({ deny_domains: ['.example.net'] });
    const r = await t.p.search('alice', { query: 'q', max_results: 1 }, 'c');
    expect(r.results.map((x) => x.title)).toEqual(['Result A']);
    const all = await t.p.search('alice', { query: 'q' }, 'c');
    expect(all.results.map((x) => x.title)).toEqual(['Result A', 'Result C']);
  });

  it('fills a URL template', async () => {
    const t = proxy({
      enabled: true,
      search: { provider: 'template', url: `${up.base}/search?q={query}&n={max_results}` },
    });
    await t.p.search('alice', { query: 'a&b' }, 'c');
    expect(up.seen.at(-1)?.line).toBe('GET /search?q=a%26b&n=10');
  });

  it('refuses without a provider, and bad queries', async () => {
    const none = await refusal(proxy({ enabled: true }).p.search('alice', { query: 'q' }, 'c'));
    expect([none.httpStatus, none.message]).toEqual([403, 'no search provider is configured (tools.search)']);
    const t = provider();
    for (const body of [{}, { query: '' }, { query: 'q', max_results: 0 }, { query: 'q', extra: 1 }])
      expect((await refusal(t.p.search('alice', body, 'c'))).httpStatus).toBe(400);
  });
});

describe('audit and metrics', () => {
  it('logs one line per call with tenant, redacted URL, decision, status, bytes and latency', async () => {
    const t = proxy({ ...LOOPBACK, deny_domains: ['evil.example'] });
    await fetchOf(t, { url: `${up.base}/page?token=${SECRET_TEXT}` });
    await refusal(fetchOf(t, { url: 'http://evil.example/x' }));
    await refusal(fetchOf(t, { url: 'ftp://x/' }));
    const [ok, denied, bad] = t.audit();
    expect(t.audit()).toHaveLength(3);
    expect(ok).toMatchObject({
      tool: 'fetch',
      tenant: 'alice',
      decision: 'allowed',
      status: 200,
      correlation_id: 'cid-1',
    });
    expect(ok?.['url']).toBe(`${up.base}/page?token=[redacted]`);
    expect(ok?.['bytes']).toBeGreaterThan(0);
    expect(typeof ok?.['latency_ms']).toBe('number');
    expect(denied).toMatchObject({ decision: 'denied', url: 'http://evil.example/x', bytes: 0 });
    expect(denied?.['reason']).toContain('tools.deny_domains');
    expect(bad).toMatchObject({ decision: 'invalid' });
    expect(JSON.stringify(t.lines)).not.toContain(SECRET_TEXT);
  });

  it('counts calls by tool, tenant and decision, and observes their latency', async () => {
    const t = proxy({ ...LOOPBACK, deny_domains: ['evil.example'] });
    await fetchOf(t, { url: `${up.base}/page` });
    await refusal(fetchOf(t, { url: 'http://evil.example/' }));
    await refusal(fetchOf(t, { url: 'http://evil.example/' }));
    const text = await t.metrics.render();
    expect(text).toContain('tool_calls_total{tool="fetch",tenant="alice",decision="allowed"} 1');
    expect(text).toContain('tool_calls_total{tool="fetch",tenant="alice",decision="denied"} 2');
    expect(text).toMatch(/tool_latency_ms_count\{tool="fetch",decision="denied"\} 2/);
  });
});
