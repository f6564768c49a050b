/**
 * `GET /v1/tasks`: live and recently ended tasks, per tenant for data keys and across tenants for
 * control keys, with the state, pool and limit filters; queued tasks carry their queue position
 * and predicted start. Every answer is checked against data.yaml by `call`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskList } from '../../src/index.js';
import {
  KEYS,
  TEST_KEYS,
  call,
  simPool,
  startHarness,
  task,
  until,
  type Harness,
} from '../support/harness.js';

let h: Harness;

const list = async (key: string, query = ''): Promise<TaskList> => {
  const r = await call(h.url, 'GET', `/v1/tasks${query}`, { key });
  expect(r.status).toBe(200);
  return r.json as TaskList;
};
const submit = async (key: string, pool: string, extra: Record<string, unknown> = {}): Promise<string> => {
  const t = task(pool, { engine: 'vllm', ...extra });
  const r = await call(h.url, 'POST', '/v1/tasks', { key, body: t });
  expect(r.status).toBe(202);
  return t.task_id;
};

beforeAll(async () => {
  h = await startHarness({
    auth: { keys: TEST_KEYS },
    // Ended tasks' records are dropped at once: the listing must still show them (the recent list).
    sse: { retention_ms: 1 },
    pools: [
      // One slot at 20 tokens/s: the first long task runs, the next ones queue behind it.
      simPool('one-slot', 'vllm', { launch: { worker: 'sim', parallel: 1, sim: { tokens_per_s: 20 } } }),
      simPool('fast', 'vllm'),
    ],
  });
});
afterAll(async () => {
  await h?.close();
});

describe('GET /v1/tasks', () => {
  it('lists running, queued and ended tasks with positions, per tenant for data keys and all tenants for control keys', async () => {
    const running = await submit(KEYS.alice, 'one-slot', { max_tokens: 2000, deadline_ms: 600_000 });
    await until(async () =>
      (await list(KEYS.alice, '?state=running')).tasks.some((t) => t.task_id === running),
    );
    const queuedAlice = await submit(KEYS.alice, 'one-slot', { max_tokens: 4, deadline_ms: 600_000 });
    const queuedBob = await submit(KEYS.bob, 'one-slot', { max_tokens: 4, deadline_ms: 600_000 });
    const done = await submit(KEYS.alice, 'fast', { max_tokens: 4 });
    // Ended, and its record dropped (retention 1 ms): still listed from the recent list.
    await until(async () => (await list(KEYS.alice, '?state=ended')).tasks.some((t) => t.task_id === done));

    const alice = (await list(KEYS.alice)).tasks;
    expect(alice.map((t) => t.tenant)).toEqual(alice.map(() => 'alice'));
    expect(alice.map((t) => t.task_id)).toEqual(expect.arrayContaining([running, queuedAlice, done]));
    expect(alice.map((t) => t.task_id)).not.toContain(queuedBob);

    const queued = (await list(KEYS.alice, '?state=queued')).tasks;
    expect(queued).toEqual([
      expect.objectContaining({
        task_id: queuedAlice,
        state: 'queued',
        pool_id: 'one-slot',
        priority: 'interactive',
        // Weighted fairness may put bob's task first: alice already holds the slot.
        queue_position: expect.any(Number),
        deadline_ms: 600_000,
        tokens_out: 0,
      }),
    ]);
    expect(queued[0]?.predicted_start_ms).toBeGreaterThanOrEqual(0);

    const run = (await list(KEYS.alice, '?state=running&pool=one-slot')).tasks;
    expect(run).toEqual([expect.objectContaining({ task_id: running, replica_id: expect.any(String) })]);
    expect(run[0]?.started_at_ms).toBeGreaterThanOrEqual(run[0]?.accepted_at_ms ?? Infinity);

    const ended = (await list(KEYS.alice, '?state=ended')).tasks.find((t) => t.task_id === done);
    expect(ended).toMatchObject({ state: 'completed', pool_id: 'fast', tokens_out: 4 });
    expect(ended?.finished_at_ms).toBeGreaterThan(0);

    // A control key sees both tenants' queued tasks, in the queue's order.
    const all = (await list(KEYS.ops, '?state=queued&pool=one-slot')).tasks;
    expect(all.map((t) => [t.task_id, t.tenant])).toEqual(
      expect.arrayContaining([
        [queuedAlice, 'alice'],
        [queuedBob, 'bob'],
      ]),
    );
    expect(new Set(all.map((t) => t.queue_position)).size).toBe(all.length);

    expect((await list(KEYS.ops, '?pool=fast&limit=1')).tasks).toHaveLength(1);
    expect((await list(KEYS.alice, '?pool=nowhere')).tasks).toEqual([]);

    for (const id of [running, queuedAlice])
      await call(h.url, 'POST', `/v1/tasks/${id}/cancel`, { key: KEYS.alice });
    await call(h.url, 'POST', `/v1/tasks/${queuedBob}/cancel`, { key: KEYS.bob });
  });

  it('refuses a bad query with INVALID_PARAMS naming the parameter, and a missing key with 401', async () => {
    for (const q of [
      '?state=sleeping',
      '?limit=0',
      '?limit=1001',
      '?limit=ten',
      '?state=queued&state=ended',
    ]) {
      const r = await call(h.url, 'GET', `/v1/tasks${q}`, { key: KEYS.alice });
      expect(r.status, q).toBe(400);
      expect(r.json).toMatchObject({
        code: 'INVALID_PARAMS',
        message: expect.stringMatching(/^(state|limit)/),
      });
    }
    expect((await call(h.url, 'GET', '/v1/tasks')).status).toBe(401);
  });
});
