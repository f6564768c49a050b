/** The orchestrator core with in-process engines: lifecycle invariants, cancel races, evictions. */
import { afterEach, describe, expect, it } from 'vitest';
import type { RawPool } from '../../src/config/schema.js';
import { OrchError } from '../../src/errors/orch-error.js';
import type { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import { LOCAL_PRINCIPAL } from '../../src/http/auth.js';
import { closeCores, core, input } from '../support/core.js';

afterEach(closeCores);

const setup = (pool: Partial<RawPool> = {}, replicas = 1) => core({ pool, replicas });

const tick = () => new Promise((r) => setImmediate(r));
const types = (orch: Orchestrator, id: string) =>
  orch
    .task(LOCAL_PRINCIPAL, id)
    .log.since(0)
    .map((e) => e.event.type);

describe('Orchestrator', () => {
  it('streams started → tokens → end with consecutive indices and the default seed', async () => {
    const { orch, adapter } = setup();
    const t = input({ maxTokens: 3 });
    await orch.submit(LOCAL_PRINCIPAL, t, 'c1');
    adapter.release(3);
    await orch.close(1_000);
    expect(types(orch, t.taskId)).toEqual(['started', 'token', 'token', 'token', 'end']);
    const seed = adapter.requests[0]?.seed;
    expect(seed).toBeGreaterThanOrEqual(0);
    expect(seed).toBeLessThan(2 ** 32);
  });

  it('cancel while running: one terminal event, no token after it, slot freed after the engine stopped', async () => {
    const { orch, adapter } = setup();
    const t = input({ maxTokens: 100 });
    await orch.submit(LOCAL_PRINCIPAL, t, 'c');
    adapter.release(2);
    await tick();
    orch.cancel(LOCAL_PRINCIPAL, t.taskId);
    adapter.release(10);
    await tick();
    const ev = orch.task(LOCAL_PRINCIPAL, t.taskId).log.since(0);
    expect(ev.at(-1)?.event).toMatchObject({ type: 'end', data: { canceled: true } });
    expect(ev.filter((e) => e.event.type === 'end' || e.event.type === 'error')).toHaveLength(1);
    await orch.close(1_000);
    expect(adapter.active).toBe(0);
    expect(orch.pools[0]?.inFlight.get('p-r0')).toBe(0);
  });

  it('cancel of a queued task removes it from the queue; the next task runs', async () => {
    const { orch, adapter } = setup();
    const running = input({ maxTokens: 1 });
    const queued = input({ maxTokens: 1 });
    const after = input({ maxTokens: 1 });
    await orch.submit(LOCAL_PRINCIPAL, running, 'c');
    await orch.submit(LOCAL_PRINCIPAL, queued, 'c');
    expect(orch.pools[0]?.queue.size).toBe(1);
    orch.cancel(LOCAL_PRINCIPAL, queued.taskId);
    expect(orch.pools[0]?.queue.size).toBe(0);
    await orch.submit(LOCAL_PRINCIPAL, after, 'c');
    adapter.release(5);
    while (!orch.task(LOCAL_PRINCIPAL, after.taskId).terminal) await tick();
    expect(types(orch, queued.taskId)).toEqual(['started', 'end']);
    expect(types(orch, after.taskId).at(-1)).toBe('end');
  });

  it('a used id: the same request replays its acceptance, another is CONFLICT (SPEC §17 §2.1)', async () => {
    const { orch } = setup();
    const t = input();
    const first = await orch.submit(LOCAL_PRINCIPAL, t, 'c');
    // Key order and absent optional fields do not make a request different.
    const again = await orch.submit(
      LOCAL_PRINCIPAL,
      Object.fromEntries(Object.entries(t).reverse()) as typeof t,
      'c2',
    );
    expect(again).toEqual({ ...first, ended: false });
    await expect(
      orch.submit(LOCAL_PRINCIPAL, { ...t, maxTokens: t.maxTokens - 1 }, 'c'),
    ).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await expect(orch.submit({ ...LOCAL_PRINCIPAL, tenant: 'other' }, t, 'c')).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    // Nothing was enqueued for the replay or the refusals.
    expect(orch.accounting().liveTasks).toBe(1);
  });

  it('refuses ctx above the model and over-long requests with INVALID_PARAMS', async () => {
    const { orch } = setup();
    await expect(orch.submit(LOCAL_PRINCIPAL, input({ ctx: 4096 }), 'c')).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
    });
    await expect(orch.submit(LOCAL_PRINCIPAL, input({ maxTokens: 511 }), 'c')).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
    });
  });

  it('POOL_UNREADY while preloading, POOL_UNAVAILABLE when every replica failed', async () => {
    const { orch, sup } = setup();
    sup.setState(0, { kind: 'preloading' });
    await expect(orch.submit(LOCAL_PRINCIPAL, input(), 'c')).rejects.toMatchObject({ code: 'POOL_UNREADY' });
    sup.setState(0, { kind: 'unready', cause: 'exited with code 1' });
    const err = await orch.submit(LOCAL_PRINCIPAL, input(), 'c').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OrchError);
    expect((err as OrchError).code).toBe('POOL_UNAVAILABLE');
  });

  it('a queued task whose deadline passes before a slot frees ends with REPLICA_EXHAUSTED', async () => {
    const { orch } = setup();
    const running = input();
    await orch.submit(LOCAL_PRINCIPAL, running, 'c');
    // Nothing measured yet: the drain estimate (1 s per task) says it can start in time.
    const late = input({ deadlineMs: 1_300 });
    await orch.submit(LOCAL_PRINCIPAL, late, 'c');
    await new Promise((r) => setTimeout(r, 1_600));
    const events = orch
      .task(LOCAL_PRINCIPAL, late.taskId)
      .log.since(0)
      .map((e) => e.event);
    expect(events.at(-1)).toMatchObject({ type: 'error', data: { code: 'REPLICA_EXHAUSTED' } });
    expect(events.filter((e) => e.type === 'token')).toHaveLength(0);
  });

  it('drop-lru evictions end the evicted stream with QUEUE_FULL_DROP_LRU', async () => {
    const { orch, adapter } = setup({ queue: { capacity: 1, full_policy: 'drop-lru' } });
    const running = input({ maxTokens: 1 });
    const old = input({ priority: 'batch' });
    const fresh = input({ priority: 'batch' });
    await orch.submit(LOCAL_PRINCIPAL, running, 'c');
    await orch.submit(LOCAL_PRINCIPAL, old, 'c');
    await orch.submit(LOCAL_PRINCIPAL, fresh, 'c');
    expect(orch.task(LOCAL_PRINCIPAL, old.taskId).log.since(0).at(-1)?.event).toMatchObject({
      type: 'error',
      data: { code: 'QUEUE_FULL_DROP_LRU' },
    });
    adapter.release(10);
    await orch.close(1_000);
  });

  it('every accepted task ends with exactly one terminal event under random cancels (no task lost)', async () => {
    const { orch, adapter } = setup({ queue: { capacity: 8, full_policy: 'drop-lru' } }, 2);
    const ids: string[] = [];
    for (let k = 0; k < 40; k++) {
      const t = input({ maxTokens: 1 + (k % 4), priority: k % 3 === 0 ? 'batch' : 'interactive' });
      try {
        await orch.submit(LOCAL_PRINCIPAL, t, 'c');
        ids.push(t.taskId);
      } catch (err) {
        expect(err).toBeInstanceOf(OrchError);
      }
      if (k % 5 === 0 && ids.length > 0) orch.cancel(LOCAL_PRINCIPAL, ids[(k * 7) % ids.length]!);
      if (k % 2 === 0) adapter.release(1);
      await tick();
    }
    adapter.release(1_000);
    await orch.close(2_000);
    for (const id of ids) {
      const terminal = orch
        .task(LOCAL_PRINCIPAL, id)
        .log.since(0)
        .filter((e) => e.event.type === 'end' || e.event.type === 'error');
      expect(terminal, id).toHaveLength(1);
    }
  });
});
