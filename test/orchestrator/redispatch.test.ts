/**
 * Engines recovered, not just watched (SPEC §17 §5), in process: a task whose replica fails
 * before the first token is dispatched once more to another replica, invisibly to its stream; a
 * replica that fails task after task is ejected from placement while another is ready.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closeCores, core, eventTypes, input, settle, tenant } from '../support/core.js';
import { FailingAdapter, StepAdapter } from '../support/fake-pool.js';

afterEach(closeCores);

const A = tenant('alice');

async function drain(orch: ReturnType<typeof core>['orch']): Promise<void> {
  while (orch.accounting().liveTasks > 0) await settle();
}

describe('re-dispatch before the first token', () => {
  it('a task whose replica fails before its first token completes on another, with one clean stream', async () => {
    const failing = new FailingAdapter();
    const healthy = new StepAdapter();
    healthy.release(1_000);
    const { orch, metrics } = core({ adapters: [failing, healthy] });
    const t = input({ maxTokens: 3 });
    // The first replica is the less loaded one at a tie: the task lands on the failing replica.
    await orch.submit(A, t, 'c');
    await drain(orch);
    expect(failing.requests).toHaveLength(1);
    expect(eventTypes(orch, A, t.taskId)).toEqual(['started', 'token', 'token', 'token', 'end']);
    const view = orch.task(A, t.taskId);
    expect(view.replicaId).toBe('p-r1');
    expect(view.redispatches).toBe(1);
    expect(await metrics.render()).not.toMatch(/tasks_rejected_total\{[^}]*WORKER_RESET/);
  });

  it('is done once: a task that fails on its second replica too ends with the typed error', async () => {
    const { orch } = core({ adapters: [new FailingAdapter(), new FailingAdapter()] });
    const t = input();
    await orch.submit(A, t, 'c');
    await drain(orch);
    expect(orch.task(A, t.taskId).log.since(0).at(-1)?.event).toMatchObject({
      type: 'error',
      data: { code: 'WORKER_RESET' },
    });
    expect(orch.task(A, t.taskId).redispatches).toBe(1);
  });

  it('never after a token was sent: the stream would show a duplicate or a gap', async () => {
    const healthy = new StepAdapter();
    healthy.release(1_000);
    const { orch } = core({ adapters: [new FailingAdapter(2), healthy] });
    const t = input({ maxTokens: 5 });
    await orch.submit(A, t, 'c');
    await drain(orch);
    expect(eventTypes(orch, A, t.taskId)).toEqual(['started', 'token', 'token', 'error']);
  });

  it('not with one replica: there is nowhere else to go', async () => {
    const failing = new FailingAdapter();
    const { orch } = core({ adapters: [failing] });
    const t = input();
    await orch.submit(A, t, 'c');
    await drain(orch);
    expect(eventTypes(orch, A, t.taskId)).toEqual(['started', 'error']);
    expect(failing.requests).toHaveLength(1);
  });
});

describe('outlier ejection', () => {
  it('a replica that fails three tasks in a row gets no more work while another is ready', async () => {
    const failing = new FailingAdapter();
    const healthy = new StepAdapter();
    healthy.release(100_000);
    const { orch } = core({ adapters: [failing, healthy] });
    const ids: string[] = [];
    for (let k = 0; k < 24; k++) {
      const t = input({ maxTokens: 2 });
      await orch.submit(A, t, 'c');
      ids.push(t.taskId);
      await settle();
    }
    await drain(orch);
    // Every task completed (the failures before a first token were re-dispatched) …
    for (const id of ids) expect(eventTypes(orch, A, id).at(-1)).toBe('end');
    // … and the failing replica stopped getting work after three failures in a row.
    expect(failing.requests).toHaveLength(3);
  });
});
