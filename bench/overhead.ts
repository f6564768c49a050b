/**
 * `overhead`: what llama-orch costs per streamed request, next to the alternatives, against the
 * same engine process in the same run. A simulated vLLM replica (launched by the orchestrator)
 * streams 64-token completions; five paths reach it: (1) direct, (2) nginx as a plain SSE reverse
 * proxy, (3) the Portkey AI Gateway, (4) llama-orch through its real two-step API
 * (`POST /v1/tasks`, then `GET …/stream`), (5) llama-orch's OpenAI-compatible surface (one
 * request: the same admission and scheduling, streamed from the admission request itself). Two engine speeds: fast tokens, and paced at ~2 ms per
 * token. Closed-loop clients at concurrency 1, 16, 64 and 256.
 */
import type { RawPool } from '../src/config/schema.js';
import { markdownTable, runLoad, type LoadResult } from './lib/load.js';
import { nginxBinary, portkeyHeaders, startNginx, startPortkey } from './lib/peers.js';
import { cpuSeconds, rss, startBenchOrchestrator, type Proc } from './lib/procs.js';
import { openaiStream, orchStream } from './lib/stream-clients.js';

// BENCH_QUICK=1: a short smoke run of the same code (two concurrencies, 2 s cells).
const QUICK = process.env['BENCH_QUICK'] === '1';
const CONCURRENCY = QUICK ? [1, 16] : [1, 16, 64, 256];
const CELL_SECONDS = QUICK ? 2 : 8;
// BENCH_PEERS=off: direct and llama-orch only (before/after comparisons of llama-orch itself).
const PEERS = process.env['BENCH_PEERS'] !== 'off';
const TOKENS = 64;
const VARIANTS = [
  { name: 'fast', sim: { tokens_per_s: 200_000, prefill_tokens_per_s: 1_000_000 } },
  { name: 'paced 2 ms/token', sim: { tokens_per_s: 500, prefill_tokens_per_s: 1_000_000 } },
];

interface Row {
  variant: string;
  concurrency: number;
  path: string;
  load: LoadResult;
  /** CPU ms per request of the process in the middle (nginx, Portkey, llama-orch). */
  cpuMsPerRequest: number | undefined;
  rssMiB: number | undefined;
}

/** The pool every path reaches: one simulated vLLM replica with room for every client. */
const benchPool = (sim: Record<string, number>): RawPool => ({
  id: 'bench',
  engine: 'vllm',
  model: { id: 'bench' },
  ctx: 4096,
  devices: 'cpu',
  replicas: 1,
  queue: { capacity: 4096 },
  launch: { worker: 'sim', parallel: 512, sim: { ...sim, batch_slowdown: 0, kv_tokens: 1_000_000 } },
});

export async function overheadBench(): Promise<{ table: string; results: unknown }> {
  const rows: Row[] = [];
  const hasNginx = PEERS && nginxBinary() !== undefined;
  for (const variant of VARIANTS) {
    const { proc: orch, ready } = await startBenchOrchestrator('overhead', benchPool(variant.sim));
    const engine = ready.replicas['bench']?.[0];
    if (!engine) throw new Error('no engine replica');
    const procs: Proc[] = [orch];
    try {
      const body = { model: 'bench', prompt: 'Once upon a time', max_tokens: TOKENS };
      const paths: {
        name: string;
        run: () => Promise<import('./lib/load.js').Timing>;
        pids: () => number[];
      }[] = [{ name: 'direct', run: () => openaiStream(engine, body), pids: () => [] }];
      if (hasNginx) {
        const nginx = await startNginx(engine);
        procs.push(nginx.proc);
        paths.push({ name: 'nginx', run: () => openaiStream(nginx.url, body), pids: nginx.pids });
      }
      if (PEERS) {
        const portkey = await startPortkey();
        procs.push(portkey.proc);
        paths.push({
          name: 'portkey',
          run: () => openaiStream(portkey.url, body, portkeyHeaders(engine)),
          pids: () => [portkey.proc.pid],
        });
      }
      paths.push({
        name: 'llama-orch',
        run: () =>
          orchStream(ready.url, {
            model_ref: 'bench',
            engine: 'vllm',
            prompt: body.prompt,
            max_tokens: TOKENS,
            ctx: 4096,
          }),
        pids: () => [orch.pid],
      });
      paths.push({
        name: 'llama-orch openai',
        run: () => openaiStream(ready.url, body, {}, false),
        pids: () => [orch.pid],
      });
      for (const p of paths) await runLoad(4, { maxRequests: 40, maxSeconds: 5 }, p.run); // warm-up
      for (const concurrency of CONCURRENCY) {
        for (const p of paths) {
          const pids = p.pids();
          const cpu0 = pids.reduce((s, pid) => s + cpuSeconds(pid), 0);
          const load = await runLoad(
            concurrency,
            { maxRequests: Math.max(150, concurrency * 4), maxSeconds: CELL_SECONDS },
            p.run,
          );
          const cpu1 = pids.reduce((s, pid) => s + cpuSeconds(pid), 0);
          rows.push({
            variant: variant.name,
            concurrency,
            path: p.name,
            load,
            cpuMsPerRequest:
              pids.length === 0 ? undefined : ((cpu1 - cpu0) * 1000) / Math.max(1, load.requests),
            rssMiB: pids.length === 0 ? undefined : pids.reduce((s, pid) => s + rss(pid).now, 0) / 2 ** 20,
          });
          process.stderr.write(
            `overhead ${variant.name} c=${concurrency} ${p.name}: ${load.rps.toFixed(0)} req/s, ttft p50 ${load.ttft.p50.toFixed(2)} ms${load.errors ? `, ${load.errors} errors (${load.firstError ?? ''})` : ''}\n`,
          );
        }
      }
    } finally {
      for (const p of procs.reverse()) await p.stop();
    }
  }
  return { table: render(rows, hasNginx), results: rows };
}

function render(rows: Row[], hasNginx: boolean): string {
  const direct = (r: Row) =>
    rows.find((d) => d.variant === r.variant && d.concurrency === r.concurrency && d.path === 'direct');
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');
  const body = rows.map((r) => {
    const d = direct(r);
    const added = (a: number, b: number | undefined) =>
      b === undefined || r.path === 'direct' ? '–' : `${a - b >= 0 ? '+' : ''}${f(a - b, 2)}`;
    return [
      r.variant,
      String(r.concurrency),
      r.path,
      f(r.load.rps, 0),
      d ? `${f(r.load.rps / d.load.rps, 2)}×` : '–',
      f(r.load.ttft.p50, 2),
      f(r.load.ttft.p99, 2),
      added(r.load.ttft.p50, d?.load.ttft.p50),
      added(r.load.ttft.p99, d?.load.ttft.p99),
      f(r.load.total.p50, 1),
      f(r.load.total.p99, 1),
      r.cpuMsPerRequest === undefined ? '–' : f(r.cpuMsPerRequest, 2),
      r.rssMiB === undefined ? '–' : f(r.rssMiB, 0),
      r.load.errors > 0 ? String(r.load.errors) : '0',
    ];
  });
  const head = [
    'engine',
    'c',
    'path',
    'req/s',
    'vs direct',
    'TTFT p50 ms',
    'p99',
    'added p50',
    'added p99',
    'total p50 ms',
    'p99',
    'proxy CPU ms/req',
    'proxy RSS MiB',
    'errors',
  ];
  return `${markdownTable(head, body)}${hasNginx ? '' : '\n\n(nginx not installed: its path was skipped)'}`;
}
