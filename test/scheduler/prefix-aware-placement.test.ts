import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { leastLoadedPlacement } from '../../src/scheduler/policies/least-loaded-placement.js';
import type {
  PlacementContext,
  PrefixMatch,
  ReplicaLoad,
} from '../../src/scheduler/policies/placement-policy.js';
import {
  LOAD_BOUND,
  prefixAwarePlacement,
  rendezvousWeight,
  replicaLoad,
} from '../../src/scheduler/policies/prefix-aware-placement.js';

const policy = prefixAwarePlacement;
const IDS = ['r0', 'r1', 'r2', 'r3'] as const;

const loadsArb: fc.Arbitrary<ReplicaLoad[]> = fc.uniqueArray(
  fc.record(
    {
      id: fc.constantFrom(...IDS),
      slotsTotal: fc.integer({ min: 0, max: 8 }),
      inFlight: fc.integer({ min: 0, max: 9 }),
      topologyCost: fc.integer({ min: 0, max: 2 }),
      kvUsage: fc.double({ min: 0, max: 1, noNaN: true }),
      engineBusy: fc.integer({ min: 0, max: 9 }),
    },
    { requiredKeys: ['id', 'slotsTotal', 'inFlight'] },
  ),
  { selector: (r) => r.id, minLength: 1, maxLength: 4 },
);

const prefixArb: fc.Arbitrary<PrefixMatch> = fc.integer({ min: 0, max: 60 }).chain((blocks) =>
  fc.record({
    blocks: fc.constant(blocks),
    blockChars: fc.constant(256),
    matched: fc
      .array(fc.tuple(fc.constantFrom(...IDS), fc.integer({ min: 1, max: Math.max(1, blocks) })), {
        maxLength: 4,
      })
      .map((kv) => new Map(kv)),
    sessionOn: fc.uniqueArray(fc.constantFrom(...IDS), { maxLength: 2 }).map((ids) => new Set(ids)),
    key: fc.option(fc.string({ minLength: 1, maxLength: 8 }), { nil: undefined }),
  }),
);

const ctxArb: fc.Arbitrary<PlacementContext> = fc.record({
  affinity: fc.constantFrom(undefined, ...IDS),
  overloadRatio: fc.constant(0.75),
  prefix: prefixArb,
});

const free = (r: ReplicaLoad) => r.inFlight < r.slotsTotal;
const load = (id: string, inFlight: number, slotsTotal = 4): ReplicaLoad => ({ id, inFlight, slotsTotal });
const prefix = (
  blocks: number,
  matched: Record<string, number>,
  sessionOn: string[] = [],
  key = 'system-prompt-a',
): PrefixMatch => ({
  blocks,
  blockChars: 256,
  matched: new Map(Object.entries(matched)),
  sessionOn: new Set(sessionOn),
  key,
});
/** Slots of the replicas in the load-bound cases, and busy slots just within and just beyond the bound. */
const S = 8;
const WITHIN = Math.floor(LOAD_BOUND * S);
const BEYOND = WITHIN + 1;
/** Replica ids in a key's rendezvous order (its home first). */
const homes = (key: string, ids: readonly string[] = IDS): string[] =>
  [...ids].sort((a, b) => rendezvousWeight(key, b) - rendezvousWeight(key, a));
/** A key whose home (among `ids`) is `id`. */
const keyHomedOn = (id: string, ids: readonly string[] = IDS): string => {
  for (let k = 0; ; k++) if (homes(`prompt-${k}`, ids)[0] === id) return `prompt-${k}`;
};
const ctx = (p: PrefixMatch, affinity?: string): PlacementContext => ({
  affinity,
  overloadRatio: 0.75,
  prefix: p,
});

describe('prefix-aware placement', () => {
  it('never picks a replica without a free slot, and is deterministic whatever the listing order', () => {
    fc.assert(
      fc.property(
        loadsArb.chain((l) =>
          fc.tuple(fc.constant(l), fc.shuffledSubarray(l, { minLength: l.length, maxLength: l.length })),
        ),
        ctxArb,
        ([loads, shuffled], c) => {
          const id = policy.choose(loads, c);
          expect(policy.choose(shuffled, c)).toBe(id);
          if (id === undefined) expect(loads.some(free)).toBe(false);
          else expect(loads.find((r) => r.id === id && free(r))).toBeDefined();
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never picks a replica loaded beyond the bound over the least-loaded free one', () => {
    fc.assert(
      fc.property(loadsArb, ctxArb, (loads, c) => {
        const id = policy.choose(loads, c);
        const f = loads.filter(free);
        if (id === undefined || c.prefix?.key === undefined || c.prefix.blocks === 0) return;
        const least = Math.min(...f.map(replicaLoad));
        const chosen = f.find((r) => r.id === id);
        expect(chosen && replicaLoad(chosen)).toBeLessThanOrEqual(least + LOAD_BOUND);
      }),
      { numRuns: 1000 },
    );
  });

  it('with load within the bound, the replica holding the longer prefix wins', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 60 }), fc.integer({ min: 0, max: 3 }), (blocks, busy) => {
        const loads = [load('r0', busy), load('r1', busy), load('r2', Math.max(0, busy - 2))];
        const p = prefix(blocks, { r0: blocks - 1, r2: blocks });
        expect(policy.choose(loads, ctx(p))).toBe('r2');
      }),
    );
  });

  it('a warm replica keeps its prompt until its load exceeds the least-loaded one by the bound', () => {
    // 16 blocks ≈ 4k characters of system prompt on r0; r1 idle and cold.
    const p = prefix(20, { r0: 16 }, [], keyHomedOn('r1', ['r0', 'r1']));
    expect(policy.choose([load('r0', WITHIN, S), load('r1', 0, S)], ctx(p))).toBe('r0');
    // One more busy slot is beyond the bound: the prompt goes to its home.
    expect(policy.choose([load('r0', BEYOND, S), load('r1', 0, S)], ctx(p))).toBe('r1');
    // Full: the next free replica, however warm r0 is.
    expect(policy.choose([load('r0', 4), load('r1', 3)], ctx(prefix(20, { r0: 20 })))).toBe('r1');
  });

  it('a match of a block or two (a shared preamble) does not outweigh the prompt’s home', () => {
    const key = keyHomedOn('r1', ['r0', 'r1']);
    expect(policy.choose([load('r0', 0), load('r1', 1)], ctx(prefix(20, { r0: 1 }, [], key)))).toBe('r1');
    expect(policy.choose([load('r0', 0), load('r1', 1)], ctx(prefix(20, { r0: 9 }, [], key)))).toBe('r0');
  });

  it("the engine's own running and waiting requests count as load", () => {
    const p = prefix(20, { r0: 12, r1: 12 }, [], keyHomedOn('r0', ['r0', 'r1']));
    expect(policy.choose([load('r0', 0), load('r1', 0)], ctx(p))).toBe('r0');
    // r0's engine runs 3 and queues 2 it was sent outside this count: r1 is less loaded by > the bound.
    expect(policy.choose([{ ...load('r0', 0), engineBusy: 5 }, load('r1', 0)], ctx(p))).toBe('r1');
  });

  it('KV pressure the engine reports counts towards the bound', () => {
    const p = prefix(20, { r0: 12 }, [], keyHomedOn('r1', ['r0', 'r1']));
    const busy = WITHIN - 1;
    expect(policy.choose([{ ...load('r0', busy, S), kvUsage: 0 }, load('r1', 0, S)], ctx(p))).toBe('r0');
    expect(policy.choose([{ ...load('r0', busy, S), kvUsage: 0.9 }, load('r1', 0, S)], ctx(p))).toBe('r1');
  });

  it("the session's replica counts as holding the whole prompt while it still holds the session", () => {
    // Both hold the shared system prompt; r1 served the session's earlier turns.
    const key = keyHomedOn('r0', ['r0', 'r1']);
    const loads = [load('r0', 0, S), load('r1', WITHIN, S)];
    expect(policy.choose(loads, ctx(prefix(12, { r0: 10, r1: 12 }, ['r1'], key), 'r1'))).toBe('r1');
    // Until it is busier than the bound allows.
    const busy = [load('r0', 0, S), load('r1', BEYOND, S)];
    expect(policy.choose(busy, ctx(prefix(12, { r0: 10, r1: 12 }, ['r1'], key), 'r1'))).toBe('r0');
    // A short chat (no full block yet) stays with its session too.
    expect(policy.choose([load('r0', 0), load('r1', 1)], ctx(prefix(0, {}, ['r1']), 'r1'))).toBe('r1');
  });

  it('a prompt no replica holds goes to its home, not to the least-loaded replica', () => {
    // r3 is the busiest free replica, and the home of the key: least-loaded would take r0.
    const key = keyHomedOn('r3');
    const loads = [load('r0', 0), load('r1', 1), load('r2', 1), load('r3', 2)];
    expect(leastLoadedPlacement.choose(loads, ctx(prefix(30, {}, [], key)))).toBe('r0');
    expect(policy.choose(loads, ctx(prefix(30, {}, [], key)))).toBe('r3');
  });

  it('spills a loaded home in the same order every time: its second home, then the third', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), (k) => {
        const key = `prompt-${k}`;
        const [h0, h1, h2] = homes(key) as [string, string, string];
        const idle = IDS.map((id) => load(id, 0, S));
        const at = (busy: Record<string, number>) => IDS.map((id) => load(id, busy[id] ?? 0, S));
        const c = ctx(prefix(30, {}, [], key));
        expect(policy.choose(idle, c)).toBe(h0);
        expect(policy.choose(at({ [h0]: WITHIN }), c)).toBe(h0);
        // The home loaded beyond the bound: the next in its order takes the prompt.
        expect(policy.choose(at({ [h0]: BEYOND }), c)).toBe(h1);
        expect(policy.choose(at({ [h0]: BEYOND, [h1]: BEYOND }), c)).toBe(h2);
      }),
    );
  });

  it('spreads different prompts over every replica, each prompt on one', () => {
    const idle = IDS.map((id) => load(id, 0));
    const chosen = Array.from({ length: 64 }, (_, k) =>
      policy.choose(idle, ctx(prefix(30, {}, [], `p${k}`))),
    );
    const counts = new Map<string, number>();
    for (const id of chosen) counts.set(id ?? '', (counts.get(id ?? '') ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual([...IDS]);
    for (const n of counts.values()) expect(n).toBeGreaterThanOrEqual(6);
    // Removing a replica moves only the prompts that were homed on it.
    const without = idle.filter((r) => r.id !== 'r2');
    chosen.forEach((id, k) => {
      const again = policy.choose(without, ctx(prefix(30, {}, [], `p${k}`)));
      if (id !== 'r2') expect(again).toBe(id);
    });
  });

  it('prompts shorter than a block, or without prefix information, are placed as least-loaded', () => {
    fc.assert(
      fc.property(loadsArb, fc.constantFrom(undefined, ...IDS), (loads, affinity) => {
        const c = { affinity, overloadRatio: 0.75 };
        expect(policy.choose(loads, c)).toBe(leastLoadedPlacement.choose(loads, c));
        const short = ctx(prefix(0, {}, [], 'k'), affinity);
        expect(policy.choose(loads, short)).toBe(leastLoadedPlacement.choose(loads, short));
      }),
    );
  });
});
