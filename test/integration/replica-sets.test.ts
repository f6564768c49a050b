/**
 * Replica sets across pools through the public API (SPEC §17 §4), on simulated vLLM replicas:
 * two pools of one model form one set that shares the work; a pool of another engine version
 * is a set of its own; draining one member moves new work to the other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, call, readStream, simPool, startHarness, task, type Harness } from '../support/harness.js';

let h: Harness;

const shared = (id: string, versions?: string[]) =>
  simPool(id, 'vllm', {
    model: { id: 'shared-model' },
    launch: {
      worker: 'sim',
      parallel: 1,
      health_interval_ms: 100,
      sim: { tokens_per_s: 100, ...(versions ? { engine_version: versions } : {}) },
    },
  });

beforeAll(async () => {
  h = await startHarness({
    pools: [shared('member-a'), shared('member-b'), shared('other-version', ['sim-vllm-2'])],
  });
}, 120_000);

afterAll(async () => {
  await h?.close();
});

interface SetBody {
  id: string;
  engine_version: string;
  pools: string[];
  members: { pool_id: string; ready: boolean; replica_ids: string[]; queued: number }[];
  replicas_ready: number;
  slots_total: number;
}

const sets = async (): Promise<SetBody[]> =>
  ((await call(h.url, 'GET', '/v1/replicasets', { key: KEYS.ops })).json as { replica_sets: SetBody[] })
    .replica_sets;

async function runTask(extra: Record<string, unknown> = {}): Promise<{ replica: string }> {
  const body = task('shared-model', { engine: 'vllm', max_tokens: 24, ...extra });
  const r = await call(h.url, 'POST', '/v1/tasks', { key: KEYS.alice, body });
  expect(r.status).toBe(202);
  const { events } = await readStream(h.url, body.task_id, { key: KEYS.alice });
  const end = events.find((e) => e.event === 'end');
  expect(end, JSON.stringify(events.at(-1))).toBeDefined();
  return { replica: (end!.data as { replica_id: string }).replica_id };
}

describe('replica sets across pools (HTTP, simulated vLLM)', () => {
  it('shows one set with both members and unique replica ids; another engine version is its own set', async () => {
    const all = await sets();
    const set = all.find((s) => s.pools.includes('member-a'));
    expect(set?.pools).toEqual(['member-a', 'member-b']);
    expect(set?.members.map((m) => m.pool_id)).toEqual(['member-a', 'member-b']);
    expect(set?.replicas_ready).toBe(2);
    expect(set?.slots_total).toBe(2);
    const ids = all.flatMap((s) => s.members.flatMap((m) => m.replica_ids));
    expect(new Set(ids).size).toBe(ids.length);
    const other = all.find((s) => s.pools.includes('other-version'));
    expect(other?.id).not.toBe(set?.id);
    expect(other?.engine_version).toBe('sim-vllm-2');
    expect(new Set(all.map((s) => s.id)).size).toBe(all.length);
  });

  it('concurrent tasks for the model run on both members of its set, never on the other version', async () => {
    const served = await Promise.all(Array.from({ length: 6 }, () => runTask()));
    const replicas = new Set(served.map((s) => s.replica));
    expect(replicas.has('member-a-r0')).toBe(true);
    expect(replicas.has('member-b-r0')).toBe(true);
    expect([...replicas].some((r) => r.startsWith('other-version'))).toBe(false);
  });

  it('a drained member takes no new work: the set keeps serving on the other', async () => {
    const r = await call(h.url, 'POST', '/v1/pools/member-a/drain', {
      key: KEYS.ops,
      body: { deadline_ms: 10_000 },
    });
    expect(r.status).toBe(202);
    const served = await Promise.all(Array.from({ length: 3 }, () => runTask()));
    expect(served.map((s) => s.replica)).toEqual(['member-b-r0', 'member-b-r0', 'member-b-r0']);
    const set = (await sets()).find((s) => s.pools.includes('member-a'));
    expect(set?.members.find((m) => m.pool_id === 'member-a')?.ready).toBe(false);
    expect(set?.members.find((m) => m.pool_id === 'member-b')?.ready).toBe(true);
  });
});
