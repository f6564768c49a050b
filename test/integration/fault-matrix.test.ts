/**
 * Each engine fault on one replica of a two-replica pool (real simulator processes, SPEC §17 §5):
 * work is routed around the faulty replica, the replica is ejected and its engine restarted (a
 * new process, faults gone) and then serves again, and no engine process outlives the
 * orchestrator. Freezes and `kill -9` of the parent have their own tests (engine-recovery,
 * no-orphans, orphan-reaping).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const FAULTS = {
  refuse: { refuse: true },
  hang: { hang: true },
  crash: { crash: 3 },
  oom: { oom_after_tokens: 2 },
} as const;
type Kind = keyof typeof FAULTS;

let h: Harness;
const seenPids = new Set<number>();

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: (Object.keys(FAULTS) as Kind[]).map((kind) =>
      simPool(`fm-${kind}`, 'vllm', {
        replicas: 2,
        // A hang is seen by the idle watchdog; the other faults close or refuse the request.
        timeouts: { idle_ms: kind === 'hang' ? 800 : 10_000, wall_ms: 30_000 },
        launch: {
          worker: 'sim',
          parallel: 1,
          health_interval_ms: 200,
          restart: { backoff_base_ms: 100, backoff_max_ms: 500 },
          sim: { tokens_per_s: 400 },
        },
      }),
    ),
  });
}, 120_000);

afterAll(async () => {
  await h?.close();
  // No engine outlives the orchestrator (the harness close waits for the engines' exit).
  await until(() => [...seenPids].every((pid) => !alive(pid)), 90_000);
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const pool = (kind: Kind): PoolRuntime => {
  const p = h.running.orchestrator.pools.find((x) => x.id === `fm-${kind}`);
  if (!p) throw new Error(`no pool fm-${kind}`);
  return p;
};

async function pidOf(kind: Kind, index: number): Promise<number> {
  const r = pool(kind).supervisor.replicas()[index];
  if (!r) throw new Error('no replica');
  const pid = ((await (await fetch(`${r.adapter.baseUrl}/__sim/state`)).json()) as { pid: number }).pid;
  seenPids.add(pid);
  return pid;
}

async function inject(kind: Kind): Promise<void> {
  const r = pool(kind).supervisor.replicas()[0];
  if (!r) throw new Error('no replica');
  const res = await fetch(`${r.adapter.baseUrl}/__sim/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(FAULTS[kind]),
  });
  expect(res.status).toBe(200);
}

async function run(kind: Kind): Promise<StreamEvent[]> {
  const t = task(`fm-${kind}`, { engine: 'vllm', max_tokens: 8 });
  const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t });
  expect(r.status).toBe(202);
  return (await readStream(h.url, t.task_id, { key: KEYS.alice })).events;
}

const servedBy = (events: readonly StreamEvent[]): string | undefined => {
  const end = events.at(-1);
  return end?.event === 'end' ? (end.data['replica_id'] as string) : undefined;
};

describe.each(Object.keys(FAULTS) as Kind[])('fault %s on one of two replicas', (kind) => {
  it('is routed around, the replica is restarted and serves again, nothing is orphaned', async () => {
    await until(() => pool(kind).readyReplicas().length === 2, 60_000);
    const before = await pidOf(kind, 0);
    await pidOf(kind, 1);
    await inject(kind);
    const outcomes: StreamEvent[][] = [];
    for (let i = 0; i < 6; i++) outcomes.push(await run(kind));
    for (const events of outcomes) {
      // Exactly one terminal event, and it is the last: no token after a failure.
      expect(events.filter((e) => e.event === 'end' || e.event === 'error')).toHaveLength(1);
      expect(['end', 'error']).toContain(events.at(-1)?.event);
    }
    const failed = outcomes.filter((e) => e.at(-1)?.event === 'error');
    if (kind === 'oom') {
      // Tokens were already streamed: no re-dispatch (it would duplicate them); the replica is
      // ejected after three such failures and the rest runs on the healthy one.
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.length).toBeLessThanOrEqual(3);
      for (const f of failed) expect(f.at(-1)?.data['code']).toBe('WORKER_RESET');
      for (const f of failed) expect(f.filter((e) => e.event === 'token').length).toBeGreaterThan(0);
      expect(outcomes.slice(3).every((e) => servedBy(e) === 'fm-oom-r1')).toBe(true);
    } else {
      // Failed before the first token: dispatched once more, to the healthy replica.
      expect(failed).toEqual([]);
      expect(outcomes.every((e) => servedBy(e) === `fm-${kind}-r1`)).toBe(true);
    }
    // Recovery: the faulty replica was restarted (a new process, without the fault) ...
    const r0 = `fm-${kind}-r0`;
    await until(async () => {
      if (pool(kind).replica(r0)?.state.kind !== 'ready') return false;
      return (await pidOf(kind, 0)) !== before;
    }, 60_000);
    await until(() => !alive(before), 90_000);
    // ... and serves again: with both idle, placement's tie goes to r0, no longer ejected.
    expect(servedBy(await run(kind))).toBe(r0);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`pool_restarts_total\\{[^}]*replica_id="${r0}"[^}]*\\} [1-9]`));
  }, 120_000);
});
