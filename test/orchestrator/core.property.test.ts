/**
 * Properties of the core over random mixes of capacities, full-queue policies, priorities,
 * deadlines, quotas, budgets, cancels, session deletes, hard and soft preemption, and tenants
 * that reuse each other's session ids (SPEC §16): every accepted task ends with exactly one
 * terminal event; no quota slot or budget reservation leaks; token indices have no gaps; no
 * session is visible across tenants; no session spends beyond its budget.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { FULL_POLICIES, type FullPolicy, type Priority } from '../../src/domain/types.js';
import { OrchError } from '../../src/errors/orch-error.js';
import { closeCores, core, input, settle, tenant } from '../support/core.js';

afterEach(closeCores);

const TENANTS = ['a', 'b'] as const;
const SESSIONS = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];

type Op =
  | {
      op: 'submit';
      tenant: (typeof TENANTS)[number];
      session: number;
      priority: Priority;
      maxTokens: number;
      deadlineMs: number;
      determinism: 'strict' | 'best_effort';
      hint: number | undefined;
    }
  | { op: 'release'; n: number }
  | { op: 'cancel'; pick: number }
  | { op: 'delete'; tenant: (typeof TENANTS)[number]; session: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('submit' as const),
      tenant: fc.constantFrom(...TENANTS),
      session: fc.nat({ max: SESSIONS.length - 1 }),
      priority: fc.constantFrom<Priority>('interactive', 'batch'),
      maxTokens: fc.integer({ min: 1, max: 6 }),
      deadlineMs: fc.constantFrom(60_000, 600_000),
      determinism: fc.constantFrom<'strict' | 'best_effort'>('strict', 'best_effort'),
      hint: fc.option(fc.constantFrom(1, 1e9), { nil: undefined }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('release' as const), n: fc.integer({ min: 1, max: 4 }) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cancel' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('delete' as const),
      tenant: fc.constantFrom(...TENANTS),
      session: fc.nat({ max: SESSIONS.length - 1 }),
    }),
  },
);

const setupArb = fc.record({
  capacity: fc.integer({ min: 1, max: 5 }),
  policy: fc.constantFrom<FullPolicy>(...FULL_POLICIES),
  preemption: fc.constantFrom<'soft' | 'hard'>('soft', 'hard'),
  replicas: fc.integer({ min: 1, max: 2 }),
  maxConcurrent: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
  sessionTokens: fc.option(fc.integer({ min: 8, max: 40 }), { nil: undefined }),
});

type Setup = typeof setupArb extends fc.Arbitrary<infer S> ? S : never;

async function run(setup: Setup, ops: readonly Op[]): Promise<void> {
  const { orch, adapter, pool } = core({
    replicas: setup.replicas,
    interruptible: setup.preemption === 'hard',
    top: {
      scheduling: { preemption: setup.preemption },
      fairness: {
        tenants: setup.maxConcurrent === undefined ? [] : [{ id: 'a', max_concurrent: setup.maxConcurrent }],
      },
    },
    pool: {
      queue: { capacity: setup.capacity, full_policy: setup.policy },
      ...(setup.sessionTokens === undefined ? {} : { budgets: { session_tokens: setup.sessionTokens } }),
    },
  });
  const accepted: { id: string; tenant: string; session: string }[] = [];
  /** (tenant, session) pairs with a live session: only those may be visible, each to its tenant. */
  const owned = new Set<string>();
  try {
    for (const op of ops) {
      if (op.op === 'submit') {
        const t = input({
          sessionId: SESSIONS[op.session] ?? '',
          priority: op.priority,
          maxTokens: op.maxTokens,
          deadlineMs: op.deadlineMs,
          determinism: op.determinism,
          expectedTokens: op.hint,
        });
        try {
          await orch.submit(tenant(op.tenant), t, 'c');
          accepted.push({ id: t.taskId, tenant: op.tenant, session: t.sessionId });
          owned.add(`${op.tenant}/${t.sessionId}`);
        } catch (err) {
          expect(err).toBeInstanceOf(OrchError);
        }
      } else if (op.op === 'release') adapter.release(op.n);
      else if (op.op === 'cancel') {
        const t = accepted[op.pick % Math.max(1, accepted.length)];
        if (t) orch.cancel(tenant(t.tenant), t.id);
      } else {
        const sid = SESSIONS[op.session] ?? '';
        try {
          orch.deleteSession(tenant(op.tenant), sid);
          owned.delete(`${op.tenant}/${sid}`);
        } catch (err) {
          expect((err as OrchError).code).toBe('NOT_FOUND');
        }
      }
      await settle();
      for (const who of TENANTS)
        for (const sid of SESSIONS) {
          let visible = true;
          try {
            orch.session(tenant(who), sid);
          } catch {
            visible = false;
          }
          // A session is visible only to a tenant that created it (and has not deleted it).
          if (visible) expect(owned.has(`${who}/${sid}`), `${who}/${sid}`).toBe(true);
        }
    }
    adapter.release(100_000);
    while (orch.accounting().liveTasks > 0 && pool.queue.size + pool.running.size > 0) await settle();
    await orch.close(2_000);
    for (const t of accepted) {
      const log = orch
        .task(tenant(t.tenant), t.id)
        .log.since(0)
        .map((e) => e.event);
      expect(log[0]?.type).toBe('started');
      expect(log.filter((e) => e.type === 'end' || e.type === 'error')).toHaveLength(1);
      expect(log.at(-1)?.type === 'end' || log.at(-1)?.type === 'error').toBe(true);
      const idx = log.filter((e) => e.type === 'token').map((e) => (e.data as { i: number }).i);
      expect(idx).toEqual(idx.map((_, i) => i));
    }
    expect(orch.accounting()).toEqual({ quotaSlots: 0, budgetReservations: 0, liveTasks: 0 });
    expect(pool.running.size).toBe(0);
    expect(pool.queue.size).toBe(0);
    if (setup.sessionTokens !== undefined)
      for (const key of owned) {
        const [who = '', sid = ''] = key.split('/');
        try {
          expect(orch.session(tenant(who), sid).usage.tokens).toBeLessThanOrEqual(setup.sessionTokens);
        } catch (err) {
          if (!(err instanceof OrchError)) throw err; // expired or reset after its turns
        }
      }
  } finally {
    await orch.close(0);
  }
}

describe('core properties over random mixes', () => {
  it('exactly one terminal event per accepted task; nothing leaks; no gaps; no session across tenants', async () => {
    await fc.assert(
      fc.asyncProperty(setupArb, fc.array(opArb, { minLength: 5, maxLength: 30 }), (setup, ops) =>
        run(setup, ops),
      ),
      { numRuns: 60 },
    );
  });
});
