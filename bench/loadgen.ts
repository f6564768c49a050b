/**
 * `loadgen`: one synthetic workload (bench/workloads/, default `shared-prefix`) through the
 * OpenAI-compatible load generator (bench/loadgen/), side by side on what exists today:
 * (1) one simulated vLLM engine, direct; (2) llama-orch in front of two simulated vLLM replicas,
 * each request naming its session in `X-LLorch-Session` (session affinity); (3) the same without
 * the header (placement by load alone); (4) the Portkey gateway load-balancing the two replicas.
 * Every path gets fresh engines (cold prefix caches) and the same seeded request sequence.
 *
 * `LOADGEN_TARGET=http://...` runs the workload against that server alone instead (a real
 * llama-server, vLLM, another gateway).
 */
import type { RawPool } from '../src/config/schema.js';
import { startPortkey } from './lib/peers.js';
import { startBenchOrchestrator, type Proc } from './lib/procs.js';
import { reportTable, summarize, SPEC_INTERACTIVE_SLO, type RunReport } from './loadgen/metrics.js';
import { SIM_BYTES_PER_TOKEN } from './loadgen/prompt-text.js';
import { runWorkload, type Arrival, type RunOptions } from './loadgen/run-workload.js';
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
/**
 * Engine pacing, in the workload's word tokens (about one token each on a real tokenizer):
 * decode 40 tokens/s per sequence alone with 3 % slowdown per batch neighbour, prefill 8,000
 * uncached tokens/s, 8 slots — roughly an 8B model on one data-centre GPU. The simulator counts
 * bytes as tokens, so prefill and KV are scaled by the text's bytes per word token.
 */
const PREFILL_TOKENS_PER_S = 8_000;
const SIM = {
  tokens_per_s: 40,
  batch_slowdown: 0.03,
  prefill_tokens_per_s: Math.round(PREFILL_TOKENS_PER_S * SIM_BYTES_PER_TOKEN),
  // ~13k word tokens per replica: about three of the six shared-prefix system prompts.
  kv_tokens: Math.round(numEnv('LOADGEN_KV_TOKENS', 13_000) * SIM_BYTES_PER_TOKEN),
};
const SLOTS = 8;

const pool = (replicas: number): RawPool => ({
  id: 'loadgen',
  engine: 'vllm',
  model: { id: 'bench' },
  ctx: 32_768,
  devices: 'cpu',
  replicas,
  queue: { capacity: 4096 },
  launch: { worker: 'sim', parallel: SLOTS, sim: SIM },
});

export interface Row {
  target: string;
  load: string;
  report: RunReport;
  /** Prompt tokens the engines found in their prefix caches (0..1), where they report it. */
  prefixHit: number | undefined;
}

/** Prompt and cached prompt tokens the simulated engines served (their `/__sim/state`). */
export async function simCacheStats(engines: readonly string[]): Promise<number | undefined> {
  let prompt = 0;
  let cached = 0;
  for (const e of engines) {
    const res = await fetch(`${e}/__sim/state`);
    if (!res.ok) return undefined;
    const s = (await res.json()) as { stats: { promptTokens: number; cachedPromptTokens: number } };
    prompt += s.stats.promptTokens;
    cached += s.stats.cachedPromptTokens;
  }
  return prompt === 0 ? undefined : cached / prompt;
}

export async function loadgenBench(): Promise<{ table: string; results: unknown }> {
  const spec = loadWorkload(env('LOADGEN_WORKLOAD') ?? 'shared-prefix');
  const rate = env('LOADGEN_RATE');
  const arrival: Arrival =
    rate === undefined
      ? { kind: 'closed', concurrency: numEnv('LOADGEN_CONCURRENCY', QUICK ? 8 : 16) }
      : { kind: 'open', rate: numEnv('LOADGEN_RATE', 1), seed: spec.seed };
  const bounds = {
    maxRequests: numEnv('LOADGEN_REQUESTS', QUICK ? 40 : 240),
    maxSeconds: numEnv('LOADGEN_DURATION_S', QUICK ? 20 : 90),
  };
  const slo = {
    ttftMs: numEnv('LOADGEN_SLO_TTFT_MS', SPEC_INTERACTIVE_SLO.ttftMs),
    e2eMsPer64Tokens: numEnv('LOADGEN_SLO_E2E_MS_PER_64', SPEC_INTERACTIVE_SLO.e2eMsPer64Tokens),
  };
  const load =
    arrival.kind === 'closed'
      ? `${spec.name}, c=${arrival.concurrency}`
      : `${spec.name}, ${arrival.rate} sessions/s`;
  const rows: Row[] = [];
  const measure = async (
    target: string,
    o: Omit<RunOptions, 'arrival' | 'maxRequests' | 'maxSeconds'>,
    engines: readonly string[],
  ): Promise<void> => {
    const run = await runWorkload(planWorkload(spec), { ...o, arrival, ...bounds });
    const report = summarize(run.records, run.seconds, slo);
    rows.push({ target, load, report, prefixHit: await simCacheStats(engines) });
    process.stderr.write(
      `loadgen ${target}: ${report.completed}/${report.requests} ok, TTFT p90 ${report.ttftMs.p90.toFixed(0)} ms, ${report.outputTokensPerS.toFixed(0)} tok/s\n`,
    );
  };

  const external = env('LOADGEN_TARGET');
  if (external !== undefined) {
    const target = external.replace(/\/+$/, '');
    const model = env('LOADGEN_MODEL') ?? (await firstModel(target));
    const sessionHeader = env('LOADGEN_SESSION_HEADER');
    await measure(target, { target, model, ...(sessionHeader ? { sessionHeader } : {}) }, []);
    return { table: render(rows), results: { spec, arrival, bounds, slo, rows } };
  }

  const onFreshPool = async (
    replicas: number,
    fn: (orch: string, engines: string[], procs: Proc[]) => Promise<void>,
  ): Promise<void> => {
    const { proc, ready } = await startBenchOrchestrator('loadgen', pool(replicas));
    const procs: Proc[] = [proc];
    try {
      await fn(ready.url, ready.replicas['loadgen'] ?? [], procs);
    } finally {
      for (const p of procs.reverse()) await p.stop();
    }
  };
  const model = 'bench';
  await onFreshPool(1, async (_orch, engines) => {
    const e = engines[0];
    if (e === undefined) throw new Error('no engine replica');
    await measure('vLLM sim ×1, direct', { target: e, model }, engines);
  });
  await onFreshPool(2, (orch, engines) =>
    measure(
      'llama-orch, vLLM sim ×2, X-LLorch-Session',
      { target: orch, model, sessionHeader: 'X-LLorch-Session' },
      engines,
    ),
  );
  await onFreshPool(2, (orch, engines) =>
    measure('llama-orch, vLLM sim ×2, no session', { target: orch, model }, engines),
  );
  await onFreshPool(2, async (_orch, engines, procs) => {
    const portkey = await startPortkey();
    procs.push(portkey.proc);
    // Portkey's loadbalance strategy: a weighted random target per request.
    const config = {
      strategy: { mode: 'loadbalance' },
      targets: engines.map((e) => ({ provider: 'openai', custom_host: `${e}/v1`, api_key: 'x', weight: 1 })),
    };
    await measure(
      'Portkey loadbalance, vLLM sim ×2',
      {
        target: portkey.url,
        model,
        headers: {
          'x-portkey-config': JSON.stringify(config),
          // Portkey forwards it to the engines, which take any key.
          authorization: 'Bearer x',
        },
      },
      engines,
    );
  });
  return {
    table: render(rows),
    results: { spec, arrival, bounds, slo, sim: { ...SIM, slots: SLOTS }, rows },
  };
}

async function firstModel(target: string): Promise<string> {
  const body = (await (await fetch(`${target}/v1/models`)).json()) as { data?: { id?: unknown }[] };
  const id = body.data?.[0]?.id;
  if (typeof id !== 'string') throw new Error(`${target}/v1/models lists no model: set LOADGEN_MODEL`);
  return id;
}

function render(rows: readonly Row[]): string {
  const table = reportTable(rows);
  const hits = rows
    .filter((r) => r.prefixHit !== undefined)
    .map((r) => `${r.target}: ${((r.prefixHit ?? 0) * 100).toFixed(1)} %`);
  return hits.length === 0
    ? table
    : `${table}\n\nPrompt tokens served from the engines' prefix caches — ${hits.join('; ')}`;
}
