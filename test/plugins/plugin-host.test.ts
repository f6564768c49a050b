/**
 * The plugin host with real modules in real worker threads (SPEC §10): load-time refusals,
 * decisions, fallbacks on overrun, trap and malformed output, and quarantine.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OrchError } from '../../src/errors/orch-error.js';
import { OrchMetrics } from '../../src/metrics/metrics.js';
import { resolvePlugins, type RawPlugin } from '../../src/plugins/plugin-config.js';
import { PluginHost, type AdmissionQuery } from '../../src/plugins/plugin-host.js';
import { PluginLoadError, type PluginTrust } from '../../src/plugins/plugin-loader.js';
import { ArtifactVerifier } from '../../src/catalog/artifact-verifier.js';
import { generateKeyPair, parsePublicKey, signMinisign } from '../../src/catalog/minisign.js';
import { PluginWorker } from '../../src/plugins/plugin-worker.js';
import { createLogger } from '../../src/util/logger.js';
import { DECIDE, writeFixture } from './wat-fixtures.js';

const hosts: PluginHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

function query(over: Partial<AdmissionQuery['task']> = {}, nowMs = Date.UTC(2026, 0, 5, 12)): AdmissionQuery {
  return {
    nowMs,
    tenant: 'acme',
    task: {
      taskId: 't-1',
      sessionId: 's-1',
      workload: 'completion',
      modelRef: 'tiny',
      engine: 'llamacpp',
      priority: 'batch',
      promptTokens: 10,
      maxTokens: 20,
      expectedTokens: undefined,
      deadlineMs: 60_000,
      ...over,
    },
    pool: { id: 'p0', engine: 'llamacpp', queueDepth: 0, queueCapacity: 8 },
  };
}

async function load(raw: Omit<RawPlugin, 'hooks'> & { hooks?: RawPlugin['hooks'] }, trust?: PluginTrust) {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n'))
        if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const problems: string[] = [];
  const plugins = resolvePlugins([{ hooks: ['admission'], ...raw }], (p) => p, problems);
  expect(problems).toEqual([]);
  const metrics = new OrchMetrics({ processMetrics: false });
  const host = await PluginHost.load({
    plugins,
    metrics,
    logger: createLogger({ level: 'debug', destination }),
    ...(trust === undefined ? {} : { trust }),
  });
  hosts.push(host);
  return { host, metrics, lines };
}

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('loaded');
    },
    (err: unknown) => {
      expect(err).toBeInstanceOf(PluginLoadError);
      return (err as Error).message;
    },
  );

describe('loading', () => {
  it('refuses a module whose memory declares no maximum, naming the cap', async () => {
    const path = await writeFixture('nomax', { memory: '1' });
    expect(await refusal(load({ id: 'nomax', path }))).toMatch(
      /memory declares no maximum.*memory_max_bytes/,
    );
  });

  it('refuses a module whose memory maximum is above memory_max_bytes', async () => {
    const path = await writeFixture('big', { memory: '1 64' });
    const message = await refusal(load({ id: 'big', path, memory_max_bytes: 1_048_576 }));
    expect(message).toContain('memory maximum of 4194304 bytes (64 pages) exceeds memory_max_bytes 1048576');
  });

  it('refuses params that violate the manifest schema, naming the field', async () => {
    const params = {
      type: 'object',
      additionalProperties: false,
      required: ['tokens_per_minute'],
      properties: { tokens_per_minute: { type: 'integer', minimum: 1 } },
    };
    const path = await writeFixture('p', {}, { id: 'p', params });
    const message = await refusal(load({ id: 'p', path, params: { tokens_per_minute: 'lots' } }));
    expect(message).toContain('plugins[0].params.tokens_per_minute: must be integer');
    expect(await refusal(load({ id: 'p', path, params: {} }))).toContain(
      'plugins[0].params.tokens_per_minute: must have required property',
    );
  });

  it('refuses a module whose sha256 differs from the pinned digest', async () => {
    const path = await writeFixture('pin', {});
    const actual = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
    const message = await refusal(load({ id: 'pin', path, sha256: '0'.repeat(64) }));
    expect(message).toBe(
      `plugins[0].sha256: digest mismatch for 'pin': the module's sha256 is ${actual}, the configuration pins ${'0'.repeat(64)}`,
    );
    const { host } = await load({ id: 'pin', path, sha256: actual });
    expect(host.list()[0]).toMatchObject({ id: 'pin', sha256: actual, state: 'active' });
  });

  it('refuses a module without manifest, a manifest of another id and an unknown ABI', async () => {
    const bare = await writeFixture('bare', {}, null);
    expect(await refusal(load({ id: 'bare', path: bare }))).toContain(
      "exactly one 'llorch.manifest' custom section",
    );
    const other = await writeFixture('other', {}, { id: 'someone-else' });
    expect(await refusal(load({ id: 'other', path: other }))).toContain(
      "the module's manifest says 'someone-else'",
    );
    const abi2 = await writeFixture('abi2', {}, { id: 'abi2', abi: 2 });
    expect(await refusal(load({ id: 'abi2', path: abi2 }))).toContain('manifest abi 2 is not supported');
  });
});

describe('decisions', () => {
  it('an adjustment within bounds is returned and logged once with id, version, decision and latency', async () => {
    const path = await writeFixture('adj', {
      decision: '{"decision":"adjust","priority":"interactive","weight":1.5}',
    });
    const { host, lines, metrics } = await load({ id: 'adj', path, budget_ms: 500 });
    expect(await host.admission(query())).toEqual({ priority: 'interactive', weight: 1.5 });
    const logged = lines.filter((l) => l['event'] === 'plugin.decision');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({
      plugin: 'adj',
      plugin_version: '1.0.0',
      decision: 'adjust',
      job_id: 't-1',
    });
    expect(typeof logged[0]!['latency_ms']).toBe('number');
    const scrape = await metrics.render();
    expect(scrape).toContain('plugin_calls_total{plugin="adj",hook="admission",result="ok"} 1');
    expect(scrape).toMatch(/plugin_latency_ms_count\{plugin="adj",hook="admission"\} 1/);
    expect(host.list()[0]!.counters).toMatchObject({ calls: 1, ok: 1, fallbacks: 0 });
  });

  it('accept is the default: nothing changes and nothing is logged', async () => {
    const path = await writeFixture('acc', {});
    const { host, lines } = await load({ id: 'acc', path, budget_ms: 500 });
    expect(await host.admission(query())).toEqual({});
    expect(lines.filter((l) => l['event'] === 'plugin.decision')).toEqual([]);
  });

  it('a refusal is the typed error with the plugin named', async () => {
    const path = await writeFixture('no', {
      decision:
        '{"decision":"refuse","code":"ADMISSION_REJECT","message":"over the cap","retry_after_ms":1000}',
    });
    const { host } = await load({ id: 'no', path, budget_ms: 500 });
    const err = await host.admission(query()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OrchError);
    expect((err as OrchError).toEnvelope()).toMatchObject({
      code: 'ADMISSION_REJECT',
      message: "plugin 'no': over the cap",
      retriable: true,
      retry_after_ms: 1000,
      pool_id: 'p0',
    });
  });

  it.each([
    ['not JSON', 'nope', 'the decision is not JSON'],
    ['an unknown decision', '{"decision":"maybe"}', 'does not match its schema'],
    [
      'a refusal code outside the spec',
      '{"decision":"refuse","code":"TEAPOT","message":"x"}',
      'does not match',
    ],
    [
      'a priority outside bounds',
      '{"decision":"adjust","priority":"interactive"}',
      'outside bounds.priorities',
    ],
    ['a weight outside bounds', '{"decision":"adjust","weight":9}', 'weight 9 is outside [0.5, 2]'],
  ])('%s is malformed: the built-in policy decides', async (_what, decision, why) => {
    const path = await writeFixture('bad', { decision });
    const { host, lines, metrics } = await load({
      id: 'bad',
      path,
      budget_ms: 500,
      bounds: { priorities: ['batch'] },
    });
    expect(await host.admission(query())).toEqual({});
    const fallback = lines.find((l) => l['event'] === 'plugin.fallback');
    expect(fallback).toMatchObject({ plugin: 'bad', reason: 'malformed' });
    expect(String(fallback!['msg'])).toContain(why);
    expect(await metrics.render()).toContain('plugin_fallbacks_total{plugin="bad",reason="malformed"} 1');
  });
});

describe('bounded calls', () => {
  it('concurrent calls to an overrunning plugin: those that wait their deadline in line are not made (busy, not failures)', async () => {
    const path = await writeFixture('spin', { decide: DECIDE.infiniteLoop });
    const { host, lines, metrics } = await load({ id: 'spin', path, budget_ms: 1, quarantine_after: 100 });
    const decided = await Promise.all(Array.from({ length: 8 }, () => host.admission(query())));
    expect(decided).toEqual(Array.from({ length: 8 }, () => ({})));
    const c = host.list()[0]!.counters;
    expect(c.busy).toBeGreaterThan(0);
    expect(c.calls + c.busy).toBe(8);
    expect(c.fallbacks).toBe(8);
    // Only the calls made count towards quarantine.
    expect(c.consecutive_failures).toBe(c.timeouts);
    expect(c.timeouts).toBe(c.calls);
    expect(lines.filter((l) => l['reason'] === 'busy')).toHaveLength(c.busy);
    expect(await metrics.render()).toContain(`plugin_fallbacks_total{plugin="spin",reason="busy"} ${c.busy}`);
  });

  it('after an overrun the next call goes to a worker started before it was made (the warm spare)', async () => {
    const starts = vi.spyOn(PluginWorker, 'start');
    const calls = vi.spyOn(PluginWorker.prototype, 'call');
    try {
      const path = await writeFixture('spin', { decide: DECIDE.infiniteLoop });
      const { host } = await load({ id: 'spin', path, budget_ms: 1, quarantine_after: 100 });
      await host.admission(query());
      await host.admission(query());
      const startedBefore = starts.mock.results.length;
      await host.admission(query());
      const workers = await Promise.all(starts.mock.results.map((r) => r.value as Promise<PluginWorker>));
      const third = calls.mock.contexts.at(-1);
      expect(workers.indexOf(third as PluginWorker)).toBeGreaterThanOrEqual(0);
      expect(workers.indexOf(third as PluginWorker)).toBeLessThan(startedBefore);
      expect(host.list()[0]!.counters).toMatchObject({ calls: 3, timeouts: 3 });
    } finally {
      starts.mockRestore();
      calls.mockRestore();
    }
  });

  it('an infinite loop is ended at its deadline without blocking the event loop, then quarantined after N', async () => {
    const path = await writeFixture('spin', { decide: DECIDE.infiniteLoop });
    const { host, lines, metrics } = await load({ id: 'spin', path, budget_ms: 1, quarantine_after: 3 });
    let turns = 0;
    const call = host.admission(query());
    // The loop runs in the worker: this thread keeps turning while the call is pending.
    while (turns < 3) {
      await new Promise<void>((r) => setImmediate(r));
      turns += 1;
    }
    expect(await call).toEqual({});
    expect(turns).toBe(3);
    expect(lines.find((l) => l['event'] === 'plugin.fallback')).toMatchObject({
      plugin: 'spin',
      reason: 'timeout',
    });
    // A fresh worker answers (and overruns) the next calls; the third consecutive failure quarantines.
    expect(await host.admission(query())).toEqual({});
    expect(host.list()[0]!.state).toBe('active');
    expect(await host.admission(query())).toEqual({});
    expect(host.list()[0]).toMatchObject({
      state: 'quarantined',
      counters: { calls: 3, timeouts: 3, fallbacks: 3, consecutive_failures: 3 },
    });
    expect(lines.find((l) => l['event'] === 'plugin.quarantined')).toMatchObject({ plugin: 'spin' });
    // Quarantined: skipped, without a call.
    expect(await host.admission(query())).toEqual({});
    expect(host.list()[0]!.counters).toMatchObject({ calls: 3, skipped: 1 });
    const scrape = await metrics.render();
    expect(scrape).toContain('plugin_quarantined{plugin="spin"} 1');
    expect(scrape).toContain('plugin_fallbacks_total{plugin="spin",reason="timeout"} 3');
    expect(scrape).toContain('plugin_calls_total{plugin="spin",hook="admission",result="skipped"} 1');
  });

  it('a trap falls back, and a plugin that keeps trapping is quarantined', async () => {
    const path = await writeFixture('trap', { decide: DECIDE.trap });
    const { host, lines } = await load({ id: 'trap', path, budget_ms: 500, quarantine_after: 2 });
    expect(await host.admission(query())).toEqual({});
    expect(lines.find((l) => l['event'] === 'plugin.fallback')).toMatchObject({ reason: 'trap' });
    expect(host.list()[0]!.state).toBe('active');
    expect(await host.admission(query())).toEqual({});
    expect(host.list()[0]).toMatchObject({ state: 'quarantined', counters: { traps: 2 } });
  });

  it('a memory-hungry module stops at its declared maximum: the call traps and falls back', async () => {
    const path = await writeFixture('hungry', { decide: DECIDE.memoryHungry, memory: '1 2' });
    const { host, lines } = await load({ id: 'hungry', path, budget_ms: 500 });
    expect(await host.admission(query())).toEqual({});
    expect(await host.admission(query())).toEqual({});
    expect(lines.filter((l) => l['event'] === 'plugin.fallback').map((l) => l['reason'])).toEqual([
      'trap',
      'trap',
    ]);
  });

  it('a decision pointer outside memory is a trap, not a host crash', async () => {
    const path = await writeFixture('oob', { decide: DECIDE.outOfBounds });
    const { host, lines } = await load({ id: 'oob', path, budget_ms: 500 });
    expect(await host.admission(query())).toEqual({});
    expect(lines.find((l) => l['event'] === 'plugin.fallback')).toMatchObject({ reason: 'trap' });
  });

  it('WASI gives no clock and no randomness: the snapshot is the only input', async () => {
    // Accepts only when clock_time_get, clock_res_get and random_get all answer ENOTSUP (58).
    const accept = '(i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 21))';
    const path = await writeFixture('pure', {
      imports: `(import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
        (import "wasi_snapshot_preview1" "clock_res_get" (func $res (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))`,
      decide: `(if (result i64)
        (i32.and (i32.and
          (i32.eq (call $clock (i32.const 0) (i64.const 0) (i32.const 8192)) (i32.const 58))
          (i32.eq (call $res (i32.const 0) (i32.const 8192)) (i32.const 58)))
          (i32.eq (call $random (i32.const 8192) (i32.const 8)) (i32.const 58)))
        (then ${accept}) (else unreachable))`,
    });
    const { host, lines } = await load({ id: 'pure', path, budget_ms: 500 });
    expect(await host.admission(query())).toEqual({});
    expect(lines.filter((l) => l['event'] === 'plugin.fallback')).toEqual([]);
    expect(host.list()[0]!.counters.ok).toBe(1);
  });

  it('a success resets the consecutive-failure count', async () => {
    const path = await writeFixture('ok', {});
    const { host } = await load({ id: 'ok', path, budget_ms: 500, quarantine_after: 1 });
    await host.admission(query());
    expect(host.list()[0]).toMatchObject({ state: 'active', counters: { consecutive_failures: 0, ok: 1 } });
  });
});

describe('trust (catalog.trust_policy, catalog.trust_roots)', () => {
  const trusted = generateKeyPair('trusted');
  const other = generateKeyPair('other');
  const verifier = new ArtifactVerifier([parsePublicKey(trusted.publicKeyText)]);
  const strict: PluginTrust = { policy: 'strict', verifier };
  const sign = async (path: string, keys = trusted) =>
    writeFile(`${path}.minisig`, signMinisign(await readFile(path), keys, `file:${path}`));

  it('loads a module signed by a trust root under strict, and logs the key', async () => {
    const path = await writeFixture('signed', {});
    await sign(path);
    const { host, lines } = await load({ id: 'signed', path }, strict);
    expect(host.list()[0]).toMatchObject({ id: 'signed', state: 'active' });
    expect(lines.find((l) => l.event === 'plugin.loaded')).toMatchObject({
      trust: 'signed',
      key_id: trusted.keyId.toString('hex').match(/../g)!.reverse().join('').toUpperCase(),
    });
  });

  it('refuses a tampered module under strict, naming the plugin and a bad signature', async () => {
    const path = await writeFixture('tampered', {});
    await sign(path);
    // Same manifest and size, one byte of the decision changed after signing.
    const bytes = await readFile(path);
    const at = bytes.indexOf(Buffer.from('accept'));
    bytes[at] = 'A'.charCodeAt(0);
    await writeFile(path, bytes);
    expect(await refusal(load({ id: 'tampered', path }, strict))).toMatch(
      /plugins\[0\] 'tampered': refused by the strict trust policy: bad signature/,
    );
  });

  it('refuses a module signed by a key that is no trust root under strict (unknown key)', async () => {
    const path = await writeFixture('stranger', {});
    await sign(path, other);
    expect(await refusal(load({ id: 'stranger', path }, strict))).toMatch(
      /'stranger': refused by the strict trust policy: unknown key \(key [0-9A-F]{16}\)/,
    );
  });

  it('refuses an unsigned module under strict (missing signature)', async () => {
    const path = await writeFixture('bare', {});
    expect(await refusal(load({ id: 'bare', path }, strict))).toMatch(
      /'bare': refused by the strict trust policy: missing signature \(no .*bare\.wasm\.minisig/,
    );
  });

  it('loads an unsigned module under permissive with a warning line', async () => {
    const path = await writeFixture('loose', {});
    const { host, lines } = await load({ id: 'loose', path }, { policy: 'permissive', verifier });
    expect(host.list()[0]).toMatchObject({ id: 'loose', state: 'active' });
    const warning = lines.find((l) => l.event === 'plugin.untrusted_load');
    expect(warning).toMatchObject({ plugin: 'loose', reason: 'unsigned', policy: 'permissive', level: 40 });
    expect(String(warning?.msg)).toMatch(/missing signature; loading anyway \(permissive trust policy\)/);
  });
});
