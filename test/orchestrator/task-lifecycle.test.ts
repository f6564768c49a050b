/**
 * The task lifecycle in isolation (fake clock, fake pool): the only writer of task state and
 * event log, calling each observer once per step.
 */
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import type { TaskSpec } from '../../src/domain/task.js';
import { PoolRuntime } from '../../src/orchestrator/pool-runtime.js';
import { TaskLifecycle, type TaskObserver } from '../../src/orchestrator/task-lifecycle.js';
import { TaskTable } from '../../src/orchestrator/task-table.js';
import { FakeSupervisor, StepAdapter } from '../support/fake-pool.js';

function setup(retentionMs = 60_000) {
  let now = 1_000;
  const clock = { now: () => now };
  const { config } = validateConfig({
    profile: 'dev',
    pools: [{ id: 'p', engine: 'llamacpp', model: { id: 'm', path: '/dev/null' }, ctx: 512, devices: 'cpu' }],
  });
  const poolConfig = config.pools[0];
  if (!poolConfig) throw new Error('no pool');
  const pool = new PoolRuntime(poolConfig, new FakeSupervisor('p', [new StepAdapter()]), {
    weights: config.fairness.weights,
    tenantWeight: () => 1,
    mode: 'wfq',
    deadlineSlackTokens: 0,
    clock,
  });
  const calls: string[] = [];
  const observer: TaskObserver = {
    accepted: (t) => calls.push(`accepted:${t.state.kind}`),
    dispatched: (t) => calls.push(`dispatched:${t.replicaId ?? ''}`),
    firstToken: (t) => calls.push(`firstToken:${t.firstTokenAtMs ?? ''}`),
    requeued: (t) => calls.push(`requeued:${t.preemptions}`),
    finished: (t, _p, term) => calls.push(`finished:${term.kind}:${t.state.kind}`),
  };
  const table = new TaskTable({ rememberedIds: 10 });
  const lifecycle = new TaskLifecycle({
    clock,
    table,
    retentionMs,
    maxEventsPerTask: 1_000,
    observers: [observer],
  });
  const spec: TaskSpec = {
    taskId: 't1',
    sessionId: 's1',
    tenant: 'a',
    workload: 'completion',
    modelRef: 'm',
    engine: 'llamacpp',
    ctx: 512,
    priority: 'interactive',
    seed: 1,
    determinism: 'best_effort',
    samplerProfileVersion: 'v1',
    prompt: 'hi',
    inputs: undefined,
    maxTokens: 10,
    deadlineMs: 60_000,
    expectedTokens: undefined,
    kvHint: undefined,
    promptTokens: 2,
    correlationId: 'corr',
    acceptedAtMs: now,
  };
  const enqueue = () =>
    pool.queue.offer({
      id: spec.taskId,
      priority: 'interactive',
      tenant: 'a',
      cost: 12,
      deadlineAtMs: 61_000,
    });
  return { lifecycle, pool, table, calls, spec, enqueue, advance: (ms: number) => (now += ms) };
}

const tokens = (count: number, ids: number[], text: string) => ({
  kind: 'tokens' as const,
  count,
  ids,
  text,
});

describe('TaskLifecycle', () => {
  it('accepted → dispatched → streaming → completed, observers once per step, indices without gaps', () => {
    const { lifecycle, pool, calls, spec, enqueue, advance } = setup();
    enqueue();
    const task = lifecycle.accept(spec, pool, { cost: 12, position: 0, predictedStartMs: 0, kvWarm: false });
    expect(task.state.kind).toBe('queued');
    pool.queue.takeNext();
    lifecycle.dispatch(task, pool, 'p-r0', false);
    advance(5);
    lifecycle.tokens(task, pool, tokens(3, [7, 8], 'abc'));
    lifecycle.tokens(task, pool, tokens(1, [9], 'd'));
    expect(task.state).toEqual({ kind: 'streaming', replicaId: 'p-r0' });
    expect(lifecycle.finish(task, pool, { kind: 'completed', end: { tokens_out: 4, decode_ms: 1 } })).toBe(
      true,
    );
    expect(lifecycle.finish(task, pool, { kind: 'failed', error: { code: 'INTERNAL', message: 'x' } })).toBe(
      false,
    );
    const events = task.log.since(0).map((e) => e.event);
    expect(events.map((e) => e.type)).toEqual(['started', 'token', 'token', 'token', 'token', 'end']);
    // Ids are aligned to the end of a multi-token run; its text rides on the last token.
    expect(events.slice(1, 5).map((e) => e.data)).toEqual([
      { t: '', i: 0 },
      { t: '', i: 1, id: 7 },
      { t: 'abc', i: 2, id: 8 },
      { t: 'd', i: 3, id: 9 },
    ]);
    expect(calls).toEqual([
      'accepted:queued',
      'dispatched:p-r0',
      'firstToken:1005',
      'finished:completed:completed',
    ]);
  });

  it('finishing a queued task takes it off its queue', () => {
    const { lifecycle, pool, spec, enqueue } = setup();
    enqueue();
    const task = lifecycle.accept(spec, pool, { cost: 12, position: 0, predictedStartMs: 0, kvWarm: false });
    expect(pool.queue.size).toBe(1);
    lifecycle.finish(task, pool, {
      kind: 'canceled',
      reason: 'client',
      end: { tokens_out: 0, decode_ms: 0, canceled: true },
    });
    expect(pool.queue.size).toBe(0);
    expect(task.log.since(0).at(-1)?.event.type).toBe('end');
  });

  it('requeue after hard preemption: back at the head of the queue, a resumable metrics frame, progress kept', () => {
    const { lifecycle, pool, calls, spec, enqueue, advance } = setup();
    enqueue();
    const task = lifecycle.accept(spec, pool, { cost: 12, position: 0, predictedStartMs: 0, kvWarm: false });
    pool.queue.takeNext();
    lifecycle.dispatch(task, pool, 'p-r0', false);
    lifecycle.tokens(task, pool, tokens(2, [1, 2], 'xy'));
    advance(40);
    lifecycle.requeue(task, pool);
    expect(task.state.kind).toBe('queued');
    expect(task.priorRunMs).toBe(40);
    expect(pool.queue.peekNext()?.id).toBe('t1');
    expect(task.log.since(0).at(-1)?.event).toMatchObject({
      type: 'metrics',
      data: { preempted: true, resumable: true, tokens_out: 2 },
    });
    pool.queue.takeNext();
    lifecycle.dispatch(task, pool, 'p-r0', false);
    lifecycle.tokens(task, pool, tokens(1, [3], 'z'));
    // The first token is observed once per task, not once per run.
    expect(calls.filter((c) => c.startsWith('firstToken'))).toHaveLength(1);
    expect(calls).toContain('requeued:1');
    const idx = task.log
      .since(0)
      .filter((e) => e.event.type === 'token')
      .map((e) => (e.event.data as { i: number }).i);
    expect(idx).toEqual([0, 1, 2]);
  });

  it('no step after the end changes anything', () => {
    const { lifecycle, pool, spec, enqueue } = setup();
    enqueue();
    const task = lifecycle.accept(spec, pool, { cost: 12, position: 0, predictedStartMs: 0, kvWarm: false });
    lifecycle.finish(task, pool, { kind: 'failed', error: { code: 'INTERNAL', message: 'x' } });
    const before = task.log.lastSeq;
    lifecycle.dispatch(task, pool, 'p-r0', false);
    lifecycle.tokens(task, pool, tokens(1, [1], 'a'));
    lifecycle.requeue(task, pool);
    lifecycle.metrics(task, { queue_depth: 0, on_time_probability: 1, kv_warmth: false });
    expect(task.log.lastSeq).toBe(before);
    expect(task.state).toEqual({ kind: 'failed', code: 'INTERNAL' });
  });

  it('an ended task is dropped from the table after the retention window; its id stays used', async () => {
    const { lifecycle, pool, table, spec, enqueue } = setup(10);
    enqueue();
    const task = lifecycle.accept(spec, pool, { cost: 12, position: 0, predictedStartMs: 0, kvWarm: false });
    lifecycle.finish(task, pool, { kind: 'failed', error: { code: 'INTERNAL', message: 'x' } });
    expect(table.get('t1')).toBe(task);
    await new Promise((r) => setTimeout(r, 30));
    expect(table.get('t1')).toBeUndefined();
    expect(table.used('t1')).toBe(true);
    expect(table.usedBy('t1')).toBe('a');
  });
});

describe('TaskLifecycle observers', () => {
  it('an observer that throws does not keep the others from running, nor the step from standing', () => {
    const { config } = validateConfig({
      profile: 'dev',
      pools: [
        { id: 'p', engine: 'llamacpp', model: { id: 'm', path: '/dev/null' }, ctx: 512, devices: 'cpu' },
      ],
    });
    const poolConfig = config.pools[0];
    if (!poolConfig) throw new Error('no pool');
    const clock = { now: () => 0 };
    const pool = new PoolRuntime(poolConfig, new FakeSupervisor('p', [new StepAdapter()]), {
      weights: config.fairness.weights,
      tenantWeight: () => 1,
      mode: 'wfq',
      deadlineSlackTokens: 0,
      clock,
    });
    const seen: string[] = [];
    const errors: string[] = [];
    const lifecycle = new TaskLifecycle({
      clock,
      table: new TaskTable({ rememberedIds: 10 }),
      retentionMs: 60_000,
      maxEventsPerTask: 100,
      onObserverError: (_err, step) => errors.push(step),
      observers: [
        {
          finished: () => {
            throw new Error('broken observer');
          },
        },
        { finished: (t) => seen.push(t.state.kind) },
      ],
    });
    const task = lifecycle.accept(
      {
        taskId: 'x',
        sessionId: 's',
        tenant: 'a',
        workload: 'completion',
        modelRef: 'm',
        engine: 'llamacpp',
        ctx: 512,
        priority: 'batch',
        seed: 1,
        determinism: 'strict',
        samplerProfileVersion: 'v1',
        prompt: 'hi',
        inputs: undefined,
        maxTokens: 1,
        deadlineMs: 1_000,
        expectedTokens: undefined,
        kvHint: undefined,
        promptTokens: 2,
        correlationId: 'c',
        acceptedAtMs: 0,
      },
      pool,
      { cost: 3, position: 0, predictedStartMs: 0, kvWarm: false },
    );
    lifecycle.finish(task, pool, { kind: 'failed', error: { code: 'INTERNAL', message: 'x' } });
    expect(seen).toEqual(['failed']);
    expect(errors).toEqual(['finished']);
    expect(task.log.since(0).at(-1)?.event.type).toBe('error');
  });
});
