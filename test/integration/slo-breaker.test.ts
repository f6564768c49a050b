/**
 * The SLO breaker through the public API (ORCH-3040): simulated engines made slow (first tokens
 * above 900 ms) or failing (refused requests) violate a pool's interactive SLO; the breaker opens,
 * batch submissions get a typed retriable 429 with a backoff while interactive ones are still
 * accepted, health, replica sets, metrics and logs show it, and it closes once the engine is
 * healthy again. Small configured windows; every wait is for a condition.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PoolRuntime } from '../../src/orchestrator/pool-runtime.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  simPool,
  sleep,
  startHarness,
  task,
  until,
  type Harness,
} from '../support/harness.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [
      simPool('slo', 'vllm', {
        launch: { worker: 'sim', parallel: 8, health_interval_ms: 100, sim: { tokens_per_s: 2_000 } },
        slo_breaker: { window_ms: 1_000, open_after_ms: 1_500, close_after_ms: 1_500, min_samples: 3 },
      }),
      // Long tasks here end DECODE_TIMEOUT at the wall limit: errors that are the requests', not
      // the replica's (a replica failing every task would be ejected and restarted instead).
      simPool('slo-err', 'vllm', {
        launch: { worker: 'sim', parallel: 8, health_interval_ms: 100, sim: { tokens_per_s: 2_000 } },
        timeouts: { wall_ms: 200, idle_ms: 10_000 },
        slo_breaker: { window_ms: 1_000, open_after_ms: 1_500, close_after_ms: 1_500, min_samples: 3 },
      }),
    ],
  });
});
afterAll(async () => {
  await h.close();
});

const pool = (): PoolRuntime => {
  const p = h.running.orchestrator.pools.find((x) => x.id === 'slo');
  if (!p) throw new Error('no pool slo');
  return p;
};

async function inject(faults: Record<string, unknown>): Promise<void> {
  const replica = pool().supervisor.replicas()[0];
  if (!replica) throw new Error('no replica');
  const res = await fetch(`${replica.adapter.baseUrl}/__sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  expect(res.status).toBe(200);
}

interface BreakerBody {
  enabled: boolean;
  state: 'closed' | 'open' | 'recovering';
  since_ms: number;
  cause: string | null;
}

const breaker = async (poolId = 'slo'): Promise<BreakerBody> =>
  (
    (await call(h.url, 'GET', `/v1/pools/${poolId}/health`, { key: KEYS.ops })).json as {
      slo_breaker: BreakerBody;
    }
  ).slo_breaker;

const submit = (priority: 'interactive' | 'batch', poolId = 'slo', maxTokens = 1) =>
  call(h.url, 'POST', '/v1/tasks', {
    key: KEYS.alice,
    body: task(poolId, { engine: 'vllm', priority, max_tokens: maxTokens }),
  });

/**
 * Interactive work keeps arriving (the SLO window needs finished tasks) until stopped, so that a
 * violation stays continuous while the test looks at the open breaker.
 */
function keepArriving(poolId = 'slo', maxTokens = 1): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      expect((await submit('interactive', poolId, maxTokens)).status).toBe(202);
      await sleep(150); // pacing of arrivals, not a threshold
    }
  })();
  const driver = {
    stop: async () => {
      running = false;
      await loop;
    },
  };
  drivers.push(driver);
  return driver;
}

/** Arrivals still running after a failed test stop with it. */
const drivers: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  for (const d of drivers.splice(0)) await d.stop().catch(() => undefined);
});

const metrics = async () => (await fetch(`${h.url}/metrics`)).text();

describe('SLO breaker (ORCH-3040)', () => {
  it('is closed and admits batch while the interactive SLO holds', async () => {
    expect(await breaker()).toMatchObject({ enabled: true, state: 'closed', cause: null });
    expect((await submit('batch')).status).toBe(202);
    await until(async () => /pool_slo_breaker_open\{engine="vllm",pool_id="slo"\} 0/.test(await metrics()));
  });

  it('slow first tokens open it: batch is shed with a typed backoff, interactive is accepted; closes after recovery', async () => {
    // Every first token takes over a second: the interactive p95 TTFT target is 900 ms.
    await inject({ slow_token_ms: 1_200 });
    const arrivals = keepArriving();
    await until(async () => (await breaker()).state !== 'closed', 60_000);

    const shed = await submit('batch');
    expect(shed.status).toBe(429);
    expect(shed.json).toMatchObject({
      code: 'ADMISSION_REJECT',
      pool_id: 'slo',
      engine: 'vllm',
      retriable: true,
      policy_label: 'shed-low-priority',
    });
    const body = shed.json as { message: string; retry_after_ms: number };
    expect(body.message).toMatch(/SLO breaker of pool 'slo'/);
    expect(body.retry_after_ms).toBeGreaterThan(0);
    expect(Number(shed.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(shed.headers.get('x-backoff-ms'))).toBeGreaterThan(0);
    // The protected class is never shed.
    expect((await submit('interactive')).status).toBe(202);

    const open = await breaker();
    expect(['open', 'recovering']).toContain(open.state);
    expect(open.cause).toMatch(/interactive p95 time to first token \d+ ms > 900 ms/);
    const sets = (await call(h.url, 'GET', '/v1/replicasets', { key: KEYS.ops })).json as {
      replica_sets: { members: { pool_id: string; slo_breaker: BreakerBody }[] }[];
    };
    const member = sets.replica_sets.flatMap((s) => s.members).find((m) => m.pool_id === 'slo');
    expect(member?.slo_breaker.state).not.toBe('closed');
    const text = await metrics();
    expect(text).toMatch(/pool_slo_breaker_open\{engine="vllm",pool_id="slo"\} 1/);
    expect(text).toMatch(/pool_slo_breaker_shed_total\{engine="vllm",pool_id="slo",priority="batch"\} [1-9]/);
    expect(text).toMatch(/tasks_rejected_total\{engine="vllm",reason="ADMISSION_REJECT"\} [1-9]/);
    expect(text).not.toMatch(/pool_slo_breaker_shed_total\{[^}]*priority="interactive"/);
    const logged = h.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toContainEqual(
      expect.objectContaining({
        event: 'pool.slo_breaker',
        pool_id: 'slo',
        state: 'open',
        previous_state: 'closed',
      }),
    );

    // The engine is fast again and nothing arrives: the slow tasks drain, leave the window, and
    // after close_after_ms of a met SLO the breaker closes by itself.
    await inject({});
    await arrivals.stop();
    await until(async () => (await breaker()).state === 'closed', 60_000);
    expect((await submit('batch')).status).toBe(202);
    expect(await metrics()).toMatch(/pool_slo_breaker_open\{engine="vllm",pool_id="slo"\} 0/);
    expect(h.logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toContainEqual(
      expect.objectContaining({ event: 'pool.slo_breaker', pool_id: 'slo', state: 'closed' }),
    );
  }, 150_000);

  it('failing requests open it too (error rate), naming the cause', async () => {
    // 1500 tokens at 2000/s cannot finish within the 200 ms wall limit: each ends DECODE_TIMEOUT.
    const arrivals = keepArriving('slo-err', 1_500);
    await until(async () => (await breaker('slo-err')).state !== 'closed', 60_000);
    expect((await breaker('slo-err')).cause).toMatch(/interactive error rate [\d.]+% > 0\.5%/);
    expect((await submit('batch', 'slo-err')).status).toBe(429);
    await arrivals.stop();
    await until(async () => (await breaker('slo-err')).state === 'closed', 60_000);
    expect((await submit('batch', 'slo-err')).status).toBe(202);
  }, 150_000);
});
