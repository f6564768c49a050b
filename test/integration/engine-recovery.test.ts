/**
 * Engines recovered, not just watched (SPEC §17 §5), with real simulator processes: a frozen
 * engine (SIGSTOP: it accepts connections and never answers) is made unready at its first failed
 * health check, work goes to the other replica meanwhile, and after a few failed checks the
 * engine is killed and restarted under the restart policy.
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
} from '../support/harness.js';

let h: Harness;
let frozenPid: number | undefined;

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    pools: [
      simPool('freeze', 'vllm', {
        replicas: 2,
        launch: {
          worker: 'sim',
          health_interval_ms: 200,
          health_timeout_ms: 500,
          parallel: 2,
          sim: { tokens_per_s: 2_000 },
        },
      }),
    ],
  });
});
afterAll(async () => {
  // A stopped process ignores SIGTERM until continued: never leave one behind.
  if (frozenPid !== undefined) {
    try {
      process.kill(frozenPid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
  await h.close();
});

const pool = (): PoolRuntime => {
  const p = h.running.orchestrator.pools.find((x) => x.id === 'freeze');
  if (!p) throw new Error('no pool');
  return p;
};

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function pidOf(baseUrl: string): Promise<number> {
  return ((await (await fetch(`${baseUrl}/__sim/state`)).json()) as { pid: number }).pid;
}

describe('a frozen engine', () => {
  it('goes unready at once, is routed around, then is killed and restarted', async () => {
    await until(() => pool().readyReplicas().length === 2, 90_000);
    const victim = pool().supervisor.replicas()[0];
    if (!victim) throw new Error('no replica');
    const pid = await pidOf(victim.adapter.baseUrl);
    frozenPid = pid;
    process.kill(pid, 'SIGSTOP');
    // Unready with the cause: health checks time out against a process that never answers.
    await until(() => pool().replica(victim.id)?.state.kind !== 'ready', 90_000);
    const s0 = pool().replica(victim.id)?.state;
    expect(s0?.kind === 'unready' ? s0.cause : '').toMatch(/engine not answering|killed after/);
    // Work keeps flowing to the healthy replica (admission's tokenizer is not stuck on the frozen one).
    for (let k = 0; k < 3; k++) {
      const t = task('freeze', { engine: 'vllm', max_tokens: 4 });
      const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body: t });
      expect(r.status).toBe(202);
      const s = await readStream(h.url, t.task_id, { key: KEYS.alice });
      expect(s.events.at(-1)).toMatchObject({ event: 'end', data: { tokens_out: 4 } });
      expect(s.events.at(-1)?.data['replica_id']).not.toBe(victim.id);
    }
    // Killed (the frozen process is gone) and restarted: the replica is ready again, a new process.
    await until(() => !alive(pid), 90_000);
    frozenPid = undefined;
    await until(() => pool().replica(victim.id)?.state.kind === 'ready', 90_000);
    const again = pool().replica(victim.id);
    expect(await pidOf(again?.adapter.baseUrl ?? '')).not.toBe(pid);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/pool_restarts_total\{[^}]*replica_id="freeze-r0"[^}]*\} [1-9]/);
  });
});
