/**
 * The AssemblyScript SDK (sdk/) built with `llorch plugins build` and checked against the
 * contracts the host validates with (contracts/plugins/*.json), and the example tenant admission
 * policy driven through the host with the snapshot's `now_ms`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OrchError } from '../../src/errors/orch-error.js';
import { OrchMetrics } from '../../src/metrics/metrics.js';
import { buildPlugin } from '../../src/plugins/plugin-build.js';
import { resolvePlugins, type RawPlugin } from '../../src/plugins/plugin-config.js';
import { PluginHost, type AdmissionQuery } from '../../src/plugins/plugin-host.js';
import { pluginContract, readManifest } from '../../src/plugins/plugin-loader.js';
import { HOOK_NUMBERS } from '../../src/plugins/plugin-runtime.js';
import { PluginWorker } from '../../src/plugins/plugin-worker.js';
import { memoryLimits } from '../../src/plugins/wasm-binary.js';
import { wasmApi } from '../../src/plugins/wasm-api.js';
import { createLogger } from '../../src/util/logger.js';

const ajv = new Ajv({ allErrors: true, strict: false });
const snapshotSchema = ajv.compile(pluginContract('admission-snapshot.schema.json'));
const decisionSchema = ajv.compile(pluginContract('admission-decision.schema.json'));
const placementSnapshotSchema = ajv.compile(pluginContract('placement-snapshot.schema.json'));
const placementDecisionSchema = ajv.compile(pluginContract('placement-decision.schema.json'));

let out: string;
let echoPath: string;
let examplePath: string;
let cliBuild: { stdout: string; stderr: string };
beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'llorch-sdk-'));
  echoPath = (await buildPlugin('sdk/fixtures/snapshot-echo', { out: join(out, 'echo.wasm') })).path;
  // The example is built the way an operator builds it: `llorch plugins build`.
  examplePath = join(out, 'tenant.wasm');
  cliBuild = spawnSync(
    'npx',
    [
      'tsx',
      'src/cli/llorch.ts',
      'plugins',
      'build',
      'sdk/examples/tenant-admission',
      '--out',
      examplePath,
      '--memory-max-bytes',
      String(4 * 1_048_576),
    ],
    { encoding: 'utf8' },
  );
});

/** Tool results of both kinds and an error, as snapshots carry them (`tools`). */
const TOOL_RESULTS = {
  holidays: {
    tool: 'fetch',
    at_ms: Date.UTC(2026, 0, 5, 10, 29),
    status: 200,
    url: 'https://cal.example/today',
    content_type: 'text/plain',
    encoding: 'utf8',
    body: 'closed "today"\n',
    truncated: false,
  },
  news: {
    tool: 'search',
    at_ms: 1.5,
    query: 'ü',
    results: [{ title: 'A', url: 'https://a.example/', snippet: '' }],
  },
  denied: {
    tool: 'fetch',
    at_ms: 0,
    error: { code: 'FORBIDDEN', reason: 'denied', message: 'no' },
  },
};

/** A snapshot with every field of the schema set (the optional one included). */
function fullSnapshot(
  params: Record<string, unknown>,
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    abi: 1,
    hook: 'admission',
    now_ms: Date.UTC(2026, 0, 5, 10, 30),
    plugin: { id: 'snapshot-echo', version: '1.0.0' },
    params,
    task: {
      task_id: 't-"1"',
      session_id: 's-ü',
      workload: 'completion',
      model_ref: 'tiny',
      engine: 'llamacpp',
      priority: 'batch',
      prompt_tokens: 12,
      max_tokens: 64,
      expected_tokens: 32,
      deadline_ms: 60000,
    },
    tenant: { id: 'acme', tokens_last_minute: 1234, tasks_last_minute: 3 },
    pool: { id: 'p0', engine: 'llamacpp', queue_depth: 2, queue_capacity: 16 },
    bounds: { priorities: ['interactive', 'batch'], weight_min: 0.5, weight_max: 2.5 },
    tools: TOOL_RESULTS,
    ...over,
  };
}

describe('SDK against the contracts', () => {
  const workers: PluginWorker[] = [];
  afterAll(async () => Promise.all(workers.map((w) => w.terminate())));
  async function run(snapshot: unknown): Promise<string> {
    const bytes = new Uint8Array(await readFile(echoPath));
    const w = await PluginWorker.start(await wasmApi.compile(bytes), 'snapshot-echo');
    workers.push(w);
    const r = await w.call(HOOK_NUMBERS.admission, JSON.stringify(snapshot), 10_000);
    if (r.kind !== 'result') throw new Error(`call ended: ${JSON.stringify(r)}`);
    return r.output;
  }

  it('the built module declares its memory maximum and carries its manifest', async () => {
    const bytes = new Uint8Array(await readFile(echoPath));
    expect(memoryLimits(bytes)).toEqual([{ initialPages: 1, maximumPages: 256, imported: false }]);
    expect(readManifest(bytes, 'echo')).toMatchObject({
      id: 'snapshot-echo',
      abi: 1,
      hooks: ['admission', 'placement'],
    });
  });

  it('the SDK reads every field of the snapshot schema and writes them back unchanged', async () => {
    const snapshot = fullSnapshot({ mode: 'echo', nested: { a: [1, 2.5, 'x', true, null] } });
    expect(snapshotSchema(snapshot), JSON.stringify(snapshotSchema.errors)).toBe(true);
    const decision = JSON.parse(await run(snapshot)) as { message: string };
    const echoed = JSON.parse(decision.message) as unknown;
    // A field the schema gains that the SDK does not read is missing here; one it renames, too.
    expect(echoed).toEqual(snapshot);
    expect(snapshotSchema(echoed), JSON.stringify(snapshotSchema.errors)).toBe(true);
  });

  it('the schema lists exactly the fields the SDK knows (a new schema field fails here)', () => {
    const schema = pluginContract('admission-snapshot.schema.json') as {
      required: string[];
      properties: Record<string, { properties?: Record<string, unknown> }>;
    };
    const snapshot = fullSnapshot({});
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(snapshot).sort());
    for (const [k, v] of Object.entries(schema.properties))
      if (v.properties && k !== 'params')
        expect(Object.keys(v.properties).sort(), k).toEqual(
          Object.keys(snapshot[k] as Record<string, unknown>).sort(),
        );
  });

  it.each([
    ['mail alice.smith+x@example.co.uk now.', 'mail [email] now.'],
    ['a@b is no address; x@y.z neither; ok@mail.example.com.', 'a@b is no address; x@y.z neither; [email].'],
    ['key sk-abcdefghijklmnop1234 and ghp_short', 'key [secret] and ghp_short'],
    ['task-sk-abcdefghijklmnopqrstu stays', 'task-sk-abcdefghijklmnopqrstu stays'],
    ['card 4111 1111-1111 1111, order 1234567', 'card [number], order 1234567'],
    ['ü@ß and naïve text', 'ü@ß and naïve text'],
  ])(
    'redact() masks e-mail addresses, secret-looking tokens and long digit runs: %j',
    async (text, expected) => {
      const decision = JSON.parse(await run(fullSnapshot({ mode: 'redact', text }))) as { message: string };
      expect(decision.message).toBe(expected);
    },
  );

  it.each(['accept', 'refuse', 'adjust'])('the SDK encodes a valid %s decision', async (mode) => {
    const decision = JSON.parse(await run(fullSnapshot({ mode }))) as Record<string, unknown>;
    expect(decisionSchema(decision), JSON.stringify(decisionSchema.errors)).toBe(true);
    expect(decision['decision']).toBe(mode);
    if (mode === 'refuse')
      expect(decision).toEqual({
        decision: 'refuse',
        code: 'FORBIDDEN',
        message: 'a "quoted" \\ message\n',
        retry_after_ms: 1500,
      });
    if (mode === 'adjust') expect(decision).toEqual({ decision: 'adjust', priority: 'batch', weight: 1.5 });
  });
});

describe('example: tenant admission policy', () => {
  const hosts: PluginHost[] = [];
  afterAll(async () => Promise.all(hosts.map((h) => h.close())));
  const params = {
    tokens_per_minute: { acme: 100, '*': 1000 },
    business_hours: { start_hour: 9, end_hour: 17, utc_offset_minutes: 60, weekdays_only: true },
  };
  async function host(): Promise<PluginHost> {
    const raw: RawPlugin = {
      id: 'tenant-admission',
      path: examplePath,
      hooks: ['admission'],
      params,
      budget_ms: 500,
    };
    const plugins = resolvePlugins([raw], (p) => p, []);
    const h = await PluginHost.load({
      plugins,
      metrics: new OrchMetrics({ processMetrics: false }),
      logger: createLogger({ level: 'silent' }),
    });
    hosts.push(h);
    return h;
  }
  const q = (
    nowMs: number,
    tenant: string,
    priority: 'interactive' | 'batch',
    tokens = 30,
  ): AdmissionQuery => ({
    nowMs,
    tenant,
    task: {
      taskId: 't',
      sessionId: 's',
      workload: 'completion',
      modelRef: 'tiny',
      engine: 'llamacpp',
      priority,
      promptTokens: 10,
      maxTokens: tokens - 10,
      expectedTokens: undefined,
      deadlineMs: 60_000,
    },
    pool: { id: 'p0', engine: 'llamacpp', queueDepth: 0, queueCapacity: 8 },
  });
  // Monday 2026-01-05; UTC+1 local time.
  const monday = (hourLocal: number, minute = 0) => Date.UTC(2026, 0, 5, hourLocal - 1, minute);

  it('moves work to interactive in business hours and to batch outside them (now_ms, UTC offset, weekdays)', async () => {
    const h = await host();
    expect(await h.admission(q(monday(10), 'bob', 'batch'))).toEqual({ priority: 'interactive' });
    expect(await h.admission(q(monday(10), 'bob', 'interactive'))).toEqual({});
    expect(await h.admission(q(monday(8, 59), 'bob', 'interactive'))).toEqual({ priority: 'batch' });
    expect(await h.admission(q(monday(17), 'bob', 'interactive'))).toEqual({ priority: 'batch' });
    const saturdayNoon = Date.UTC(2026, 0, 10, 11);
    expect(await h.admission(q(saturdayNoon, 'bob', 'interactive'))).toEqual({ priority: 'batch' });
  });

  it('refuses a tenant over its tokens-per-minute cap, counting its admissions in the last minute', async () => {
    const h = await host();
    const t0 = monday(10);
    for (let i = 0; i < 3; i++) {
      expect(await h.admission(q(t0 + i, 'acme', 'interactive'))).toEqual({});
      h.admitted('acme', 30, t0 + i);
    }
    const err = await h.admission(q(t0 + 10, 'acme', 'interactive')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OrchError);
    expect((err as OrchError).toEnvelope()).toMatchObject({
      code: 'ADMISSION_REJECT',
      message:
        "plugin 'tenant-admission': tenant 'acme' is over its cap of 100 tokens per minute (90 used, 30 asked)",
      retry_after_ms: 60000,
    });
    // Other tenants have the `*` cap; a minute later acme's window is empty again.
    expect(await h.admission(q(t0 + 10, 'bob', 'interactive'))).toEqual({});
    expect(await h.admission(q(t0 + 60_001, 'acme', 'interactive'))).toEqual({});
  });

  it('`llorch plugins build` and `llorch plugins test` run it over recorded snapshots', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-cli-'));
    expect(cliBuild.stderr).toBe('');
    expect(cliBuild.stdout).toMatch(
      /tenant\.wasm: tenant-admission 1\.0\.0 \(ABI 1\), \d+ bytes, memory maximum 64 pages/,
    );
    const base = fullSnapshot(params, {
      plugin: { id: 'tenant-admission', version: '1.0.0' },
      tenant: { id: 'bob', tokens_last_minute: 0, tasks_last_minute: 0 },
    });
    const lines = [
      base,
      { ...base, tenant: { id: 'acme', tokens_last_minute: 90, tasks_last_minute: 3 } },
      { ...base, now_ms: Date.UTC(2026, 0, 5, 20) },
    ].map((s) => JSON.stringify(s));
    await writeFile(join(dir, 'snapshots.jsonl'), lines.join('\n'));
    const tested = spawnSync(
      'npx',
      [
        'tsx',
        'src/cli/llorch.ts',
        'plugins',
        'test',
        examplePath,
        '--snapshots',
        join(dir, 'snapshots.jsonl'),
        '--budget-ms',
        '1000',
      ],
      { encoding: 'utf8' },
    );
    expect(tested.stderr).toBe('');
    const decisions = tested.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { decision: unknown }).decision);
    expect(decisions).toEqual([
      { decision: 'adjust', priority: 'interactive' },
      {
        decision: 'refuse',
        code: 'ADMISSION_REJECT',
        message: "tenant 'acme' is over its cap of 100 tokens per minute (90 used, 76 asked)",
        retry_after_ms: 60000,
      },
      { decision: 'accept' },
    ]);
  });
});

/** A placement snapshot with every field of the schema set. */
function fullPlacementSnapshot(params: Record<string, unknown>): Record<string, unknown> {
  const { task } = fullSnapshot({}) as { task: unknown };
  return {
    abi: 1,
    hook: 'placement',
    now_ms: Date.UTC(2026, 0, 5, 10, 30),
    plugin: { id: 'snapshot-echo', version: '1.0.0' },
    params,
    task,
    tenant: { id: 'acme' },
    tools: TOOL_RESULTS,
    replicas: [
      {
        id: 'p0-r0',
        pool_id: 'p0',
        host: 'local',
        ready: true,
        slots_total: 4,
        in_flight: 1,
        queue_depth: 2,
        devices: ['0', 'GPU-8f3a"ü'],
        topology_cost: 1.5,
        session: false,
      },
      {
        id: 'p1-r0',
        pool_id: 'p1',
        host: 'node-b',
        ready: false,
        slots_total: 0,
        in_flight: 0,
        queue_depth: 0,
        devices: [],
        topology_cost: 0,
        session: true,
      },
    ],
  };
}

describe('SDK against the placement contracts', () => {
  const workers: PluginWorker[] = [];
  afterAll(async () => Promise.all(workers.map((w) => w.terminate())));
  async function place(snapshot: unknown): Promise<Record<string, unknown>> {
    const bytes = new Uint8Array(await readFile(echoPath));
    const w = await PluginWorker.start(await wasmApi.compile(bytes), 'snapshot-echo');
    workers.push(w);
    const r = await w.call(HOOK_NUMBERS.placement, JSON.stringify(snapshot), 10_000);
    if (r.kind !== 'result') throw new Error(`call ended: ${JSON.stringify(r)}`);
    return JSON.parse(r.output) as Record<string, unknown>;
  }

  it('the SDK reads every field of the placement snapshot schema and writes them back unchanged', async () => {
    const snapshot = fullPlacementSnapshot({ mode: 'echo' });
    expect(placementSnapshotSchema(snapshot), JSON.stringify(placementSnapshotSchema.errors)).toBe(true);
    const { allow } = (await place(snapshot)) as { allow: string[] };
    expect(JSON.parse(allow[0]!)).toEqual(snapshot);
  });

  it('the placement schema lists exactly the fields the SDK knows', () => {
    const schema = pluginContract('placement-snapshot.schema.json') as {
      properties: Record<string, { properties?: Record<string, unknown>; items?: { properties: object } }>;
    };
    const snapshot = fullPlacementSnapshot({}) as { replicas: Record<string, unknown>[] };
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(snapshot).sort());
    expect(Object.keys(schema.properties['replicas']!.items!.properties).sort()).toEqual(
      Object.keys(snapshot.replicas[0]!).sort(),
    );
  });

  it.each([
    ['default', { decision: 'default' }],
    ['only', { decision: 'place', allow: ['p0-r0'] }],
    ['nowhere', { decision: 'place', allow: [] }],
    ['prefer', { decision: 'place', scores: { 'p0-r0': 3 } }],
  ])('the SDK encodes a valid %s decision', async (mode, expected) => {
    const decision = await place(fullPlacementSnapshot({ mode }));
    expect(placementDecisionSchema(decision), JSON.stringify(placementDecisionSchema.errors)).toBe(true);
    expect(decision).toEqual(expected);
  });

  it('`llorch plugins test` runs the example GPU placement policy over recorded placement snapshots', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'llorch-cli-'));
    const module = join(dir, 'gpu.wasm');
    await buildPlugin('sdk/examples/gpu-placement', { out: module });
    const base = fullPlacementSnapshot({ tenants: { acme: ['GPU-8f3a"ü'] } });
    const lines = [
      base,
      { ...base, tenant: { id: 'bob' } },
      { ...base, params: { tenants: { acme: ['7'] } } },
    ];
    await writeFile(join(dir, 'snapshots.json'), JSON.stringify(lines));
    const tested = spawnSync(
      'npx',
      [
        'tsx',
        'src/cli/llorch.ts',
        'plugins',
        'test',
        module,
        '--snapshots',
        join(dir, 'snapshots.json'),
        '--budget-ms',
        '1000',
      ],
      { encoding: 'utf8' },
    );
    expect(tested.stderr).toBe('');
    const decisions = tested.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { decision: unknown }).decision);
    expect(decisions).toEqual([
      // acme is kept on its GPU; bob prefers the replica on no reserved GPU; no replica on GPU 7.
      { decision: 'place', allow: ['p0-r0'] },
      { decision: 'place', scores: { 'p1-r0': 1 } },
      { decision: 'place', allow: [] },
    ]);
  });
});
