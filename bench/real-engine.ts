/**
 * `real-engine`: tokens/s and time to first token through llama-orch vs direct to the same
 * llama-server replicas (the generated tiny GGUF, CPU), at concurrency 1 and 8. The
 * orchestrator launches the replicas; the direct client round-robins over their URLs with the
 * same request the llama.cpp adapter sends (`POST /completion`, streamed, seeded sampling).
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { writeTinyGguf } from '../src/models/tiny-gguf.js';
import { markdownTable, percentiles } from './lib/load.js';
import { cpuSeconds, rss, startBenchOrchestrator } from './lib/procs.js';
import { agent, orchStream, send, sseFrames } from './lib/stream-clients.js';

const TOKENS = 128;
const REPLICAS = 2;
const QUICK = process.env['BENCH_QUICK'] === '1';
const SECONDS = QUICK ? 3 : 10;

interface Sample {
  ttftMs: number;
  tokens: number;
  totalMs: number;
}

async function direct(base: string, seed: number): Promise<Sample> {
  const t0 = performance.now();
  const res = await send(`${base}/completion`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      prompt: 'Once upon a time',
      n_predict: TOKENS,
      stream: true,
      seed,
      temperature: 0.8,
      top_k: 40,
      top_p: 0.95,
      cache_prompt: true,
      ignore_eos: true,
    }),
  });
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
  let ttft: number | undefined;
  let tokens = 0;
  for await (const frame of sseFrames(res.body)) {
    if (!frame.startsWith('data: ')) continue;
    const d = JSON.parse(frame.slice(6)) as { stop?: boolean; tokens_predicted?: number };
    ttft ??= performance.now() - t0;
    if (d.stop === true) tokens = d.tokens_predicted ?? tokens;
  }
  return { ttftMs: ttft ?? NaN, tokens, totalMs: performance.now() - t0 };
}

async function viaOrch(base: string, seed: number): Promise<Sample> {
  const prompt = 'Once upon a time';
  return orchStream(base, {
    model_ref: 'tiny',
    engine: 'llamacpp',
    ctx: 512,
    prompt,
    max_tokens: TOKENS,
    seed,
  });
}

async function load(
  concurrency: number,
  one: (seed: number) => Promise<Sample>,
): Promise<{ samples: Sample[]; seconds: number }> {
  const samples: Sample[] = [];
  let seed = 1;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) samples.push(await one(seed++));
    }),
  );
  return { samples, seconds: (performance.now() - t0) / 1000 };
}

export async function realEngineBench(): Promise<{ table: string; results: unknown }> {
  const model = join(tmpdir(), 'llama-orch-bench', 'tiny-ctx512.gguf');
  await writeTinyGguf(model, { ctx: 512 });
  const { proc, ready } = await startBenchOrchestrator('real', {
    id: 'tiny',
    engine: 'llamacpp',
    model: { id: 'tiny', path: model },
    ctx: 512,
    devices: 'cpu',
    replicas: REPLICAS,
    queue: { capacity: 1024 },
    launch: { threads: 1, parallel: 4, startup_timeout_ms: 60_000 },
  });
  const urls = ready.replicas['tiny'] ?? [];
  let rr = 0;
  const rows: {
    concurrency: number;
    path: string;
    tps: number;
    ttft: { p50: number; p99: number };
    requests: number;
    cpuMs?: number;
    rssMiB?: number;
  }[] = [];
  try {
    const paths = [
      { name: 'direct', one: (seed: number) => direct(urls[rr++ % urls.length]!, seed), pid: undefined },
      { name: 'llama-orch', one: (seed: number) => viaOrch(ready.url, seed), pid: proc.pid },
    ];
    for (const p of paths) await load(2, p.one); // warm-up
    for (const concurrency of [1, 8])
      for (const p of paths) {
        const cpu0 = p.pid === undefined ? 0 : cpuSeconds(p.pid);
        const { samples, seconds } = await load(concurrency, p.one);
        const tokens = samples.reduce((s, x) => s + x.tokens, 0);
        rows.push({
          concurrency,
          path: p.name,
          tps: tokens / seconds,
          ttft: percentiles(samples.map((s) => s.ttftMs)),
          requests: samples.length,
          ...(p.pid === undefined
            ? {}
            : {
                cpuMs: ((cpuSeconds(p.pid) - cpu0) * 1000) / Math.max(1, samples.length),
                rssMiB: rss(p.pid).now / 2 ** 20,
              }),
        });
        process.stderr.write(
          `real-engine c=${concurrency} ${p.name}: ${(tokens / seconds).toFixed(0)} tokens/s\n`,
        );
      }
  } finally {
    await proc.stop();
  }
  const f = (x: number, d = 1) => x.toFixed(d);
  const table = markdownTable(
    [
      'c',
      'path',
      'tokens/s',
      'vs direct',
      'TTFT p50 ms',
      'TTFT p99 ms',
      'added TTFT p50',
      'requests',
      'orchestrator CPU ms/req',
      'RSS MiB',
    ],
    rows.map((r) => {
      const d = rows.find((x) => x.concurrency === r.concurrency && x.path === 'direct');
      return [
        String(r.concurrency),
        r.path,
        f(r.tps, 0),
        d ? `${f(r.tps / d.tps, 2)}×` : '–',
        f(r.ttft.p50, 2),
        f(r.ttft.p99, 2),
        d && r.path !== 'direct'
          ? `${r.ttft.p50 >= d.ttft.p50 ? '+' : ''}${f(r.ttft.p50 - d.ttft.p50, 2)}`
          : '–',
        String(r.requests),
        r.cpuMs === undefined ? '–' : f(r.cpuMs, 2),
        r.rssMiB === undefined ? '–' : f(r.rssMiB, 0),
      ];
    }),
  );
  return {
    table: `${REPLICAS} llama-server replicas (CPU, 1 thread, 4 slots each), ${TOKENS} tokens per request\n\n${table}`,
    results: rows,
  };
}
