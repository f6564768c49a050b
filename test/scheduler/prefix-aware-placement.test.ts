import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { leastLoadedPlacement } from '../../src/scheduler/policies/least-loaded-placement.js';
import type {
  PlacementContext,
  PrefixMatch,
  ReplicaLoad,
} from '../../src/scheduler/policies/placement-policy.js';
import { prefixAwarePlacement } from '../../src/scheduler/policies/prefix-aware-placement.js';

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
  }),
);

const ctxArb: fc.Arbitrary<PlacementContext> = fc.record({
  affinity: fc.constantFrom(undefined, ...IDS),
  overloadRatio: fc.constant(0.75),
  prefix: prefixArb,
});

const free = (r: ReplicaLoad) => r.inFlight < r.slotsTotal;
const load = (id: string, inFlight: number, slotsTotal = 4): ReplicaLoad => ({ id, inFlight, slotsTotal });
const prefix = (blocks: number, matched: Record<string, number>, sessionOn: string[] = []): PrefixMatch => ({
  blocks,
  blockChars: 256,
  matched: new Map(Object.entries(matched)),
  sessionOn: new Set(sessionOn),
});
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

  it('with equal load, the replica holding the longer prefix wins', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 60 }), fc.integer({ min: 0, max: 3 }), (blocks, busy) => {
        const loads = [load('r0', busy), load('r1', busy), load('r2', busy)];
        const p = prefix(blocks, { r0: blocks - 1, r2: blocks });
        expect(policy.choose(loads, ctx(p))).toBe('r2');
      }),
    );
  });

  it('a long shared prefix keeps a busy replica that has a free slot; a short one does not', () => {
    // 16 blocks ≈ 4k characters of system prompt on r0, three of its four slots busy.
    const loads = [load('r0', 3), load('r1', 0)];
    expect(policy.choose(loads, ctx(prefix(20, { r0: 16 })))).toBe('r0');
    // One 256-character block: not worth the busier replica.
    expect(policy.choose(loads, ctx(prefix(20, { r0: 1 })))).toBe('r1');
    // Full: the next free replica, however warm r0 is.
    expect(policy.choose([load('r0', 4), load('r1', 3)], ctx(prefix(20, { r0: 20 })))).toBe('r1');
  });

  it("the engine's own busy slots count as load", () => {
    const p = prefix(20, { r0: 2, r1: 2 });
    expect(policy.choose([load('r0', 0), load('r1', 0)], ctx(p))).toBe('r0');
    expect(policy.choose([{ ...load('r0', 0), engineBusy: 3 }, load('r1', 0)], ctx(p))).toBe('r1');
  });

  it('KV pressure the engine reports breaks a tie in cached prefix', () => {
    const p = prefix(20, { r0: 8, r1: 8 });
    expect(
      policy.choose(
        [
          { ...load('r0', 1), kvUsage: 0.95 },
          { ...load('r1', 1), kvUsage: 0.2 },
        ],
        ctx(p),
      ),
    ).toBe('r1');
  });

  it("the session's replica is a strong prior while it still holds the session", () => {
    // Both hold the shared system prompt; r1 served the session's earlier turns.
    const loads = [load('r0', 0), load('r1', 2)];
    expect(policy.choose(loads, ctx(prefix(12, { r0: 10, r1: 12 }, ['r1']), 'r1'))).toBe('r1');
    // Until it is much busier than another replica that holds most of the prompt.
    const busy = [load('r0', 0), load('r1', 3)];
    expect(policy.choose(busy, ctx(prefix(12, { r0: 10, r1: 12 }, ['r1']), 'r1'))).toBe('r0');
    // A short chat (no full block yet) stays with its session too.
    expect(policy.choose([load('r0', 0), load('r1', 1)], ctx(prefix(0, {}, ['r1']), 'r1'))).toBe('r1');
  });

  it('where no replica holds anything of the prompt, it places as least-loaded without a stale affinity', () => {
    fc.assert(
      fc.property(loadsArb, fc.constantFrom(undefined, ...IDS), (loads, affinity) => {
        const c = ctx(prefix(10, {}), affinity);
        expect(policy.choose(loads, c)).toBe(
          leastLoadedPlacement.choose(loads, { ...c, affinity: undefined }),
        );
      }),
    );
  });

  it('without prefix information it is least-loaded', () => {
    fc.assert(
      fc.property(loadsArb, fc.constantFrom(undefined, ...IDS), (loads, affinity) => {
        const c = { affinity, overloadRatio: 0.75 };
        expect(policy.choose(loads, c)).toBe(leastLoadedPlacement.choose(loads, c));
      }),
    );
  });
});
