import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PRIORITIES, FULL_POLICIES, type FullPolicy, type Priority } from '../../src/domain/types.js';
import { PoolQueue, type QueueEntry } from '../../src/scheduler/pool-queue.js';

type Op = { op: 'offer'; priority: Priority; cost: number } | { op: 'take' } | { op: 'cancel'; pick: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('offer' as const),
    priority: fc.constantFrom(...PRIORITIES),
    cost: fc.integer({ min: 1, max: 64 }),
  }),
  fc.record({ op: fc.constant('take' as const) }),
  fc.record({ op: fc.constant('cancel' as const), pick: fc.nat() }),
);

/**
 * Queue invariants (SPEC §16, OC-CORE-1001..1005, ORCH-3004/3005): every offered task ends up
 * exactly once as taken, canceled, evicted, refused or still queued; the queue stays bounded;
 * dispatch order is FIFO within a priority; cancel removes.
 */
describe('PoolQueue invariants (property tests)', () => {
  for (const fullPolicy of FULL_POLICIES) {
    it(`no task lost or duplicated, bounded, FIFO within a class, cancel removes — ${fullPolicy}`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 8 }), fc.array(opArb, { maxLength: 200 }), (capacity, ops) =>
          check(fullPolicy, capacity, ops),
        ),
        { numRuns: 300 },
      );
    });
  }

  it('drop-lru evicts batch before interactive and never a higher class than the arrival', () => {
    const q = new PoolQueue<QueueEntry>({
      capacity: 2,
      priorityCapacity: { interactive: 2, batch: 2 },
      fullPolicy: 'drop-lru',
      weights: { interactive: 8, batch: 1 },
    });
    q.offer({ id: 'i1', priority: 'interactive', cost: 1 });
    q.offer({ id: 'b1', priority: 'batch', cost: 1 });
    const r = q.offer({ id: 'i2', priority: 'interactive', cost: 1 });
    expect(r.kind === 'enqueued' && r.evicted.map((e) => e.id)).toEqual(['b1']);
    // Only interactive left: a batch arrival cannot evict it.
    expect(q.offer({ id: 'b2', priority: 'batch', cost: 1 })).toEqual({
      kind: 'refused',
      reason: 'capacity',
    });
    const r2 = q.offer({ id: 'i3', priority: 'interactive', cost: 1 });
    expect(r2.kind === 'enqueued' && r2.evicted.map((e) => e.id)).toEqual(['i1']);
  });

  it('shed-low-priority sheds batch for interactive and refuses an equal-priority arrival', () => {
    const q = new PoolQueue<QueueEntry>({
      capacity: 2,
      priorityCapacity: { interactive: 2, batch: 2 },
      fullPolicy: 'shed-low-priority',
      weights: { interactive: 8, batch: 1 },
    });
    q.offer({ id: 'b1', priority: 'batch', cost: 1 });
    q.offer({ id: 'b2', priority: 'batch', cost: 1 });
    expect(q.offer({ id: 'b3', priority: 'batch', cost: 1 }).kind).toBe('refused');
    const r = q.offer({ id: 'i1', priority: 'interactive', cost: 1 });
    expect(r.kind === 'enqueued' && r.evicted.map((e) => e.id)).toEqual(['b2']);
  });

  it('weighted fairness serves interactive 8:1 over batch under equal cost', () => {
    const q = new PoolQueue<QueueEntry>({
      capacity: 1000,
      priorityCapacity: { interactive: 1000, batch: 1000 },
      fullPolicy: 'reject',
      weights: { interactive: 8, batch: 1 },
    });
    for (let i = 0; i < 200; i++) {
      q.offer({ id: `i${i}`, priority: 'interactive', cost: 10 });
      q.offer({ id: `b${i}`, priority: 'batch', cost: 10 });
    }
    const first = Array.from({ length: 90 }, () => q.takeNext()?.priority);
    const batch = first.filter((p) => p === 'batch').length;
    expect(batch).toBe(10);
  });
});

function check(fullPolicy: FullPolicy, capacity: number, ops: Op[]): void {
  const q = new PoolQueue<QueueEntry & { seq: number }>({
    capacity,
    priorityCapacity: { interactive: capacity, batch: capacity },
    fullPolicy,
    weights: { interactive: 8, batch: 1 },
  });
  const fate = new Map<string, string>();
  const queued = new Set<string>();
  let n = 0;
  const lastTaken: Record<Priority, number> = { interactive: -1, batch: -1 };
  for (const op of ops) {
    if (op.op === 'offer') {
      const id = `t${n}`;
      const r = q.offer({ id, priority: op.priority, cost: op.cost, seq: n++ });
      if (r.kind === 'refused') fate.set(id, 'refused');
      else {
        queued.add(id);
        for (const e of r.evicted) {
          expect(queued.delete(e.id)).toBe(true);
          fate.set(e.id, 'evicted');
        }
      }
    } else if (op.op === 'take') {
      const e = q.takeNext();
      if (e) {
        expect(queued.delete(e.id)).toBe(true);
        expect(e.seq).toBeGreaterThan(lastTaken[e.priority]);
        lastTaken[e.priority] = e.seq;
        fate.set(e.id, 'taken');
      } else expect(queued.size).toBe(0);
    } else {
      const ids = [...queued];
      const id = ids[op.pick % Math.max(1, ids.length)];
      if (id !== undefined) {
        expect(q.remove(id)?.id).toBe(id);
        expect(q.has(id)).toBe(false);
        queued.delete(id);
        fate.set(id, 'canceled');
      }
    }
    expect(q.size).toBeLessThanOrEqual(capacity);
    expect(q.size).toBe(queued.size);
  }
  for (const id of queued) {
    expect(fate.has(id)).toBe(false);
    expect(q.has(id)).toBe(true);
  }
  expect(fate.size + queued.size).toBe(n);
}
