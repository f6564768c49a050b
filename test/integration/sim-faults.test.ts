/**
 * Fault injection through the engine simulator: for each fault kind, the orchestrator's reaction
 * as a client and an operator see it — the typed SSE error, the pool's readiness, and no token
 * after the failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/domain/types.js';
import type { PoolRuntime } from '../../src/orchestrator/pool-runtime.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  readStream,
  simPool,
  startHarness,
  task,
  until,
  type Harness,
  type StreamEvent,
} from '../support/harness.js';

let h: Harness;

/** One replica per pool so a fault hits every task of the pool; slow tokens so tasks overlap it. */
const faultPool = (id: string, engine: Engine) =>
  simPool(id, engine, {
    sim: { tokens_per_s: 200 },
    timeouts: { idle_ms: 400, wall_ms: 20_000 },
  });

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [
      // A crash is seen as the connection closing, not through the idle watchdog: a generous
      // idle limit keeps a loaded machine from reading it as a stall.
      simPool('crash', 'vllm', {
        sim: { tokens_per_s: 200 },
        timeouts: { idle_ms: 10_000, wall_ms: 20_000 },
      }),
      faultPool('hang', 'tgi'),
      faultPool('slow', 'triton'),
      // llama-server answers "loading" while it loads; vLLM and TGI do not listen until loaded.
      faultPool('loading', 'llamacpp'),
      faultPool('oom', 'triton'),
      faultPool('refuse', 'tgi'),
    ],
  });
});
afterAll(async () => {
  await h.close();
});

const pool = (id: string): PoolRuntime => {
  const p = h.running.orchestrator.pools.find((x) => x.id === id);
  if (!p) throw new Error(`no pool ${id}`);
  return p;
};

async function inject(poolId: string, faults: Record<string, unknown>): Promise<void> {
  const replica = pool(poolId).supervisor.replicas()[0];
  if (!replica) throw new Error('no replica');
  const res = await fetch(`${replica.adapter.baseUrl}/__sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  expect(res.status).toBe(200);
}

async function submit(poolId: string, extra: Record<string, unknown> = {}): Promise<string> {
  const engine = pool(poolId).config.engine;
  const t = task(poolId, { engine, max_tokens: 200, ...extra });
  const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t });
  expect(r.status).toBe(202);
  return t.task_id;
}

/** The terminal event is the last one, and no token follows a failure. */
function terminal(events: readonly StreamEvent[]): StreamEvent {
  const last = events.at(-1);
  if (!last) throw new Error('empty stream');
  expect(events.filter((e) => e.event === 'end' || e.event === 'error')).toHaveLength(1);
  return last;
}

const health = async (id: string) =>
  (await call(h.url, 'GET', `/v1/pools/${id}/health`, { key: KEYS.ops })).json as {
    ready: boolean;
    simulated: boolean;
    replicas: { state: string; cause?: string }[];
  };

describe('engine simulator faults → orchestrator reaction', () => {
  it('crash: running task ends WORKER_RESET, the replica goes unready with the exit, then restarts', async () => {
    const id = await submit('crash');
    await until(async () => (await health('crash')).replicas[0]?.state === 'ready');
    await new Promise((r) => setTimeout(r, 100));
    await inject('crash', { crash: 3 });
    const ev = terminal((await readStream(h.url, id, { key: KEYS.alice })).events);
    expect(ev).toMatchObject({
      event: 'error',
      data: { code: 'WORKER_RESET', engine: 'vllm', retriable: true },
    });
    await until(async () => (await health('crash')).replicas[0]?.state === 'unready');
    expect((await health('crash')).replicas[0]?.cause).toMatch(/exited with code 3/);
    const refused = await call(h.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task('crash', { engine: 'vllm' }),
    });
    expect(refused.json).toMatchObject({ code: 'POOL_UNREADY', retriable: true });
    await until(async () => (await health('crash')).ready, 90_000);
    const after = await submit('crash', { max_tokens: 4 });
    expect(terminal((await readStream(h.url, after, { key: KEYS.alice })).events).event).toBe('end');
  });

  it('hang: the watchdog ends the task DECODE_TIMEOUT and the engine slot is freed', async () => {
    await inject('hang', { hang: true });
    const id = await submit('hang');
    const ev = terminal((await readStream(h.url, id, { key: KEYS.alice })).events);
    expect(ev).toMatchObject({ event: 'error', data: { code: 'DECODE_TIMEOUT', engine: 'tgi' } });
    const replica = pool('hang').supervisor.replicas()[0];
    await until(async () => {
      const state = (await (await fetch(`${replica?.adapter.baseUrl}/__sim/state`)).json()) as {
        running: number;
      };
      return state.running === 0;
    });
    await inject('hang', {});
  });

  it('slow tokens: below the idle limit the task completes, above it DECODE_TIMEOUT', async () => {
    await inject('slow', { slow_token_ms: 30 });
    const ok = await submit('slow', { max_tokens: 5 });
    const end = terminal((await readStream(h.url, ok, { key: KEYS.alice })).events);
    expect(end.event).toBe('end');
    expect(end.data['decode_ms']).toBeGreaterThanOrEqual(4 * 30);
    await inject('slow', { slow_token_ms: 1_000 });
    const late = await submit('slow', { max_tokens: 5 });
    expect(terminal((await readStream(h.url, late, { key: KEYS.alice })).events)).toMatchObject({
      event: 'error',
      data: { code: 'DECODE_TIMEOUT' },
    });
    await inject('slow', {});
  });

  it('loading: the replica turns unready (503 POOL_UNREADY) while the engine loads, then serves again', async () => {
    await inject('loading', { loading_ms: 1_500 });
    await until(async () => !(await health('loading')).ready, 5_000);
    expect((await health('loading')).replicas[0]?.cause).toMatch(/loading/);
    const refused = await call(h.url, 'POST', '/v1/tasks', {
      key: KEYS.alice,
      body: task('loading', { engine: 'llamacpp' }),
    });
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ code: 'POOL_UNREADY', retriable: true });
    await until(async () => (await health('loading')).ready, 90_000);
    const id = await submit('loading', { max_tokens: 4 });
    expect(terminal((await readStream(h.url, id, { key: KEYS.alice })).events).event).toBe('end');
  });

  it('out of memory mid-stream: WORKER_RESET after the tokens produced so far, none after', async () => {
    await inject('oom', { oom_after_tokens: 3 });
    const id = await submit('oom');
    const { events } = await readStream(h.url, id, { key: KEYS.alice });
    const ev = terminal(events);
    expect(ev).toMatchObject({ event: 'error', data: { code: 'WORKER_RESET', engine: 'triton' } });
    expect(String(ev.data['message'])).toMatch(/out of memory/i);
    expect(events.filter((e) => e.event === 'token')).toHaveLength(3);
    await inject('oom', {});
  });

  it('refusal of new requests: accepted task ends REPLICA_EXHAUSTED (retriable), nothing generated', async () => {
    await inject('refuse', { refuse: true });
    const id = await submit('refuse');
    const { events } = await readStream(h.url, id, { key: KEYS.alice });
    expect(terminal(events)).toMatchObject({
      event: 'error',
      data: { code: 'REPLICA_EXHAUSTED', retriable: true },
    });
    expect(events.filter((e) => e.event === 'token')).toHaveLength(0);
    await inject('refuse', {});
  });

  it('simulated pools say so in health, capabilities and metrics', async () => {
    expect((await health('refuse')).simulated).toBe(true);
    const caps = (await call(h.url, 'GET', '/v1/capabilities', { key: KEYS.ops })).json as {
      engines: { engine: string; simulated: boolean }[];
    };
    expect(caps.engines.every((e) => e.simulated)).toBe(true);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/engine_replica_info\{[^}]*pool_id="refuse"[^}]*simulated="true"\} 1/);
    expect(metrics).toMatch(
      /tgi_queue_size\{[^}]*engine="tgi"[^}]*pool_id="refuse"[^}]*replica_id="refuse-r0"[^}]*model_id="refuse"/,
    );
  });
});
