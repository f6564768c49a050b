/**
 * Admission policy plugins through the public API (SPEC §10): real modules in worker threads,
 * real `POST /v1/tasks`, `GET /v1/plugins` and `/metrics`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  simPool,
  startHarness,
  task,
  TEST_KEYS,
  KEYS,
  until,
  type Harness,
} from '../support/harness.js';
import {
  compileWat,
  DECIDE,
  wat,
  writeFixture,
  type FixtureManifest,
  type WatPlugin,
} from '../plugins/wat-fixtures.js';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPlugin } from '../../src/plugins/plugin-build.js';
import { generateKeyPair, signMinisign } from '../../src/catalog/minisign.js';

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

describe('a refusal without retry_after_ms', () => {
  let h: Harness;
  beforeAll(async () => {
    const refuse = await writeFixture('gate-no-retry', {
      decision: '{"decision":"refuse","code":"ADMISSION_REJECT","message":"closed"}',
    });
    h = await startHarness({
      auth,
      pools: [pool()],
      plugins: [{ id: 'gate-no-retry', path: refuse, hooks: ['admission'], budget_ms: 200 }],
    });
  });
  afterAll(async () => h?.close());

  it('still carries the Retry-After a 429 promises (the host default, 1 s)', async () => {
    // `call` checks the answer against data.yaml, whose 429 requires Retry-After.
    const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('p0') });
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(r.json).toMatchObject({ code: 'ADMISSION_REJECT', retry_after_ms: 1000 });
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

/** Replaces the module at `path` (what an operator deploys before a reload); its sha256. */
async function put(path: string, p: WatPlugin, manifest: FixtureManifest): Promise<string> {
  const bytes = await compileWat(wat(p), manifest);
  await writeFile(path, bytes);
  return createHash('sha256').update(bytes).digest('hex');
}

const decisionLines = (h: Harness) =>
  h.logs.lines
    .filter((l) => l.includes('"event":"plugin.decision"'))
    .map((l) => JSON.parse(l) as { job_id: string; plugin_version: string; weight?: number });

describe('POST /v1/plugins/{id}/reload', () => {
  let h: Harness;
  let dir: string;
  const keys = generateKeyPair('plugins');
  const sign = async (path: string, k = keys) =>
    writeFile(`${path}.minisig`, signMinisign(await readFile(path), k, `file:${path}`));
  const paths = { flaky: '', pinned: '', signed: '' };
  let pinnedSha = '';
  const OPS_P0 = 'ops-p0-control-key';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llorch-reload-'));
    await writeFile(join(dir, 'trusted.pub'), keys.publicKeyText);
    paths.flaky = join(dir, 'flaky.wasm');
    paths.pinned = join(dir, 'pinned.wasm');
    paths.signed = join(dir, 'signed.wasm');
    await put(paths.flaky, { decide: DECIDE.trap }, { id: 'flaky' });
    pinnedSha = await put(paths.pinned, {}, { id: 'pinned' });
    await put(paths.signed, {}, { id: 'signed' });
    for (const p of Object.values(paths)) await sign(p);
    h = await startHarness({
      auth: {
        keys: [
          ...TEST_KEYS,
          {
            id: 'ops-p0',
            tenant: 'ops',
            sha256: createHash('sha256').update(OPS_P0).digest('hex'),
            scopes: ['control'],
            pools: ['p0'],
          },
        ],
      },
      pools: [pool()],
      catalog: { trust_policy: 'strict', trust_roots: [join(dir, 'trusted.pub')] },
      plugins: [
        { id: 'flaky', path: paths.flaky, hooks: ['admission'], budget_ms: 1000, quarantine_after: 1 },
        { id: 'pinned', path: paths.pinned, hooks: ['admission'], sha256: pinnedSha },
        { id: 'signed', path: paths.signed, hooks: ['admission'] },
      ],
    });
  });
  afterAll(async () => {
    await h?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const reload = (id: string, opts: { key?: string; body?: unknown } = {}) =>
    call(h.url, 'POST', `/v1/plugins/${id}/reload`, { key: KEYS.ops, ...opts });
  const view = async (id: string) => {
    const list = (await call(h.url, 'GET', '/v1/plugins', { key: KEYS.ops })).json as {
      plugins: { id: string; version: string; state: string; sha256: string; loaded_at: string }[];
    };
    return list.plugins.find((p) => p.id === id)!;
  };

  it('needs the control scope, but not a pool limit; unknown plugins and bad bodies are refused', async () => {
    expect((await call(h.url, 'POST', '/v1/plugins/signed/reload')).status).toBe(401);
    const data = await reload('signed', { key: KEYS.alice });
    expect(data.status).toBe(403);
    expect(data.json).toMatchObject({ code: 'FORBIDDEN' });
    expect((await reload('signed', { key: OPS_P0 })).status).toBe(200);
    const unknown = await reload('nope');
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ code: 'NOT_FOUND', message: "no plugin 'nope' is configured" });
    const bad = await reload('pinned', { body: { sha256: 'xyz' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 'INVALID_PARAMS' });
  });

  it('a reload lifts a quarantine and shows the new version with a new loaded_at', async () => {
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('p0') })).status).toBe(202);
    const before = await view('flaky');
    expect(before).toMatchObject({ state: 'quarantined', version: '1.0.0' });
    await put(paths.flaky, {}, { id: 'flaky', version: '1.0.1' });
    await sign(paths.flaky);
    const r = await reload('flaky');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      id: 'flaky',
      version: '1.0.1',
      state: 'active',
      counters: { calls: 0, fallbacks: 0, consecutive_failures: 0 },
    });
    const after = await view('flaky');
    expect(after).toMatchObject({ state: 'active', version: '1.0.1' });
    expect(Date.parse(after.loaded_at)).toBeGreaterThanOrEqual(Date.parse(before.loaded_at));
    expect((await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: task('p0') })).status).toBe(202);
    expect((await view('flaky')).state).toBe('active');
    const scrape = (await call(h.url, 'GET', '/metrics')).text;
    expect(scrape).toContain('plugin_quarantined{plugin="flaky"} 0');
  });

  it('a module that differs from the pin is refused 409 naming the pin; a body sha256 moves the pin', async () => {
    const sha = await put(paths.pinned, {}, { id: 'pinned', version: '2.0.0' });
    await sign(paths.pinned);
    const refused = await reload('pinned');
    expect(refused.status).toBe(409);
    expect(refused.json).toMatchObject({ code: 'CONFLICT' });
    expect((refused.json as { message: string }).message).toContain(
      `digest mismatch for 'pinned': the module's sha256 is ${sha}, the configuration pins ${pinnedSha}`,
    );
    expect(await view('pinned')).toMatchObject({ version: '1.0.0', sha256: pinnedSha, state: 'active' });
    const moved = await reload('pinned', { body: { sha256: sha } });
    expect(moved.status).toBe(200);
    expect(moved.json).toMatchObject({ version: '2.0.0', sha256: sha });
    // The pin moved with it: the same module reloads under it.
    expect((await reload('pinned')).status).toBe(200);
    expect(h.logs.lines.some((l) => l.includes('"event":"plugin.reload_refused"'))).toBe(true);
  });

  it('under strict, an unsigned or tampered module is refused 403 UNTRUSTED_ARTIFACT and the old version stays', async () => {
    await put(paths.signed, {}, { id: 'signed', version: '9.0.0' });
    // The old signature no longer matches the new bytes.
    const tampered = await reload('signed');
    expect(tampered.status).toBe(403);
    expect(tampered.json).toMatchObject({ code: 'UNTRUSTED_ARTIFACT' });
    expect((tampered.json as { message: string }).message).toMatch(
      /reload of plugin 'signed' refused: .*'signed': refused by the strict trust policy: bad signature/,
    );
    await rm(`${paths.signed}.minisig`);
    const unsigned = await reload('signed');
    expect(unsigned.status).toBe(403);
    expect((unsigned.json as { message: string }).message).toMatch(/missing signature/);
    expect(await view('signed')).toMatchObject({ version: '1.0.0', state: 'active' });
  });

  it('a module that no longer loads is refused 409 naming the cause; the old version stays', async () => {
    await put(paths.signed, { memory: '1' }, { id: 'signed', version: '9.0.1' });
    await sign(paths.signed);
    const r = await reload('signed');
    expect(r.status).toBe(409);
    expect((r.json as { message: string }).message).toMatch(/the module's memory declares no maximum/);
    expect(await view('signed')).toMatchObject({ version: '1.0.0', state: 'active' });
  });
});

describe('hot swap under load loses no decision', () => {
  let h: Harness;
  let path = '';
  beforeAll(async () => {
    path = join(await mkdtemp(join(tmpdir(), 'llorch-swap-')), 'swap.wasm');
    await put(path, { decision: '{"decision":"adjust","weight":1.5}' }, { id: 'swap', version: '1.0.0' });
    h = await startHarness({
      auth,
      pools: [pool()],
      // A generous budget: this test is about the swap, not about overruns.
      plugins: [{ id: 'swap', path, hooks: ['admission'], budget_ms: 1000, quarantine_after: 1000 }],
    });
  });
  afterAll(async () => h?.close());

  it('every submission is decided by exactly one version, none falls back, none is lost', async () => {
    const submit = (n: number) =>
      Array.from({ length: n }, (_, i) => {
        const body = task('p0', { priority: 'batch', max_tokens: 4 });
        return call(h.url, 'POST', '/v1/tasks', { key: i % 2 === 0 ? KEYS.alice : KEYS.bob, body }).then(
          (r) => ({ id: body.task_id, status: r.status }),
        );
      });
    const versionOf = (v: string) => decisionLines(h).some((d) => d.plugin_version === v);

    const wave1 = submit(16);
    await until(() => versionOf('1.0.0'));
    await put(path, { decision: '{"decision":"adjust","weight":2}' }, { id: 'swap', version: '2.0.0' });
    const first = await call(h.url, 'POST', '/v1/plugins/swap/reload', { key: KEYS.ops });
    expect(first.json).toMatchObject({ version: '2.0.0' });
    const wave2 = submit(16);
    await until(() => versionOf('2.0.0'));
    await put(path, { decision: '{"decision":"adjust","weight":0.5}' }, { id: 'swap', version: '3.0.0' });
    const second = await call(h.url, 'POST', '/v1/plugins/swap/reload', { key: KEYS.ops });
    expect(second.json).toMatchObject({ version: '3.0.0' });
    const wave3 = submit(16);
    const [a, b, c] = await Promise.all([Promise.all(wave1), Promise.all(wave2), Promise.all(wave3)]);

    for (const s of [...a, ...b, ...c]) expect(s.status).toBe(202);
    const decisions = decisionLines(h);
    const byTask = new Map<string, string[]>();
    for (const d of decisions) byTask.set(d.job_id, [...(byTask.get(d.job_id) ?? []), d.plugin_version]);
    // Each submission: one decision, from a version that was active when it was submitted or later.
    for (const s of a) expect(byTask.get(s.id)).toHaveLength(1);
    for (const s of b) expect(byTask.get(s.id)?.[0]).toMatch(/^[23]\.0\.0$/);
    for (const s of b) expect(byTask.get(s.id)).toHaveLength(1);
    for (const s of c) expect(byTask.get(s.id)).toEqual(['3.0.0']);
    expect(decisions).toHaveLength(48);
    // Each version decided with its own module (the weight is the version's).
    const weights = { '1.0.0': 1.5, '2.0.0': 2, '3.0.0': 0.5 } as Record<string, number>;
    for (const d of decisions) expect(d.weight).toBe(weights[d.plugin_version]);
    expect(h.logs.lines.filter((l) => l.includes('"event":"plugin.fallback"'))).toEqual([]);
    expect(h.logs.lines.filter((l) => l.includes('"event":"plugin.reloaded"'))).toHaveLength(2);
    const scrape = (await call(h.url, 'GET', '/metrics')).text;
    expect(scrape).not.toMatch(
      /plugin_calls_total\{plugin="swap",hook="admission",result="(skipped|fallback)"\}/,
    );
    expect(scrape).toContain('plugin_calls_total{plugin="swap",hook="admission",result="ok"} 48');
  });
});
