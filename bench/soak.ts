/**
 * `soak`: a bounded mixed load against one orchestrator for `SOAK_SECONDS` (default 900), to show
 * that memory and event-loop lag stay flat under long-running traffic. Three simulated pools (a
 * llama.cpp-dialect and a vLLM-dialect generation pool, and a vLLM embedding-only pool) serve
 * closed-loop clients that mix: `POST /v1/tasks` streamed to the end, cancelled mid-stream, or
 * abandoned by a disconnecting client; OpenAI-compatible chat completions (streamed and not) and
 * embeddings; sessions reused across tasks and then deleted; and refusals (bad bodies, a tenant
 * over its rate and concurrency quotas). Every few seconds it samples the orchestrator's RSS
 * (`/proc/<pid>/status`), V8 heap used and event-loop lag p99 (its own `/metrics`), and prints the
 * samples over time, first- vs last-quartile growth and a PASS/FAIL verdict against the bound.
 */
import { createHash, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { request } from 'undici';
import type { RawConfig, RawPool } from '../src/config/schema.js';
import { markdownTable, quantile } from './lib/load.js';
import { forkTs, rss, type BenchOrchestrator } from './lib/procs.js';
import { agent, sseFrames } from './lib/stream-clients.js';

const SECONDS = Number(process.env['SOAK_SECONDS'] ?? 900);
const SAMPLE_MS = Number(process.env['SOAK_SAMPLE_MS'] ?? 5_000);
const WARMUP_SHARE = 0.1;
/** The bound: last-quartile median over first-quartile median (after warm-up), and lag p99. */
const BOUND = { rssGrowth: 1.25, heapGrowth: 1.25, lagP99Ms: 100 };
const CLIENTS = 24;
/**
 * Finished tasks' events and idle sessions are kept for this long (defaults: 5 and 10 minutes);
 * shortened so that the run reaches its steady state early: memory held inside these windows is
 * by design, growth beyond them is what the bound catches.
 */
const RETENTION_MS = 60_000;
/** Samples before this time are warm-up (JIT, pools, retention windows filling) and left out of the bound. */
const WARMUP_S = Math.max(SECONDS * WARMUP_SHARE, (1.5 * RETENTION_MS) / 1000);
const MiB = 2 ** 20;
const DATA_DIR = `/tmp/llorch-bench-soak-${process.pid}`;

const KEYS = { a: 'soak-key-a', b: 'soak-key-b', capped: 'soak-key-capped' } as const;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

const sim = { tokens_per_s: 200, prefill_tokens_per_s: 1_000_000, batch_slowdown: 0, kv_tokens: 1_000_000 };
const pool = (id: string, engine: RawPool['engine'], launch: Partial<NonNullable<RawPool['launch']>> = {}) =>
  ({
    id,
    engine,
    model: { id },
    ctx: 4096,
    devices: 'cpu',
    replicas: 1,
    queue: { capacity: 1024 },
    session: { ttl_ms: RETENTION_MS },
    launch: { worker: 'sim', parallel: 32, sim, ...launch },
  }) satisfies RawPool;

function config(): RawConfig {
  return {
    profile: 'dev',
    listen: { host: '127.0.0.1', port: 0 },
    logging: { level: 'warn' },
    sse: { retention_ms: RETENTION_MS },
    data_dir: DATA_DIR,
    auth: {
      keys: [
        { id: 'a', tenant: 'soak-a', sha256: sha(KEYS.a), scopes: ['data', 'metrics'] },
        { id: 'b', tenant: 'soak-b', sha256: sha(KEYS.b), scopes: ['data'] },
        { id: 'capped', tenant: 'soak-capped', sha256: sha(KEYS.capped), scopes: ['data'] },
      ],
    },
    fairness: { tenants: [{ id: 'soak-capped', rps: 1, burst: 1, max_concurrent: 1 }] },
    pools: [
      pool('gen-llama', 'llamacpp'),
      pool('gen-vllm', 'vllm'),
      pool('embed', 'vllm', { extra_args: ['--task', 'embed'] }),
    ],
  };
}

/** What each kind of operation did: count, and outcomes by status. 5xx and transport errors are errors. */
class Tally {
  readonly ops = new Map<string, Map<string, number>>();
  errors = 0;
  firstError: string | undefined;
  add(op: string, outcome: string): void {
    const m = this.ops.get(op) ?? new Map<string, number>();
    m.set(outcome, (m.get(outcome) ?? 0) + 1);
    this.ops.set(op, m);
  }
  error(op: string, message: string): void {
    this.errors++;
    this.firstError ??= `${op}: ${message}`;
    this.add(op, 'error');
  }
  total(): number {
    let n = 0;
    for (const m of this.ops.values()) for (const v of m.values()) n += v;
    return n;
  }
}

const auth = (key: string) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });

async function post(base: string, path: string, key: string, body: unknown) {
  const res = await request(`${base}${path}`, {
    method: 'POST',
    dispatcher: agent,
    headers: auth(key),
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

const codeOf = (text: string) => /"code":"([A-Z_]+)"/.exec(text)?.[1] ?? '';

type StreamMode = 'end' | 'cancel' | 'disconnect';

/** One task through the two-step API; `cancel` cancels after the first token, `disconnect` walks away. */
async function taskRun(
  base: string,
  key: string,
  t: Tally,
  modelRef: string,
  engine: string,
  sessionId: string,
  mode: StreamMode,
) {
  const op = `task ${mode}`;
  const taskId = randomUUID();
  const enq = await post(base, '/v1/tasks', key, {
    task_id: taskId,
    session_id: sessionId,
    workload: 'completion',
    model_ref: modelRef,
    engine,
    ctx: 4096,
    priority: Math.random() < 0.5 ? 'interactive' : 'batch',
    prompt: 'Once upon a time',
    max_tokens: 48,
    deadline_ms: 600_000,
  });
  if (enq.status >= 500) return t.error(op, `POST HTTP ${enq.status}: ${enq.text.slice(0, 200)}`);
  if (enq.status !== 202) return t.add(op, `refused ${enq.status} ${codeOf(enq.text)}`);
  const res = await request(`${base}/v1/tasks/${taskId}/stream`, { dispatcher: agent, headers: auth(key) });
  if (res.statusCode !== 200) {
    await res.body.text();
    return t.error(op, `stream HTTP ${res.statusCode}`);
  }
  let outcome: string | undefined;
  for await (const frame of sseFrames(res.body)) {
    if (frame.startsWith('event: token') && outcome === undefined) {
      if (mode === 'disconnect') {
        res.body.destroy();
        return t.add(op, 'disconnected');
      }
      if (mode === 'cancel') {
        outcome = 'cancel sent';
        const c = await request(`${base}/v1/tasks/${taskId}/cancel`, {
          method: 'POST',
          dispatcher: agent,
          headers: { authorization: `Bearer ${key}` },
        });
        await c.body.text();
        if (c.statusCode >= 500) return t.error(op, `cancel HTTP ${c.statusCode}`);
      }
    } else if (frame.startsWith('event: end'))
      outcome = frame.includes('"canceled":true') ? 'canceled' : 'end';
    else if (frame.startsWith('event: error'))
      outcome = frame.includes('CANCELED') || frame.includes('CANCELLED') ? 'canceled' : 'error event';
  }
  if (outcome === undefined || outcome === 'cancel sent')
    return t.error(op, 'stream ended without a terminal event');
  if (outcome === 'error event' && mode !== 'cancel') return t.error(op, 'task failed');
  t.add(op, outcome);
}

async function chat(base: string, key: string, t: Tally, model: string, stream: boolean) {
  const op = `chat ${stream ? 'stream' : 'json'}`;
  const r = await post(base, '/v1/chat/completions', key, {
    model,
    messages: [{ role: 'user', content: 'Say something.' }],
    max_tokens: 32,
    stream,
  });
  if (r.status >= 500) return t.error(op, `HTTP ${r.status}: ${r.text.slice(0, 200)}`);
  if (r.status !== 200) return t.add(op, `refused ${r.status}`);
  if (stream && !r.text.includes('[DONE]')) return t.error(op, 'stream without [DONE]');
  t.add(op, '200');
}

async function embeddings(base: string, key: string, t: Tally) {
  const r = await post(base, '/v1/embeddings', key, { model: 'embed', input: ['alpha', 'beta', 'gamma'] });
  if (r.status >= 500) return t.error('embeddings', `HTTP ${r.status}: ${r.text.slice(0, 200)}`);
  t.add('embeddings', String(r.status));
}

/** Requests that must be refused with a 4xx: malformed bodies, and a tenant over its quotas. */
async function refusal(base: string, t: Tally, n: number) {
  const cases: [string, string, unknown][] = [
    ['bad json', KEYS.a, '{"task_id": '],
    ['bad body', KEYS.b, { task_id: randomUUID(), workload: 'completion', max_tokens: -1 }],
    ['over quota', KEYS.capped, null],
  ];
  const [name, key, body] = cases[n % cases.length] ?? cases[0]!;
  const r =
    body === null
      ? await post(base, '/v1/tasks', key, {
          task_id: randomUUID(),
          session_id: randomUUID(),
          workload: 'completion',
          model_ref: 'gen-vllm',
          engine: 'vllm',
          ctx: 4096,
          priority: 'batch',
          prompt: 'x',
          max_tokens: 200,
          deadline_ms: 600_000,
        })
      : await post(base, '/v1/tasks', key, body);
  const op = `refusal ${name}`;
  if (r.status >= 500) return t.error(op, `HTTP ${r.status}: ${r.text.slice(0, 200)}`);
  t.add(op, String(r.status));
}

async function client(i: number, base: string, t: Tally, until: number): Promise<void> {
  const key = i % 2 === 0 ? KEYS.a : KEYS.b;
  let session = randomUUID();
  // A session belongs to one model: each client keeps to one generation pool.
  const [modelRef, engine] = i % 4 < 2 ? ['gen-llama', 'llamacpp'] : ['gen-vllm', 'vllm'];
  let n = 0;
  while (performance.now() < until) {
    const roll = Math.random();
    try {
      if (roll < 0.35) await taskRun(base, key, t, modelRef, engine, session, 'end');
      else if (roll < 0.45) await taskRun(base, key, t, modelRef, engine, session, 'cancel');
      else if (roll < 0.52) await taskRun(base, key, t, modelRef, engine, session, 'disconnect');
      else if (roll < 0.64) await chat(base, key, t, modelRef, true);
      else if (roll < 0.74) await chat(base, key, t, modelRef, false);
      else if (roll < 0.84) await embeddings(base, key, t);
      else if (roll < 0.92) await refusal(base, t, n);
      else {
        // A session is reused for a few tasks, then deleted and a new one started.
        const d = await request(`${base}/v1/sessions/${session}`, {
          method: 'DELETE',
          dispatcher: agent,
          headers: { authorization: `Bearer ${key}` },
        });
        await d.body.text();
        if (d.statusCode >= 500) t.error('session delete', `HTTP ${d.statusCode}`);
        else t.add('session delete', String(d.statusCode));
        session = randomUUID();
      }
    } catch (err) {
      t.error('transport', (err as Error).message);
    }
    n++;
  }
}

interface Sample {
  s: number;
  rssMiB: number;
  heapMiB: number | undefined;
  lagP99Ms: number | undefined;
  ops: number;
  errors: number;
}

async function scrape(base: string): Promise<{ heap: number | undefined; lag: number | undefined }> {
  const text = await (
    await request(`${base}/metrics`, { dispatcher: agent, headers: { authorization: `Bearer ${KEYS.a}` } })
  ).body.text();
  const metric = (name: string) => {
    const v = new RegExp(`^orchestratord_${name}\\s+(\\S+)`, 'm').exec(text)?.[1];
    return v === undefined ? undefined : Number(v);
  };
  const lag = metric('nodejs_eventloop_lag_p99_seconds');
  return { heap: metric('nodejs_heap_size_used_bytes'), lag: lag === undefined ? undefined : lag * 1000 };
}

const median = (xs: number[]) => quantile(xs, 0.5);

export async function soakBench(): Promise<{ table: string; results: unknown }> {
  const { proc, ready } = await forkTs<BenchOrchestrator>(
    new URL('./lib/orchestrator-child.ts', import.meta.url).pathname,
    config(),
  );
  const t = new Tally();
  const samples: Sample[] = [];
  const t0 = performance.now();
  const until = t0 + SECONDS * 1000;
  try {
    await scrape(ready.url); // resets the lag histogram (prom-client resets it per scrape)
    const load = Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i, ready.url, t, until)));
    let stopSampling = false;
    const sampler = (async () => {
      while (!stopSampling) {
        await new Promise((r) => setTimeout(r, SAMPLE_MS));
        const m = await scrape(ready.url);
        const s: Sample = {
          s: (performance.now() - t0) / 1000,
          rssMiB: rss(proc.pid).now / MiB,
          heapMiB: m.heap === undefined ? undefined : m.heap / MiB,
          lagP99Ms: m.lag,
          ops: t.total(),
          errors: t.errors,
        };
        samples.push(s);
        process.stderr.write(
          `soak ${s.s.toFixed(0)} s: RSS ${s.rssMiB.toFixed(0)} MiB, heap ${s.heapMiB?.toFixed(0) ?? '–'} MiB, lag p99 ${s.lagP99Ms?.toFixed(1) ?? '–'} ms, ${s.ops} ops, ${s.errors} errors\n`,
        );
      }
    })();
    await load;
    stopSampling = true;
    await sampler;
  } finally {
    await proc.stop();
    await rm(DATA_DIR, { recursive: true, force: true });
  }
  return render(samples, t);
}

function render(samples: Sample[], t: Tally): { table: string; results: unknown } {
  const f = (x: number | undefined, d = 0) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
  // About a dozen rows over time, each the last sample of its window (lag: the window's worst).
  const windows = 12;
  const per = Math.max(1, Math.ceil(samples.length / windows));
  const overTime: string[][] = [];
  for (let i = 0; i < samples.length; i += per) {
    const w = samples.slice(i, i + per);
    const last = w.at(-1)!;
    const lags = w.flatMap((s) => (s.lagP99Ms === undefined ? [] : [s.lagP99Ms]));
    overTime.push([
      f(last.s),
      f(last.rssMiB),
      f(last.heapMiB),
      lags.length ? f(Math.max(...lags), 1) : '–',
      String(last.ops),
      String(last.errors),
    ]);
  }
  const measured = samples.filter((s) => s.s >= WARMUP_S);
  const q = Math.max(1, Math.floor(measured.length / 4));
  const first = measured.slice(0, q);
  const lastQ = measured.slice(-q);
  const med = (xs: Sample[], k: 'rssMiB' | 'heapMiB') =>
    median(xs.flatMap((s) => (s[k] === undefined ? [] : [s[k]])));
  const rssGrowth = med(lastQ, 'rssMiB') / med(first, 'rssMiB');
  // Heap used between collections includes garbage (V8 lets old space grow before a major GC), so
  // its median follows GC timing; each quartile's lowest sample (a post-GC trough) tracks the live heap.
  const low = (xs: Sample[]) => Math.min(...xs.flatMap((s) => (s.heapMiB === undefined ? [] : [s.heapMiB])));
  const heapGrowth = low(lastQ) / low(first);
  const heapMedianGrowth = med(lastQ, 'heapMiB') / med(first, 'heapMiB');
  const lags = measured.flatMap((s) => (s.lagP99Ms === undefined ? [] : [s.lagP99Ms]));
  const worstLag = lags.length ? Math.max(...lags) : NaN;
  // A single sample's p99 on a shared machine is at the mercy of a GC pause or a neighbour:
  // the bound is on the last quartile's typical p99, the worst sample is reported beside it.
  const lastLag = median(lastQ.flatMap((s) => (s.lagP99Ms === undefined ? [] : [s.lagP99Ms])));
  const checks = [
    ['RSS, last / first quartile (median)', rssGrowth, BOUND.rssGrowth, `≤ ${BOUND.rssGrowth}×`, 2],
    [
      'V8 heap used, last / first quartile (lowest sample)',
      heapGrowth,
      BOUND.heapGrowth,
      `≤ ${BOUND.heapGrowth}×`,
      2,
    ],
    ['event-loop lag p99, last quartile (median, ms)', lastLag, BOUND.lagP99Ms, `≤ ${BOUND.lagP99Ms} ms`, 1],
    ['5xx answers and transport errors', t.errors, 0, '0', 0],
  ] as const;
  const verdicts = checks.map(([name, v, bound, shown, d]) => [
    name,
    f(v, d),
    shown,
    Number.isFinite(v) && v <= bound ? 'PASS' : 'FAIL',
  ]);
  const pass = verdicts.every((v) => v[3] === 'PASS');
  const opsRows = [...t.ops.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([op, m]) => [
      op,
      [...m.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}: ${v}`)
        .join(', '),
    ]);
  const ranFor = samples.at(-1)?.s ?? 0;
  const table = [
    `${f(ranFor)} s of mixed load (SOAK_SECONDS=${SECONDS}), ${CLIENTS} closed-loop clients, a sample every ${SAMPLE_MS / 1000} s; the first ${f(WARMUP_S)} s are warm-up, left out of the bound; finished tasks and idle sessions are kept ${RETENTION_MS / 1000} s.`,
    '',
    markdownTable(['t s', 'RSS MiB', 'heap used MiB', 'lag p99 ms', 'operations', 'errors'], overTime),
    '',
    markdownTable(['operation', 'outcomes'], opsRows),
    '',
    markdownTable(['check', 'value', 'bound', 'verdict'], verdicts),
    '',
    `Worst event-loop lag p99 of one sample after warm-up: ${f(worstLag, 1)} ms; heap used, last / first quartile by median (GC timing included): ${f(heapMedianGrowth, 2)}.`,
    '',
    `${pass ? 'PASS' : 'FAIL'}${t.firstError ? ` (first error: ${t.firstError})` : ''}`,
  ].join('\n');
  return {
    table,
    results: {
      seconds: ranFor,
      clients: CLIENTS,
      bound: BOUND,
      samples,
      operations: Object.fromEntries([...t.ops].map(([k, m]) => [k, Object.fromEntries(m)])),
      rssGrowth,
      heapGrowth,
      heapMedianGrowth,
      worstLagP99Ms: worstLag,
      lastQuartileLagP99Ms: lastLag,
      errors: t.errors,
      firstError: t.firstError,
      pass,
    },
  };
}
