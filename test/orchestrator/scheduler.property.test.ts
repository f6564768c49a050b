/**
 * Scheduler invariants through the orchestrator core, with in-process engines whose tokens the
 * test releases (SPEC §16): no task lost or duplicated, work conservation (no idle replica while
 * eligible work waits), cancel and preemption free slots, never a token after a terminal event.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load-config.js';
import type { SubmitInput } from '../../src/domain/submit.js';
import type { Priority } from '../../src/domain/types.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { OrchMetrics } from '../../src/metrics/metrics.js';
import { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import { createLogger } from '../../src/util/logger.js';
import { FakeSupervisor, StepAdapter } from '../support/fake-pool.js';

type Op =
  | {
      op: 'submit';
      priority: Priority;
      tenant: 'a' | 'b';
      maxTokens: number;
      determinism: 'strict' | 'best_effort';
    }
  | { op: 'release'; n: number }
  | { op: 'cancel'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('submit' as const),
      priority: fc.constantFrom<Priority>('interactive', 'batch'),
      tenant: fc.constantFrom<'a' | 'b'>('a', 'b'),
      maxTokens: fc.integer({ min: 1, max: 4 }),
      determinism: fc.constantFrom<'strict' | 'best_effort'>('strict', 'best_effort'),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('release' as const), n: fc.integer({ min: 1, max: 3 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cancel' as const), pick: fc.nat() }) },
);

/** Tasks that were hard-preempted and resumed, across runs (the property must exercise it). */
let resumed = 0;

const who = (tenant: string) => ({ tenant, keyId: tenant, scopes: ['data' as const] });
const settle = async () => {
  for (let i = 0; i < 8; i++) await new Promise((r) => setImmediate(r));
};

async function run(ops: readonly Op[], preemption: 'soft' | 'hard', mode: 'wfq' | 'fifo'): Promise<void> {
  const { config } = validateConfig({
    profile: 'dev',
    sse: { metrics_interval_ms: 60_000 },
    scheduling: { preemption, mode },
    fairness: { tenants: [{ id: 'a', weight: 2 }] },
    pools: [
      {
        id: 'p',
        engine: 'vllm',
        model: { id: 'm', path: '/dev/null' },
        ctx: 512,
        devices: 'cpu',
        queue: { capacity: 6, full_policy: 'drop-lru' },
      },
    ],
  });
  const adapter = new StepAdapter();
  const sup = new FakeSupervisor('p', [adapter, adapter], { interruptible: preemption === 'hard' });
  const orch = new Orchestrator({
    config,
    supervisors: new Map([['p', sup]]),
    metrics: new OrchMetrics({ processMetrics: false }),
    logger: createLogger({ level: 'silent' }),
    clock: { now: () => Date.now() },
  });
  const pool = orch.pools[0];
  if (!pool) throw new Error('no pool');
  const tasks: { id: string; tenant: string; strict: boolean }[] = [];
  try {
    for (const op of ops) {
      if (op.op === 'submit') {
        const input: SubmitInput = {
          taskId: randomUUID(),
          sessionId: randomUUID(),
          workload: 'completion',
          modelRef: 'm',
          engine: 'vllm',
          ctx: 512,
          priority: op.priority,
          seed: undefined,
          determinism: op.determinism,
          samplerProfileVersion: 'v1',
          prompt: 'hi',
          inputs: undefined,
          maxTokens: op.maxTokens,
          deadlineMs: 600_000,
          expectedTokens: undefined,
          kvHint: undefined,
        };
        try {
          await orch.submit(who(op.tenant), input, 'c');
          tasks.push({ id: input.taskId, tenant: op.tenant, strict: op.determinism === 'strict' });
        } catch (err) {
          expect(err).toBeInstanceOf(OrchError);
        }
      } else if (op.op === 'release') adapter.release(op.n);
      else if (tasks.length > 0) {
        const t = tasks[op.pick % tasks.length];
        if (t) orch.cancel(who(t.tenant), t.id);
      }
      await settle();
      // Work conservation: while work waits, every ready replica's slot is taken.
      if (pool.queue.size > 0) {
        for (const r of pool.readyReplicas()) expect(pool.inFlight.get(r.id) ?? 0).toBe(1);
      }
      for (const t of tasks) {
        const events = orch
          .task(who(t.tenant), t.id)
          .log.since(0)
          .map((e) => e.event.type);
        const end = events.findIndex((e) => e === 'end' || e === 'error');
        // Nothing follows a terminal event (no token after cancel, eviction or failure).
        if (end >= 0) expect(events.length).toBe(end + 1);
      }
    }
    adapter.release(10_000);
    await orch.close(2_000);
    for (const t of tasks) {
      const log = orch
        .task(who(t.tenant), t.id)
        .log.since(0)
        .map((e) => e.event);
      expect(log.filter((e) => e.type === 'end' || e.type === 'error')).toHaveLength(1);
      expect(log[0]?.type).toBe('started');
      // Token indices stay consecutive across preemption and resume.
      const idx = log.filter((e) => e.type === 'token').map((e) => (e.data as { i: number }).i);
      expect(idx).toEqual(idx.map((_, i) => i));
      const preempted = log.some(
        (e) => e.type === 'metrics' && (e.data as { preempted?: boolean }).preempted === true,
      );
      // A strict-determinism task is never hard-preempted (SPEC §17 §3.5).
      if (t.strict) expect(preempted).toBe(false);
      if (log.some((e) => e.type === 'end' && (e.data as { preempted?: boolean }).preempted === true))
        resumed++;
    }
    expect(pool.running.size).toBe(0);
    expect([...pool.inFlight.values()].every((n) => n === 0)).toBe(true);
  } finally {
    await orch.close(0);
  }
}

describe('scheduler invariants through the orchestrator (property tests)', () => {
  for (const [preemption, mode] of [
    ['soft', 'wfq'],
    ['hard', 'wfq'],
    ['soft', 'fifo'],
  ] as const) {
    it(`no loss, work conservation, no token after a terminal event — ${preemption} preemption, ${mode}`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 40 }), (ops) =>
          run(ops, preemption, mode),
        ),
        { numRuns: 40 },
      );
      if (preemption === 'hard') expect(resumed).toBeGreaterThan(0);
    });
  }
});
