/**
 * `plugins`: what policy plugins (SPEC §10) cost at admission. Client-side `POST /v1/tasks` →
 * 202 latency with no plugin (the baseline), with the example tenant admission plugin
 * (sdk/examples/tenant-admission, built by `buildPlugin`) and with a plugin that never returns
 * (an infinite loop, ended at its budget every call), each in its own orchestrator on the same
 * machine, alternating runs. Also the host's per-call overhead: a trivial plugin's worker round
 * trip (snapshot out, decision back, validated), measured in-process without HTTP. Ratios are
 * against the baseline of the same run; nothing here is a pass/fail threshold.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'undici';
import wabtInit from 'wabt';
import type { RawConfig } from '../src/config/schema.js';
import { OrchMetrics } from '../src/metrics/metrics.js';
import { buildPlugin } from '../src/plugins/plugin-build.js';
import { resolvePlugins } from '../src/plugins/plugin-config.js';
import { PluginHost, type AdmissionQuery } from '../src/plugins/plugin-host.js';
import { MANIFEST_SECTION, withCustomSection } from '../src/plugins/wasm-binary.js';
import { createLogger } from '../src/util/logger.js';
import { markdownTable, percentiles } from './lib/load.js';
import { admissions, post } from './lib/admissions.js';
import { startBenchOrchestrator } from './lib/procs.js';
import { agent } from './lib/stream-clients.js';

const QUICK = process.env['BENCH_QUICK'] === '1';
const MEASURED = QUICK ? 300 : 1_000;
const WARM = QUICK ? 100 : 200;
const CLIENTS = 4;
const CALLS = QUICK ? 1_000 : 5_000;

type Case = 'none' | 'example' | 'overrun';
type RawPlugins = NonNullable<RawConfig['plugins']>;

const taskBody = (maxTokens: number) =>
  JSON.stringify({
    task_id: randomUUID(),
    session_id: randomUUID(),
    workload: 'completion',
    model_ref: 'plugins',
    engine: 'vllm',
    ctx: 4096,
    priority: 'batch',
    prompt: 'Once upon a time',
    max_tokens: maxTokens,
    deadline_ms: 8_640_000_000,
  });

/** A plugin module from WAT, its manifest embedded as `llorch plugins build` does. */
async function watPlugin(dir: string, id: string, decideBody: string): Promise<string> {
  const decision = '{"decision":"accept"}';
  const data = [...new TextEncoder().encode(decision)].map((b) => `\\${b.toString(16).padStart(2, '0')}`);
  const source = `(module
  (memory (export "memory") 1 1)
  (data (i32.const 16) "${data.join('')}")
  (func (export "llorch_abi_version") (result i32) (i32.const 1))
  (func (export "llorch_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "llorch_decide") (param i32 i32 i32) (result i64)
    ${decideBody}
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const ${decision.length}))))`;
  const wabt = await wabtInit();
  const mod = wabt.parseWat(`${id}.wat`, source);
  try {
    mod.validate();
    const manifest = { id, version: '1.0.0', abi: 1, hooks: ['admission'] };
    const bytes = withCustomSection(
      mod.toBinary({}).buffer,
      MANIFEST_SECTION,
      new TextEncoder().encode(JSON.stringify(manifest)),
    );
    const path = join(dir, `${id}.wasm`);
    await writeFile(path, bytes);
    return path;
  } finally {
    mod.destroy();
  }
}

interface Row {
  case: Case;
  run: number;
  p50: number;
  p99: number;
  fallbacks: number;
}

async function once(c: Case, run: number, plugins: Record<Case, RawPlugins>): Promise<Row> {
  const { proc, ready } = await startBenchOrchestrator(
    `plugins-${c}-${run}`,
    {
      id: 'plugins',
      engine: 'vllm',
      model: { id: 'plugins' },
      ctx: 4096,
      devices: 'cpu',
      replicas: 1,
      queue: { capacity: 100_000 },
      launch: {
        worker: 'sim',
        parallel: 1,
        sim: { tokens_per_s: 1, prefill_tokens_per_s: 1_000_000, batch_slowdown: 0 },
      },
    },
    { logging: { level: 'warn' }, limits: { idle_timeout_ms: 120_000 }, plugins: plugins[c] },
  );
  try {
    // One task holds the only slot; the rest waits in the queue (admission only is measured).
    await post(ready.url, '/v1/tasks', taskBody(4000));
    await admissions(ready.url, { clients: CLIENTS, count: WARM, body: () => taskBody(16), cancel: true });
    const p = percentiles(
      await admissions(ready.url, {
        clients: CLIENTS,
        count: MEASURED,
        body: () => taskBody(16),
        cancel: false,
      }),
    );
    const scrape = await (await request(`${ready.url}/metrics`, { dispatcher: agent })).body.text();
    let fallbacks = 0;
    for (const m of scrape.matchAll(/^plugin_fallbacks_total\{[^}]*\} (\d+)$/gm)) fallbacks += Number(m[1]);
    process.stderr.write(
      `plugins ${c} run ${run}: p50 ${p.p50.toFixed(2)} ms p99 ${p.p99.toFixed(2)} ms, ${fallbacks} fallbacks\n`,
    );
    return { case: c, run, p50: p.p50, p99: p.p99, fallbacks };
  } finally {
    await proc.stop();
  }
}

/** The host's cost per call: sequential admissions of a trivial (accepting) plugin, in-process. */
async function roundTrip(path: string): Promise<{ p50: number; p99: number }> {
  const problems: string[] = [];
  const plugins = resolvePlugins(
    [{ id: 'trivial', path, hooks: ['admission'], budget_ms: 1_000 }],
    (p) => p,
    problems,
  );
  const host = await PluginHost.load({
    plugins,
    metrics: new OrchMetrics({ processMetrics: false }),
    logger: createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
  });
  const q = (i: number): AdmissionQuery => ({
    nowMs: Date.now(),
    tenant: 'bench',
    task: {
      taskId: `t-${i}`,
      sessionId: 's',
      workload: 'completion',
      modelRef: 'plugins',
      engine: 'vllm',
      priority: 'batch',
      promptTokens: 4,
      maxTokens: 16,
      expectedTokens: undefined,
      deadlineMs: 60_000,
    },
    pool: { id: 'plugins', engine: 'vllm', queueDepth: 0, queueCapacity: 100_000 },
  });
  try {
    for (let i = 0; i < 200; i++) await host.admission(q(i));
    const lat: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      await host.admission(q(i));
      lat.push(performance.now() - t0);
    }
    return percentiles(lat);
  } finally {
    await host.close();
  }
}

export async function pluginsBench(): Promise<{ table: string; results: unknown }> {
  const dir = await mkdtemp(join(tmpdir(), 'llorch-bench-plugins-'));
  const example = await buildPlugin('sdk/examples/tenant-admission', { out: join(dir, 'tenant.wasm') });
  const spin = await watPlugin(dir, 'spin', '(loop $l (br $l))');
  const trivial = await watPlugin(dir, 'trivial', '');
  const plugins: Record<Case, RawPlugins> = {
    none: [],
    // The reference budget (1 ms); a cap no bench tenant reaches.
    example: [
      {
        id: 'tenant-admission',
        path: example.path,
        hooks: ['admission'],
        params: { tokens_per_minute: { '*': 1_000_000_000 } },
      },
    ],
    // Never quarantined: every call overruns its budget and the built-in policy decides.
    overrun: [
      { id: 'spin', path: spin, hooks: ['admission'], budget_ms: 1, quarantine_after: 1_000_000_000 },
    ],
  };
  const rows: Row[] = [];
  // Alternating, so that a machine's drift over the run does not favour one case.
  for (let run = 1; run <= 2; run++)
    for (const c of ['none', 'example', 'overrun'] as const) rows.push(await once(c, run, plugins));
  const base = (run: number) => rows.find((r) => r.case === 'none' && r.run === run)!;
  const rt = await roundTrip(trivial);
  process.stderr.write(`plugins round trip: p50 ${rt.p50.toFixed(3)} ms p99 ${rt.p99.toFixed(3)} ms\n`);
  const table = [
    markdownTable(
      [
        'plugin',
        'run',
        `admission p50 ms (${MEASURED} tasks, ${CLIENTS} clients)`,
        'p99 ms',
        'p50 / none',
        'p99 / none',
        'fallbacks',
      ],
      rows.map((r) => [
        r.case,
        String(r.run),
        r.p50.toFixed(2),
        r.p99.toFixed(2),
        `${(r.p50 / base(r.run).p50).toFixed(2)}x`,
        `${(r.p99 / base(r.run).p99).toFixed(2)}x`,
        String(r.fallbacks),
      ]),
    ),
    '',
    markdownTable(
      [`host per-call overhead (trivial plugin, ${CALLS} sequential calls, in-process)`, 'p50 ms', 'p99 ms'],
      [['worker round trip + decision check', rt.p50.toFixed(3), rt.p99.toFixed(3)]],
    ),
  ].join('\n');
  return { table, results: { rows, roundTrip: rt } };
}
