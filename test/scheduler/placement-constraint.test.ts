/**
 * Placement plugin decisions applied at dispatch (SPEC §10): the queue passes over a tenant whose
 * next task cannot go anywhere free, and the candidates are narrowed to what the decision allows
 * and prefers before the built-in policy breaks ties.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PRIORITIES, type Priority } from '../../src/domain/types.js';
import { constrainCandidates } from '../../src/scheduler/policies/placement-constraint.js';
import { PoolQueue, type QueueEntry, type SchedulingMode } from '../../src/scheduler/pool-queue.js';

const queue = (mode: SchedulingMode) =>
  new PoolQueue<QueueEntry>({
    capacity: 1_000,
    priorityCapacity: { interactive: 1_000, batch: 1_000 },
    fullPolicy: 'reject',
    weights: { interactive: 4, batch: 1 },
    mode,
  });

describe('PoolQueue.peekNext/takeNext with a skip predicate', () => {
  for (const mode of ['wfq', 'fifo'] as const)
    it(`never serves a skipped entry, keeps each tenant's order, and serves the rest — ${mode}`, () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              tenant: fc.constantFrom('a', 'b', 'c'),
              priority: fc.constantFrom<Priority>(...PRIORITIES),
              cost: fc.integer({ min: 1, max: 32 }),
              held: fc.boolean(),
            }),
            { minLength: 1, maxLength: 60 },
          ),
          (items) => {
            const q = queue(mode);
            const held = new Set<string>();
            items.forEach((it, i) => {
              const id = `t${i}`;
              if (it.held) held.add(id);
              q.offer({ id, priority: it.priority, tenant: it.tenant, cost: it.cost, deadlineAtMs: 1e12 });
            });
            const skip = (e: QueueEntry) => held.has(e.id);
            const served: string[] = [];
            for (;;) {
              const peeked = q.peekNext(skip);
              const taken = q.takeNext(skip);
              expect(taken?.id).toBe(peeked?.id);
              if (!taken) break;
              expect(held.has(taken.id)).toBe(false);
              served.push(taken.id);
            }
            // What is left is exactly the held entries and what is behind them in their tenant's class.
            const left = new Set([...q.entries()].map((e) => e.id));
            items.forEach((it, i) => {
              const id = `t${i}`;
              const blocked = items.some(
                (o, j) => j <= i && o.held && o.tenant === it.tenant && o.priority === it.priority,
              );
              expect(left.has(id)).toBe(blocked);
            });
            // Within a tenant and class, service order is arrival order.
            const index = (id: string) => Number(id.slice(1));
            for (const t of ['a', 'b', 'c'])
              for (const p of PRIORITIES) {
                const order = served.filter(
                  (id) => items[index(id)]!.tenant === t && items[index(id)]!.priority === p,
                );
                expect(order).toEqual([...order].sort((x, y) => index(x) - index(y)));
              }
          },
        ),
        { numRuns: 200 },
      );
    });

  it('without a predicate nothing changes', () => {
    const q = queue('wfq');
    q.offer({ id: 'x', priority: 'batch', tenant: 'a', cost: 1, deadlineAtMs: 1e12 });
    expect(q.peekNext()?.id).toBe('x');
    expect(q.peekNext(() => true)).toBeUndefined();
    expect(q.takeNext()?.id).toBe('x');
  });
});

describe('constrainCandidates', () => {
  const r = (id: string, inFlight = 0, slotsTotal = 1) => ({ id, inFlight, slotsTotal });
  const ids = (c: readonly { id: string }[]) => c.map((x) => x.id);

  it('keeps the allowed replicas, busy ones included (the task waits for them)', () => {
    expect(ids(constrainCandidates([r('a'), r('b', 1), r('c')], { plugin: 'p', allow: ['b', 'c'] }))).toEqual(
      ['b', 'c'],
    );
  });

  it('keeps the best scored among the free ones; unnamed replicas score 0', () => {
    const scores = { a: 1, b: 3, c: 3 };
    expect(ids(constrainCandidates([r('a'), r('b'), r('c'), r('d')], { plugin: 'p', scores }))).toEqual([
      'b',
      'c',
    ]);
    // The best is busy: the next best free one.
    expect(ids(constrainCandidates([r('a'), r('b', 1), r('c', 1)], { plugin: 'p', scores }))).toEqual(['a']);
    expect(ids(constrainCandidates([r('a', 1)], { plugin: 'p', scores }))).toEqual([]);
  });

  it('avoids the replica a task failed on while another allowed one is ready', () => {
    const placement = { plugin: 'p', allow: ['a', 'b'] };
    expect(ids(constrainCandidates([r('a'), r('b'), r('c')], placement, 'a'))).toEqual(['b']);
    expect(ids(constrainCandidates([r('a'), r('c')], placement, 'a'))).toEqual(['a']);
  });

  it('no decision: the candidates as they are', () => {
    const all = [r('a'), r('b')];
    expect(constrainCandidates(all, undefined)).toBe(all);
  });
});
