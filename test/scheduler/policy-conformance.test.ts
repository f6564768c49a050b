/**
 * One conformance suite per policy seam (full queue, placement, hard-preemption victim), run over
 * every registered policy: what any policy, built-in or plugin, must guarantee. Behaviour that is
 * particular to one built-in follows the loops.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FULL_POLICIES, PRIORITIES, type Determinism, type Priority } from '../../src/domain/types.js';
import { chooseHardVictim } from '../../src/scheduler/preemption.js';
import type { FullQueuePolicy } from '../../src/scheduler/policies/full-queue-policy.js';
import type { ReplicaLoad } from '../../src/scheduler/policies/placement-policy.js';
import {
  FULL_QUEUE_POLICIES,
  PLACEMENT_POLICIES,
  VICTIM_POLICIES,
} from '../../src/scheduler/policies/registry.js';
import type { PreemptionCandidate } from '../../src/scheduler/policies/victim-policy.js';
import { PoolQueue, type OfferPlan, type QueueEntry } from '../../src/scheduler/pool-queue.js';

const rank = (p: Priority): number => PRIORITIES.indexOf(p);

// ---------------------------------------------------------------------------------------------
// Full-queue policies
// ---------------------------------------------------------------------------------------------

type Op =
  | { op: 'offer'; priority: Priority; tenant: string; deadline: number; cost: number }
  | { op: 'take' }
  | { op: 'cancel'; pick: number }
  | { op: 'requeue' };

interface Setup {
  readonly capacity: number;
  readonly classCap: Readonly<Record<Priority, number>>;
  readonly withDoomed: boolean;
  readonly mode: 'wfq' | 'fifo';
  readonly ops: readonly Op[];
  /** Whether dispatched entries come back (preemption), which can leave the queue over capacity. */
  readonly requeues: boolean;
}

interface Arrival {
  readonly entry: QueueEntry;
  /** Picks among the queued ids: the entries the caller frees. */
  readonly freedPicks: readonly number[];
  /** Whether the freed ids also hold one that is not queued (already gone: ignored). */
  readonly ghost: boolean;
}

const entryArb = (id: string): fc.Arbitrary<QueueEntry> =>
  fc.record({
    id: fc.constant(id),
    priority: fc.constantFrom(...PRIORITIES),
    tenant: fc.constantFrom('a', 'b', 'c'),
    cost: fc.integer({ min: 1, max: 40 }),
    deadlineAtMs: fc.integer({ min: 0, max: 300 }),
  });

const setupArb = (requeues: boolean): fc.Arbitrary<Setup> =>
  fc.integer({ min: 1, max: 8 }).chain((capacity) =>
    fc.record({
      capacity: fc.constant(capacity),
      classCap: fc.record({
        interactive: fc.integer({ min: 0, max: capacity + 1 }),
        batch: fc.integer({ min: 0, max: capacity + 1 }),
      }),
      withDoomed: fc.boolean(),
      mode: fc.constantFrom('wfq' as const, 'fifo' as const),
      requeues: fc.constant(requeues),
      ops: fc.array(
        fc.oneof(
          {
            weight: 6,
            arbitrary: fc.record({
              op: fc.constant('offer' as const),
              priority: fc.constantFrom(...PRIORITIES),
              tenant: fc.constantFrom('a', 'b', 'c'),
              deadline: fc.integer({ min: 0, max: 300 }),
              cost: fc.integer({ min: 1, max: 40 }),
            }),
          },
          { weight: 2, arbitrary: fc.record({ op: fc.constant('take' as const) }) },
          { weight: 1, arbitrary: fc.record({ op: fc.constant('cancel' as const), pick: fc.nat() }) },
          { weight: requeues ? 1 : 0, arbitrary: fc.record({ op: fc.constant('requeue' as const) }) },
        ),
        { maxLength: 40 },
      ),
    }),
  );

const arrivalArb: fc.Arbitrary<Arrival> = fc.record({
  entry: entryArb('arrival'),
  freedPicks: fc.array(fc.nat(), { maxLength: 3 }),
  ghost: fc.boolean(),
});

/** The queue a setup describes, built with `policy` deciding: the same setup gives the same queue. */
function build(policy: FullQueuePolicy, s: Setup): PoolQueue<QueueEntry> {
  const q = new PoolQueue<QueueEntry>({
    capacity: s.capacity,
    priorityCapacity: s.classCap,
    fullPolicy: 'reject',
    fullQueuePolicy: policy,
    weights: { interactive: 8, batch: 1 },
    mode: s.mode,
    deadlineSlackTokens: 16,
    ...(s.withDoomed ? { doomed: (x: QueueEntry) => x.deadlineAtMs < 100 } : {}),
  });
  const taken: QueueEntry[] = [];
  s.ops.forEach((op, i) => {
    if (op.op === 'offer')
      q.offer({
        id: `t${i}`,
        priority: op.priority,
        tenant: op.tenant,
        cost: op.cost,
        deadlineAtMs: op.deadline,
      });
    else if (op.op === 'take') {
      const x = q.takeNext();
      if (x) taken.push(x);
    } else if (op.op === 'cancel') {
      const ids = [...q.entries()].map((x) => x.id);
      const id = ids[op.pick % Math.max(1, ids.length)];
      if (id !== undefined) q.remove(id);
    } else {
      const x = taken.pop();
      if (x) q.requeueFront(x);
    }
  });
  return q;
}

function freedOf(q: PoolQueue<QueueEntry>, a: Arrival): Set<string> {
  const ids = [...q.entries()].map((x) => x.id);
  const freed = new Set<string>();
  for (const pick of a.freedPicks) {
    const id = ids[pick % Math.max(1, ids.length)];
    if (id !== undefined) freed.add(id);
  }
  if (a.ghost) freed.add('not-queued');
  return freed;
}

/** Everything observable without changing the queue. */
function snapshot(q: PoolQueue<QueueEntry>) {
  const ids = [...q.entries()].map((x) => x.id);
  return {
    ids,
    size: q.size,
    sizes: PRIORITIES.map((p) => q.sizeOf(p)),
    totalCost: q.totalCost,
    next: q.peekNext()?.id,
    positions: ids.map((id) => q.positionOf(id)),
  };
}

/** The dispatch order from here on (empties the queue). */
function drain(q: PoolQueue<QueueEntry>): string[] {
  const out: string[] = [];
  for (let x = q.takeNext(); x; x = q.takeNext()) out.push(x.id);
  return out;
}

/** A plan by ids, comparable across two queues built from the same setup. */
const byIds = (p: OfferPlan<QueueEntry>) =>
  p.kind === 'admit' ? { kind: p.kind, evict: p.evict.map((x) => x.id) } : p;

const RUNS = { numRuns: 400 };

describe.each(Object.entries(FULL_QUEUE_POLICIES))('full-queue policy conformance: %s', (name, policy) => {
  it('is registered under its own name', () => {
    expect(policy.name).toBe(name);
    expect(FULL_POLICIES).toContain(name);
  });

  it('planOffer mutates nothing and decides the same for the same state', () => {
    fc.assert(
      fc.property(setupArb(true), arrivalArb, (s, a) => {
        const q = build(policy, s);
        const twin = build(policy, s);
        const freed = freedOf(q, a);
        const plan = q.planOffer(a.entry, freed);
        expect(q.planOffer(a.entry, freed)).toEqual(plan);
        expect(byIds(twin.planOffer(a.entry, freed))).toEqual(byIds(plan));
        expect(snapshot(q)).toEqual(snapshot(twin));
        expect(drain(q)).toEqual(drain(twin));
      }),
      RUNS,
    );
  });

  it('a refused offer changes nothing; the arrival is queued iff the plan admitted it', () => {
    fc.assert(
      fc.property(setupArb(true), arrivalArb, (s, a) => {
        const q = build(policy, s);
        const twin = build(policy, s);
        const plan = q.planOffer(a.entry);
        const r = q.offer(a.entry);
        expect(r.kind).toBe(plan.kind === 'admit' ? 'enqueued' : 'refused');
        expect(q.has(a.entry.id)).toBe(plan.kind === 'admit');
        if (r.kind === 'refused') {
          expect(r).toEqual(plan);
          expect(snapshot(q)).toEqual(snapshot(twin));
          expect(drain(q)).toEqual(drain(twin));
        } else expect(r.evicted).toEqual(plan.kind === 'admit' ? plan.evict : []);
      }),
      RUNS,
    );
  });

  it('evicts only queued entries, never freed ones, never of a higher class; commit does exactly the plan', () => {
    fc.assert(
      fc.property(setupArb(true), arrivalArb, (s, a) => {
        const q = build(policy, s);
        const freed = freedOf(q, a);
        const before = new Set([...q.entries()].map((x) => x.id));
        const plan = q.planOffer(a.entry, freed);
        if (plan.kind === 'refused') return;
        const evict = plan.evict.map((x) => x.id);
        expect(new Set(evict).size).toBe(evict.length);
        expect(evict.length).toBeLessThanOrEqual(2);
        for (const v of plan.evict) {
          expect(before.has(v.id)).toBe(true);
          expect(freed.has(v.id)).toBe(false);
          expect(rank(v.priority)).toBeGreaterThanOrEqual(rank(a.entry.priority));
        }
        const { evicted } = q.commitOffer(a.entry, plan, freed);
        expect(evicted).toEqual(plan.evict);
        const expected = new Set([...before].filter((id) => !freed.has(id) && !evict.includes(id)));
        expected.add(a.entry.id);
        expect(new Set([...q.entries()].map((x) => x.id))).toEqual(expected);
      }),
      RUNS,
    );
  });

  it('freed ids count as room: planning with them is planning after removing them', () => {
    fc.assert(
      fc.property(setupArb(true), arrivalArb, (s, a) => {
        const q = build(policy, s);
        const removed = build(policy, s);
        const freed = freedOf(q, a);
        for (const id of freed) removed.remove(id);
        expect(byIds(q.planOffer(a.entry, freed))).toEqual(byIds(removed.planOffer(a.entry)));
      }),
      RUNS,
    );
  });

  it('admits without evicting while there is room, and refuses only when full', () => {
    fc.assert(
      fc.property(setupArb(true), arrivalArb, (s, a) => {
        const q = build(policy, s);
        const freed = freedOf(q, a);
        const gone = [...freed].filter((id) => q.has(id));
        const classLeft =
          q.sizeOf(a.entry.priority) - gone.filter((id) => q.get(id)?.priority === a.entry.priority).length;
        const classFull = classLeft >= s.classCap[a.entry.priority];
        const queueFull = q.size - gone.length >= s.capacity;
        const plan = q.planOffer(a.entry, freed);
        if (!classFull && !queueFull) expect(plan).toEqual({ kind: 'admit', evict: [] });
        if (plan.kind === 'refused') expect(classFull || queueFull).toBe(true);
        if (plan.kind === 'refused' && !classFull) expect(plan.reason).not.toBe('priority-capacity');
      }),
      RUNS,
    );
  });

  it('after a commit the queue and each class stay within capacity (or, over it after a requeue, do not grow)', () => {
    fc.assert(
      fc.property(setupArb(true), arrivalArb, (s, a) => {
        const q = build(policy, s);
        const freed = freedOf(q, a);
        const size = q.size;
        const sizes = PRIORITIES.map((p) => q.sizeOf(p));
        const plan = q.planOffer(a.entry, freed);
        if (plan.kind === 'refused') return;
        q.commitOffer(a.entry, plan, freed);
        expect(q.size).toBeLessThanOrEqual(Math.max(s.capacity, size));
        PRIORITIES.forEach((p, i) =>
          expect(q.sizeOf(p)).toBeLessThanOrEqual(Math.max(s.classCap[p], sizes[i] ?? 0)),
        );
      }),
      RUNS,
    );
  });

  it('a queue filled only by offers never exceeds its capacities', () => {
    fc.assert(
      fc.property(setupArb(false), arrivalArb, (s, a) => {
        const q = build(policy, s);
        q.offer(a.entry);
        expect(q.size).toBeLessThanOrEqual(s.capacity);
        for (const p of PRIORITIES) expect(q.sizeOf(p)).toBeLessThanOrEqual(s.classCap[p]);
      }),
      RUNS,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Built-in full-queue behaviour the pool-queue property tests do not pin down
// ---------------------------------------------------------------------------------------------

const e = (id: string, priority: Priority, deadlineAtMs = 1e12, tenant = 't'): QueueEntry => ({
  id,
  priority,
  tenant,
  cost: 1,
  deadlineAtMs,
});

const queue = (
  fullPolicy: keyof typeof FULL_QUEUE_POLICIES,
  capacity: number,
  classCap: Readonly<Record<Priority, number>>,
  extra: {
    mode?: 'wfq' | 'fifo';
    doomed?: (x: QueueEntry) => boolean;
    fullQueuePolicy?: FullQueuePolicy;
  } = {},
) =>
  new PoolQueue<QueueEntry>({
    capacity,
    priorityCapacity: classCap,
    fullPolicy,
    weights: { interactive: 8, batch: 1 },
    ...extra,
  });

const ids = (r: ReturnType<PoolQueue<QueueEntry>['offer']>) =>
  r.kind === 'enqueued' ? r.evicted.map((x) => x.id) : r;

describe('built-in full-queue policies', () => {
  it('reject: a full class refuses with priority-capacity, a full queue with capacity, nothing evicted', () => {
    const q = queue('reject', 3, { interactive: 1, batch: 3 });
    q.offer(e('i1', 'interactive'));
    expect(q.offer(e('i2', 'interactive'))).toEqual({ kind: 'refused', reason: 'priority-capacity' });
    q.offer(e('b1', 'batch'));
    q.offer(e('b2', 'batch'));
    expect(q.offer(e('b3', 'batch'))).toEqual({ kind: 'refused', reason: 'capacity' });
    expect([...q.entries()].map((x) => x.id).sort()).toEqual(['b1', 'b2', 'i1']);
  });

  it('drop-lru: a full class makes room inside itself even when the queue has room', () => {
    const q = queue('drop-lru', 10, { interactive: 2, batch: 10 });
    q.offer(e('i1', 'interactive'));
    q.offer(e('b1', 'batch'));
    q.offer(e('i2', 'interactive'));
    expect(ids(q.offer(e('i3', 'interactive')))).toEqual(['i1']);
    expect(q.has('b1')).toBe(true);
  });

  it('drop-lru: a class with capacity 0 refuses with priority-capacity', () => {
    const q = queue('drop-lru', 4, { interactive: 4, batch: 0 });
    expect(q.offer(e('b1', 'batch'))).toEqual({ kind: 'refused', reason: 'priority-capacity' });
  });

  it('drop-lru: over capacity after a requeue, both steps evict, oldest first', () => {
    const q = queue('drop-lru', 2, { interactive: 2, batch: 2 });
    q.offer(e('b1', 'batch'));
    q.offer(e('b2', 'batch'));
    q.requeueFront(e('b0', 'batch'));
    expect(ids(q.offer(e('b3', 'batch')))).toEqual(['b0', 'b1']);
    expect(q.size).toBe(2);
  });

  it('drop-lru: a refusal after the class step changes nothing, dispatch order included', () => {
    // The class step picks b1; then only interactive work is left to make room, which a batch
    // arrival may not evict. Putting b1 back would have sent it to the end of the line.
    const q = queue('drop-lru', 2, { interactive: 2, batch: 1 }, { mode: 'fifo' });
    q.offer(e('b1', 'batch'));
    q.offer(e('i1', 'interactive'));
    q.requeueFront(e('i0', 'interactive'));
    expect(q.offer(e('b2', 'batch'))).toEqual({ kind: 'refused', reason: 'capacity' });
    expect(drain(q)).toEqual(['i0', 'b1', 'i1']);
  });

  it('drop-lru: a freed entry is never the victim; the next oldest goes', () => {
    const q = queue('drop-lru', 3, { interactive: 3, batch: 3 });
    for (const id of ['b1', 'b2', 'b3']) q.offer(e(id, 'batch'));
    const plan = q.planOffer(e('i1', 'interactive'), new Set(['b1']));
    expect(plan).toEqual({ kind: 'admit', evict: [] });
    const full = queue('drop-lru', 3, { interactive: 3, batch: 3 });
    for (const id of ['b1', 'b2', 'b3']) full.offer(e(id, 'batch'));
    full.requeueFront(e('b0', 'batch'));
    const p2 = full.planOffer(e('i1', 'interactive'), new Set(['b0']));
    expect(byIds(p2)).toEqual({ kind: 'admit', evict: ['b1'] });
  });

  it('shed-low-priority: a full class refuses even with lower-priority work queued', () => {
    const q = queue('shed-low-priority', 4, { interactive: 1, batch: 4 });
    q.offer(e('i1', 'interactive'));
    q.offer(e('b1', 'batch'));
    expect(q.offer(e('i2', 'interactive'))).toEqual({ kind: 'refused', reason: 'priority-capacity' });
  });

  it('shed-low-priority: sheds the newest lower-priority entry, a doomed one first, and refuses without one', () => {
    const q = queue(
      'shed-low-priority',
      3,
      { interactive: 4, batch: 3 },
      { doomed: (x) => x.deadlineAtMs < 100 },
    );
    q.offer(e('b-doomed', 'batch', 50));
    q.offer(e('b-live', 'batch'));
    q.offer(e('b-newest', 'batch', 1e12, 'u'));
    expect(ids(q.offer(e('i1', 'interactive')))).toEqual(['b-doomed']);
    expect(ids(q.offer(e('i2', 'interactive')))).toEqual(['b-newest']);
    expect(ids(q.offer(e('i3', 'interactive')))).toEqual(['b-live']);
    expect(q.offer(e('i4', 'interactive'))).toEqual({ kind: 'refused', reason: 'no-lower-priority' });
  });

  it('shed-low-priority: soft-preemption victims passed as freed make the room, nothing else goes', () => {
    const q = queue('shed-low-priority', 3, { interactive: 3, batch: 3 });
    for (const id of ['b1', 'b2', 'b3']) q.offer(e(id, 'batch'));
    const victims = q.softPreemptionVictims('interactive', 1);
    expect(victims.map((x) => x.id)).toEqual(['b1']);
    expect(q.size).toBe(3);
    const freed = new Set(victims.map((x) => x.id));
    const plan = q.planOffer(e('i1', 'interactive'), freed);
    expect(plan).toEqual({ kind: 'admit', evict: [] });
    if (plan.kind !== 'admit') return;
    q.commitOffer(e('i1', 'interactive'), plan, freed);
    expect([...q.entries()].map((x) => x.id).sort()).toEqual(['b2', 'b3', 'i1']);
  });
});

describe('PoolQueue with a full-queue policy of its own (the plugin seam)', () => {
  const refuse = { kind: 'refuse', reason: 'capacity' } as const;
  /** b1 (doomed, tenant x), b2 (tenant y), i1: the queue is full. */
  const full = (policy: FullQueuePolicy) => {
    const q = queue(
      'reject',
      3,
      { interactive: 3, batch: 3 },
      {
        fullQueuePolicy: policy,
        doomed: (x) => x.deadlineAtMs < 100,
      },
    );
    q.offer(e('b1', 'batch', 50, 'x'));
    q.offer(e('b2', 'batch', 1e12, 'y'));
    q.offer(e('i1', 'interactive'));
    return q;
  };

  it('the view hides leaving entries and gives plain oldest and newest besides the ETA-aware choice', () => {
    const seen: Record<string, unknown> = {};
    const probe: FullQueuePolicy = {
      name: 'probe',
      whenClassFull: () => refuse,
      whenQueueFull(_arrival, view) {
        const newest = view.newest('batch');
        Object.assign(seen, {
          capacity: view.capacity,
          size: view.size,
          batch: view.sizeOf('batch'),
          batchCap: view.capacityOf('batch'),
          oldest: view.oldest('batch')?.id,
          newest: newest?.id,
          newestDoomed: newest && view.isDoomed(newest),
          victim: view.victimIn('batch', 'newest')?.id,
        });
        return refuse;
      },
    };
    const q = full(probe);
    q.requeueFront(e('b0', 'batch', 1e12, 'y'));
    expect(q.planOffer(e('i2', 'interactive'), new Set(['b0']))).toEqual({
      kind: 'refused',
      reason: 'capacity',
    });
    expect(seen).toEqual({
      capacity: 3,
      size: 3,
      batch: 2,
      batchCap: 3,
      oldest: 'b1',
      newest: 'b2',
      newestDoomed: false,
      victim: 'b1',
    });
  });

  /** A policy that evicts whatever `pick` returns, in the step `step`. */
  const rogue = (step: 'class' | 'queue', pick: () => QueueEntry | undefined): FullQueuePolicy => {
    const evict = <T extends QueueEntry>() => ({ kind: 'evict', victim: pick() as T }) as const;
    return {
      name: 'rogue',
      whenClassFull: () => (step === 'class' ? evict() : refuse),
      whenQueueFull: () => (step === 'queue' ? evict() : refuse),
    };
  };

  it.each([
    ['a higher class than the arrival', (q: PoolQueue<QueueEntry>) => q.get('i1')],
    ['an entry that is not queued', () => e('nope', 'batch')],
    ['a copy of a queued entry', () => e('b2', 'batch', 1e12, 'y')],
    ['a freed entry', (q: PoolQueue<QueueEntry>) => q.get('b1')],
  ] as const)('throws, changing nothing, when a policy evicts %s', (_what, pick) => {
    // The policy reads the queue it is given to, once the queue exists.
    const q: PoolQueue<QueueEntry> = full(rogue('queue', () => pick(q)));
    // Over capacity, so the queue step runs even with b1 freed.
    q.requeueFront(e('b0', 'batch'));
    const before = snapshot(q);
    expect(() => q.planOffer(e('b9', 'batch'), new Set(['b1']))).toThrow(/full-queue policy 'rogue' chose/);
    expect(snapshot(q)).toEqual(before);
  });

  it("throws when, the arrival's class being full, a policy evicts from another class", () => {
    const q: PoolQueue<QueueEntry> = queue(
      'reject',
      9,
      { interactive: 1, batch: 9 },
      { fullQueuePolicy: rogue('class', () => q.get('b1')) },
    );
    q.offer(e('b1', 'batch'));
    q.offer(e('i1', 'interactive'));
    const before = snapshot(q);
    expect(() => q.offer(e('i2', 'interactive'))).toThrow(/outside the arrival's class/);
    expect(snapshot(q)).toEqual(before);
  });

  it('commitOffer refuses a stale plan before changing anything', () => {
    const q = queue('drop-lru', 2, { interactive: 2, batch: 2 });
    q.offer(e('b1', 'batch'));
    q.offer(e('b2', 'batch'));
    const plan = q.planOffer(e('b3', 'batch'));
    expect(byIds(plan)).toEqual({ kind: 'admit', evict: ['b1'] });
    q.remove('b1');
    if (plan.kind !== 'admit') return;
    expect(() => q.commitOffer(e('b3', 'batch'), plan)).toThrow(/stale offer plan/);
    expect([...q.entries()].map((x) => x.id)).toEqual(['b2']);
  });
});

// ---------------------------------------------------------------------------------------------
// Placement policies
// ---------------------------------------------------------------------------------------------

const loadsArb: fc.Arbitrary<ReplicaLoad[]> = fc.uniqueArray(
  fc.record(
    {
      id: fc.constantFrom('r0', 'r1', 'r2', 'r3', 'r4', 'r5'),
      slotsTotal: fc.integer({ min: 0, max: 4 }),
      inFlight: fc.integer({ min: 0, max: 5 }),
      topologyCost: fc.integer({ min: 0, max: 3 }),
      kvUsage: fc.double({ min: 0, max: 1, noNaN: true }),
      engineBusy: fc.integer({ min: 0, max: 5 }),
    },
    { requiredKeys: ['id', 'slotsTotal', 'inFlight'] },
  ),
  { selector: (r) => r.id, maxLength: 6 },
);

const IDS = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'gone'] as const;
/** What the dispatcher computes for policies that read it: blocks of the prompt held per replica. */
const prefixArb = fc.integer({ min: 0, max: 40 }).chain((blocks) =>
  fc.record({
    blocks: fc.constant(blocks),
    blockChars: fc.constantFrom(1, 256),
    matched: fc
      .array(fc.tuple(fc.constantFrom(...IDS), fc.integer({ min: 1, max: Math.max(1, blocks) })), {
        maxLength: 7,
      })
      .map((kv) => new Map(kv)),
    sessionOn: fc.uniqueArray(fc.constantFrom(...IDS), { maxLength: 3 }).map((ids) => new Set(ids)),
  }),
);

const ctxArb = fc.record(
  {
    affinity: fc.constantFrom(undefined, 'r0', 'r1', 'r2', 'gone'),
    overloadRatio: fc.double({ min: 0, max: 1.5, noNaN: true }),
    prefix: prefixArb,
  },
  { requiredKeys: ['affinity', 'overloadRatio'] },
);

const free = (r: ReplicaLoad) => r.inFlight < r.slotsTotal;

describe.each(Object.entries(PLACEMENT_POLICIES))('placement policy conformance: %s', (name, policy) => {
  it('is registered under its own name', () => expect(policy.name).toBe(name));

  it('picks a candidate with a free slot, undefined iff none has one, deterministically', () => {
    fc.assert(
      fc.property(loadsArb, ctxArb, (loads, ctx) => {
        const frozen = structuredClone(loads);
        const id = policy.choose(loads, ctx);
        expect(loads).toEqual(frozen);
        expect(policy.choose(structuredClone(loads), { ...ctx })).toBe(id);
        if (id === undefined) expect(loads.some(free)).toBe(false);
        else {
          const chosen = loads.find((r) => r.id === id);
          expect(chosen).toBeDefined();
          expect(chosen && free(chosen)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('least-loaded placement', () => {
  const util = (r: ReplicaLoad) => (r.slotsTotal <= 0 ? 1 : r.inFlight / r.slotsTotal);
  const policy = PLACEMENT_POLICIES['least-loaded'];

  it('the choice does not depend on the order replicas are listed in', () => {
    fc.assert(
      fc.property(
        loadsArb.chain((l) =>
          fc.tuple(fc.constant(l), fc.shuffledSubarray(l, { minLength: l.length, maxLength: l.length })),
        ),
        ctxArb,
        ([loads, shuffled], ctx) => {
          expect(policy.choose(shuffled, ctx)).toBe(policy.choose(loads, ctx));
        },
      ),
    );
  });

  it('a least-utilized free replica wins unless the warm one is below the overload ratio', () => {
    fc.assert(
      fc.property(loadsArb, ctxArb, (loads, ctx) => {
        const id = policy.choose(loads, ctx);
        const chosen = loads.find((r) => r.id === id);
        if (!chosen) return;
        const minUtil = Math.min(...loads.filter(free).map(util));
        const warmWins = chosen.id === ctx.affinity && util(chosen) < ctx.overloadRatio;
        if (!warmWins) expect(util(chosen)).toBe(minUtil);
      }),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Hard-preemption victim policies
// ---------------------------------------------------------------------------------------------

const runningArb: fc.Arbitrary<PreemptionCandidate[]> = fc.uniqueArray(
  fc.record({
    taskId: fc.constantFrom('t0', 't1', 't2', 't3', 't4', 't5', 't6'),
    replicaId: fc.constantFrom('r0', 'r1'),
    priority: fc.constantFrom(...PRIORITIES),
    startedAtMs: fc.integer({ min: 0, max: 20 }),
    interruptible: fc.boolean(),
    determinism: fc.constantFrom<Determinism>('strict', 'best_effort'),
  }),
  { selector: (c) => c.taskId, maxLength: 7 },
);

/** SPEC §3.5 and §17, stated independently of the code under test. */
const mayStop = (c: PreemptionCandidate, p: Priority) =>
  c.interruptible && c.determinism === 'best_effort' && rank(c.priority) > rank(p);

const candidate = (
  taskId: string,
  priority: Priority,
  startedAtMs: number,
  determinism: Determinism,
): PreemptionCandidate => ({
  taskId,
  replicaId: 'r',
  priority,
  startedAtMs,
  interruptible: true,
  determinism,
});

describe.each(Object.entries(VICTIM_POLICIES))(
  'hard-preemption victim policy conformance: %s',
  (name, policy) => {
    it('is registered under its own name', () => expect(policy.name).toBe(name));

    it('stops only an interruptible, strictly-lower-priority, non-strict task; undefined iff none qualifies', () => {
      fc.assert(
        fc.property(runningArb, fc.constantFrom(...PRIORITIES), (running, p) => {
          const frozen = structuredClone(running);
          const v = policy.choose(running, p);
          expect(running).toEqual(frozen);
          expect(policy.choose(structuredClone(running), p)?.taskId).toBe(v?.taskId);
          if (v === undefined) expect(running.some((c) => mayStop(c, p))).toBe(false);
          else {
            expect(running).toContain(v);
            expect(mayStop(v, p)).toBe(true);
          }
        }),
        { numRuns: 500 },
      );
    });

    it('a determinism: strict task is never chosen as a hard-preemption victim', () => {
      // The strict task is the one every other rule prefers: lowest class, started last.
      const strict = candidate('strict', 'batch', 9, 'strict');
      expect(policy.choose([strict], 'interactive')).toBeUndefined();
      expect(
        policy.choose([candidate('other', 'batch', 1, 'best_effort'), strict], 'interactive')?.taskId,
      ).toBe('other');
    });
  },
);

describe('lowest-priority-newest victim', () => {
  it('stops the newest of the lowest qualifying class', () => {
    fc.assert(
      fc.property(runningArb, fc.constantFrom(...PRIORITIES), (running, p) => {
        const v = VICTIM_POLICIES['lowest-priority-newest'].choose(running, p);
        if (!v) return;
        for (const c of running.filter((x) => mayStop(x, p))) {
          expect(rank(c.priority)).toBeLessThanOrEqual(rank(v.priority));
          if (c.priority === v.priority) expect(c.startedAtMs).toBeLessThanOrEqual(v.startedAtMs);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('chooseHardVictim delegates to it, strict tasks included', () => {
    expect(chooseHardVictim([candidate('s', 'batch', 5, 'strict')], 'interactive')).toBeUndefined();
    expect(
      chooseHardVictim(
        [candidate('s', 'batch', 5, 'strict'), candidate('b', 'batch', 1, 'best_effort')],
        'interactive',
      )?.taskId,
    ).toBe('b');
  });
});
