import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeadlineIndex } from '../../src/scheduler/deadline-index.js';
import { PoolQueue, type QueueEntry } from '../../src/scheduler/pool-queue.js';

describe('DeadlineIndex', () => {
  it('dueBy returns exactly the live ids due by then, once each, and keeps them indexed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ id: fc.integer({ min: 0, max: 40 }), at: fc.integer({ min: 0, max: 1000 }) }), {
          maxLength: 200,
        }),
        fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 40 }),
        fc.integer({ min: 0, max: 1000 }),
        (adds, removed, at) => {
          const idx = new DeadlineIndex();
          const earliest = new Map<string, number>();
          for (const a of adds) {
            idx.add(`t${a.id}`, a.at);
            earliest.set(`t${a.id}`, Math.min(earliest.get(`t${a.id}`) ?? Infinity, a.at));
          }
          const dead = new Set(removed.map((r) => `t${r}`));
          const live = (id: string) => earliest.has(id) && !dead.has(id);
          const expected = [...earliest]
            .filter(([id, t]) => live(id) && t <= at)
            .map(([id]) => id)
            .sort();
          expect(idx.dueBy(at, live).sort()).toEqual(expected);
          expect(idx.dueBy(at, live).sort()).toEqual(expected); // still indexed
          idx.compact(live);
          expect(idx.size).toBe([...earliest.keys()].filter(live).length);
        },
      ),
    );
  });

  it('PoolQueue.dueBy follows removals and dispatches', () => {
    const q = new PoolQueue<QueueEntry>({
      capacity: 100,
      priorityCapacity: { interactive: 100, batch: 100 },
      fullPolicy: 'reject',
      weights: { interactive: 8, batch: 1 },
    });
    for (let i = 0; i < 10; i++)
      q.offer({ id: `t${i}`, priority: 'interactive', tenant: 'a', cost: 10, deadlineAtMs: i * 100 });
    expect(
      q
        .dueBy(450)
        .map((e) => e.id)
        .sort(),
    ).toEqual(['t0', 't1', 't2', 't3', 't4']);
    q.remove('t2');
    q.takeNext(); // t0
    expect(
      q
        .dueBy(450)
        .map((e) => e.id)
        .sort(),
    ).toEqual(['t1', 't3', 't4']);
    expect(q.maxCost).toBe(10);
  });
});
