/**
 * Admission policy plugins through the public API (SPEC §10): real modules in worker threads,
 * real `POST /v1/tasks`, `GET /v1/plugins` and `/metrics`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, simPool, startHarness, task, TEST_KEYS, KEYS, type Harness } from '../support/harness.js';
import { DECIDE, writeFixture } from '../plugins/wat-fixtures.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPlugin } from '../../src/plugins/plugin-build.js';

const pool = () => simPool('p0', 'llamacpp');
const auth = { keys: TEST_KEYS };

describe('misbehaving plugins fall back and are quarantined; admission keeps answering', () => {
  let h: Harness;
  beforeAll(async () => {
    const spin = await writeFixture('spin', { decide: DECIDE.infiniteLoop });
    const trap = await writeFixture('trap', { decide: DECIDE.trap });
    h = await startHarness({
      auth,
      pools: [pool()],
      plugins: [
        { id: 'spin', path: spin, hooks: ['admission'], budget_ms: 1, quarantine_after: 2 },
        { id: 'trap', path: trap, hooks: ['admission'], budget_ms: 200, quarantine_after: 2 },
      ],
    });
  });
  afterAll(async () => h?.close());

  it('an infinite loop and a trap cost their budget only: submissions are accepted by the built-in policy', async () => {
    // Other requests are answered while the first submission's plugin call is running.
    const [submitted, listed] = await Promise.all([
      call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('p0') }),
      call(h.url, 'GET', '/v1/plugins', { key: KEYS.ops }),
    ]);
    expect(submitted.status).toBe(202);
    expect(listed.status).toBe(200);
    const fallbacks = () => h.logs.lines.filter((l) => l.includes('"event":"plugin.fallback"'));
    expect(fallbacks().map((l) => (JSON.parse(l) as { reason: string }).reason)).toEqual(['timeout', 'trap']);

    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('p0') })).status).toBe(202);
    const list = await call(h.url, 'GET', '/v1/plugins', { key: KEYS.ops });
    expect(list.json).toMatchObject({
      plugins: [
        {
          id: 'spin',
          version: '1.0.0',
          abi: 1,
          hooks: ['admission'],
          state: 'quarantined',
          counters: { timeouts: 2 },
        },
        { id: 'trap', state: 'quarantined', counters: { traps: 2, calls: 2 } },
      ],
    });
    expect(h.logs.lines.filter((l) => l.includes('"event":"plugin.quarantined"'))).toHaveLength(2);

    // Quarantined plugins are skipped: no call, no fallback, the submission is accepted.
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('p0') })).status).toBe(202);
    expect(fallbacks()).toHaveLength(4);
    const scrape = (await call(h.url, 'GET', '/metrics')).text;
    expect(scrape).toContain('plugin_quarantined{plugin="spin"} 1');
    expect(scrape).toContain('plugin_fallbacks_total{plugin="trap",reason="trap"} 2');
    expect(scrape).toContain('plugin_calls_total{plugin="spin",hook="admission",result="skipped"} 1');
  });

  it('GET /v1/plugins needs the control scope', async () => {
    expect((await call(h.url, 'GET', '/v1/plugins')).status).toBe(401);
    expect((await call(h.url, 'GET', '/v1/plugins', { key: KEYS.alice })).status).toBe(403);
  });
});

describe('decisions reach the client', () => {
  let h: Harness;
  beforeAll(async () => {
    const refuse = await writeFixture('gate', {
      decision:
        '{"decision":"refuse","code":"ADMISSION_REJECT","message":"tenant over its cap","retry_after_ms":5000}',
    });
    h = await startHarness({
      auth,
      pools: [pool()],
      plugins: [{ id: 'gate', path: refuse, hooks: ['admission'], budget_ms: 200 }],
    });
  });
  afterAll(async () => h?.close());

  it('a refusal is the typed error envelope, logged with plugin id, version, decision and latency', async () => {
    const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('p0') });
    expect(r.status).toBe(429);
    expect(r.json).toMatchObject({
      code: 'ADMISSION_REJECT',
      message: "plugin 'gate': tenant over its cap",
      retriable: true,
      retry_after_ms: 5000,
    });
    const line = h.logs.lines.find((l) => l.includes('"event":"plugin.decision"'));
    expect(JSON.parse(line!)).toMatchObject({
      plugin: 'gate',
      plugin_version: '1.0.0',
      decision: 'refuse',
      tenant_id: 'alice',
    });
    expect(typeof (JSON.parse(line!) as { latency_ms: unknown }).latency_ms).toBe('number');
    // The refusal undid what admission had charged: nothing is queued.
    expect(h.running.orchestrator.pools[0]!.queue.size).toBe(0);
  });
});

describe('an adjusting plugin', () => {
  let h: Harness;
  beforeAll(async () => {
    const adjust = await writeFixture('demote', { decision: '{"decision":"adjust","priority":"batch"}' });
    h = await startHarness({
      auth,
      pools: [pool()],
      plugins: [{ id: 'demote', path: adjust, hooks: ['admission'], budget_ms: 200 }],
    });
  });
  afterAll(async () => h?.close());

  it('an identical resubmission while the plugin decides gets the original acceptance; one task is queued', async () => {
    const body = task('p0', { max_tokens: 2000 });
    const [a, b] = await Promise.all([
      call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body }),
      call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body }),
    ]);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect((a.json as { task_id: string }).task_id).toBe(body.task_id);
    expect((b.json as { task_id: string }).task_id).toBe(body.task_id);
    const scrape = (await call(h.url, 'GET', '/metrics')).text;
    const enqueued = [...scrape.matchAll(/^tasks_enqueued_total\{[^}]*\} (\d+)$/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
    expect(enqueued).toBe(1);
    expect((await call(h.url, 'POST', `/v1/tasks/${body.task_id}/cancel`, { key: KEYS.alice })).status).toBe(
      204,
    );
  });

  it('changes the priority the task is queued with', async () => {
    const r = await call(h.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task('p0', { priority: 'interactive' }),
    });
    expect(r.status).toBe(202);
    const scrape = (await call(h.url, 'GET', '/metrics')).text;
    expect(scrape).toMatch(/tasks_enqueued_total\{[^}]*priority="batch"[^}]*\} 2/);
    expect(scrape).not.toMatch(/tasks_enqueued_total\{[^}]*priority="interactive"[^}]*\}/);
  });
});

describe('the example tenant admission policy (sdk/examples/tenant-admission)', () => {
  let h: Harness;
  beforeAll(async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'llorch-example-')), 'tenant.wasm');
    const built = await buildPlugin('sdk/examples/tenant-admission', { out });
    // Business hours 9-17 at a UTC offset that puts "now" (the orchestrator's clock, passed as
    // now_ms) at local noon: hours of margin either side, whenever the test runs.
    let offsetHours = (12 - new Date().getUTCHours() + 24) % 24;
    if (offsetHours > 12) offsetHours -= 24;
    h = await startHarness({
      auth,
      pools: [pool()],
      plugins: [
        {
          id: 'tenant-admission',
          path: built.path,
          hooks: ['admission'],
          budget_ms: 200,
          params: {
            tokens_per_minute: { alice: 30 },
            business_hours: { start_hour: 9, end_hour: 17, utc_offset_minutes: offsetHours * 60 },
          },
        },
      ],
    });
  });
  afterAll(async () => h?.close());

  it('raises batch work to interactive in business hours', async () => {
    const r = await call(h.url, 'POST', '/v1/tasks', {
      key: KEYS.bob,
      body: task('p0', { priority: 'batch' }),
    });
    expect(r.status).toBe(202);
    const scrape = (await call(h.url, 'GET', '/metrics')).text;
    expect(scrape).toMatch(/tasks_enqueued_total\{[^}]*priority="interactive"[^}]*\} 1/);
    const line = h.logs.lines.find((l) => l.includes('"event":"plugin.decision"'));
    expect(JSON.parse(line!)).toMatchObject({
      plugin: 'tenant-admission',
      plugin_version: '1.0.0',
      decision: 'adjust',
      priority: 'interactive',
      tenant_id: 'bob',
    });
  });

  it('refuses a tenant over its tokens-per-minute cap with ADMISSION_REJECT', async () => {
    const body = () => task('p0', { prompt: 'hi', max_tokens: 16 });
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: body() })).status).toBe(202);
    const refused = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: body() });
    expect(refused.status).toBe(429);
    expect(refused.json).toMatchObject({ code: 'ADMISSION_REJECT', retriable: true, retry_after_ms: 60000 });
    expect((refused.json as { message: string }).message).toMatch(
      /^plugin 'tenant-admission': tenant 'alice' is over its cap of 30 tokens per minute \(\d+ used, \d+ asked\)$/,
    );
    // Another tenant is not capped.
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.bob, body: body() })).status).toBe(202);
    const listed = await call(h.url, 'GET', '/v1/plugins', { key: KEYS.ops });
    expect(listed.json).toMatchObject({
      plugins: [{ id: 'tenant-admission', state: 'active', counters: { fallbacks: 0 } }],
    });
  });
});

describe('load-time refusals stop the start with their reason', () => {
  it('a module without memory maximum', async () => {
    const path = await writeFixture('nomax', { memory: '1' });
    await expect(
      startHarness({ auth, pools: [pool()], plugins: [{ id: 'nomax', path, hooks: ['admission'] }] }),
    ).rejects.toThrow(/plugins\[0\] 'nomax': the module's memory declares no maximum/);
  });

  it('a configuration that is not the schema is refused with its path', async () => {
    const path = await writeFixture('x', {});
    await expect(
      startHarness({
        auth,
        pools: [pool()],
        plugins: [{ id: 'x', path, hooks: ['admission'], budget_ms: 0 } as never],
      }),
    ).rejects.toThrow(/plugins\/0\/budget_ms|plugins\[0\]\.budget_ms|budget_ms/);
  });
});
