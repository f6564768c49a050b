/**
 * Secrets (SPEC §11, §17 §11): every configured key and secret is scrubbed wherever a client could
 * make it echo (error bodies, `X-Correlation-Id`, log lines); engine keys and the dev key travel
 * outside the command line; `/metrics` can require a `metrics` key and serves engine metrics
 * from a cache; control keys can be limited to pools.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import type { RawConfig, RawPool } from '../../src/config/schema.js';
import { ENGINE_DRIVERS } from '../../src/engines/registry.js';
import { sha256Hex } from '../../src/http/auth.js';
import { startOrchestrator, type RunningOrchestrator } from '../../src/main.js';
import { generateEngineKey } from '../../src/nodes/engine-credentials.js';
import { EngineMetricsCache } from '../../src/orchestrator/engine-metrics.js';
import { engineEnv } from '../../src/pool/engine-launcher.js';
import { createLogger } from '../../src/util/logger.js';
import { configSecrets, Redactor, SecretSet } from '../../src/util/redact.js';
import { call, simPool, task, until } from '../support/harness.js';
import { resolvePool } from '../support/engine-under-test.js';
import { LLORCH_CLI } from '../support/llorch-dev.js';

// Keys of 16 characters or more: the length from which words of a text are checked against hashes.
const ALICE = 'alice-7Qm2xV9kLp3Rt8Wz';
const CAROL = 'carol-never-used-4Hs8Jq2Nd6'; // configured, never sent to authenticate
const OPS_A = 'ops-a-only-9Tb4Kc7Xe1Pw';
const OPS = 'ops-all-pools-3Vn8Ly5Gq2Mz';
const WATCH = 'metrics-watch-6Rf2Hu9Ja4Sd';
const ENGINE_KEY = 'vllm-engine-key-8Gz3Qa6Lm1Tp';

const KEY_CONFIG: NonNullable<NonNullable<RawConfig['auth']>['keys']> = [
  { id: 'alice', tenant: 'alice', sha256: sha256Hex(ALICE), scopes: ['data'] },
  { id: 'carol', tenant: 'carol', sha256: sha256Hex(CAROL), scopes: ['data'] },
  { id: 'ops-a', tenant: 'ops', sha256: sha256Hex(OPS_A), scopes: ['control'], pools: ['pool-a'] },
  { id: 'ops', tenant: 'ops', sha256: sha256Hex(OPS), scopes: ['control'] },
  { id: 'watch', tenant: 'ops', sha256: sha256Hex(WATCH), scopes: ['metrics'] },
];

interface Started {
  readonly url: string;
  readonly running: RunningOrchestrator;
  readonly lines: string[];
}

/** An orchestrator with the production logger: the configuration's secrets known to it. */
async function start(raw: Omit<RawConfig, 'profile' | 'listen' | 'data_dir'>): Promise<Started> {
  const dataDir = await mkdtemp(join(tmpdir(), 'llorch-secrets-'));
  const { config } = validateConfig({
    profile: 'dev',
    listen: { host: '127.0.0.1', port: 0 },
    data_dir: dataDir,
    ...raw,
  });
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      cb();
    },
  });
  const logger = createLogger({
    level: 'debug',
    destination,
    redactPatterns: config.logging.redactPatterns,
    secrets: configSecrets(config),
  });
  const running = await startOrchestrator(config, { logger, processMetrics: false });
  await running.ready;
  return { url: running.url, running, lines };
}

describe('configured secrets are never echoed or logged', () => {
  let o: Started;
  beforeAll(async () => {
    o = await start({
      auth: { keys: KEY_CONFIG },
      pools: [
        simPool('pool-a', 'vllm', { launch: { worker: 'sim', api_key: ENGINE_KEY } }),
        simPool('pool-b', 'vllm'),
      ],
    });
  });
  afterAll(async () => o?.running.close(1_000));

  const secretsIn = (text: string) => [ALICE, CAROL, OPS_A, ENGINE_KEY].filter((s) => text.includes(s));

  it('a key placed in model_ref comes back neither in the error body nor in the log line', async () => {
    for (const secret of [CAROL, ALICE, ENGINE_KEY]) {
      const r = await call(o.url, 'POST', '/v1/tasks', {
        key: ALICE,
        body: task(secret, { engine: 'vllm' }),
      });
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.text).toContain('[redacted]');
      expect(secretsIn(r.text)).toEqual([]);
    }
    // The refusal was logged (with the model_ref field), scrubbed.
    await until(() => o.lines.filter((l) => l.includes('"admission.rejected"')).length >= 3);
    expect(o.lines.filter((l) => l.includes('"admission.rejected"') && l.includes('[redacted]')).length).toBe(
      3,
    );
    expect(secretsIn(o.lines.join('\n'))).toEqual([]);
    // Each log line is still valid JSON.
    for (const l of o.lines) expect(() => JSON.parse(l) as unknown).not.toThrow();
  });

  it('a key placed in a path is scrubbed from the 404 body', async () => {
    for (const path of [`/v1/tasks/${CAROL}/stream`, `/no-such/${CAROL}?ref=${OPS_A}`, `/v1/${ENGINE_KEY}`]) {
      const r = await call(o.url, 'GET', path, { key: ALICE, undocumented: true });
      expect(r.status).toBe(404);
      expect(secretsIn(r.text)).toEqual([]);
    }
  });

  it('a key sent as X-Correlation-Id is not echoed in the header or logged', async () => {
    for (const secret of [CAROL, ENGINE_KEY]) {
      const body = task('pool-a', { engine: 'vllm', model_ref: `missing-${randomUUID()}` });
      const r = await call(o.url, 'POST', '/v1/tasks', {
        key: ALICE,
        body,
        headers: { 'x-correlation-id': secret },
      });
      const id = r.headers.get('x-correlation-id') ?? '';
      expect(id).not.toBe(secret);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
    }
    // An ordinary correlation id is still echoed as given.
    const plain = await call(o.url, 'GET', '/v1/tasks/unknown-task/stream', {
      key: ALICE,
      headers: { 'x-correlation-id': 'my-trace-0001' },
    });
    expect(plain.headers.get('x-correlation-id')).toBe('my-trace-0001');
    expect(secretsIn(o.lines.join('\n'))).toEqual([]);
  });

  it('a key that authenticated is scrubbed even inside a longer word', async () => {
    // ALICE has authenticated above: it is known as a literal from then on.
    const r = await call(o.url, 'POST', '/v1/tasks', {
      key: ALICE,
      body: task(`x${ALICE}y`, { engine: 'vllm' }),
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.text).not.toContain(ALICE);
  });
});

describe('redactor', () => {
  it('scrubs literals and hashed keys, and leaves other words alone', () => {
    const set = new SecretSet({ sha256: [sha256Hex(CAROL)], literals: [ENGINE_KEY, 'short', '1234567890'] });
    const r = new Redactor([], set);
    expect(r.scrub(`model '${CAROL}' at /v1/${CAROL}/x?k=${CAROL}.`)).toBe(
      "model '[redacted]' at /v1/[redacted]/x?k=[redacted].",
    );
    expect(r.scrub(`a${ENGINE_KEY}b`)).toBe('a[redacted]b');
    // Too short or number-like literals would take ordinary words and numbers out of every line.
    expect(r.scrub('short 1234567890')).toBe('short 1234567890');
    expect(r.scrubSerialized(JSON.stringify({ n: 1234567890, k: CAROL }))).toBe(
      '{"n":1234567890,"k":"[redacted]"}',
    );
    expect(r.isSecret(CAROL)).toBe(true);
    expect(r.isSecret('my-trace-0001')).toBe(false);
  });

  it('knows every engine key this process generates', () => {
    const key = generateEngineKey();
    expect(new Redactor([]).scrub(`engine key ${key}`)).toBe('engine key [redacted]');
  });

  it("collects the configuration's engine keys, key hashes and collector credentials", () => {
    const { config } = validateConfig({
      profile: 'dev',
      auth: { keys: KEY_CONFIG },
      tracing: {
        otlp_endpoint: 'http://127.0.0.1:4318/v1/traces',
        headers: { authorization: 'Basic b3RlbDpzZWNyZXQtdG9rZW4=', 'x-tenant': 'observability' },
      },
      pools: [simPool('pool-a', 'vllm', { launch: { worker: 'sim', api_key: ENGINE_KEY } })],
    });
    const r = new Redactor([], configSecrets(config));
    expect(r.scrub(`${ENGINE_KEY} ${CAROL} Basic b3RlbDpzZWNyZXQtdG9rZW4= observability`)).toBe(
      '[redacted] [redacted] [redacted] observability',
    );
  });
});

describe('engine keys travel in the environment, never on the command line', () => {
  it.each(['llamacpp', 'vllm', 'tgi'] as const)(
    '%s: the key is in its variable, not its arguments',
    (engine) => {
      const raw: RawPool = {
        id: `p-${engine}`,
        engine,
        model: { id: 'm', path: '/models/m.gguf' },
        ctx: 512,
        devices: engine === 'llamacpp' ? 'cpu' : [0],
        launch: { api_key: ENGINE_KEY },
      };
      const pool = resolvePool(raw);
      const args = ENGINE_DRIVERS[engine].nativeArgs(pool, [41001, 41002], 0);
      expect(args.join(' ')).not.toContain(ENGINE_KEY);
      const variable = ENGINE_DRIVERS[engine].apiKey?.env ?? '';
      // llama-server: LLAMA_API_KEY; vLLM: VLLM_API_KEY; TGI: API_KEY (each engine's own --help).
      expect(variable).toBe({ llamacpp: 'LLAMA_API_KEY', vllm: 'VLLM_API_KEY', tgi: 'API_KEY' }[engine]);
      expect(engineEnv(pool, {})[variable]).toBe(ENGINE_KEY);
    },
  );

  it('a launched engine has its key in its environment and nowhere in any command line', async () => {
    const o = await start({
      pools: [simPool('keyed', 'vllm', { launch: { worker: 'sim', api_key: ENGINE_KEY } })],
    });
    try {
      const procs = await processes();
      const engine = procs.find((p) => p.environ.includes(`VLLM_API_KEY=${ENGINE_KEY}`));
      expect(engine).toBeDefined();
      expect(procs.filter((p) => p.cmdline.includes(ENGINE_KEY))).toEqual([]);
    } finally {
      await o.running.close(1_000);
    }
  });
});

/** This user's processes: command lines and environments (others' are unreadable, skipped). */
async function processes(): Promise<{ pid: number; cmdline: string; environ: string }[]> {
  const out: { pid: number; cmdline: string; environ: string }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const [cmdline, environ] = await Promise.all([
        readFile(`/proc/${name}/cmdline`, 'utf8'),
        readFile(`/proc/${name}/environ`, 'utf8'),
      ]);
      out.push({
        pid: Number(name),
        cmdline: cmdline.split('\0').join(' '),
        environ: environ.split('\0').join('\n'),
      });
    } catch {
      // Gone, or another user's.
    }
  }
  return out;
}

describe('llorch dev takes its key from a file or the environment', () => {
  const DEV_KEY = 'dev-key-from-file-5Kp9Wd2Qs';
  it.each([
    ['--api-key-file', (file: string) => ({ args: ['--api-key-file', file], env: {} })],
    ['$LLORCH_API_KEY', () => ({ args: [], env: { LLORCH_API_KEY: DEV_KEY } })],
  ] as const)('%s', async (_name, how) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'llorch-dev-key-'));
    const file = join(dataDir, 'api-key');
    await writeFile(file, `${DEV_KEY}\n`, { mode: 0o600 });
    const { args, env } = how(file);
    const { LLORCH_API_KEY: _inherited, ...base } = process.env;
    const dev = spawn(
      process.execPath,
      [
        LLORCH_CLI,
        'dev',
        '--engine',
        'sim',
        '--replicas',
        '1',
        '--port',
        '0',
        '--data-dir',
        dataDir,
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...base, ...env } },
    );
    const exited = new Promise<void>((resolve) => dev.once('exit', () => resolve()));
    let output = '';
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const onData = (b: Buffer) => {
          output += b.toString('utf8');
          const u = /listening on (http:\/\/[\d.:]+)/.exec(output)?.[1];
          if (u !== undefined && output.includes('"event":"pools.started"')) resolve(u);
        };
        dev.stdout.on('data', onData);
        dev.stderr.on('data', onData);
        dev.once('exit', (code) => reject(new Error(`llorch dev exited with ${code}:\n${output}`)));
      });
      const cmdline = await readFile(`/proc/${dev.pid ?? 0}/cmdline`, 'utf8');
      expect(cmdline).not.toContain(DEV_KEY);
      expect((await call(url, 'GET', '/v1/replicasets')).status).toBe(401);
      expect((await call(url, 'GET', '/v1/replicasets', { key: DEV_KEY })).status).toBe(200);
      expect(output).not.toContain(DEV_KEY);
    } finally {
      if (dev.exitCode === null && dev.signalCode === null) dev.kill('SIGTERM');
      await exited;
    }
  });
});

describe('/metrics', () => {
  let open: Started;
  let guarded: Started;
  beforeAll(async () => {
    [open, guarded] = await Promise.all([
      // No background refresh during the test: every engine scrape counted is one a read caused.
      start({
        auth: { keys: KEY_CONFIG },
        metrics: { engine_refresh_ms: 3_600_000 },
        pools: [simPool('pool-a', 'vllm')],
      }),
      start({
        auth: { keys: KEY_CONFIG },
        metrics: { require_key: true },
        fairness: { tenants: [{ id: 'alice', weight: 2 }] },
        pools: [simPool('pool-a', 'vllm')],
      }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([open?.running.close(1_000), guarded?.running.close(1_000)]);
  });

  it('is open by default (as before: its labels may name tenants)', async () => {
    const r = await call(open.url, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.text).toContain('engine_replica_info{');
  });

  it('with metrics.require_key: 401 without a key, 403 without the metrics scope, 200 with it', async () => {
    const none = await call(guarded.url, 'GET', '/metrics');
    expect(none.status).toBe(401);
    expect(none.text).not.toContain('alice');
    expect((await call(guarded.url, 'GET', '/metrics', { key: ALICE })).status).toBe(403);
    expect((await call(guarded.url, 'GET', '/metrics', { key: OPS })).status).toBe(403);
    const ok = await call(guarded.url, 'GET', '/metrics', { key: WATCH });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('engine_replica_info{');
    // A metrics key is no data or control key.
    expect((await call(guarded.url, 'GET', '/v1/replicasets', { key: WATCH })).status).toBe(403);
  });

  it('many concurrent scrapes cause at most one engine scrape in flight, served from the cache', async () => {
    const pool = open.running.orchestrator.pools.find((p) => p.id === 'pool-a');
    const replica = pool?.readyReplicas()[0];
    if (!replica) throw new Error('no ready replica');
    const adapter = replica.adapter;
    const original = adapter.scrapeMetrics.bind(adapter);
    let calls = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    adapter.scrapeMetrics = async (signal) => {
      calls++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        return await original(signal);
      } finally {
        inFlight--;
      }
    };
    try {
      const replies = await Promise.all(
        Array.from({ length: 200 }, () => fetch(`${open.url}/metrics`).then((r) => r.text())),
      );
      expect(replies.every((t) => t.includes('vllm:'))).toBe(true);
      // One refresh at most (none when an earlier read already covered this replica) for 200 reads.
      expect(maxInFlight).toBeLessThanOrEqual(1);
      expect(calls).toBeLessThanOrEqual(1);
    } finally {
      adapter.scrapeMetrics = original;
    }
  });
});

describe('engine metrics cache', () => {
  function deferredRefresh() {
    const pending: ((text: string) => void)[] = [];
    let n = 0;
    const refresh = () =>
      new Promise<string>((resolve) => {
        n++;
        pending.push(resolve);
      });
    return { refresh, pending, calls: () => n };
  }

  it('one refresh at a time, however many readers wait for it', async () => {
    const d = deferredRefresh();
    const topology = 'p/r0';
    const cache = new EngineMetricsCache(d.refresh, () => topology, 60_000);
    const readers = Array.from({ length: 50 }, () => cache.current());
    expect(d.calls()).toBe(1);
    d.pending[0]?.('scrape-1');
    expect(await Promise.all(readers)).toEqual(Array.from({ length: 50 }, () => 'scrape-1'));
    // Covered: read from the cache, no new refresh.
    expect(await cache.current()).toBe('scrape-1');
    expect(d.calls()).toBe(1);
    cache.stop();
  });

  it('refreshes when the Ready replicas change, waiting out the refresh in flight first', async () => {
    const d = deferredRefresh();
    let topology = 'p/r0';
    const cache = new EngineMetricsCache(d.refresh, () => topology, 60_000);
    const first = cache.current();
    topology = 'p/r0,p/r1';
    const second = cache.current();
    expect(d.calls()).toBe(1);
    d.pending[0]?.('without-r1');
    expect(await first).toBe('without-r1');
    await until(() => d.calls() === 2);
    d.pending[1]?.('with-r1');
    expect(await second).toBe('with-r1');
    expect(await cache.current()).toBe('with-r1');
    cache.stop();
  });

  it('a failed refresh keeps the last scrape', async () => {
    let fail = false;
    let topology = 'a';
    const cache = new EngineMetricsCache(
      async () => {
        if (fail) throw new Error('engine down');
        return 'good';
      },
      () => topology,
      60_000,
    );
    expect(await cache.current()).toBe('good');
    fail = true;
    topology = 'b';
    expect(await cache.current()).toBe('good');
    cache.stop();
  });
});

describe('control keys limited to pools', () => {
  let o: Started;
  beforeAll(async () => {
    o = await start({
      auth: { keys: KEY_CONFIG },
      pools: [simPool('pool-a', 'vllm'), simPool('pool-b', 'vllm')],
    });
  });
  afterAll(async () => o?.running.close(1_000));

  it('drain and reload of another pool are 403 FORBIDDEN; its own pool is allowed', async () => {
    const drainB = await call(o.url, 'POST', '/v1/pools/pool-b/drain', {
      key: OPS_A,
      body: { deadline_ms: 1000 },
    });
    expect(drainB.status).toBe(403);
    expect((drainB.json as { code: string }).code).toBe('FORBIDDEN');
    const reloadB = await call(o.url, 'POST', '/v1/pools/pool-b/reload', {
      key: OPS_A,
      body: { rollback: true },
    });
    expect(reloadB.status).toBe(403);
    // A pool that does not exist is outside the limit too: the key learns nothing of other pools.
    const unknown = await call(o.url, 'POST', '/v1/pools/zz-none/drain', {
      key: OPS_A,
      body: { deadline_ms: 1000 },
    });
    expect(unknown.status).toBe(403);
    // Its own pool, and any pool for an unlimited key.
    expect(
      (await call(o.url, 'POST', '/v1/pools/pool-a/drain', { key: OPS_A, body: { deadline_ms: 1000 } }))
        .status,
    ).toBe(202);
    expect(
      (await call(o.url, 'POST', '/v1/pools/pool-b/drain', { key: OPS, body: { deadline_ms: 1000 } })).status,
    ).toBe(202);
  });

  it('read-only views show every pool', async () => {
    expect((await call(o.url, 'GET', '/v1/pools/pool-b/health', { key: OPS_A })).status).toBe(200);
    const sets = await call(o.url, 'GET', '/v1/replicasets', { key: OPS_A });
    expect(sets.status).toBe(200);
    expect(sets.text).toContain('pool-b');
  });
});

describe('configuration of the new fields', () => {
  const problems = (extra: Partial<RawConfig>): string => {
    try {
      validateConfig({ profile: 'dev', pools: [simPool('pool-a', 'vllm')], ...extra });
      return '';
    } catch (err) {
      return (err as Error).message;
    }
  };
  const key = (over: Record<string, unknown>) => ({
    id: 'k',
    tenant: 't',
    sha256: sha256Hex('some-key-of-sufficient-length'),
    scopes: ['control'],
    ...over,
  });

  it('refuses a pool limit naming an unknown pool, or on a key without the control scope', () => {
    expect(problems({ auth: { keys: [key({ pools: ['nope'] })] } } as Partial<RawConfig>)).toContain(
      "auth.keys[0].pools: no pool 'nope' is configured",
    );
    expect(
      problems({ auth: { keys: [key({ scopes: ['data'], pools: ['pool-a'] })] } } as Partial<RawConfig>),
    ).toContain('auth.keys[0].pools: only limits control operations');
    expect(problems({ auth: { keys: [key({ pools: ['pool-a'] })] } } as Partial<RawConfig>)).toBe('');
  });

  it('refuses metrics.require_key without any key holding the metrics scope', () => {
    expect(
      problems({ metrics: { require_key: true }, auth: { keys: [key({})] } } as Partial<RawConfig>),
    ).toContain('metrics.require_key');
    expect(
      problems({
        metrics: { require_key: true },
        auth: { keys: [key({ scopes: ['metrics'] })] },
      } as Partial<RawConfig>),
    ).toBe('');
  });
});
