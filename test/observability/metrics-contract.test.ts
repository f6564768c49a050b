/**
 * The metrics contract (SPEC §12, contracts/metrics.json) checked against a live orchestrator
 * after real traffic: every contract metric is exposed with its type and exactly its label set,
 * admission-level counters carry no engine_version, no label of a metric exceeds its cardinality
 * budget, engine scrapes are re-exported with the contract labels, process metrics are present,
 * and `promtool check metrics` reports nothing beyond the contract's documented waivers.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyGguf } from '../../src/models/tiny-gguf.js';
import { OrchClient, OrchHttpError, type TaskRequest } from '../../src/index.js';
import {
  KEYS,
  simPool,
  startHarness,
  task,
  TEST_KEYS,
  tinyModelPath,
  tinyPool,
  until,
  type Harness,
} from '../support/harness.js';
import { childPids } from '../support/nvidia-smi-stand-in.js';
import { parseExposition, type ParsedFamily } from '../support/prom-parse.js';

interface Contract {
  label_budgets: Record<string, number>;
  metrics: {
    name: string;
    type: string;
    labels: string[];
    admission_level?: boolean;
    may_be_empty?: string[];
  }[];
  process_metrics: { required: string[] };
  engine_passthrough: {
    labels: string[];
    optional_labels: string[];
    families: Record<string, string>;
    info_metric: string;
  };
  promtool_waivers: { problem: string; metrics: string }[];
}
const CONTRACT = JSON.parse(readFileSync('contracts/metrics.json', 'utf8')) as Contract;

/** Metrics the traffic below must have produced samples for (the rest need failures or GPUs lost). */
const SAMPLED = [
  'tasks_enqueued_total',
  'tasks_started_total',
  'tasks_canceled_total',
  'tasks_rejected_total',
  'queue_depth',
  'kv_cache_usage_ratio',
  'gpu_utilization',
  'vram_used_bytes',
  'latency_first_token_ms',
  'latency_decode_ms',
  'tokens_in_total',
  'tokens_out_total',
  'admission_backpressure_events_total',
  'pool_ready',
  'admission_share',
  'deadlines_met_ratio',
  'catalog_verifications_total',
  'model_state',
  'sse_clients_connected',
  'tasks_finished_total',
  'queue_wait_ms',
  'pool_preload_total',
  'kv_sessions_resident',
  'slo_ttft_p95_ms',
  'slo_error_ratio',
  'slo_met',
  'queue_capacity',
  'replica_slots',
  'replica_slots_busy',
];

const STAND_IN = new URL('../fixtures/nvidia-smi/nvidia-smi', import.meta.url).pathname;
process.env['FAKE_NVIDIA_SMI_FILE'] = new URL(
  '../fixtures/nvidia-smi/two-gpus.csv',
  import.meta.url,
).pathname;
// The per-process list names the real llama-server once it runs (vram_used_bytes is its own memory).
const APPS = join(tmpdir(), `llorch-metrics-apps-${process.pid}.csv`);
process.env['FAKE_NVIDIA_SMI_APPS_FILE'] = APPS;

let h: Harness;
let scrape: string;
let families: Map<string, ParsedFamily>;

const req = (
  model: string,
  engine: TaskRequest['engine'],
  extra: Record<string, unknown> = {},
): TaskRequest => task(model, { engine, ...extra }) as unknown as TaskRequest;

beforeAll(async () => {
  await writeFile(APPS, '');
  h = await startHarness(
    {
      auth: { keys: TEST_KEYS },
      engines: { nvidia_smi_path: STAND_IN, telemetry_interval_ms: 100 },
      catalog: { trust_policy: 'permissive' },
      pools: [
        simPool('sim-vllm', 'vllm'),
        // A real llama-server, labelled with GPU 0 of the stand-in nvidia-smi (telemetry).
        { ...tinyPool('gpu-llama', await tinyModelPath()), devices: [0] },
        simPool('cpu-llama', 'llamacpp', {
          queue: { capacity: 1, full_policy: 'reject' },
          launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 50 } },
        }),
      ],
    },
    { processMetrics: true },
  );
  const data = new OrchClient({ baseUrl: h.url, apiKey: KEYS.alice, retry: { maxAttempts: 1 } });
  const ops = new OrchClient({ baseUrl: h.url, apiKey: KEYS.ops });
  // Completions, two turns of one session (KV residency), SLO and deadline bookkeeping.
  const session = crypto.randomUUID();
  for (let i = 0; i < 4; i++)
    for await (const _ of data.run(
      req('sim-vllm', 'vllm', { session_id: i < 2 ? session : crypto.randomUUID() }),
    ));
  for await (const _ of data.run(req('gpu-llama', 'llamacpp', { max_tokens: 8 })));
  // A running task canceled; a full queue under `reject`.
  const long = req('cpu-llama', 'llamacpp', { max_tokens: 500 });
  await data.enqueue(long);
  for await (const ev of data.streamTask(long.task_id)) if (ev.event === 'token') break;
  const queued = req('cpu-llama', 'llamacpp', { max_tokens: 500 });
  await data.enqueue(queued);
  const refused = await data.enqueue(req('cpu-llama', 'llamacpp')).catch((e: unknown) => e);
  expect((refused as OrchHttpError).status).toBe(429);
  await data.cancel(long.task_id);
  await data.cancel(queued.task_id);
  // A catalog entry: a verification and a lifecycle state.
  const file = join(await mkdtemp(join(tmpdir(), 'llorch-metrics-')), 'm.gguf');
  await writeTinyGguf(file, { ctx: 256 });
  await ops.createCatalogModel({ id: 'metrics-model', source: file });
  await ops.verifyCatalogModel('metrics-model');
  const watchdog = h.running.orchestrator.pools.find((p) => p.id === 'gpu-llama')?.supervisor.replicas()[0]
    ?.gpu?.pid;
  const engine = watchdog === undefined ? undefined : childPids(watchdog)[0];
  await writeFile(APPS, `${engine}, GPU-6f1a0b2c-1111-2222-3333-444455556666, 300\n`);
  // Telemetry and the periodic gauges (SLO window, KV residency, slots) land within a sweep.
  await until(async () => {
    const text = await ops.metrics();
    return [
      'gpu_utilization{',
      'vram_used_bytes{',
      'slo_met{',
      'kv_sessions_resident{',
      'replica_slots{',
    ].every((m) => text.includes(m));
  });
  await ops.metrics(); // the first scrape reads the engines' KV gauges
  scrape = await ops.metrics();
  families = parseExposition(scrape);
}, 60_000);
afterAll(() => h.close());

describe('metrics contract (contracts/metrics.json)', () => {
  it('every contract metric is exposed with its type and help', () => {
    for (const m of CONTRACT.metrics) {
      const f = families.get(m.name);
      expect(f, m.name).toBeDefined();
      expect(f?.type, m.name).toBe(m.type);
      expect(f?.help, m.name).toBeTruthy();
    }
  });

  it('the traffic produced samples, each with exactly the contract label set', () => {
    for (const m of CONTRACT.metrics) {
      const samples = families.get(m.name)?.samples ?? [];
      if (SAMPLED.includes(m.name)) expect(samples.length, `${m.name} has samples`).toBeGreaterThan(0);
      for (const s of samples) {
        const expected = [...m.labels, ...(s.name.endsWith('_bucket') ? ['le'] : [])].sort();
        expect(Object.keys(s.labels).sort(), `${s.name} labels`).toEqual(expected);
        for (const [k, v] of Object.entries(s.labels))
          if (k !== 'le' && !(m.may_be_empty ?? []).includes(k)) expect(v, `${s.name}{${k}}`).not.toBe('');
      }
    }
  });

  it('admission-level counters carry no engine_version', () => {
    const admission = CONTRACT.metrics.filter((m) => m.admission_level === true);
    expect(admission.map((m) => m.name).sort()).toEqual([
      'admission_backpressure_events_total',
      'tasks_rejected_total',
    ]);
    for (const m of admission)
      for (const s of families.get(m.name)?.samples ?? [])
        expect(s.labels).not.toHaveProperty('engine_version');
  });

  it('no label of a metric exceeds its cardinality budget, and every contract label has one', () => {
    for (const m of CONTRACT.metrics) {
      for (const l of m.labels) expect(CONTRACT.label_budgets[l], `budget for ${l}`).toBeDefined();
      // Budgets apply per metric and label, so values are counted per metric.
      const values = new Map<string, Set<string>>();
      for (const s of families.get(m.name)?.samples ?? [])
        for (const [k, v] of Object.entries(s.labels))
          if (k !== 'le') (values.get(k) ?? values.set(k, new Set()).get(k)!).add(v);
      for (const [label, seen] of values)
        expect(seen.size, `${m.name}{${label}}`).toBeLessThanOrEqual(CONTRACT.label_budgets[label]!);
    }
  });

  it('engine metrics are re-exported with the contract labels; process metrics are present', () => {
    const { labels, optional_labels, families: prefixes, info_metric } = CONTRACT.engine_passthrough;
    const contractNames = new Set(CONTRACT.metrics.map((m) => m.name));
    const engineFamilies = [...families.keys()].filter((n) =>
      Object.values(prefixes).some((p) => new RegExp(p).test(n)),
    );
    expect(engineFamilies.some((n) => n.startsWith('vllm:'))).toBe(true);
    expect(engineFamilies.some((n) => n.startsWith('llamacpp:'))).toBe(true);
    for (const name of [...engineFamilies, info_metric])
      for (const s of families.get(name)?.samples ?? [])
        for (const l of labels) expect(s.labels[l], `${s.name}{${l}}`).toBeTruthy();
    for (const name of families.keys()) {
      const known =
        contractNames.has(name) ||
        engineFamilies.includes(name) ||
        name === info_metric ||
        name.startsWith('orchestratord_');
      expect(known, `${name} is neither contract, engine pass-through nor process metric`).toBe(true);
    }
    expect(optional_labels).toContain('trtllm_version');
    for (const p of CONTRACT.process_metrics.required) expect(families.has(p), p).toBe(true);
  });

  it('passes `promtool check metrics` apart from the documented waivers', () => {
    const which = spawnSync('promtool', ['--version']);
    if (which.error)
      throw new Error("promtool not found: install Debian's `prometheus` package (.ci/run does)");
    const r = spawnSync('promtool', ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
    const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
    const unwaived = problems.filter((line) => {
      const [metric = '', ...rest] = line.split(' ');
      const problem = rest.join(' ');
      return !CONTRACT.promtool_waivers.some(
        (w) => problem === w.problem && new RegExp(w.metrics).test(metric),
      );
    });
    expect(unwaived).toEqual([]);
    // Both waivers are really needed: the contract names trigger them.
    expect(problems.some((l) => l.startsWith('latency_first_token_ms '))).toBe(true);
  });
});
