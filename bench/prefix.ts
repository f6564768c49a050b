/**
 * `prefix`: placement policies side by side on a shared-prefix workload (bench/workloads/,
 * default `shared-prefix`: six long system prompts reused by many sessions, half of them
 * multi-turn). llama-orch in front of four simulated vLLM replicas, each path on fresh engines
 * (cold prefix caches) with the same seeded request sequence:
 * (1) `least-loaded`, requests without a session (placement by load alone);
 * (2) `least-loaded` with `X-LLorch-Session` (session-only affinity);
 * (3) `prefix-aware` with `X-LLorch-Session`.
 *
 * The replicas' KV cache is sized to their slots × context (what the prefix index assumes a
 * replica holds), smaller than the six system prompts: where a prompt is sent decides whether it
 * is still cached.
 */
import type { RawPool } from '../src/config/schema.js';
import type { PlacementPolicyName } from '../src/scheduler/policies/placement-policy.js';
import { startBenchOrchestrator } from './lib/procs.js';
import { simCacheStats, type Row } from './loadgen.js';
import { reportTable, summarize, SPEC_INTERACTIVE_SLO } from './loadgen/metrics.js';
import { SIM_BYTES_PER_TOKEN } from './loadgen/prompt-text.js';
import { runWorkload, type Arrival } from './loadgen/run-workload.js';
import { loadWorkload, planWorkload } from './loadgen/workload.js';

const env = (name: string): string | undefined => {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
};
const numEnv = (name: string, dflt: number): number => {
  const v = env(name);
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got '${v ?? ''}'`);
  return n;
};

const QUICK = env('BENCH_QUICK') === '1';
const REPLICAS = numEnv('PREFIX_REPLICAS', 4);
const SLOTS = 4;
/** Per slot, in the simulator's tokens (bytes): a multi-turn chat of the workload fits. */
const CTX = 16_384;
/** Engine pacing as in `loadgen` (word tokens: 40/s decode, 8,000/s prefill), bytes for the simulator. */
const SIM = {
  tokens_per_s: 40,
  batch_slowdown: 0.03,
  prefill_tokens_per_s: Math.round(8_000 * SIM_BYTES_PER_TOKEN),
  // Slots × context: about seven of the workload's prompts (each a system prompt and its turns);
  // the simulator keeps each prompt whole, shared prefixes included.
  kv_tokens: CTX * SLOTS,
};

const pool = (): RawPool => ({
  id: 'prefix',
  engine: 'vllm',
  model: { id: 'bench' },
  ctx: CTX,
  devices: 'cpu',
  replicas: REPLICAS,
  queue: { capacity: 4096 },
  launch: { worker: 'sim', parallel: SLOTS, sim: SIM },
});

export async function prefixBench(): Promise<{ table: string; results: unknown }> {
  const spec = loadWorkload(env('PREFIX_WORKLOAD') ?? 'shared-prefix');
  // Fewer clients than slots: with every slot taken, a request goes to the one replica that just
  // freed a slot, whatever the policy, and placement has nothing to choose.
  const concurrency = numEnv('PREFIX_CONCURRENCY', Math.round(REPLICAS * SLOTS * 0.625));
  const arrival: Arrival = { kind: 'closed', concurrency };
  const bounds = {
    maxRequests: numEnv('PREFIX_REQUESTS', QUICK ? 60 : 300),
    maxSeconds: numEnv('PREFIX_DURATION_S', QUICK ? 30 : 120),
  };
  const slo = SPEC_INTERACTIVE_SLO;
  const load = `${spec.name}, c=${concurrency}`;
  const paths: { target: string; placement: PlacementPolicyName; session: boolean }[] = [
    { target: 'least-loaded, no session', placement: 'least-loaded', session: false },
    { target: 'least-loaded + session affinity', placement: 'least-loaded', session: true },
    { target: 'prefix-aware + session', placement: 'prefix-aware', session: true },
  ];
  // PREFIX_PATHS=2,3 runs only those paths (1-based).
  const only = env('PREFIX_PATHS')?.split(',').map(Number);
  const rows: Row[] = [];
  for (const [k, p] of paths.entries()) {
    if (only !== undefined && !only.includes(k + 1)) continue;
    const { proc, ready } = await startBenchOrchestrator('prefix', pool(), {
      scheduling: { placement: p.placement },
      logging: { level: (env('PREFIX_LOG') ?? 'warn') as 'warn' },
    });
    try {
      const engines = ready.replicas['prefix'] ?? [];
      const run = await runWorkload(planWorkload(spec), {
        target: ready.url,
        model: 'bench',
        arrival,
        ...bounds,
        ...(p.session ? { sessionHeader: 'X-LLorch-Session' } : {}),
      });
      const report = summarize(run.records, run.seconds, slo);
      rows.push({ target: p.target, load, report, prefixHit: await simCacheStats(engines) });
      process.stderr.write(
        `prefix ${p.target}: ${report.completed}/${report.requests} ok, TTFT p90 ${report.ttftMs.p90.toFixed(0)} ms, ${report.outputTokensPerS.toFixed(0)} tok/s\n`,
      );
    } finally {
      await proc.stop();
    }
  }
  return {
    table: render(rows),
    results: { spec, arrival, bounds, sim: { ...SIM, slots: SLOTS, ctx: CTX, replicas: REPLICAS }, rows },
  };
}

function render(rows: readonly Row[]): string {
  const base = rows[0]?.report;
  const aff = rows[1]?.report;
  const last = rows.at(-1)?.report;
  const ratio = (a: number | undefined, b: number | undefined): string =>
    a === undefined || b === undefined || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}×`;
  const lines = rows.map(
    (r) => `${r.target}: ${r.prefixHit === undefined ? 'n/a' : `${(r.prefixHit * 100).toFixed(1)} %`}`,
  );
  return [
    reportTable(rows),
    '',
    `Prompt tokens served from the engines' prefix caches — ${lines.join('; ')}`,
    '',
    `prefix-aware vs least-loaded: TTFT p90 ${ratio(base?.ttftMs.p90, last?.ttftMs.p90)} lower, ` +
      `out tok/s ${ratio(last?.outputTokensPerS, base?.outputTokensPerS)}; ` +
      `vs session affinity: TTFT p90 ${ratio(aff?.ttftMs.p90, last?.ttftMs.p90)} lower, ` +
      `out tok/s ${ratio(last?.outputTokensPerS, aff?.outputTokensPerS)}`,
  ].join('\n');
}
