/**
 * Backpressure and failure codes on real replicas (SPEC §2.5, §2.6, §3.2, §3.7): each full-queue
 * policy's 429 with real backoff hints, evictions ending streams with typed errors, deadlines,
 * the watchdog, and unavailable pools.
 */
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnginePoolSupervisor } from '../../src/pool/engine-supervisor.js';
import { expectValidResponse, expectValidSseEvent } from '../support/openapi-response.js';
import {
  call,
  readStream,
  simPool,
  startHarness,
  task,
  tinyModelPath,
  tinyPool,
  until,
  type Harness,
  type Reply,
} from '../support/harness.js';

let h: Harness;
let earlyReply: Reply;

function contract(r: Reply): void {
  expectValidResponse({
    method: 'POST',
    path: '/v1/tasks',
    status: r.status,
    headers: Object.fromEntries(r.headers.entries()),
    body: r.json,
  });
}

async function enqueue(body: Record<string, unknown>): Promise<Reply> {
  const r = await call(h.url, 'POST', '/v1/tasks', { body });
  contract(r);
  return r;
}

/** Occupies the pool's only slot with a long generation; resolves once it is running. */
async function blocker(model: string): Promise<string> {
  const body = task(model, { max_tokens: 2000, prompt: 'a', priority: 'batch' });
  expect((await enqueue(body)).status).toBe(202);
  await until(() => {
    const t = h.running.orchestrator.pools.find((p) => p.id === model);
    return (t?.queue.size ?? 1) === 0 && (t?.inFlight.get(`${model}-r0`) ?? 0) === 1;
  });
  return body.task_id;
}

/**
 * The blocker takes ~100 s, and once it has streamed a few tokens the start predictions project
 * that: a task with the default 60 s deadline would be refused 422 DEADLINE_UNMET (admission
 * checks deadlines before queue capacity), not reach the full-queue policy these tests are about.
 */
const FAR = { deadline_ms: 600_000 } as const;

function expect429(r: Reply, code: string, policy: string): void {
  expect(r.status).toBe(429);
  expect(r.json).toMatchObject({
    code,
    policy_label: policy,
    retriable: true,
    retry_after_ms: expect.any(Number),
  });
  const retryAfter = Number(r.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
  expect(Number(r.headers.get('x-backoff-ms'))).toBeGreaterThan(0);
}

beforeAll(async () => {
  const model = await tinyModelPath();
  const broken = join(tmpdir(), `llama-orch-broken-${process.pid}.gguf`);
  await writeFile(broken, 'this is not a GGUF file');
  h = await startHarness(
    {
      pools: [
        tinyPool('reject', model, { queue: { capacity: 1, full_policy: 'reject' } }),
        // Queue policies, not inference: simulated llama.cpp replicas slow enough that the blocker
        // outlasts the test however loaded the machine (it is cancelled at the end).
        simPool('droplru', 'llamacpp', {
          launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 20 } },
          queue: { capacity: 1, full_policy: 'drop-lru' },
        }),
        simPool('shed', 'llamacpp', {
          launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 20 } },
          queue: { capacity: 1, full_policy: 'shed-low-priority' },
        }),
        tinyPool('watchdog', model, { timeouts: { wall_ms: 40, idle_ms: 5_000 } }),
        tinyPool('broken', broken, {
          launch: {
            threads: 1,
            startup_timeout_ms: 20_000,
            restart: { backoff_base_ms: 50, backoff_max_ms: 100, max_failures: 2, cooldown_ms: 600_000 },
          },
        }),
        tinyPool('crash', model),
      ],
    },
    { waitReady: false },
  );
  // Before the replicas finished loading: the pool is still preloading.
  earlyReply = await call(h.url, 'POST', '/v1/tasks', { body: task('reject') });
  await h.running.ready;
});

afterAll(async () => {
  await h?.close();
});

describe('pool readiness at admission (SPEC §2.1 step 3)', () => {
  it('503 POOL_UNREADY while preloading', () => {
    contract(earlyReply);
    expect(earlyReply.status).toBe(503);
    expect(earlyReply.json).toMatchObject({ code: 'POOL_UNREADY', retriable: true, pool_id: 'reject' });
    expect(Number(earlyReply.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('503 POOL_UNAVAILABLE when no replica could start (breaker open), with the cause in pool health', async () => {
    // An unloadable model is a crash loop: retried with backoff until the breaker opens.
    await until(() => {
      const s = h.running.orchestrator.pools.find((p) => p.id === 'broken')?.supervisor.replicas()[0]?.state;
      return s?.kind === 'unready' && s.cause.includes('circuit breaker open');
    }, 20_000);
    const r = await enqueue(task('broken'));
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ code: 'POOL_UNAVAILABLE', pool_id: 'broken' });
    const health = await call(h.url, 'GET', '/v1/pools/broken/health');
    expectValidResponse({
      method: 'GET',
      path: '/v1/pools/{id}/health',
      status: 200,
      body: health.json,
      headers: Object.fromEntries(health.headers.entries()),
    });
    expect(health.json).toMatchObject({ ready: false, last_error: expect.any(String) });
  });
});

describe('full-queue policies (ORCH-3005, ORCH-2007)', () => {
  it('reject: refuses the arrival with 429 ADMISSION_REJECT and real backoff', async () => {
    const running = await blocker('reject');
    const queued = task('reject', { max_tokens: 4 });
    expect((await enqueue(queued)).status).toBe(202);
    expect429(await enqueue(task('reject', { max_tokens: 4 })), 'ADMISSION_REJECT', 'reject');
    await call(h.url, 'POST', `/v1/tasks/${running}/cancel`);
    const s = await readStream(h.url, queued.task_id);
    expect(s.events.at(-1)?.event).toBe('end');
  });

  it('drop-lru: evicts the oldest queued task (batch first), refuses when only higher classes remain', async () => {
    const running = await blocker('droplru');
    const b1 = task('droplru', { priority: 'batch', max_tokens: 4, ...FAR });
    const b2 = task('droplru', { priority: 'batch', max_tokens: 4, ...FAR });
    const i1 = task('droplru', { priority: 'interactive', max_tokens: 4, ...FAR });
    expect((await enqueue(b1)).status).toBe(202);
    expect((await enqueue(b2)).status).toBe(202);
    const evicted = await readStream(h.url, b1.task_id);
    expect(evicted.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'QUEUE_FULL_DROP_LRU' } });
    expectValidSseEvent('error', evicted.events.at(-1)!.data);
    expect((await enqueue(i1)).status).toBe(202);
    expect((await readStream(h.url, b2.task_id)).events.at(-1)?.data['code']).toBe('QUEUE_FULL_DROP_LRU');
    expect429(
      await enqueue(task('droplru', { priority: 'batch', ...FAR })),
      'QUEUE_FULL_DROP_LRU',
      'drop-lru',
    );
    await call(h.url, 'POST', `/v1/tasks/${running}/cancel`);
    expect((await readStream(h.url, i1.task_id)).events.at(-1)?.event).toBe('end');
  });

  it('shed-low-priority: sheds queued batch for interactive, refuses equal priority', async () => {
    const running = await blocker('shed');
    const b1 = task('shed', { priority: 'batch', max_tokens: 4, ...FAR });
    expect((await enqueue(b1)).status).toBe(202);
    expect429(
      await enqueue(task('shed', { priority: 'batch', ...FAR })),
      'ADMISSION_REJECT',
      'shed-low-priority',
    );
    const i1 = task('shed', { priority: 'interactive', max_tokens: 4, ...FAR });
    expect((await enqueue(i1)).status).toBe(202);
    const shed = await readStream(h.url, b1.task_id);
    expect(shed.events.at(-1)).toMatchObject({
      event: 'error',
      data: { code: 'QUEUE_FULL_DROP_LRU', preempted: true },
    });
    await call(h.url, 'POST', `/v1/tasks/${running}/cancel`);
    expect((await readStream(h.url, i1.task_id)).events.at(-1)?.event).toBe('end');
  });

  it('counts backpressure decisions and refusals in the contract metrics', async () => {
    const m = await call(h.url, 'GET', '/metrics');
    expect(m.text).toMatch(/admission_backpressure_events_total\{engine="llamacpp",policy="reject"\} [1-9]/);
    expect(m.text).toMatch(
      /admission_backpressure_events_total\{engine="llamacpp",policy="drop-lru"\} [1-9]/,
    );
    expect(m.text).toMatch(/tasks_rejected_total\{engine="llamacpp",reason="QUEUE_FULL_DROP_LRU"\} [1-9]/);
    expect(m.text).toMatch(/tasks_canceled_total\{[^}]*reason="client"\} [1-9]/);
  });
});

describe('deadlines (ORCH-3079) and the watchdog (ORCH-3016)', () => {
  it('422 DEADLINE_UNMET when the predicted finish misses the deadline', async () => {
    // Teach the pool its decode rate first.
    const warm = task('reject', { max_tokens: 32 });
    await enqueue(warm);
    await readStream(h.url, warm.task_id);
    const r = await enqueue(task('reject', { max_tokens: 400, deadline_ms: 1 }));
    expect(r.status).toBe(422);
    expect(r.json).toMatchObject({ code: 'DEADLINE_UNMET', retriable: false });
  });

  it('a deadline the measured service times cannot meet is refused up front with DEADLINE_UNMET', async () => {
    for (let k = 0; k < 3; k++) {
      const warm = task('reject', { max_tokens: 2 });
      await enqueue(warm);
      await readStream(h.url, warm.task_id);
    }
    const running = await blocker('reject');
    // The only slot runs a 2000-token decode: starting within 60 ms is predicted impossible.
    const late = await enqueue(task('reject', { max_tokens: 1, deadline_ms: 60 }));
    expect(late.status).toBe(422);
    expect(late.json).toMatchObject({ code: 'DEADLINE_UNMET' });
    await call(h.url, 'POST', `/v1/tasks/${running}/cancel`);
  });

  it('DECODE_TIMEOUT ends a task past wall_ms and frees its slot', async () => {
    const long = task('watchdog', { max_tokens: 2000, prompt: 'a' });
    expect((await enqueue(long)).status).toBe(202);
    const s = await readStream(h.url, long.task_id);
    expect(s.events.at(-1)).toMatchObject({ event: 'error', data: { code: 'DECODE_TIMEOUT' } });
    expectValidSseEvent('error', s.events.at(-1)!.data);
    // The slot is free again: the orchestrator's and llama-server's own view (a follow-up task
    // would have to finish within the same 40 ms wall clock, which a loaded machine can break).
    const pool = h.running.orchestrator.pools.find((p) => p.id === 'watchdog');
    await until(() => (pool?.inFlight.get('watchdog-r0') ?? 0) === 0);
    const base = pool?.replica('watchdog-r0')?.adapter.baseUrl ?? '';
    await until(async () => {
      const slots = (await (await fetch(`${base}/slots`)).json()) as { is_processing: boolean }[];
      return slots.every((slot) => !slot.is_processing);
    }, 20_000);
  });
});

describe('engine failure (SPEC §5)', () => {
  it('a killed engine ends its running task with WORKER_RESET, the replica turns unready with the cause, then restarts', async () => {
    const pool = h.running.orchestrator.pools.find((p) => p.id === 'crash');
    const sup = pool?.supervisor;
    if (!(sup instanceof EnginePoolSupervisor)) throw new Error('expected an engine supervisor');
    const running = await blocker('crash');
    // Every state the replica passes through (a loaded machine may restart it before we look).
    const causes: string[] = [];
    const off = sup.onChange((r) => {
      if (r.state.kind === 'unready') causes.push(r.state.cause);
    });
    sup.processOf('crash-r0')?.kill('SIGKILL');
    const s = await readStream(h.url, running);
    expect(s.events.at(-1)).toMatchObject({
      event: 'error',
      data: { code: 'WORKER_RESET', retriable: true },
    });
    await until(() => causes.length > 0);
    expect(causes[0]).toMatch(/SIGKILL/);
    await until(() => sup.replicas()[0]?.state.kind === 'ready', 90_000);
    off();
    const after = task('crash', { max_tokens: 4 });
    expect((await enqueue(after)).status).toBe(202);
    expect((await readStream(h.url, after.task_id)).events.at(-1)?.event).toBe('end');
  });
});
