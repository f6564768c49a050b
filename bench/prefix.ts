/**
 * `prefix`: placement policies side by side on a shared-prefix workload (bench/workloads/,
 * default `shared-prefix-12`: twelve long system prompts reused by many sessions, half of them
 * multi-turn). llama-orch in front of four simulated vLLM replicas, each path on fresh engines
 * (cold prefix caches) with the same seeded request sequence:
 * (1) `least-loaded`, requests without a session (placement by load alone);
 * (2) `least-loaded` with `X-LLorch-Session` (session-only affinity);
 * (3) `prefix-aware` with `X-LLorch-Session`.
 *
 * The replicas' KV cache is sized to their slots × context (what the prefix index assumes a
 * replica holds), about half of the workload's system prompts: where a prompt is sent decides
 * whether it is still cached. The first `PREFIX_WARMUP` requests (the cold caches' fill) are
 * left out of the table.
 *
 * `PREFIX_ENGINE=llama`: the same three paths in front of four real llama-server replicas (the
 * pinned build, CPU, one thread and one slot each, prompt cache on: `cache_prompt` per request
 * and the host-memory prompt cache, `--cache-ram`, sized to about two prompts) serving a generated
 * tiny GGUF, on the scaled-down `shared-prefix-small` workload. One slot per replica: on one CPU
 * thread a second sequence halves the first one's speed (a GPU batches it nearly for free), so
 * with two slots per replica placement mostly trades a cache hit for a shared thread.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RawPool } from '../src/config/schema.js';
import { writeTinyGguf } from '../src/models/tiny-gguf.js';
import type { PlacementPolicyName } from '../src/scheduler/policies/placement-policy.js';
import { startBenchOrchestrator } from './lib/procs.js';
import { simCacheStats, type Row } from './loadgen.js';
import { reportTable, summarize, SPEC_INTERACTIVE_SLO, type RunReport } from './loadgen/metrics.js';
import { SIM_BYTES_PER_TOKEN } from './loadgen/prompt-text.js';
import { runWorkload, type Arrival } from './loadgen/run-workload.js';
import { loadWorkload, planWorkload } from './loadgen/workload.js';

const env = (name: string): string | undefined => {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
};
const numEnv = (name: string, dflt: number, zeroOk = false): number => {
  const v = env(name);
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !zeroOk))
    throw new Error(`${name} must be a positive number, got '${v ?? ''}'`);
  return n;
};

const QUICK = env('BENCH_QUICK') === '1';
const LLAMA = env('PREFIX_ENGINE') === 'llama';
if (!LLAMA && env('PREFIX_ENGINE') !== undefined && env('PREFIX_ENGINE') !== 'sim')
  throw new Error(`PREFIX_ENGINE must be 'sim' or 'llama', got '${env('PREFIX_ENGINE') ?? ''}'`);
const REPLICAS = numEnv('PREFIX_REPLICAS', 4);
const SLOTS = LLAMA ? numEnv('PREFIX_LLAMA_SLOTS', 1) : 4;
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

/**
 * The tiny model for llama-server: byte-level (a workload word is about six tokens), 128-wide and
 * two layers, so that on one CPU thread a 700-token system prompt takes about 100 ms to prefill
 * while a cached one is a few ms: the ratio of a real model on a GPU, at a scale two cores serve.
 */
const LLAMA_MODEL = { nEmbd: 128, nLayer: 2, nHead: 4, nFf: 256 } as const;
/** `--cache-ram` of each replica, MiB. */
const LLAMA_CACHE_RAM_MIB = numEnv('PREFIX_LLAMA_CACHE_RAM_MIB', 2);
/** Per slot: a three-turn chat of `shared-prefix-small` (about 1,000 byte tokens). */
const LLAMA_CTX = 1280;

const llamaPool = (modelPath: string): RawPool => ({
  id: 'prefix',
  engine: 'llamacpp',
  model: { id: 'bench', path: modelPath },
  ctx: LLAMA_CTX,
  devices: 'cpu',
  replicas: REPLICAS,
  queue: { capacity: 4096 },
  launch: {
    threads: 1,
    parallel: SLOTS,
    startup_timeout_ms: 60_000,
    // The host-memory prompt cache at about two prompts of the tiny model (1 KiB of KV per token):
    // with its slot a replica holds about half of the six system prompts (the four together all
    // of them twice), as a real replica's cache holds a share of a deployment's prompts and chats.
    extra_args: ['--cache-ram', String(LLAMA_CACHE_RAM_MIB)],
  },
});

/** Prompt tokens llama-server evaluated (not found in a cache), summed over its replicas. */
async function llamaPromptTokens(engines: readonly string[]): Promise<number | undefined> {
  let sum = 0;
  for (const e of engines) {
    const res = await fetch(`${e}/metrics`);
    if (!res.ok) return undefined;
    const m = /^llamacpp:prompt_tokens_total\s+(\S+)/m.exec(await res.text());
    if (m === null) return undefined;
    sum += Number(m[1]);
  }
  return sum;
}

export async function prefixBench(): Promise<{ table: string; results: unknown }> {
  const spec = loadWorkload(env('PREFIX_WORKLOAD') ?? (LLAMA ? 'shared-prefix-small' : 'shared-prefix-12'));
  const modelPath = join(tmpdir(), 'llama-orch-bench', 'prefix-tiny.gguf');
  if (LLAMA) await writeTinyGguf(modelPath, { ...LLAMA_MODEL, ctx: LLAMA_CTX * SLOTS });
  // Fewer clients than slots: with every slot taken, a request goes to the one replica that just
  // freed a slot, whatever the policy, and placement has nothing to choose.
  const concurrency = numEnv('PREFIX_CONCURRENCY', Math.round(REPLICAS * SLOTS * 0.625));
  const arrival: Arrival = { kind: 'closed', concurrency };
  // The first requests fill the cold caches whatever the policy; the table reports the steady
  // state after them (the ratio line also gives the run with them counted).
  const warmup = Math.floor(numEnv('PREFIX_WARMUP', QUICK ? 1 : LLAMA ? 100 : 60, true));
  const bounds = {
    maxRequests: warmup + numEnv('PREFIX_REQUESTS', QUICK ? 60 : 300),
    maxSeconds: numEnv('PREFIX_DURATION_S', QUICK ? 30 : LLAMA ? 90 : 150),
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
  const withWarmup: RunReport[] = [];
  for (const [k, p] of paths.entries()) {
    if (only !== undefined && !only.includes(k + 1)) continue;
    const { proc, ready } = await startBenchOrchestrator('prefix', LLAMA ? llamaPool(modelPath) : pool(), {
      scheduling: { placement: p.placement },
      logging: { level: (env('PREFIX_LOG') ?? 'warn') as 'warn' },
    });
    try {
      const engines = ready.replicas['prefix'] ?? [];
      const evaluated0 = LLAMA ? await llamaPromptTokens(engines) : undefined;
      const plan = planWorkload(spec);
      const trace: string[] = [];
      const promptOf = new Map(plan.sessions.map((x) => [x.id, x.prefix]));
      const run = await runWorkload(plan, {
        // PREFIX_TRACE=dir: one line per request (which system prompt, turn, TTFT) per path.
        ...(env('PREFIX_TRACE') === undefined
          ? {}
          : {
              onRecord: (r) => {
                const ttft = r.firstTokenMs === undefined ? null : r.firstTokenMs - r.sendMs;
                trace.push(
                  JSON.stringify({
                    s: r.session,
                    p: promptOf.get(r.session),
                    t: r.turn,
                    ttft,
                    n: r.promptTokens,
                  }),
                );
              },
            }),
        target: ready.url,
        model: 'bench',
        arrival,
        ...bounds,
        ...(p.session ? { sessionHeader: 'X-LLorch-Session' } : {}),
      });
      const traceDir = env('PREFIX_TRACE');
      if (traceDir !== undefined) {
        await mkdir(traceDir, { recursive: true });
        await writeFile(join(traceDir, `path${k + 1}.jsonl`), `${trace.join('\n')}\n`);
      }
      const bySend = [...run.records].sort((a, b) => a.sendMs - b.sendMs);
      const measured = bySend.slice(Math.min(warmup, Math.max(0, bySend.length - 1)));
      const from = Math.min(...measured.map((r) => r.sendMs));
      const to = Math.max(...measured.map((r) => r.endMs));
      const report = summarize(measured, (to - from) / 1000, slo);
      withWarmup.push(summarize(run.records, run.seconds, slo));
      let prefixHit: number | undefined;
      if (LLAMA) {
        const evaluated = await llamaPromptTokens(engines);
        const prompt = run.records.reduce((n, r) => n + (r.promptTokens ?? 0), 0);
        if (evaluated !== undefined && evaluated0 !== undefined && prompt > 0)
          prefixHit = 1 - (evaluated - evaluated0) / prompt;
      } else prefixHit = await simCacheStats(engines);
      rows.push({ target: p.target, load, report, prefixHit });
      process.stderr.write(
        `prefix ${p.target}: ${report.completed}/${report.requests} ok, TTFT p90 ${report.ttftMs.p90.toFixed(0)} ms, ${report.outputTokensPerS.toFixed(0)} tok/s\n`,
      );
    } finally {
      await proc.stop();
    }
  }
  return {
    table: render(rows, withWarmup, warmup),
    results: {
      spec,
      arrival,
      bounds,
      engine: LLAMA
        ? {
            llamaServer: {
              ...LLAMA_MODEL,
              slots: SLOTS,
              ctx: LLAMA_CTX,
              threads: 1,
              cacheRamMiB: LLAMA_CACHE_RAM_MIB,
              replicas: REPLICAS,
            },
          }
        : { sim: { ...SIM, slots: SLOTS, ctx: CTX, replicas: REPLICAS } },
      rows,
    },
  };
}

function render(rows: readonly Row[], withWarmup: readonly RunReport[], warmup: number): string {
  const ratio = (a: number | undefined, b: number | undefined): string =>
    a === undefined || b === undefined || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}×`;
  const ratios = (reports: readonly (RunReport | undefined)[]): string => {
    const [base, aff, last] = [reports[0], reports[1], reports.at(-1)];
    return (
      `prefix-aware vs least-loaded: TTFT p90 ${ratio(base?.ttftMs.p90, last?.ttftMs.p90)} lower, ` +
      `out tok/s ${ratio(last?.outputTokensPerS, base?.outputTokensPerS)}; ` +
      `vs session affinity: TTFT p90 ${ratio(aff?.ttftMs.p90, last?.ttftMs.p90)} lower, ` +
      `out tok/s ${ratio(last?.outputTokensPerS, aff?.outputTokensPerS)}`
    );
  };
  const lines = rows.map(
    (r) => `${r.target}: ${r.prefixHit === undefined ? 'n/a' : `${(r.prefixHit * 100).toFixed(1)} %`}`,
  );
  return [
    reportTable(rows),
    '',
    `Prompt tokens served from the engines' prefix caches (the whole run) — ${lines.join('; ')}`,
    '',
    `After the first ${warmup} requests: ${ratios(rows.map((r) => r.report))}`,
    '',
    `The whole run (TTFT p90 ${withWarmup.map((r) => r.ttftMs.p90.toFixed(0)).join(' / ')} ms): ${ratios(withWarmup)}`,
  ].join('\n');
}
