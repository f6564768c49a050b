/**
 * `scale`: how llama-orch's cost grows with work on this machine.
 * 1. Admission latency (client-side `POST /v1/tasks` → 202) and RSS with 1k, 10k and 100k tasks
 *    queued behind a busy single-slot replica.
 * 2. 1k and 4k concurrent SSE streams relayed from a simulated vLLM replica: event-loop lag p99
 *    (the orchestrator's own `monitorEventLoopDelay` metric), RSS and CPU.
 * 3. Queue operations per second of the scheduler core alone (`PoolQueue`, no I/O).
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { request } from 'undici';
import { PoolQueue, type QueueEntry } from '../src/scheduler/pool-queue.js';
import { markdownTable, percentiles } from './lib/load.js';
import { cpuSeconds, rss, startBenchOrchestrator } from './lib/procs.js';
import { agent } from './lib/stream-clients.js';

const QUICK = process.env['BENCH_QUICK'] === '1';
const MiB = 2 ** 20;

/** A single simulated vLLM replica with `parallel` slots; everything else waits in its queue. */
function start(name: string, parallel: number, tokensPerS: number, capacity: number) {
  return startBenchOrchestrator(
    `scale-${name}`,
    {
      id: 'scale',
      engine: 'vllm',
      model: { id: 'scale' },
      ctx: 4096,
      devices: 'cpu',
      replicas: 1,
      queue: { capacity },
      launch: {
        worker: 'sim',
        parallel,
        sim: {
          tokens_per_s: tokensPerS,
          prefill_tokens_per_s: 1_000_000,
          batch_slowdown: 0,
          kv_tokens: 100_000_000,
        },
      },
    },
    { logging: { level: 'warn' }, limits: { idle_timeout_ms: 120_000 } },
  );
}

const taskBody = (maxTokens: number) =>
  JSON.stringify({
    task_id: randomUUID(),
    session_id: randomUUID(),
    workload: 'completion',
    model_ref: 'scale',
    engine: 'vllm',
    ctx: 4096,
    priority: 'interactive',
    prompt: 'Once upon a time',
    max_tokens: maxTokens,
    deadline_ms: 8_640_000_000, // 100 days: the benchmark queue is deep by design
  });

async function enqueue(base: string, body: string): Promise<{ ms: number; id: string }> {
  const t0 = performance.now();
  const res = await request(`${base}/v1/tasks`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body,
  });
  const text = await res.body.text();
  if (res.statusCode !== 202) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  return { ms: performance.now() - t0, id: (JSON.parse(text) as { task_id: string }).task_id };
}

/** Enqueues `count` tasks with `concurrency` clients; latencies of the last `measure` ones. */
async function fill(base: string, count: number, concurrency: number, maxTokens: number): Promise<number[]> {
  const lat: number[] = [];
  let issued = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < count) {
        issued++;
        lat.push((await enqueue(base, taskBody(maxTokens))).ms);
      }
    }),
  );
  return lat;
}

interface AdmissionRow {
  queued: number;
  p50: number;
  p99: number;
  /** Orchestrator CPU per measured admission, and its event-loop lag p99 while they ran. */
  cpuMsPerAdmission: number;
  lagP99Ms: number;
  /** The machine's 1-minute load average after the measured admissions (the cores are shared). */
  loadAvg: number;
  rssMiB: number;
  fillSeconds: number;
}

async function admission(): Promise<AdmissionRow[]> {
  const levels = QUICK ? [1_000, 10_000] : [1_000, 10_000, 100_000];
  const { proc, ready } = await start('admission', 1, 1, 120_000);
  const rows: AdmissionRow[] = [];
  try {
    // One task holds the only slot for the whole run; everything after it waits in the queue.
    await enqueue(ready.url, taskBody(4000));
    // Warm-up (JIT): 3000 admissions, each canceled at once, so the queue starts empty again.
    let warm = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (warm++ < 3000) {
          const { id } = await enqueue(ready.url, taskBody(16));
          await (
            await request(`${ready.url}/v1/tasks/${id}/cancel`, { method: 'POST', dispatcher: agent })
          ).body.text();
        }
      }),
    );
    let queued = 0;
    for (const level of levels) {
      const t0 = performance.now();
      await fill(ready.url, level - queued - 500, 8, 16);
      const fillSeconds = (performance.now() - t0) / 1000;
      // Measured: 500 admissions at this depth, 8 clients at once.
      await lagP99(ready.url); // resets the lag histogram
      const cpu0 = cpuSeconds(proc.pid);
      const lat = await fill(ready.url, 500, 8, 16);
      const cpuMsPerAdmission = ((cpuSeconds(proc.pid) - cpu0) * 1000) / 500;
      const lagP99Ms = await lagP99(ready.url);
      queued = level;
      const p = percentiles(lat);
      rows.push({
        queued: level,
        p50: p.p50,
        p99: p.p99,
        cpuMsPerAdmission,
        lagP99Ms,
        loadAvg: loadavg()[0] ?? 0,
        rssMiB: rss(proc.pid).now / MiB,
        fillSeconds,
      });
      process.stderr.write(
        `scale admission @${level}: p50 ${p.p50.toFixed(2)} ms p99 ${p.p99.toFixed(2)} ms, RSS ${(rss(proc.pid).now / MiB).toFixed(0)} MiB\n`,
      );
    }
  } finally {
    await proc.stop();
  }
  return rows;
}

interface StreamRow {
  streams: number;
  completed: number;
  errors: number;
  events: number;
  seconds: number;
  lagP99Ms: number;
  rssMiB: number;
  cpuCores: number;
}

async function lagP99(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const v = /^orchestratord_nodejs_eventloop_lag_p99_seconds\s+(\S+)/m.exec(text)?.[1];
  return Number(v) * 1000;
}

async function streams(count: number): Promise<StreamRow> {
  const tokens = 40;
  const { proc, ready } = await start(`streams-${count}`, count, 4, count * 2);
  try {
    await lagP99(ready.url); // resets the lag histogram (prom-client resets it per scrape)
    const cpu0 = cpuSeconds(proc.pid);
    const t0 = performance.now();
    let events = 0;
    let completed = 0;
    let errors = 0;
    let issued = 0;
    const ids: string[] = [];
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (issued < count) {
          issued++;
          ids.push((await enqueue(ready.url, taskBody(tokens))).id);
        }
      }),
    );
    await Promise.all(
      ids.map(async (id) => {
        try {
          const res = await request(`${ready.url}/v1/tasks/${id}/stream`, { dispatcher: agent });
          let tail = '';
          for await (const chunk of res.body) {
            const text = tail + (chunk as Buffer).toString('utf8');
            events += (text.match(/\nevent: /g)?.length ?? 0) + (text.startsWith('event: ') ? 1 : 0);
            tail = '';
            if (text.includes('event: end')) completed++;
          }
        } catch {
          errors++;
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const row: StreamRow = {
      streams: count,
      completed,
      errors,
      events,
      seconds,
      lagP99Ms: await lagP99(ready.url),
      rssMiB: rss(proc.pid).peak / MiB,
      cpuCores: (cpuSeconds(proc.pid) - cpu0) / seconds,
    };
    process.stderr.write(
      `scale streams ${count}: ${completed}/${count} ended, lag p99 ${row.lagP99Ms.toFixed(1)} ms\n`,
    );
    return row;
  } finally {
    await proc.stop();
  }
}

interface CoreRow {
  size: number;
  offersPerS: number;
  takesPerS: number;
}

function queueCore(size: number): CoreRow {
  const q = new PoolQueue<QueueEntry>({
    capacity: size,
    priorityCapacity: { interactive: size, batch: size },
    fullPolicy: 'reject',
    weights: { interactive: 8, batch: 1 },
    deadlineSlackTokens: 256,
  });
  const entries: QueueEntry[] = Array.from({ length: size }, (_, i) => ({
    id: `t${i}`,
    priority: i % 4 === 0 ? 'batch' : 'interactive',
    tenant: `tenant-${i % 16}`,
    cost: 16 + (i % 64),
    deadlineAtMs: 1_000_000 + i,
  }));
  let t0 = performance.now();
  for (const e of entries) q.offer(e);
  const offerS = (performance.now() - t0) / 1000;
  t0 = performance.now();
  while (q.takeNext() !== undefined);
  const takeS = (performance.now() - t0) / 1000;
  return { size, offersPerS: size / offerS, takesPerS: size / takeS };
}

export async function scaleBench(): Promise<{ table: string; results: unknown }> {
  // `BENCH_PARTS`: a comma-separated subset of `admission`, `streams`, `core` (default: all).
  const parts = process.env['BENCH_PARTS']?.split(',').map((s) => s.trim());
  const runs = (part: string): boolean => parts === undefined || parts.includes(part);
  const core = runs('core') ? [1_000, 10_000, 100_000].map(queueCore) : [];
  const adm = runs('admission') ? await admission() : [];
  const str: StreamRow[] = [];
  if (runs('streams')) for (const n of QUICK ? [1_000] : [1_000, 4_000]) str.push(await streams(n));
  const f = (x: number, d = 1) => x.toFixed(d);
  const table = [
    'Admission (`POST /v1/tasks` → 202, 8 clients, 500 measured at each depth):',
    '',
    markdownTable(
      [
        'tasks queued',
        'admission p50 ms',
        'p99 ms',
        'CPU ms / admission',
        'event-loop lag p99 ms',
        'load average',
        'orchestrator RSS MiB',
        'fill time s',
      ],
      adm.map((r) => [
        String(r.queued),
        f(r.p50, 2),
        f(r.p99, 2),
        f(r.cpuMsPerAdmission, 2),
        f(r.lagP99Ms, 1),
        f(r.loadAvg, 1),
        f(r.rssMiB, 0),
        f(r.fillSeconds, 1),
      ]),
    ),
    '',
    'Concurrent SSE streams (40 tokens each at 4 tokens/s, all admitted at once):',
    '',
    markdownTable(
      [
        'streams',
        'ended',
        'errors',
        'events relayed',
        'seconds',
        'event-loop lag p99 ms',
        'peak RSS MiB',
        'CPU cores',
      ],
      str.map((r) => [
        String(r.streams),
        String(r.completed),
        String(r.errors),
        String(r.events),
        f(r.seconds, 1),
        f(r.lagP99Ms, 1),
        f(r.rssMiB, 0),
        f(r.cpuCores, 2),
      ]),
    ),
    '',
    'Scheduler core (`PoolQueue`, 16 tenants, two classes, no I/O):',
    '',
    markdownTable(
      ['entries', 'offers/s', 'takes/s'],
      core.map((r) => [String(r.size), f(r.offersPerS, 0), f(r.takesPerS, 0)]),
    ),
  ].join('\n');
  return { table, results: { admission: adm, streams: str, core } };
}
